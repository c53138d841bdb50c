"""Output columns of the di-tau sample: NanoAOD-like collections and event branches.

A collection is a dict with `_counts` (objects per event) and flat per-object arrays; the I/O
layer turns it into `nName` and `Name_field` branches.
"""

import numpy as np

from data.detector import cms
from data.generate import tau_decays as td


def collection(event, n_events, order_key=None, **fields):
    """Rows grouped by event (and sorted by descending `order_key` inside an event)."""
    event = np.asarray(event)
    order = (
        np.lexsort((-order_key, event))
        if order_key is not None
        else np.argsort(event, kind="stable")
    )
    out = {k: np.asarray(v)[order] for k, v in fields.items()}
    out["_counts"] = np.bincount(event, minlength=n_events)
    return out, order


# output branch -> leg field, in branch order (leptons have no decayMode)
_LEG_BRANCHES = {
    "pt": "pt",
    "eta": "eta",
    "phi": "phi",
    "mass": "mass",
    "charge": "charge",
    "decayMode": "decay_mode",
    "genTauIdx": "gen_tau",
    "topMatch": "top_match",
}


def assemble(rec, charge, rng, legs, events, channel, jets, met, process):
    """Columns for the selected `events` of one batch (see module doc)."""
    from data.generate.ditau_events import kinematics

    n = len(events)
    ev2 = np.repeat(np.arange(n), 2)

    get = {
        k: legs[k][events].ravel()
        for k in (
            "pt",
            "eta",
            "phi",
            "mass",
            "charge",
            "kind",
            "decay_mode",
            "gen_tau",
            "top_match",
        )
    }
    cols = {
        "event": events.astype(np.int64),
        "process": np.full(n, process, np.int32),
        "channel": channel.astype(np.int32),
    }
    had = get["kind"] == td.HADRONIC

    def leg_branches(sel, decay_mode):
        return {b: get[k][sel] for b, k in _LEG_BRANCHES.items() if decay_mode or b != "decayMode"}

    tau, order = collection(ev2[had], n, get["pt"][had], **leg_branches(had, True))
    cols["Tau"] = tau
    # index of each hadronic leg inside its event's Tau collection, for PFCand_tauIdx
    leg_label = (2 * events[:, None] + np.array([0, 1])).ravel()[had][order]
    first = np.repeat(np.cumsum(tau["_counts"]) - tau["_counts"], tau["_counts"])
    tau_index = dict(zip(leg_label.tolist(), (np.arange(len(leg_label)) - first).tolist()))
    for name, kind in (("Muon", td.MUON), ("Electron", td.ELECTRON)):
        sel = get["kind"] == kind
        cols[name], _ = collection(ev2[sel], n, None, **leg_branches(sel, False))
    # PF candidates of the tau_h legs, smeared by type
    keep = np.isin(legs["pf_leg"] // 2, events)
    idx, leg = legs["pf_idx"][keep], legs["pf_leg"][keep]
    ppt, peta, pphi, pm = kinematics(rec.p4[idx])
    q = charge[idx]
    kind = np.where(q != 0, 0, np.where(np.abs(rec.id[idx]) == 22, 1, 2))
    ppt_reco = cms.smear_pf(rng, ppt, peta, rec.p4[idx, 3], kind)
    pf_event = np.searchsorted(events, leg // 2)
    cols["PFCand"], _ = collection(
        pf_event,
        n,
        ppt_reco,
        pt=ppt_reco,
        eta=peta,
        phi=pphi,
        mass=pm,
        charge=q.astype(np.int32),
        pdgId=rec.id[idx].astype(np.int32),
        tauIdx=np.array([tau_index[x] for x in leg.tolist()], dtype=np.int32),
    )
    # jets above threshold in acceptance (the tau legs were not clustered)
    js = (jets["pt"] > 20.0) & (np.abs(jets["eta"]) < cms.JET_ETA_MAX)
    cols["Jet"], _ = collection(
        jets["event"][js],
        n,
        jets["pt"][js],
        **{k: jets[k][js] for k in ("pt", "eta", "phi", "mass")},
    )
    cols.update({k: np.asarray(v, dtype=np.float64) for k, v in met.items()})
    gen = legs["gen"]
    if gen is None:  # ttbar: fake candidates, no generated tau pair
        empty = np.zeros(0)
        cols["GenTau"] = {"_counts": np.zeros(n, np.int64), **{k: empty for k in _GEN_FIELDS}}
        cols["GenBoson_mass"] = np.full(n, -1.0)
        cols["GenDiTau_mass"] = np.full(n, -1.0)
        return cols
    tp4 = gen["tau_p4"][events].reshape(-1, 4)
    vp4 = gen["vis_p4"][events].reshape(-1, 4)
    tpt, teta, tphi, tm = kinematics(tp4)
    vpt, veta, vphi, vm = kinematics(vp4)
    cols["GenTau"], _ = collection(
        ev2,
        n,
        None,
        pt=tpt,
        eta=teta,
        phi=tphi,
        mass=tm,
        charge=legs["charge"][events].ravel(),
        kind=gen["kind"][events].ravel(),
        decayMode=gen["decay_mode"][events].ravel(),
        hasK0=gen["has_k0"][events].ravel(),
        visPt=vpt,
        visEta=veta,
        visPhi=vphi,
        visMass=vm,
    )
    cols["GenBoson_mass"] = gen["boson_mass"][events]
    cols["GenDiTau_mass"] = kinematics(gen["tau_p4"][events].sum(1))[3]
    return cols


_GEN_FIELDS = (
    "pt",
    "eta",
    "phi",
    "mass",
    "charge",
    "kind",
    "decayMode",
    "hasK0",
    "visPt",
    "visEta",
    "visPhi",
    "visMass",
)


def truncate(cols, n):
    """The first `n` events of a column dict."""
    out = {}
    for k, v in cols.items():
        if isinstance(v, dict):
            m = int(v["_counts"][:n].sum())
            out[k] = {f: (a[:n] if f == "_counts" else a[:m]) for f, a in v.items()}
        else:
            out[k] = v[:n]
    return out


def take(cols, idx):
    """The events `idx` (in that order) of a column dict."""
    out = {}
    for k, v in cols.items():
        if isinstance(v, dict):
            counts = v["_counts"]
            starts = np.concatenate([[0], np.cumsum(counts)])[:-1][idx]
            n = counts[idx]
            first = np.concatenate([[0], np.cumsum(n)])[:-1]
            flat = np.repeat(starts - first, n) + np.arange(n.sum())
            out[k] = {f: (a[idx] if f == "_counts" else a[flat]) for f, a in v.items()}
        else:
            out[k] = v[idx]
    return out


def concatenate(chunks):
    """Concatenate column dicts event-wise."""
    out = {}
    for k, v in chunks[0].items():
        if isinstance(v, dict):
            out[k] = {f: np.concatenate([c[k][f] for c in chunks]) for f in v}
        else:
            out[k] = np.concatenate([c[k] for c in chunks])
    return out


def to_root_columns(cols):
    """Column dict -> the mapping that `data.io.write_events` takes (jagged awkward fields)."""
    import awkward as ak

    out = {}
    for k, v in cols.items():
        if isinstance(v, dict):
            counts = v["_counts"]
            out[k] = {f: ak.unflatten(a, counts) for f, a in v.items() if f != "_counts"}
        else:
            out[k] = v
    return out
