"""FCC-ee jets (`fcctau` samples or any file with the same branches) -> ParTau arrays.

One row per jet: up to `MAX_CANDS` candidates (highest pT first) with ML-Tau's 17 features
(partau.md 2.6), their four-vectors (px, py, pz, E) for the pair features, a mask, and the
targets of the four tasks in the conventions of `models.partau.losses`:
tau_id 0/1; charge 1 (tau+) / 0 (tau-) / -1 (not a tau, ignored); decay_mode 0..5 / -1;
kinematics (N, 6) = the 5 targets and a 1/0 column "is a tau" (partau.md 2.7).
"""

import numpy as np

from data import io
from data.errors import UserError

MAX_CANDS = 20
FEATURES = (
    "cand_deta",  # |eta - eta_jet| (ML-Tau takes absolute values)
    "cand_dphi",  # |phi - phi_jet|
    "log_pt",
    "log_e",
    "log_pt_rel",  # log(pT / pT_jet)
    "log_e_rel",  # log(E / E_jet)
    "delta_r",
    "charge",
    "is_electron",
    "is_muon",
    "is_photon",
    "is_charged_hadron",
    "is_neutral_hadron",
    "dz",
    "dz_err",
    "dxy",
    "dxy_err",
)
KINEMATIC_TARGETS = ("log_pt_ratio", "delta_eta", "sin_delta_phi", "cos_delta_phi", "log_m_ratio")
DECAY_MODES = ("h", "h pi0", "h >=2pi0", "3h", "3h >=1pi0", "rare")
LEPTONIC = 16
PDG_ONE_HOT = (11, 13, 22, 211, 130)

JET_BRANCHES = ("event", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass")
CAND_BRANCHES = tuple(
    f"PFCand_{f}"
    for f in ("pt", "eta", "phi", "mass", "charge", "pdgId", "dz", "dzErr", "dxy", "dxyErr")
) + ("PFCand_jetIdx",)
TRUTH_BRANCHES = (
    "Jet_genTauDecayMode",
    "Jet_genTauCharge",
    "Jet_genTauVisPt",
    "Jet_genTauVisEta",
    "Jet_genTauVisPhi",
    "Jet_genTauVisMass",
)
SPLIT = {"train": (0.0, 0.7), "val": (0.7, 0.8), "test": (0.8, 1.0)}


def decay_mode_class(code):
    """ML-Tau's 6 classes from the full code 5 (n_charged - 1) + min(n_neutral, 4) (partau.md
    2.8): h, h pi0, h >=2 pi0, 3h (2-prongs folded in), 3h >=1 pi0, rare; -1 for no tau."""
    code = np.asarray(code)
    table = np.full(17, 5)
    table[[0, 1, 2, 3, 4]] = [0, 1, 2, 2, 2]
    table[[5, 10]] = 3
    table[[6, 7, 8, 9, 11, 12, 13, 14]] = 4
    return np.where((code >= 0) & (code < LEPTONIC), table[np.clip(code, 0, 16)], -1)


def load(
    paths, *, with_truth=True, keep_leptonic=False, max_cands=MAX_CANDS, mapping=None, entries=None
):
    """Read jets and their candidates into model-ready arrays.

    Args:
        paths: ROOT file(s), globs or manifests.
        with_truth: read the `Jet_genTau*` branches and build targets (needed for fit and
            evaluation, not for predictions).
        keep_leptonic: keep jets matched to leptonically decaying taus (dropped by default:
            they are neither the signal nor the quark/gluon background).
        max_cands: candidates per jet (highest pT first).
        mapping: optional branch-name mapping (see `data.io.read_branches`).
        entries: optional (start, stop) entry range of a single file (chunked reading); a
            range without jets gives arrays of length 0 instead of an error.
    Returns:
        dict with `inputs` {features (N, P, 17), fourvectors (N, P, 4), mask (N, P)},
        `jets` {entry, index, pt, eta, phi, mass, energy, n_cands} and, with truth, `targets`
        {tau_id, charge, decay_mode, kinematics} and `truth` {decay_mode_code, vis_pt, ...}.
    Raises:
        UserError: missing branches, empty trees, non-finite values, no jets.
    """
    paths = io.expand_paths(paths)
    names = JET_BRANCHES + CAND_BRANCHES + (TRUTH_BRANCHES if with_truth else ())
    arrays = io.read_branches(paths, names, mapping=mapping, entries=entries)
    jets = _flat_jets(arrays, with_truth)
    if len(jets["pt"]) == 0 and entries is None:
        raise UserError(f"no jets in {', '.join(paths[:3])}")
    cands = _cands(arrays, jets, max_cands)
    keep = np.ones(len(jets["pt"]), bool)
    if with_truth and not keep_leptonic:
        keep = jets["code"] != LEPTONIC
    out = {"inputs": {k: v[keep] for k, v in cands.items()}}
    out["jets"] = {
        k: jets[k][keep] for k in ("entry", "index", "event", "pt", "eta", "phi", "mass", "energy")
    }
    out["jets"]["n_cands"] = cands["mask"][keep].sum(1).astype(np.int32)
    if with_truth:
        out["targets"], out["truth"] = _targets(
            {k: v[keep] for k, v in jets.items() if k != "first"}
        )
    return out


def _flat_jets(arrays, with_truth):
    import awkward as ak

    counts = ak.to_numpy(ak.num(arrays["Jet_pt"]))
    flat = {
        k: ak.to_numpy(ak.flatten(arrays[f"Jet_{k}"])).astype(np.float64)
        for k in ("pt", "eta", "phi", "mass")
    }
    flat["entry"] = np.repeat(np.arange(len(counts)), counts)
    flat["index"] = np.arange(len(flat["entry"])) - np.repeat(np.cumsum(counts) - counts, counts)
    flat["event"] = np.repeat(ak.to_numpy(arrays["event"]).astype(np.int64), counts)
    flat["energy"] = np.sqrt((flat["pt"] * np.cosh(flat["eta"])) ** 2 + flat["mass"] ** 2)
    flat["first"] = np.cumsum(counts) - counts
    if with_truth:
        flat["code"] = ak.to_numpy(ak.flatten(arrays["Jet_genTauDecayMode"])).astype(np.int64)
        flat["tau_charge"] = ak.to_numpy(ak.flatten(arrays["Jet_genTauCharge"])).astype(int)
        for k in ("Pt", "Eta", "Phi", "Mass"):
            flat[f"vis_{k.lower()}"] = ak.to_numpy(ak.flatten(arrays[f"Jet_genTauVis{k}"])).astype(
                np.float64
            )
    return flat


def _cands(arrays, jets, max_cands):
    """Padded per-jet candidate features, four-vectors and mask."""
    import awkward as ak

    def flat(name, dtype=np.float64):
        return ak.to_numpy(ak.flatten(arrays[f"PFCand_{name}"])).astype(dtype)

    counts = ak.to_numpy(ak.num(arrays["PFCand_pt"]))
    entry = np.repeat(np.arange(len(counts)), counts)
    jet_idx = flat("jetIdx", np.int64)
    n_jets = np.bincount(jets["entry"], minlength=len(counts))
    bad = (jet_idx < -1) | (jet_idx >= n_jets[entry])
    if bad.any():
        raise UserError(f"{int(bad.sum())} PFCand_jetIdx values point outside their event's jets")
    ok = jet_idx >= 0
    jet = jets["first"][entry[ok]] + jet_idx[ok]
    pt, eta, phi, mass = (flat(k)[ok] for k in ("pt", "eta", "phi", "mass"))
    order = np.lexsort((-pt, jet))
    jet = jet[order]
    n_per_jet = np.bincount(jet, minlength=len(jets["pt"]))
    rank = np.arange(len(jet)) - np.repeat(np.cumsum(n_per_jet) - n_per_jet, n_per_jet)
    take = rank < max_cands
    row, col = jet[take], rank[take]
    sel = order[take]

    pt, eta, phi, mass = pt[sel], eta[sel], phi[sel], mass[sel]
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    deta = np.abs(eta - jets["eta"][row])
    dphi = np.abs(np.angle(np.exp(1j * (phi - jets["phi"][row]))))
    pdg = np.abs(flat("pdgId", np.int64)[ok][sel])
    columns = [
        deta,
        dphi,
        np.log(pt),
        np.log(energy),
        np.log(pt / jets["pt"][row]),
        np.log(energy / jets["energy"][row]),
        np.hypot(deta, dphi),
        flat("charge")[ok][sel],
        *[(pdg == p).astype(np.float64) for p in PDG_ONE_HOT],
        flat("dz")[ok][sel],
        flat("dzErr")[ok][sel],
        flat("dxy")[ok][sel],
        flat("dxyErr")[ok][sel],
    ]
    n = len(jets["pt"])
    features = np.zeros((n, max_cands, len(FEATURES)), np.float32)
    features[row, col] = np.stack(columns, 1)
    fourvectors = np.zeros((n, max_cands, 4), np.float32)
    fourvectors[row, col] = np.stack([px, py, pz, energy], 1)
    mask = np.zeros((n, max_cands), bool)
    mask[row, col] = True
    if not np.isfinite(features).all():
        raise UserError("candidate features are not finite (pT or energy <= 0 in PFCand_*?)")
    return {"features": features, "fourvectors": fourvectors, "mask": mask}


def _targets(jets):
    code = jets["code"]
    is_tau = (code >= 0) & (code < LEPTONIC)
    dm = decay_mode_class(code)
    vis_e = np.sqrt((jets["vis_pt"] * np.cosh(jets["vis_eta"])) ** 2 + jets["vis_mass"] ** 2)
    m_gen = np.sqrt(np.maximum(vis_e**2 - (jets["vis_pt"] * np.cosh(jets["vis_eta"])) ** 2, 0))
    m_reco = np.sqrt(np.maximum(jets["energy"] ** 2 - (jets["pt"] * np.cosh(jets["eta"])) ** 2, 0))
    dphi = np.angle(np.exp(1j * (jets["vis_phi"] - jets["phi"])))
    with np.errstate(divide="ignore", invalid="ignore"):
        kin = np.stack(
            [
                np.clip(np.log(jets["vis_pt"] / jets["pt"]), -5, 5),
                jets["vis_eta"] - jets["eta"],
                np.sin(dphi),
                np.cos(dphi),
                np.clip(np.log(m_gen / m_reco), -5, 5),
                np.ones_like(dphi),
            ],
            1,
        )
    kin = np.where(is_tau[:, None], np.nan_to_num(kin, nan=0.0, posinf=5.0, neginf=-5.0), 0.0)
    targets = {
        "tau_id": is_tau.astype(np.int32),
        "charge": np.where(is_tau, (jets["tau_charge"] > 0).astype(np.float32), -1.0).astype(
            np.float32
        ),
        "decay_mode": dm.astype(np.int32),
        "kinematics": kin.astype(np.float32),
    }
    truth = {
        "decay_mode_code": code,
        "vis_pt": jets["vis_pt"],
        "vis_eta": jets["vis_eta"],
        "vis_phi": jets["vis_phi"],
        "vis_mass": jets["vis_mass"],
        "tau_charge": jets["tau_charge"],
    }
    return targets, truth


def class_weights(is_tau, p, theta, *, bins=(20, 20), max_weight=10.0):
    """Per-jet weights: background reweighted to the signal's (p, theta) spectrum, both classes
    with equal total weight, mean 1 (ML-Tau reweights with (p, theta) matrices, partau.md 2.9).

    Args:
        is_tau: (N,) bool; p, theta: (N,) jet momentum (GeV) and polar angle (rad).
    """
    return ClassWeights(is_tau, p, theta, bins=bins, max_weight=max_weight)(is_tau, p, theta)


class ClassWeights:
    """The weights of `class_weights` as a function of (is_tau, p, theta), learnt once from a
    set of jets (so that streamed batches get the weights of the whole training set).

    Args:
        is_tau, p, theta: (N,) the jets the weights are learnt from (see `class_weights`).
    """

    def __init__(self, is_tau, p, theta, *, bins=(20, 20), max_weight=10.0):
        is_tau = np.asarray(is_tau, bool)
        self.bins = bins
        self.trivial = bool(is_tau.all() or not is_tau.any())  # one class: weights 1
        if self.trivial:
            return
        self.p_edges = np.quantile(p[is_tau], np.linspace(0, 1, bins[0] + 1))
        self.t_edges = np.linspace(0.0, np.pi, bins[1] + 1)
        cell = self._cell(p, theta)
        n_cells = bins[0] * bins[1]
        sig = np.bincount(cell[is_tau], minlength=n_cells) / is_tau.sum()
        bkg = np.bincount(cell[~is_tau], minlength=n_cells) / (~is_tau).sum()
        ratio = np.where(bkg > 0, sig / np.maximum(bkg, 1e-12), 0.0)
        self.table = np.minimum(ratio, max_weight)
        # each class sums to half the jets: taus 1 each, background by its cell, normalised
        n = len(is_tau)
        self.tau_weight = n / (2.0 * is_tau.sum())
        self.bkg_scale = n / (2.0 * max(self.table[cell[~is_tau]].sum(), 1e-12))

    def _cell(self, p, theta):
        ip = np.clip(np.searchsorted(self.p_edges, p) - 1, 0, self.bins[0] - 1)
        it = np.clip(np.searchsorted(self.t_edges, theta) - 1, 0, self.bins[1] - 1)
        return ip * self.bins[1] + it

    def __call__(self, is_tau, p, theta):
        """(N,) float32 weights of jets."""
        is_tau = np.asarray(is_tau, bool)
        if self.trivial:
            return np.ones(len(is_tau), np.float32)
        bkg = self.table[self._cell(p, theta)] * self.bkg_scale
        return np.where(is_tau, self.tau_weight, bkg).astype(np.float32)


def split_of(event, *, seed=0):
    """A fraction in [0, 1) per jet from its event number: the 70/10/20 split keeps the jets of
    one event together and does not depend on file order."""
    x = (
        np.asarray(event, np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
    ) >> np.uint64(11)
    return x.astype(np.float64) / float(1 << 53)


def part_mask(event, part, *, seed=0):
    """(N,) bool: which jets of events `event` belong to `part` ("train", "val" or "test")."""
    lo, hi = SPLIT[part]
    u = split_of(event, seed=seed)
    return (u >= lo) & (u < hi)


def select(data, part, *, seed=0):
    """The `part` ("train", "val" or "test") of a loaded dict (by `split_of` the event)."""
    return _take(data, part_mask(data["jets"]["event"], part, seed=seed))


def _take(d, keep):
    return {k: _take(v, keep) if isinstance(v, dict) else v[keep] for k, v in d.items()}
