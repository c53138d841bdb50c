"""ScoutTau: Level-1 PUPPI candidates (`scouttau` samples) -> clustered soft-tau candidates.

Seed 001 (ScoutTau talk): L1 PUPPI candidates in the tracker acceptance are clustered with CLUE
(or anti-kT R = 0.4 for comparison); every cluster is a tau candidate described by up to 16
constituents (highest pT first) with the talk's features (pT, delta eta, delta phi, v_z, charge,
particle type). Truth: a candidate is a tau when a generated hadronic visible tau lies within
DeltaR < `MATCH_DR` of its axis (each tau goes to its closest candidate, each candidate takes at
most one tau). pT is the PUPPI pT, puppiWeight * pT, throughout.
"""

import awkward as ak
import numpy as np

from data import io
from data.errors import UserError
from data.generate.tau_decays import HADRONIC

PUPPI_MIN_PT = 1.0  # GeV, on puppiWeight * pT
ETA_MAX = 2.4  # tracker acceptance (met_l1.md 7.1), where the scouting taus live
MIN_CAND_PT = 3.0  # GeV, tau candidates (cluster pT)
# PF inputs: ~2000 L1 PF candidates of > 1 GeV per PU200 event in the tracker; above 3 GeV
# ~440, which keeps every L1 track (> 2 GeV tracks of a 5 GeV tau are near it) fast to
# cluster; clusters carry pileup pT, so candidates start at 5 GeV
PF_MIN_PT, PF_MIN_CAND_PT = 3.0, 5.0
MATCH_DR = 0.2
MAX_CONSTITUENTS = 16
# dc ~ a tau signal cone (met_l1.md 4.4); rhoc in GeV: a 5 GeV visible tau has a leading
# particle of a few GeV, and PU200 PUPPI particles of 1-2 GeV rarely pile up to 3 GeV in 0.2.
CLUE_PARAMS = {"dc": 0.2, "rhoc": 3.0, "outlier_factor": 2.0}
ANTIKT_PARAMS = {"radius": 0.4}
ALGORITHMS = ("clue", "antikt")
INPUTS = ("puppi", "pf")
FEATURES = (
    "log_pt",  # log(pT / GeV)
    "pt_frac",  # pT / candidate pT
    "delta_eta",  # eta - candidate eta
    "delta_phi",  # phi - candidate phi, wrapped to (-pi, pi]
    "dz",  # z0 - PV_z in cm, 0 for neutrals
    "charge",
    "is_charged_hadron",  # |pdgId| 211
    "is_neutral_hadron",  # 130
    "is_electron",  # |pdgId| 11
    "is_muon",  # |pdgId| 13
    "is_photon",  # 22
    # candidate-level, the same on every constituent (not in the seed's list: isolation is
    # what tells a tau from a pileup or QCD cluster, and CLUE's dc = 0.2 clusters hold none)
    "cand_log_pt",  # log(candidate pT / GeV)
    "iso_frac",  # PUPPI pT within ISO_DR of the axis outside the cluster / candidate pT
    "iso_log_count",  # log(1 + number of those PUPPI candidates)
)
ISO_DR = 0.4
ONE_HOT_PDG = (211, 130, 11, 13, 22)
EVENT_BRANCHES = ("event", "PV_z")
CAND_BRANCHES = tuple(
    f"L1Cand_{f}" for f in ("pt", "eta", "phi", "charge", "pdgId", "z0", "puppiWeight")
)
TRUTH_BRANCHES = ("L1Cand_fromPU",) + tuple(
    f"GenVisTau_{f}" for f in ("pt", "eta", "phi", "charge", "kind", "decayMode")
)


def wrap_phi(x):
    """Angles wrapped to (-pi, pi]."""
    return np.pi - np.mod(np.pi - np.asarray(x, np.float64), 2 * np.pi)


def _flat(a, dtype=np.float64):
    return ak.to_numpy(ak.flatten(a)).astype(dtype)


def read(paths, *, with_truth=True, mapping=None, entries=None):
    """Read the ScoutTau branches (see `data.io.read_branches` for the arguments and errors)."""
    names = EVENT_BRANCHES + CAND_BRANCHES + (TRUTH_BRANCHES if with_truth else ())
    return io.read_branches(io.expand_paths(paths), names, mapping=mapping, entries=entries)


def puppi_candidates(arrays, *, min_pt=PUPPI_MIN_PT, eta_max=ETA_MAX, weighted=True):
    """L1 PUPPI candidates: puppiWeight * pT > `min_pt` and |eta| < `eta_max`.

    With `weighted=False` the L1 PF candidates instead: pT (no PUPPI weight) > `min_pt`.

    Args:
        arrays: dict branch -> awkward array (events -> candidates), as from `read`.
    Returns:
        dict of flat (n,) numpy arrays in event order: pt (PUPPI pT), eta, phi, charge, pdg,
        z0, event (entry index), index (position in the event's L1Cand list) and from_pu when
        `L1Cand_fromPU` is given; plus n_events.
    """
    counts = ak.to_numpy(ak.num(arrays["L1Cand_pt"]))
    pt = _flat(arrays["L1Cand_pt"])
    if weighted:
        pt = pt * _flat(arrays["L1Cand_puppiWeight"])
    eta = _flat(arrays["L1Cand_eta"])
    keep = (pt > min_pt) & (np.abs(eta) < eta_max)
    out = {"pt": pt[keep], "eta": eta[keep], "phi": wrap_phi(_flat(arrays["L1Cand_phi"])[keep])}
    for k, branch in (("charge", "charge"), ("pdg", "pdgId")):
        out[k] = _flat(arrays[f"L1Cand_{branch}"], np.int64)[keep]
    out["z0"] = _flat(arrays["L1Cand_z0"])[keep]
    out["event"] = np.repeat(np.arange(len(counts)), counts)[keep]
    out["index"] = (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))[keep]
    if "L1Cand_fromPU" in arrays:
        out["from_pu"] = _flat(arrays["L1Cand_fromPU"], bool)[keep]
    out["n_events"] = len(counts)
    return out


def _check_params(algorithm, dc, rhoc, outlier_factor, radius, min_pt):
    if algorithm not in ALGORITHMS:
        raise UserError(f"unknown clustering '{algorithm}' (choose from {', '.join(ALGORITHMS)})")
    for name, v in (("dc", dc), ("outlier_factor", outlier_factor), ("radius", radius)):
        if not (np.isfinite(v) and v > 0):
            raise UserError(f"clustering parameter {name} must be a positive number, got {v}")
    for name, v in (("rhoc", rhoc), ("min_pt", min_pt)):
        if not np.isfinite(v):
            raise UserError(f"clustering parameter {name} must be a finite number, got {v}")


def cluster(
    events,
    *,
    algorithm="clue",
    dc=CLUE_PARAMS["dc"],
    rhoc=CLUE_PARAMS["rhoc"],
    outlier_factor=CLUE_PARAMS["outlier_factor"],
    radius=ANTIKT_PARAMS["radius"],
    min_pt=MIN_CAND_PT,
):
    """Cluster PUPPI candidates into tau candidates, per event.

    CLUE (`data.reco.clue`) runs over (eta, phi) with PUPPI-pT weights and periodic phi; the
    candidate pT is the scalar sum and its axis the pT-weighted (eta, phi) of the members. All
    events go through one CLUE call with eta shifted by a gap per event, which gives exactly the
    per-event labels (no point of one event lies within dc or dm of another). Anti-kT uses
    fastjet (E-scheme, massless inputs): pT and axis are the jet's.

    Args:
        events: output of `puppi_candidates`.
        algorithm: "clue" or "antikt".
        dc, rhoc, outlier_factor: CLUE density radius, seed density (GeV), dm / dc.
        radius: anti-kT R.
        min_pt: minimum candidate pT (GeV); candidates also need |eta| < `ETA_MAX`.
    Returns:
        dict of (n_cand,) arrays: pt, eta, phi, event, n_constituents, ordered by event and
        descending pT; and member (n,): each PUPPI candidate's tau candidate, -1 for none.
    Raises:
        UserError: unknown algorithm or bad parameter values.
    """
    _check_params(algorithm, dc, rhoc, outlier_factor, radius, min_pt)
    if algorithm == "clue":
        label, cand = _clue(events, dc=dc, rhoc=rhoc, outlier_factor=outlier_factor)
    else:
        label, cand = _antikt(events, radius)
    cand["event"] = np.asarray(cand["event"], np.int64)
    keep = (cand["pt"] > min_pt) & (np.abs(cand["eta"]) < ETA_MAX)
    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((-cand["pt"][idx], cand["event"][idx]))]
    new = np.full(len(keep) + 1, -1, np.int64)  # new[-1] = -1 for unclustered points
    new[idx] = np.arange(len(idx))
    member = new[label]
    out = {k: v[idx] for k, v in cand.items()}
    out["n_constituents"] = np.bincount(member[member >= 0], minlength=len(idx)).astype(np.int32)
    out["member"] = member
    return out


def _clue(events, **params):
    """CLUE labels of all points (one call, events apart in eta) and the clusters' pt, eta,
    phi, event."""
    from data.reco.clue import clue

    pt, eta, phi, ev = (np.asarray(events[k]) for k in ("pt", "eta", "phi", "event"))
    gap = 2 * (np.abs(eta).max(initial=0.0) + params["dc"] * max(1.0, params["outlier_factor"]))
    label = clue(np.stack([eta + (gap + 1) * ev, phi], 1), pt, periodic=(None, 2 * np.pi), **params)
    k = int(label.max(initial=-1)) + 1
    ok = label >= 0
    lab, w = label[ok], pt[ok]
    cpt = np.bincount(lab, w, k)
    order = np.lexsort((-w, lab))  # by label, leading member first
    lead = np.flatnonzero(ok)[order[np.flatnonzero(np.diff(lab[order], prepend=-1))]]
    dphi = wrap_phi(phi[ok] - phi[lead[lab]])  # around the leading member: no wrap problem
    return label, {
        "pt": cpt,
        "eta": np.bincount(lab, w * eta[ok], k) / np.maximum(cpt, 1e-12),
        "phi": wrap_phi(phi[lead] + np.bincount(lab, w * dphi, k) / np.maximum(cpt, 1e-12)),
        "event": ev[lead],
    }


def _antikt(events, radius):
    """fastjet anti-kT labels of all points and the jets' pt, eta, phi, event."""
    from data.reco.jets import cluster as antikt

    pt, eta, phi, ev = (np.asarray(events[k]) for k in ("pt", "eta", "phi", "event"))
    label = np.full(len(pt), -1, np.int64)
    if len(pt) == 0:
        return label, {k: np.zeros(0) for k in ("pt", "eta", "phi", "event")}
    p4 = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], 1)
    jets, members = antikt(p4, ev, events["n_events"], radius=radius, min_pt=0.0)
    flat, per_jet = ak.flatten(jets), ak.flatten(members, axis=1)
    n_members = ak.to_numpy(ak.num(per_jet))
    label[_flat(per_jet, np.int64)] = np.repeat(np.arange(len(n_members)), n_members)
    return label, {
        "pt": ak.to_numpy(flat.pt).astype(np.float64),
        "eta": ak.to_numpy(flat.eta).astype(np.float64),
        "phi": wrap_phi(ak.to_numpy(flat.phi)),
        "event": np.repeat(np.arange(len(jets)), ak.to_numpy(ak.num(jets))),
    }


def match_taus(cands, taus, *, max_dr=MATCH_DR):
    """Match generated taus to candidates: the closest pair first, each object used once.

    Args:
        cands, taus: dicts with (n,) eta, phi and event (entry index) arrays.
    Returns:
        (tau_to_cand (n_taus,), cand_to_tau (n_cands,)): indices, -1 when unmatched.
    """
    ce, te = np.asarray(cands["event"], np.int64), np.asarray(taus["event"], np.int64)
    order = np.argsort(ce, kind="stable")  # every (tau, candidate of its event) pair
    lo, hi = np.searchsorted(ce[order], te, "left"), np.searchsorted(ce[order], te, "right")
    t = np.repeat(np.arange(len(te)), hi - lo)
    c = order[np.arange(len(t)) - np.repeat(np.cumsum(hi - lo) - hi, hi - lo)]
    deta = np.asarray(cands["eta"])[c] - np.asarray(taus["eta"])[t]
    dr = np.hypot(deta, wrap_phi(np.asarray(cands["phi"])[c] - np.asarray(taus["phi"])[t]))
    near = np.flatnonzero(dr < max_dr)
    tau_to_cand = np.full(len(te), -1, np.int64)
    cand_to_tau = np.full(len(ce), -1, np.int64)
    for p in near[np.argsort(dr[near], kind="stable")]:  # about one pair per tau
        if tau_to_cand[t[p]] < 0 and cand_to_tau[c[p]] < 0:
            tau_to_cand[t[p]], cand_to_tau[c[p]] = c[p], t[p]
    return tau_to_cand, cand_to_tau


def gen_taus(arrays):
    """Generated hadronic visible taus: flat (n,) pt, eta, phi, charge, decay_mode, event."""
    counts = ak.to_numpy(ak.num(arrays["GenVisTau_pt"]))
    had = _flat(arrays["GenVisTau_kind"], np.int64) == HADRONIC
    out = {k: _flat(arrays[f"GenVisTau_{k}"])[had] for k in ("pt", "eta", "phi")}
    out["phi"] = wrap_phi(out["phi"])
    out["charge"] = _flat(arrays["GenVisTau_charge"], np.int64)[had]
    out["decay_mode"] = _flat(arrays["GenVisTau_decayMode"], np.int64)[had]
    out["event"] = np.repeat(np.arange(len(counts)), counts)[had]
    return out


def tau_truth(cands, arrays, *, max_dr=MATCH_DR):
    """Per-candidate truth (is_tau, tau_charge, tau_vis_pt, decay_mode) and `gen_taus` with
    `matched` (candidate index or -1), for candidates with (n,) eta, phi, event."""
    taus = gen_taus(arrays)
    taus["matched"], c2t = match_taus(cands, taus, max_dr=max_dr)
    hit = c2t >= 0
    t = np.where(hit, c2t, len(taus["pt"]))  # unmatched: the appended default

    def take(a, default, dtype):
        return np.append(a, default)[t].astype(dtype)

    truth = {
        "is_tau": hit,
        "tau_charge": take(taus["charge"], 0, np.int32),
        "tau_vis_pt": take(taus["pt"], 0.0, np.float32),
        "decay_mode": take(taus["decay_mode"], -1, np.int32),
    }
    return truth, taus


def load(
    paths,
    *,
    clustering="clue",
    max_constituents=MAX_CONSTITUENTS,
    entries=None,
    mapping=None,
    with_truth=True,
    inputs="puppi",
    **cluster_params,
):
    """Read L1 PUPPI (or PF) candidates, cluster them and build model-ready tau-candidate arrays.

    Args:
        paths: ROOT file(s), globs or manifests.
        clustering: "clue" or "antikt".
        max_constituents: constituents kept per candidate (highest pT first).
        entries, mapping: see `data.io.read_branches`.
        with_truth: read the truth branches and add the targets.
        inputs: "puppi" (PUPPI pT > 1 GeV, dz relative to the event's primary vertex) or "pf"
            (L1 PF candidates of pT > `PF_MIN_PT` at their own pT, candidates from
            `PF_MIN_CAND_PT`, dz relative to the candidate's vertex, so that taus from a
            misidentified primary vertex keep their tracks: seed 001's backup slide).
        **cluster_params: dc, rhoc, outlier_factor (CLUE), radius (anti-kT), min_pt.
    Returns:
        dict with constituents (n_cand, P, len(FEATURES)) float32, mask (n_cand, P) bool,
        cands {pt, eta, phi, n_constituents, event (entry index), event_number, vz (z0 of the
        leading charged constituent, else PV_z; cm)}, n_events and,
        with truth, is_tau, tau_charge (+-1, 0 unmatched), tau_vis_pt (0 unmatched),
        decay_mode (-1 unmatched), constituent_pu (n_cand, P) bool and gen_taus
        {pt, eta, phi, charge, decay_mode, event, matched}.
    Raises:
        UserError: unreadable input, unknown clustering or parameter, bad values.
    """
    unknown = set(cluster_params) - {"dc", "rhoc", "outlier_factor", "radius", "min_pt"}
    if unknown:
        raise UserError(f"unknown clustering parameter(s): {', '.join(sorted(unknown))}")
    if not (isinstance(max_constituents, (int, np.integer)) and max_constituents > 0):
        raise UserError(f"max_constituents must be a positive integer, got {max_constituents}")
    _check_params(clustering, **{**CLUE_PARAMS, **ANTIKT_PARAMS, "min_pt": 0.0, **cluster_params})
    if inputs not in INPUTS:
        raise UserError(f"unknown inputs '{inputs}' (choose from {', '.join(INPUTS)})")
    arrays = read(paths, with_truth=with_truth, mapping=mapping, entries=entries)
    if inputs == "puppi":
        puppi = puppi_candidates(arrays)
    else:
        puppi = puppi_candidates(arrays, weighted=False, min_pt=PF_MIN_PT)
        cluster_params = {"min_pt": PF_MIN_CAND_PT, **cluster_params}
    cands = cluster(puppi, algorithm=clustering, **cluster_params)
    pv = np.asarray(arrays["PV_z"], np.float64)
    out = _constituents(puppi, cands, pv, max_constituents, relative_to_pv=inputs == "puppi")
    out["cands"] = {k: cands[k] for k in ("pt", "eta", "phi", "n_constituents", "event")}
    out["cands"]["vz"] = out.pop("vz")
    out["cands"]["event_number"] = np.asarray(arrays["event"], np.int64)[cands["event"]]
    out["n_events"] = puppi["n_events"]
    if with_truth:
        truth, out["gen_taus"] = tau_truth(cands, arrays)
        out.update(truth)
    return out


def isolation(puppi, cands, radius=ISO_DR):
    """Scalar PUPPI pT sum and number of the PUPPI candidates within `radius` of each
    candidate's axis that are not its members: ((n_cand,), (n_cand,))."""
    from scipy.spatial import cKDTree

    n = len(cands["pt"])
    if n == 0 or len(puppi["pt"]) == 0:
        return np.zeros(n), np.zeros(n, np.int64)
    span = 2 * (ETA_MAX + 1.0 + radius)  # events apart in eta: no pair across events

    def points(eta, phi, event):
        return np.stack([eta + span * (np.asarray(event) + 1), np.mod(phi + np.pi, 2 * np.pi)], 1)

    box = [span * (puppi["n_events"] + 2), 2 * np.pi]
    p = points(puppi["eta"], puppi["phi"], puppi["event"])
    c = points(cands["eta"], cands["phi"], cands["event"])
    p[:, 1], c[:, 1] = (
        np.minimum(p[:, 1], np.nextafter(2 * np.pi, 0)),
        np.minimum(c[:, 1], np.nextafter(2 * np.pi, 0)),
    )
    near = cKDTree(c, boxsize=box).sparse_distance_matrix(
        cKDTree(p, boxsize=box), radius, output_type="ndarray"
    )
    i, j = near["i"], near["j"]
    other = cands["member"][j] != i
    return np.bincount(i[other], puppi["pt"][j[other]], n), np.bincount(i[other], minlength=n)


def _constituents(puppi, cands, pv, max_constituents, relative_to_pv=True):
    """Padded (n_cand, P, F) features, mask, the candidates' vz and the fromPU flag of each
    constituent; dz is relative to the primary vertex or to the candidate's vz."""
    member = cands["member"]
    # candidate vertex: z0 of the leading charged constituent (all of them, not only the 16
    # kept), the event's PV where there is none
    vz = pv[np.asarray(cands["event"], np.int64)].astype(np.float64)
    ch = np.flatnonzero(member >= 0)
    ch = ch[puppi["charge"][ch] != 0]
    ch = ch[np.lexsort((-puppi["pt"][ch], member[ch]))]
    first = ch[np.flatnonzero(np.diff(member[ch], prepend=-1))]
    vz[member[first]] = puppi["z0"][first]
    sel = np.flatnonzero(member >= 0)
    sel = sel[np.lexsort((-puppi["pt"][sel], member[sel]))]
    row = member[sel]
    n_per = np.bincount(row, minlength=len(cands["pt"]))
    rank = np.arange(len(sel)) - np.repeat(np.cumsum(n_per) - n_per, n_per)
    take = rank < max_constituents
    sel, row, col = sel[take], row[take], rank[take]
    pt, pdg, q = puppi["pt"][sel], np.abs(puppi["pdg"][sel]), puppi["charge"][sel]
    ref = pv[puppi["event"][sel]] if relative_to_pv else vz[row]
    dz = np.where(q != 0, puppi["z0"][sel] - ref, 0.0)
    iso_pt, iso_n = isolation(puppi, cands)
    columns = [
        np.log(pt),
        pt / cands["pt"][row],
        puppi["eta"][sel] - cands["eta"][row],
        wrap_phi(puppi["phi"][sel] - cands["phi"][row]),
        dz,
        q,
        *[(pdg == p) for p in ONE_HOT_PDG],
        np.log(cands["pt"][row]),
        (iso_pt / cands["pt"])[row],
        np.log1p(iso_n)[row],
    ]
    n = len(cands["pt"])
    feats = np.zeros((n, max_constituents, len(FEATURES)), np.float32)
    feats[row, col] = np.stack(columns, 1)
    mask = np.zeros((n, max_constituents), bool)
    mask[row, col] = True
    out = {"constituents": feats, "mask": mask, "vz": vz}
    if "from_pu" in puppi:
        out["constituent_pu"] = np.zeros((n, max_constituents), bool)
        out["constituent_pu"][row, col] = puppi["from_pu"][sel]
    if not np.isfinite(feats).all():
        raise UserError("constituent features are not finite (PV_z or L1Cand_z0 values?)")
    return out
