"""Events tree -> model-ready dilepton ttbar arrays (four-vectors, scalars, mask, tops) for L-GATr.

Works on the toolkit's own files (`python -m data.generate ttbar-dilepton`) and on NanoAOD-style
files with the same content (pass a branch-name `mapping`).

Tokens, in this order (TOKENS): the lepton l-, the antilepton l+, the b and bbar candidates, the
MET and up to `max_jets` jets (pT-ordered, zero-padded, masked). The b candidates are the jets
that `TTbar_bJetIdx` / `TTbar_bbarJetIdx` point to, so they also appear among the jets, as in
the lorentz-gatr-ttbarreco inputs (lgatr.md 4.1), and scalar flags mark those two jets. MET is
(px, py, 0, |pT|): a massless four-vector, covariant under rotations about the beam axis but
not under boosts along it (a boost would give it pz != 0, while the measured MET stays
transverse), which is the seed's "might be wrong" remark. The default spurions ("beam_time")
break those boosts anyway; with spurions "none" or "beam" the MET token is one more reason the
model is not boost-equivariant on real events. Nothing is rescaled here (GeV).

Leptons: the leading e or mu and the leading lepton of opposite charge (own files hold exactly
two). Events without such a pair or without valid b-candidate indices are dropped.
"""

import awkward as ak
import numpy as np

from data import io
from data.errors import UserError

MAX_JETS = 7  # as the lorentz-gatr-ttbarreco inputs (lgatr.md 4.1)
FIXED_TOKENS = ("lepton", "antilepton", "b", "bbar", "met")
# One-hot object type, then lepton flavour: the last axis of `scalars`.
SCALAR_FEATURES = (
    "is_lepton",
    "is_antilepton",
    "is_b",
    "is_bbar",
    "is_met",
    "is_jet",
    "is_electron",
    "is_muon",
    "is_b_jet",
    "is_bbar_jet",
)
"""Object type, lepton flavour, and on the jet tokens which jet is the b / bbar candidate (the
seed's b-quark scalar token idea: the b tokens repeat two of the jets, the flags say which)."""
_LEP = ("pt", "eta", "phi", "mass", "charge")
RECO_BRANCHES = (
    [f"Muon_{f}" for f in _LEP]
    + [f"Electron_{f}" for f in _LEP]
    + [f"Jet_{f}" for f in ("pt", "eta", "phi", "mass")]
    + ["MET_pt", "MET_phi", "MET_covXX", "MET_covXY", "MET_covYY"]
)
# b candidates: the toolkit's files name them; on NanoAOD they come from the b-tag score
B_CANDIDATE_BRANCHES = ["TTbar_bJetIdx", "TTbar_bbarJetIdx", "TTbar_bPairing"]
BRANCHES = RECO_BRANCHES + B_CANDIDATE_BRANCHES  # the toolkit's own files
TRUTH_COLLECTIONS = ("GenTop", "GenNu")
TRUTH_BRANCHES = [f"{c}_{f}" for c in TRUTH_COLLECTIONS for f in ("pt", "eta", "phi", "mass")]
# NanoAOD selection (CMS dilepton ttbar, as data/generate/ttbar_dilepton_reco.py): leptons
# pT > 20 / 15 GeV, |eta| < 2.4; jets pT > 30 GeV, |eta| < 2.4, Delta R > 0.4 from the leptons
# (NanoAOD clusters leptons into jets too); b and bbar = the two jets with the highest b-tag
# score, at least one of them above the working point, assigned by the smallest m(l b) sum.
LEPTON_MIN_PT, JET_MIN_PT, JET_ETA_MAX, JET_LEPTON_MIN_DR = (20.0, 15.0), 30.0, 2.4, 0.4
B_PAIRING_BTAG = 2  # meta b_pairing of b candidates chosen by b-tag score


def tokens(max_jets=MAX_JETS):
    """Names of the tokens in order: the fixed ones, then jet1..jet`max_jets`."""
    return (*FIXED_TOKENS, *(f"jet{i + 1}" for i in range(max_jets)))


def p4_from_ptetaphim(pt, eta, phi, m):
    """(..., 4) four-vectors (px, py, pz, E) from arrays of pt, eta, phi, mass."""
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)], -1)


def _pad(arr, n, fill=0.0):
    return ak.to_numpy(ak.fill_none(ak.pad_none(arr, n, clip=True, axis=1), fill)).astype(
        np.float64
    )


def select_leptons(a):
    """The lepton pair per event.

    Args:
        a: dict of branches (Muon_*, Electron_*).
    Returns:
        (ok (N,) bool, dict of (N, 2) arrays pt, eta, phi, mass, is_electron for (l-, l+)).
    """
    parts = []
    for name, is_e in (("Muon", 0.0), ("Electron", 1.0)):
        lep = ak.zip({f: a[f"{name}_{f}"] for f in _LEP})
        parts.append(ak.with_field(lep, ak.full_like(lep.pt, is_e), "is_electron"))
    lep = ak.concatenate(parts, axis=1)
    lep = lep[ak.argsort(lep.pt, axis=1, ascending=False)]
    lead = ak.firsts(lep)
    partner = ak.firsts(lep[lep.charge * ak.fill_none(lead.charge, 0) < 0])
    ok = ak.to_numpy(~ak.is_none(lead) & ~ak.is_none(partner))
    fields = (*_LEP, "is_electron")
    first = {f: ak.to_numpy(ak.fill_none(lead[f], 0)).astype(np.float64) for f in fields}
    second = {f: ak.to_numpy(ak.fill_none(partner[f], 0)).astype(np.float64) for f in fields}
    lead_neg = first["charge"] < 0
    out = {
        f: np.where(
            lead_neg[:, None],
            np.stack([first[f], second[f]], 1),
            np.stack([second[f], first[f]], 1),
        )
        for f in fields
    }
    return ok, out


def load(
    paths,
    *,
    mapping=None,
    drop_nonfinite=False,
    max_jets=MAX_JETS,
    schema="auto",
    working_points=None,
    require_truth=False,
    entries=None,
):
    """Read dilepton ttbar events and build L-GATr inputs.

    Args:
        paths: ROOT file or list of files with an `Events` tree.
        mapping: canonical branch name -> name in the file (on top of the schema).
        drop_nonfinite: drop events with NaN/inf instead of failing.
        max_jets: leading jets kept as tokens (pT-ordered, zero-padded).
        schema: "auto", "hepformers", "nanoaod" or "pfnano" (data.schemas); on NanoAOD the
            objects are identified with `working_points` and the b candidates are b-tagged.
        working_points: data.schemas.WorkingPoints (lepton / jet ID, b-tag working point).
        require_truth: fail unless the files hold generator truth (training, evaluation).
        entries: optional (start, stop) entry range of a single file (chunked reading); a
            range without a selected event gives arrays of length 0 instead of an error.
    Returns:
        dict with
          inputs: fourvectors (N, T, 4) float32 (px, py, pz, E) in GeV with T = 5 + max_jets in
            the order of `tokens(max_jets)`; scalars (N, T, len(SCALAR_FEATURES)) float32;
            mask (N, T) bool (False for padded jets, whose four-vectors and scalars are 0);
          targets: tops (N, 2, 4) float32, generated top and antitop (px, py, pz, E); None for
            files without generator truth;
          meta: lep_neg, lep_pos, b, bbar (N, 4) float64 (px, py, pz, E), met_x, met_y (N,),
            met_cov (N, 2, 2), b_pairing (N,) (0 = truth-matched b jets, 1 = two leading jets by
            min m_lb, 2 = the two highest b-tag scores by min m_lb), n_jets (N,),
            lepton_is_electron (N, 2) for (l-, l+), schema, entry (N,) the row in the Events tree
            (or in the files one after another); with truth also top, antitop, nu, nubar (N, 4)
            and m_tt, pt_tt, y_tt (N,).
    Raises:
        UserError: missing file or branch, no usable event, non-finite values.
    """
    from data import schemas

    if max_jets < 0:
        raise UserError(f"max_jets must be non-negative, got {max_jets}")
    paths = io.expand_paths(paths)
    mapping = mapping or {}
    wp = working_points or schemas.WorkingPoints()
    schema, needed, has_truth, keys, (btag, thresholds) = check_branches(
        paths[0], schema=schema, mapping=mapping, working_points=wp, require_truth=require_truth
    )
    own = schema == "hepformers"
    a = io.read_branches(
        paths,
        needed + TRUTH_BRANCHES * has_truth,
        mapping=mapping,
        drop_nonfinite=drop_nonfinite,
        entries=entries,
        with_entry=True,
    )
    if not own:
        masks = schemas.object_masks(a, keys, wp, ("Muon", "Electron", "Jet"))
        for name in ("Muon", "Electron"):
            masks[name] = masks[name] & (a[f"{name}_pt"] > LEPTON_MIN_PT[1])
        a = schemas.filter_collections(a, masks)
    ok, lep = select_leptons(a)
    if own:
        bidx = np.stack(
            [ak.to_numpy(a[k]).astype(np.int64) for k in ("TTbar_bJetIdx", "TTbar_bbarJetIdx")], 1
        )
        pairing = ak.to_numpy(a["TTbar_bPairing"])
    else:
        ok &= lep["pt"].max(1) > LEPTON_MIN_PT[0]
        a = _clean_jets(a, lep)
        bidx = _btagged_pair(a, lep, btag, schemas.btag_threshold(wp.btag, thresholds))
        pairing = np.full(len(bidx), B_PAIRING_BTAG)
    n_jet = ak.to_numpy(ak.num(a["Jet_pt"]))
    ok &= np.all((bidx >= 0) & (bidx < n_jet[:, None]), 1) & (bidx[:, 0] != bidx[:, 1])
    if not ok.any() and entries is None:
        raise UserError(f"no event in {paths} has an opposite-charge lepton pair and two b jets")
    a = {k: v[ok] for k, v in a.items()}
    lep = {k: v[ok] for k, v in lep.items()}
    d = _build(a, lep, bidx[ok], a if has_truth else None, max_jets, pairing[ok])
    d["meta"]["entry"] = ak.to_numpy(a["__entry__"])
    d["meta"]["schema"] = schema
    return d


def check_branches(path, *, schema="auto", mapping=None, working_points=None, require_truth=False):
    """What `load` will read from `path`, checked before any reading (one line if it lacks
    something).

    Returns:
        (resolved schema, branches to read without truth, whether truth is there, file keys,
        (b-tag branch, its working points) on NanoAOD or (None, None) on own files).
    Raises:
        UserError: a branch the schema needs, or with `require_truth` the truth, is missing.
    """
    from data import schemas

    mapping = mapping or {}
    keys = schemas.keys_of(path)
    schema = schemas.resolve(schema, keys, path)
    wp = working_points or schemas.WorkingPoints()
    own = schema == "hepformers"
    needed = RECO_BRANCHES + (B_CANDIDATE_BRANCHES if own else [])
    btag, thresholds = None, None
    if not own:
        needed += schemas.id_branches(keys, wp, ("Muon", "Electron", "Jet"))
        btag, thresholds = schemas.btag_branch(path, keys)
        needed.append(btag)
    schemas.require(path, keys, [mapping.get(b, b) for b in needed], schema, "L-GATr inputs")
    has_truth = schemas.has_truth(
        path, keys, TRUTH_BRANCHES, mapping, schema, "L-GATr", require_truth
    )
    return schema, needed, has_truth, keys, (btag, thresholds)


def _clean_jets(a, lep):
    """NanoAOD jets of the ttbar selection, away from the two selected leptons."""
    from data import schemas

    jet_ok = (a["Jet_pt"] > JET_MIN_PT) & (abs(a["Jet_eta"]) < JET_ETA_MAX)
    for s in (0, 1):
        deta = a["Jet_eta"] - lep["eta"][:, s : s + 1]
        dphi = (a["Jet_phi"] - lep["phi"][:, s : s + 1] + np.pi) % (2 * np.pi) - np.pi
        jet_ok = jet_ok & (deta**2 + dphi**2 > JET_LEPTON_MIN_DR**2)
    return schemas.filter_collections(a, {"Jet": jet_ok})


def _btagged_pair(a, lep, btag, threshold):
    """(N, 2) jet indices of (b, bbar): the two highest b-tag scores, at least one above
    `threshold`, assigned by the smallest sum of m(l+ b) and m(l- bbar); -1 where none."""
    n = len(a["Jet_pt"])
    order = ak.argsort(a[btag], ascending=False)
    top2 = ak.to_numpy(ak.fill_none(ak.pad_none(order, 2, clip=True), -1)).astype(np.int64)
    best = ak.to_numpy(ak.fill_none(ak.max(a[btag], axis=1), -np.inf))
    ok = (top2 >= 0).all(1) & (best > threshold)
    jet = {f: _pad(a[f"Jet_{f}"], max(2, int(ak.max(ak.num(a["Jet_pt"]), initial=0)))) for f in
           ("pt", "eta", "phi", "mass")}  # fmt: skip
    rows = np.arange(n)[:, None]
    safe = np.maximum(top2, 0)
    jet_p4 = p4_from_ptetaphim(*(jet[f][rows, safe] for f in ("pt", "eta", "phi", "mass")))
    lep_p4 = p4_from_ptetaphim(lep["pt"], lep["eta"], lep["phi"], lep["mass"])
    tt = jet_p4[:, 0] + lep_p4[:, 1], jet_p4[:, 1] + lep_p4[:, 0]
    sw = jet_p4[:, 1] + lep_p4[:, 1], jet_p4[:, 0] + lep_p4[:, 0]
    straight = sum(_mass(p) for p in tt)
    swapped = sum(_mass(p) for p in sw)
    pair = np.where((straight <= swapped)[:, None], top2, top2[:, ::-1])
    return np.where(ok[:, None], pair, -1)


def _mass(p):
    return np.sqrt(np.maximum(p[:, 3] ** 2 - (p[:, :3] ** 2).sum(1), 0.0))


def _build(a, lep, bidx, truth, max_jets, pairing):
    n = len(bidx)
    jet = {f: a[f"Jet_{f}"] for f in ("pt", "eta", "phi", "mass")}
    width = max(max_jets, int(np.max(ak.to_numpy(ak.num(jet["pt"])), initial=0)))
    jpad = {f: _pad(v, width) for f, v in jet.items()}
    jmask = _pad(ak.ones_like(jet["pt"]), width) > 0
    jet_p4 = p4_from_ptetaphim(jpad["pt"], jpad["eta"], jpad["phi"], jpad["mass"])
    jet_p4 *= jmask[..., None]
    rows = np.arange(n)
    b, bbar = jet_p4[rows, bidx[:, 0]], jet_p4[rows, bidx[:, 1]]  # file order
    # jet tokens in descending pT (own and NanoAOD files are ordered already)
    order = np.argsort(np.where(jmask, -jpad["pt"], np.inf), axis=1, kind="stable")
    jet_p4, jmask = jet_p4[rows[:, None], order], jmask[rows[:, None], order]
    lep_p4 = p4_from_ptetaphim(lep["pt"], lep["eta"], lep["phi"], lep["mass"])
    met_pt, met_phi = (ak.to_numpy(a[k]).astype(np.float64) for k in ("MET_pt", "MET_phi"))
    met_x, met_y = met_pt * np.cos(met_phi), met_pt * np.sin(met_phi)
    met_p4 = np.stack([met_x, met_y, np.zeros(n), np.hypot(met_x, met_y)], 1)
    four = np.concatenate(
        [lep_p4, b[:, None], bbar[:, None], met_p4[:, None], jet_p4[:, :max_jets]], 1
    )
    n_tok = len(FIXED_TOKENS) + max_jets
    mask = np.concatenate([np.ones((n, len(FIXED_TOKENS)), bool), jmask[:, :max_jets]], 1)
    scalars = np.zeros((n, n_tok, len(SCALAR_FEATURES)))
    for t in range(len(FIXED_TOKENS)):
        scalars[:, t, t] = 1.0
    scalars[:, len(FIXED_TOKENS) :, SCALAR_FEATURES.index("is_jet")] = 1.0
    for k, name in enumerate(("is_b_jet", "is_bbar_jet")):
        is_cand = order[:, :max_jets] == bidx[:, k : k + 1]  # (N, max_jets)
        scalars[:, len(FIXED_TOKENS) :, SCALAR_FEATURES.index(name)] = is_cand
    for t in (0, 1):
        scalars[:, t, SCALAR_FEATURES.index("is_electron")] = lep["is_electron"][:, t]
        scalars[:, t, SCALAR_FEATURES.index("is_muon")] = 1.0 - lep["is_electron"][:, t]
    scalars *= mask[..., None]
    cov = np.stack(
        [
            np.stack([ak.to_numpy(a["MET_covXX"]), ak.to_numpy(a["MET_covXY"])], -1),
            np.stack([ak.to_numpy(a["MET_covXY"]), ak.to_numpy(a["MET_covYY"])], -1),
        ],
        -2,
    ).astype(np.float64)
    meta = {
        "lep_neg": lep_p4[:, 0],
        "lep_pos": lep_p4[:, 1],
        "b": b,
        "bbar": bbar,
        "met_x": met_x,
        "met_y": met_y,
        "met_cov": cov,
        "b_pairing": pairing,
        "n_jets": jmask.sum(1),
        "lepton_is_electron": lep["is_electron"] > 0.5,
    }
    targets = None
    if truth is not None:
        gen = {
            c: p4_from_ptetaphim(
                *(_pad(truth[f"{c}_{f}"], 2) for f in ("pt", "eta", "phi", "mass"))
            )
            for c in TRUTH_COLLECTIONS
        }
        tops = gen["GenTop"]
        targets = {"tops": tops.astype(np.float32)}
        tt = tops.sum(1)
        pt_tt = np.hypot(tt[:, 0], tt[:, 1])
        meta.update(
            top=tops[:, 0],
            antitop=tops[:, 1],
            nu=gen["GenNu"][:, 0],
            nubar=gen["GenNu"][:, 1],
            m_tt=np.sqrt(np.maximum(tt[:, 3] ** 2 - (tt[:, :3] ** 2).sum(1), 0.0)),
            pt_tt=pt_tt,
            y_tt=0.5 * np.log((tt[:, 3] + tt[:, 2]) / (tt[:, 3] - tt[:, 2])),
        )
    return {
        "inputs": {
            "fourvectors": four.astype(np.float32),
            "scalars": scalars.astype(np.float32),
            "mask": mask,
        },
        "targets": targets,
        "meta": meta,
    }
