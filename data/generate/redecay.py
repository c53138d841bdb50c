"""Several tau decays of one generated event: the throughput option of the boson samples.

Most of a Pythia event's time goes into multiparton interactions, showers and hadronisation,
which fix the taus' momenta and everything around them; the tau decays, which decide the
channel, the visible kinematics and the neutrinos, cost little. With `tau_decays = K`, Pythia
generates the event with taus left undecayed (`15:mayDecay = off`) and a second Pythia
instance decays the tau pair K times, each time with Pythia's own `TauDecays` (helicity
correlations from the same mediator and incoming partons that the inline decay would use).

Why this is unbiased: each of the K copies is an exact draw of (tau decays | event), and the
event is an exact draw from Pythia, so every copy has exactly the distribution of an inline
event; the copies only share their parton- and hadron-level event (taus' momenta, jets,
underlying event), so K copies carry less information than K independent events. Test and
evaluation samples use K = 1 (inline decays, the reference path). A copy whose taus could not
pass the selection for any decay is never decayed (`could_pass`, an exact necessary condition).
"""

import numpy as np

from data.generate.pythia import COMMON, FlatRecord, bottom_copy, daughters, last_of_id

TAU_MASS = 1.77686  # GeV, PDG
UNDECAYED = ("15:mayDecay = off",)
DECAYED_STATUS = -2  # status of a tau after its decay (Pythia: negative = not final)
# settings of the decayer: no process or parton level, no hadronisation, only particle decays
_DECAYER = ("ProcessLevel:all = off", "HadronLevel:Hadronize = off")
_SYSTEMS_PER_CALL = 64  # tau systems per forceHadronLevel call (amortises the call overhead)


def could_pass(tau_p4, *, min_vis_pt, max_response, max_abs_eta):
    """Whether a tau could give a visible leg that passes pT > min_vis_pt and |eta| < max.

    Exact bounds, no approximation: the visible momentum's part transverse to the tau's flight
    is at most m_tau/2 (boost invariant), and its part along the flight at most |p_vis| <=
    E_vis <= E_tau; so pT_vis <= E_tau sin(theta_tau) + m_tau/2, and the angle between the
    visible and the tau direction is at most arcsin(m_tau / (2 |p_vis|)) with |p_vis| >= pT_vis.
    The reconstructed pT is at most `max_response` x pT_vis (the tau_h response is clipped
    there; lepton smearing exceeds it with probability < 1e-80).

    Args:
        tau_p4: (..., 4) undecayed tau four-momenta (px, py, pz, E).
        min_vis_pt: reco pT threshold of the selection (GeV).
        max_response: largest reco / visible pT ratio of the detector model.
        max_abs_eta: the widest |eta| acceptance of the selection.
    Returns:
        (...,) bool.
    """
    px, py, pz, e = np.moveaxis(tau_p4, -1, 0)
    p = np.sqrt(px**2 + py**2 + pz**2)
    theta = np.arctan2(np.hypot(px, py), pz)
    vis_pt_min = min_vis_pt / max_response
    pt_ok = e * np.sin(theta) + TAU_MASS / 2 > vis_pt_min
    delta = np.arcsin(min(1.0, TAU_MASS / (2 * vis_pt_min)))
    theta_edge = 2 * np.arctan(np.exp(-max_abs_eta))  # polar angle of the acceptance edge
    eta_ok = (theta + delta > theta_edge) & (theta - delta < np.pi - theta_edge)
    return pt_ok & eta_ok & (p > 0)


def top_copy(rec, idx, max_steps=30):
    """Follow each particle up its chain of same-id mother1 copies (Pythia's iTopCopyId)."""
    idx = np.asarray(idx, dtype=np.int64).copy()
    for _ in range(max_steps):
        m1 = rec.mother1[np.maximum(idx, 0)]
        up = (idx >= 0) & (m1 >= 0) & (rec.id[np.maximum(m1, 0)] == rec.id[np.maximum(idx, 0)])
        if not up.any():
            break
        idx = np.where(up, m1, idx)
    return idx


class TauDecayer:
    """A Pythia instance that decays tau pairs handed to it, as Pythia would inline."""

    def __init__(self, seed):
        import pythia8mc

        self.vec4 = pythia8mc.Vec4
        self.py = pythia8mc.Pythia("", False)
        for line in (*COMMON, *_DECAYER, f"Random:seed = {int(seed) % 900_000_000}"):
            if not self.py.readString(line):
                raise RuntimeError(f"Pythia rejected setting '{line}'")
        if not self.py.init():
            raise RuntimeError("Pythia decayer initialisation failed")

    def decay(self, systems):
        """Decay every system once.

        Args:
            systems: dict of arrays over S systems: in_id (S, 2), in_p4 (S, 2, 4), med_id (S,),
                med_p4 (S, 4), tau_id (S, 2), tau_p4 (S, 2, 4); a system with med_id 0 is a lone
                tau (slot 0 only) decayed unpolarised.
        Returns:
            dict of flat arrays over all decay products: system, id, status, p4 (n, 4), and
            mother: the product's mother as -1 - slot for the system's taus, else the index
            of another product (in these arrays).
        """
        out = {k: [] for k in ("system", "id", "status", "mother", "p4")}
        n_done = 0
        for start in range(0, len(systems["med_id"]), _SYSTEMS_PER_CALL):
            stop = min(start + _SYSTEMS_PER_CALL, len(systems["med_id"]))
            rows = self._decay_chunk(systems, start, stop)
            for s, pid, status, mother, p4 in rows:
                out["system"].append(s)
                out["id"].append(pid)
                out["status"].append(status)
                out["mother"].append(mother if mother < 0 else mother + n_done)
                out["p4"].append(p4)
            n_done += len(rows)
        return dict(
            system=np.asarray(out["system"], np.int64),
            id=np.asarray(out["id"], np.int64),
            status=np.asarray(out["status"], np.int64),
            mother=np.asarray(out["mother"], np.int64),
            p4=np.asarray(out["p4"], np.float64).reshape(-1, 4),
        )

    def _decay_chunk(self, systems, start, stop):
        ev, v4 = self.py.event, self.vec4
        ev.reset()
        tau_entry = {}  # mini-event index of a tau -> (system, slot)
        for s in range(start, stop):
            b = ev.size()
            tau_p4 = systems["tau_p4"][s]
            if systems["med_id"][s] == 0:  # lone tau, no known mediator
                ev.append(int(systems["tau_id"][s, 0]), 1, 0, 0, 0, 0, 0, 0, *_pm(v4, tau_p4[0]))
                tau_entry[b] = (s, 0)
                continue
            for k in range(2):  # incoming partons of the hard process
                p = systems["in_p4"][s, k]
                ev.append(int(systems["in_id"][s, k]), -21, 0, 0, b + 2, 0, 0, 0, *_pm(v4, p))
            med = systems["med_p4"][s]
            ev.append(int(systems["med_id"][s]), -22, b, b + 1, b + 3, b + 4, 0, 0, *_pm(v4, med))
            for k in range(2):
                ev.append(
                    int(systems["tau_id"][s, k]), 1, b + 2, 0, 0, 0, 0, 0, *_pm(v4, tau_p4[k])
                )
                tau_entry[b + 3 + k] = (s, k)
        first = ev.size()
        # the return value is False with hadronisation off, yet the decays are done (checked
        # in the tests through four-momentum conservation of every decayed tau)
        self.py.forceHadronLevel(False)
        rows = []
        for i in range(first, ev.size()):
            p = ev[i]
            m = p.mother1()
            if m in tau_entry:
                s, slot = tau_entry[m]
                mother = -1 - slot
            else:
                s, mother = rows[m - first][0], m - first
            rows.append((s, p.id(), p.status(), mother, (p.px(), p.py(), p.pz(), p.e())))
        return rows


def _pm(v4, p4):
    """(Vec4, mass) arguments of `Event.append` (which would otherwise set m = 0)."""
    m2 = p4[3] ** 2 - p4[0] ** 2 - p4[1] ** 2 - p4[2] ** 2
    return v4(*map(float, p4)), float(np.sqrt(max(m2, 0.0)))


def boson_taus(rec, boson_id):
    """The boson's two taus per event: (pair found (n,), daughters (n, 2), decaying bottom
    copies (n, 2), -1 where no pair)."""
    iboson = last_of_id(rec, [boson_id])
    dau = daughters(rec, np.maximum(iboson, 0))
    pair = (iboson >= 0) & np.all(np.abs(rec.id[np.maximum(dau, 0)]) == 15, axis=1)
    taus = bottom_copy(rec, np.where(pair[:, None], dau, -1).ravel()).reshape(-1, 2)
    return pair, dau, taus


def tau_systems(rec, boson_id):
    """The tau systems of each event: the boson's tau pair with its mediator and partons.

    Returns:
        (systems dict as `TauDecayer.decay` takes, event (S,), tau global indices (S, 2) with
        -1 for the empty slot of lone taus).
    """
    pair, dau, taus = boson_taus(rec, boson_id)
    med = rec.mother1[top_copy(rec, dau[:, 0])]  # the boson copy the taus come from
    med_top = top_copy(rec, med)
    ins = np.stack([rec.mother1[med_top], rec.mother2[med_top]], 1)
    pair &= (med >= 0) & np.all(ins >= 0, axis=1)
    final_tau = np.nonzero(rec.is_final & (np.abs(rec.id) == 15))[0]
    lone = final_tau[~np.isin(final_tau, taus[pair])]
    ev = np.concatenate([np.nonzero(pair)[0], rec.event[lone]])
    order = np.argsort(ev, kind="stable")
    n_pair = int(pair.sum())
    tau_idx = np.concatenate([taus[pair], np.stack([lone, np.full(len(lone), -1)], 1)])
    safe = np.maximum(tau_idx, 0)
    lone_med = np.zeros(len(lone), np.int64)

    def with_lone(x, shape):
        return np.concatenate([x, np.zeros((len(lone), *shape), x.dtype)])

    systems = dict(
        in_id=with_lone(rec.id[ins[pair]], (2,)),
        in_p4=with_lone(rec.p4[ins[pair]], (2, 4)),
        med_id=np.concatenate([rec.id[med[pair]], lone_med]),
        med_p4=with_lone(rec.p4[med[pair]], (4,)),
        tau_id=rec.id[safe] * (tau_idx >= 0),
        tau_p4=rec.p4[safe] * (tau_idx >= 0)[..., None],
    )
    assert n_pair + len(lone) == len(ev)
    return {k: v[order] for k, v in systems.items()}, ev[order], tau_idx[order]


def redecay(rec, decayer, boson_id, copies, keep, copy_filter=None):
    """`copies` decayed versions of each kept event, as one flat record.

    Args:
        rec: `FlatRecord` with undecayed taus (status > 0).
        decayer: `TauDecayer`.
        boson_id: PDG id of the boson whose taus form the correlated pair.
        copies: decays per event (K).
        keep: (n_events,) bool, events worth decaying (see `could_pass`).
        copy_filter: optional callable(vis_p4 (R, 2, 4), leptonic (R, 2) bool) -> (R,) bool:
            which decayed pairs could pass the selection (an exact bound); the copies of the
            others are left out of the record, which saves their reconstruction.
    Returns:
        (`FlatRecord` of the copies, (n_out,) original event of each). Without a filter, event
        c * n_keep + j is copy c of the j-th kept event.
    """
    kept = np.nonzero(keep)[0]
    systems, sys_event, sys_taus = tau_systems(rec, boson_id)
    use = np.isin(sys_event, kept)
    systems = {k: v[use] for k, v in systems.items()}
    sys_event, sys_taus = sys_event[use], sys_taus[use]
    n_keep, n_sys = len(kept), len(sys_event)
    # decay all systems `copies` times in one go; system s of copy c is row c * n_sys + s
    rep = {k: np.concatenate([v] * copies) for k, v in systems.items()}
    prod = decayer.decay(rep)
    row_copy, row_sys = np.divmod(np.arange(copies * n_sys), max(n_sys, 1))
    row_event = row_copy * n_keep + np.searchsorted(kept, sys_event[row_sys])
    passing = np.ones(copies * n_keep, bool)
    if copy_filter is not None:
        vis_p4, leptonic = _visible_legs(prod, len(row_event))
        pair = rep["med_id"] != 0
        passing[:] = False
        passing[row_event[pair]] = copy_filter(vis_p4[pair], leptonic[pair])
    out_event = np.full(copies * n_keep, -1)
    out_event[passing] = np.arange(passing.sum())
    prod_event = out_event[row_event[prod["system"]]]
    sel = prod_event >= 0  # whole events are dropped, so mothers stay inside the selection
    new_pos = np.cumsum(sel) - 1
    prod = {k: v[sel] for k, v in prod.items()}
    prod["mother"] = np.where(prod["mother"] < 0, prod["mother"], new_pos[prod["mother"]])
    src = kept[np.nonzero(passing)[0] % max(n_keep, 1)]
    taus = sys_taus[row_sys[prod["system"]]]
    return _assemble(rec, src, prod, prod_event[sel], taus), src


def _visible_legs(prod, n_rows):
    """Visible four-momentum and leptonic flag of each decayed tau: (R, 2, 4), (R, 2)."""
    slot = np.where(prod["mother"] < 0, -1 - prod["mother"], -1)
    for _ in range(20):  # products of products take their mother's slot (chains are short)
        if (slot >= 0).all():
            break
        slot = np.where(slot < 0, slot[np.maximum(prod["mother"], 0)], slot)
    aid = np.abs(prod["id"])
    final = prod["status"] > 0
    visible = final & ~np.isin(aid, (12, 14, 16))
    key = 2 * prod["system"] + slot
    vis = np.stack(
        [np.bincount(key[visible], prod["p4"][visible, k], 2 * n_rows) for k in range(4)], -1
    )
    hadron = np.bincount(key[final & np.isin(aid, (211, 321))], minlength=2 * n_rows) > 0
    return vis.reshape(n_rows, 2, 4), ~hadron.reshape(n_rows, 2)


def _assemble(rec, src, prod, prod_event, prod_taus):
    """Interleave the original particles of each copy (`src`: its original event) with its
    decay products."""
    n_out = len(src)
    n_orig = np.diff(rec.offsets)[src]
    n_prod = np.bincount(prod_event, minlength=n_out)
    offsets = np.concatenate([[0], np.cumsum(n_orig + n_prod)])
    # original particles: global old index -> new index, per output event
    orig_old = np.concatenate([np.arange(rec.offsets[e], rec.offsets[e + 1]) for e in src])
    orig_event = np.repeat(np.arange(n_out), n_orig)
    event_shift = offsets[:-1] - rec.offsets[src]  # old -> new index, per output event
    shift = event_shift[orig_event]
    orig_new = orig_old + shift

    def remap(idx):  # old global indices of the same event -> new
        return np.where(idx >= 0, idx + shift, -1)

    # decay products sit after the originals of their event, in decay order
    order = np.argsort(prod_event, kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = (
        np.arange(len(order)) - np.concatenate([[0], np.cumsum(n_prod)])[prod_event[order]]
    )
    prod_new = offsets[:-1][prod_event] + n_orig[prod_event] + rank
    slot = -1 - prod["mother"]
    tau_old = prod_taus[np.arange(len(slot)), np.clip(slot, 0, 1)]
    tau_new = tau_old + event_shift[prod_event]
    mother = np.where(prod["mother"] < 0, tau_new, prod_new[np.maximum(prod["mother"], 0)])

    size = offsets[-1]
    out = {k: np.full(size, -1, np.int64) for k in ("mother1", "mother2", "daughter1", "daughter2")}
    pid, status = np.empty(size, np.int64), np.empty(size, np.int64)
    p4 = np.empty((size, 4))
    pid[orig_new], status[orig_new], p4[orig_new] = (
        rec.id[orig_old],
        rec.status[orig_old],
        rec.p4[orig_old],
    )
    for k in out:
        out[k][orig_new] = remap(getattr(rec, k)[orig_old])
    pid[prod_new], status[prod_new], p4[prod_new] = prod["id"], prod["status"], prod["p4"]
    out["mother1"][prod_new] = mother
    out["mother2"][prod_new] = -1
    # daughters: a contiguous range per decayed particle (products were appended in order)
    for k, pick, init in (("daughter1", np.minimum, size), ("daughter2", np.maximum, -1)):
        end = np.full(size, init, np.int64)
        pick.at(end, mother, prod_new)
        has = end != init
        out[k][has] = end[has]
    decayed = np.unique(mother)
    status[decayed] = np.where(status[decayed] > 0, DECAYED_STATUS, status[decayed])
    return FlatRecord(
        id=pid,
        status=status,
        p4=p4,
        offsets=offsets,
        event=np.repeat(np.arange(n_out), np.diff(offsets)),
        **out,
    )
