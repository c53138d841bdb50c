"""Events tree (PU200 particle flow) -> model-ready arrays for the MET Perceiver and DeepMET.

Every event becomes a fixed-length candidate array (`max_cands`, padded, with a mask; if an
event has more candidates the softest are dropped and counted) of per-candidate features:

* `PERCEIVER_FEATURES`: the seed's inputs, px, py, eta, IsRecoPU (charged only) and a
  charged flag that routes a candidate to the charged or the neutral embedding;
* `DEEPMET_FEATURES`: those plus the PUPPI weight and the candidate type (photon, neutral
  hadron, forward calorimeter), as DeepMET uses (met_l1.md 2.2).

Event arrays: `met_pf`, `met_puppi`, `met_gen` (2-vectors in GeV, px/py), `n_pu`, `n_cands`.
"""

import awkward as ak
import numpy as np

from data import io
from data.errors import UserError

CAND_BRANCHES = (
    "PFCand_px",
    "PFCand_py",
    "PFCand_eta",
    "PFCand_charge",
    "PFCand_isRecoPU",
    "PFCand_puppiWeight",
    "PFCand_pdgId",
)
RECO_BRANCHES = ("PFMET_pt", "PFMET_phi", "PuppiMET_pt", "PuppiMET_phi", "nPU")
TRUTH_BRANCHES = ("GenMET_pt", "GenMET_phi")
HS_BRANCH = "PFCand_fromPU"  # per-candidate truth flag (True: a pileup particle)
PERCEIVER_FEATURES = ("px", "py", "eta", "isRecoPU", "charged")
DEEPMET_FEATURES = (*PERCEIVER_FEATURES, "puppiWeight", "photon", "neutral_hadron", "forward")
DEFAULT_MAX_CANDS = 12_288  # PU200: 9.2k candidates on average, 11k at the Poisson tail


def _vec(pt, phi):
    pt, phi = np.asarray(pt, np.float64), np.asarray(phi, np.float64)
    return np.stack([pt * np.cos(phi), pt * np.sin(phi)], axis=1).astype(np.float32)


def _feature(name, a):
    pdg = np.abs(a["PFCand_pdgId"])
    if name == "px":
        return a["PFCand_px"]
    if name == "py":
        return a["PFCand_py"]
    if name == "eta":
        return a["PFCand_eta"]
    if name == "isRecoPU":
        return a["PFCand_isRecoPU"]
    if name == "charged":
        return a["PFCand_charge"] != 0
    if name == "puppiWeight":
        return a["PFCand_puppiWeight"]
    if name == "photon":
        return pdg == 22
    if name == "neutral_hadron":
        return pdg == 130
    if name == "forward":
        return (pdg == 1) | (pdg == 2)
    raise ValueError(f"unknown candidate feature {name}")


def load(
    paths,
    *,
    features=PERCEIVER_FEATURES,
    max_cands=DEFAULT_MAX_CANDS,
    with_truth=True,
    mapping=None,
    entries=None,
    drop_nonfinite=False,
    with_hs=False,
):
    """Read PU200 events into padded candidate arrays.

    Args:
        paths: ROOT file(s) with an `Events` tree (see data/generate/ttbar_pu.py).
        features: candidate features, names from `DEEPMET_FEATURES`.
        max_cands: candidates per event after padding / truncation (softest dropped).
        with_truth: also read the generated MET (`met_gen`).
        mapping: optional branch-name mapping for other ntuples (data.io.read_branches).
        entries: optional (start, stop) entry range of a single file.
        drop_nonfinite: drop events with NaN/inf instead of failing.
        with_hs: also read the candidates' truth flag `PFCand_fromPU` into `hs`.
    Returns:
        dict: cands (n, max_cands, F) float32, mask (n, max_cands) bool, met_pf, met_puppi
        and (with truth) met_gen (n, 2) float32, n_pu (n,) int32, n_cands (n,) int32 (before
        truncation), n_dropped (n,) int32; with `with_hs`, hs (n, max_cands) float32, 1 for
        a hard-scatter candidate, 0 for pileup and padding.
    """
    if max_cands <= 0:
        raise UserError(f"max_cands must be positive, got {max_cands}")
    cand_branches = CAND_BRANCHES + ((HS_BRANCH,) if with_hs else ())
    branches = cand_branches + RECO_BRANCHES + (TRUTH_BRANCHES if with_truth else ())
    a = io.read_branches(
        paths, branches, mapping=mapping, entries=entries, drop_nonfinite=drop_nonfinite
    )
    counts = ak.to_numpy(ak.num(a["PFCand_px"])).astype(np.int64)
    n = len(counts)
    flat = {b: ak.to_numpy(ak.flatten(a[b])) for b in cand_branches}
    event = np.repeat(np.arange(n), counts)
    rank = np.arange(len(event)) - np.repeat(np.cumsum(counts) - counts, counts)
    order = np.arange(len(event))
    if (counts > max_cands).any():  # keep the hardest `max_cands`: order by (event, -pT)
        order = np.lexsort((-np.hypot(flat["PFCand_px"], flat["PFCand_py"]), event))
    keep = rank < max_cands
    sel, slot = order[keep], rank[keep]
    cands = np.zeros((n, max_cands, len(features)), np.float32)
    for k, name in enumerate(features):
        cands[event[sel], slot, k] = _feature(name, {b: v[sel] for b, v in flat.items()})
    mask = np.zeros((n, max_cands), bool)
    mask[event[sel], slot] = True
    out = dict(
        cands=cands,
        mask=mask,
        met_pf=_vec(a["PFMET_pt"], a["PFMET_phi"]),
        met_puppi=_vec(a["PuppiMET_pt"], a["PuppiMET_phi"]),
        n_pu=ak.to_numpy(a["nPU"]).astype(np.int32),
        n_cands=counts.astype(np.int32),
        n_dropped=np.maximum(counts - max_cands, 0).astype(np.int32),
    )
    if with_truth:
        out["met_gen"] = _vec(a["GenMET_pt"], a["GenMET_phi"])
    if with_hs:
        out["hs"] = np.zeros((n, max_cands), np.float32)
        out["hs"][event[sel], slot] = ~flat[HS_BRANCH][sel].astype(bool)
    return out


def met_of(cands, mask):
    """MET 2-vector (-sum px, -sum py) of the real candidates of `load`'s arrays (numpy)."""
    w = mask.astype(np.float64)
    return -np.stack([(cands[..., 0] * w).sum(1), (cands[..., 1] * w).sum(1)], axis=1)


def target_v(met_gen, met_reco):
    """The seed's target v = (MET_gen - MET_reco) / |MET_reco| (2-vectors)."""
    norm = np.maximum(np.linalg.norm(met_reco, axis=1, keepdims=True), 1e-3)
    return ((met_gen - met_reco) / norm).astype(np.float32)
