"""Events tree -> model-ready di-tau arrays (inputs, masks, targets, metadata) for TPMT.

Works on the toolkit's own files and on NanoAOD-style files (pass a branch-name `mapping`).
Pair choice follows CMS H->tautau: mu-tauh, then e-tauh, then tauh-tauh, opposite charges.
Azimuthal angles of all inputs are measured from the first leg (the physics is invariant under
rotations about the beam, so this removes a direction the model need not learn).
"""

import awkward as ak
import numpy as np

from data import io
from data.errors import UserError

TAU_MASS = 1.77686  # GeV, PDG
CHANNELS = {"tauh-tauh": 0, "mu-tauh": 1, "e-tauh": 2}
PROCESSES = {"flat": 0, "h125": 1, "dy": 2, "ttbar": 3, "bsm350": 4, "flatz": 5}
MAX_PRODUCTS, MAX_JETS = 10, 3
JET_CLEANING_DR = 0.4

# Feature lists: the order of the last axis of each input, shared with models.tpmt.
LEG_FEATURES = (
    "log_pt",
    "eta",
    "dphi",
    "mass",
    "charge",
    "is_hadronic",
    "is_muon",
    "is_electron",
    "dm_1prong",
    "dm_1prong_pi0",
    "dm_3prong",
    "dm_3prong_pi0",
)
PRODUCT_FEATURES = (
    "log_pt",
    "eta",
    "dphi",
    "charge",
    "is_photon",
    "is_neutral_hadron",
    "deta_leg",
    "dphi_leg",
    "leg",
)
JET_FEATURES = ("log_pt", "eta", "dphi", "log_mass")
MET_FEATURES = (
    "log_pt",
    "dphi",
    "cov_par",
    "cov_perp",
    "cov_cross",
    "log_m_vis",
    "coll_r1",
    "coll_r2",
    "met_par1",
    "met_par2",
)
COLLINEAR_R_RANGE = (-3.0, 10.0)  # nu/visible ratios beyond this carry no extra information

_LEP = ("pt", "eta", "phi", "mass", "charge")
_PF = ("pt", "eta", "phi", "charge", "pdgId")
# reconstructed objects: what inference needs on every schema
RECO_BRANCHES = (
    [f"Tau_{f}" for f in (*_LEP, "decayMode")]
    + [f"Muon_{f}" for f in _LEP]
    + [f"Electron_{f}" for f in _LEP]
    + [f"Jet_{f}" for f in ("pt", "eta", "phi", "mass")]
    + ["MET_pt", "MET_phi", "MET_covXX", "MET_covXY", "MET_covYY"]
)
# tau decay products: the toolkit's own candidates point to their tau; PFNano's belong to jets
PRODUCT_BRANCHES = {
    "hepformers": [f"PFCand_{f}" for f in (*_PF, "tauIdx")],
    "nanoaod": [],
    "pfnano": [f"PFCands_{f}" for f in _PF]
    + ["JetPFCands_jetIdx", "JetPFCands_pFCandsIdx", "Tau_jetIdx"],
}
BRANCHES = RECO_BRANCHES + PRODUCT_BRANCHES["hepformers"]  # the toolkit's own files
# generator truth of the toolkit's files: targets and evaluation only
TRUTH_BRANCHES = [
    "Tau_genTauIdx",
    "Muon_genTauIdx",
    "Electron_genTauIdx",
    "GenTau_pt",
    "GenTau_eta",
    "GenTau_phi",
    "GenTau_mass",
    "GenDiTau_mass",
    "process",
]
# HPS signal region of a tau (CMS, JINST 13 (2018) P10005): charged hadrons inside the cone
# 3.0 GeV / pT clamped to [0.05, 0.1]; photons inside the largest dynamic strip (0.15 x 0.3).
SIGNAL_CONE = (3.0, 0.05, 0.1)
STRIP_MAX = (0.15, 0.3)


def wrap(phi):
    out = np.mod(phi + np.pi, 2 * np.pi) - np.pi
    return np.where(out == -np.pi, np.pi, out)


def p4_from_ptetaphim(pt, eta, phi, m):
    """(..., 4) four-vectors (px, py, pz, E)."""
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)], -1)


def pair_mass(pt, eta, phi, m):
    """Invariant mass of two objects given (N, 2) arrays."""
    p = p4_from_ptetaphim(pt, eta, phi, m).sum(1)
    return np.sqrt(np.maximum(p[:, 3] ** 2 - (p[:, :3] ** 2).sum(1), 0.0))


def _pad(arr, n, fill=0.0):
    return ak.to_numpy(ak.fill_none(ak.pad_none(arr, n, clip=True, axis=1), fill)).astype(
        np.float64
    )


def select_pairs(a):
    """Pick the leg pair per event. Returns dict of (N, 2) leg arrays and the channel (N,)."""
    n = len(a["MET_pt"])
    tau = ak.zip({f: a[f"Tau_{f}"] for f in (*_LEP, "genTauIdx", "decayMode", "index")})
    tau = tau[ak.argsort(tau.pt, ascending=False)]
    fields = (*_LEP, "genTauIdx")
    legs = {f: np.zeros((n, 2)) for f in (*fields, "kind", "decayMode", "tau_slot")}
    channel = np.full(n, -1)
    for code, lep_name, kind in ((1, "Muon", 3), (2, "Electron", 2)):
        lep = ak.zip({f: a[f"{lep_name}_{f}"] for f in fields})
        lead = ak.firsts(lep[ak.argsort(lep.pt, ascending=False)])
        os_tau = ak.firsts(tau[tau.charge * ak.fill_none(lead.charge, 0) < 0])
        idx = os_tau.index
        ok = ak.to_numpy(~ak.is_none(lead) & ~ak.is_none(os_tau)) & (channel < 0)
        for f in fields:
            legs[f][ok, 0] = ak.to_numpy(ak.fill_none(lead[f], 0))[ok]
            legs[f][ok, 1] = ak.to_numpy(ak.fill_none(os_tau[f], 0))[ok]
        legs["kind"][ok] = [kind, 1]
        legs["decayMode"][ok] = np.stack(
            [np.full(ok.sum(), -1), ak.to_numpy(ak.fill_none(os_tau.decayMode, 0))[ok]], 1
        )
        legs["tau_slot"][ok] = np.stack(
            [np.full(ok.sum(), -1), ak.to_numpy(ak.fill_none(idx, 0))[ok]], 1
        )
        channel[ok] = code
    lead = ak.firsts(tau)
    os_tau = tau[tau.charge * ak.fill_none(lead.charge, 0) < 0]
    sub = ak.firsts(os_tau)
    ok = ak.to_numpy(~ak.is_none(lead) & ~ak.is_none(sub)) & (channel < 0)
    for s, obj in ((0, lead), (1, sub)):
        for f in (*fields, "decayMode"):
            legs[f][ok, s] = ak.to_numpy(ak.fill_none(obj[f], 0))[ok]
        legs["tau_slot"][ok, s] = ak.to_numpy(ak.fill_none(obj.index, 0))[ok]
    legs["kind"][ok] = 1
    channel[ok] = 0
    return legs, channel


def mirror(inputs):
    """The same events rotated by pi about the x axis: (eta, phi) -> (-eta, -phi).

    A proper rotation, so an exact symmetry of symmetric pp collisions; used to double the
    training sample. Signs follow the feature lists above.
    """
    flips = {
        "legs": LEG_FEATURES,
        "products": PRODUCT_FEATURES,
        "jets": JET_FEATURES,
        "met": MET_FEATURES,
    }
    odd = {"eta", "dphi", "deta_leg", "dphi_leg", "cov_cross"}
    out = dict(inputs)
    for name, features in flips.items():
        sign = np.array([-1.0 if f in odd else 1.0 for f in features], np.float32)
        out[name] = inputs[name] * sign
    out["leg_kinematics"] = inputs["leg_kinematics"] * np.array([-1.0, -1.0, 1.0], np.float32)
    return out


def load(
    paths,
    *,
    channel="all",
    mapping=None,
    drop_nonfinite=False,
    max_products=MAX_PRODUCTS,
    max_jets=MAX_JETS,
    entries=None,
    schema="auto",
    working_points=None,
    require_truth=False,
    smearings=1,
):
    """Read di-tau events and build model inputs.

    Args:
        paths: ROOT file or list of files with an `Events` tree.
        channel: "all" or one of CHANNELS.
        mapping: canonical branch name -> name in the file (on top of the schema).
        drop_nonfinite: drop events with NaN/inf instead of failing.
        max_products: tau_h decay products kept (pT-ordered, zero-padded).
        max_jets: leading jets kept (Delta R > 0.4 from both legs).
        entries: optional (start, stop) entry range of a single file (chunked reading).
        schema: "auto", "hepformers", "nanoaod" or "pfnano" (data.schemas). On NanoAOD the
            objects are identified with `working_points` first; NanoAOD has no PF candidates,
            so `product_mask` is all False there.
        working_points: data.schemas.WorkingPoints (default: medium tau / muon ID, WP90
            electrons, tight jet ID).
        require_truth: fail unless the files hold generator truth (training, evaluation).
        smearings: files generated with `--smearings S` hold S detector passes of every event
            (branch `smearing`): keep the first `smearings` (default 1: independent events
            only, so nothing is counted S times unless asked); None = all.
    Returns:
        dict with
          inputs: legs (N, 2, len(LEG_FEATURES)), products (N, P, len(PRODUCT_FEATURES)),
            product_mask (N, P), jets (N, J, len(JET_FEATURES)), jet_mask (N, J),
            met (N, len(MET_FEATURES)), leg_kinematics (N, 2, 3) = (eta, phi, mass) of the legs
            in the rotated frame (phi of leg 1 = 0), for the in-graph collinear mass;
          targets: tau_pt (N, 2) generated tau pT (reconstructed pT for fake candidates),
            m_tautau (N,); None for files without generator truth;
          meta: legs (dict of (N, 2) arrays in the lab frame), met_x, met_y, met_cov (N, 2, 2),
            channel, process (-1 without truth), m_true (None without truth), m_vis, schema,
            entry (the row of each event in the Events tree, or in the files one after another).
    Raises:
        UserError: unknown channel or schema, missing branch, empty selection, non-finite values.
    """
    if channel != "all" and channel not in CHANNELS:
        raise UserError(f"unknown channel '{channel}' (choose all or {', '.join(CHANNELS)})")
    a, schema, has_truth = _read(
        paths, schema, mapping, drop_nonfinite, entries, working_points, require_truth
    )
    legs, ch = select_pairs(a)
    keep = ch >= 0 if channel == "all" else ch == CHANNELS[channel]
    if smearings is not None and "smearing" in a:
        keep &= ak.to_numpy(a["smearing"]) < smearings
    if not keep.any():
        raise UserError(f"no event in {paths} has a {channel} pair")
    a = {k: v[keep] for k, v in a.items()}
    legs = {k: v[keep] for k, v in legs.items()}
    if schema == "pfnano":
        a.update(_pfnano_products(a, legs))
    truth = {k: (a[k] if has_truth else None) for k in ("GenTau_pt", "GenDiTau_mass", "process")}
    d = _build(a, legs, ch[keep], truth, max_products, max_jets)
    d["meta"]["entry"] = ak.to_numpy(a["__entry__"])
    d["meta"]["schema"] = schema
    return d


def _read(paths, schema, mapping, drop_nonfinite, entries, working_points, require_truth):
    """Branches of `schema` (own files: with truth when present), objects identified on NanoAOD.

    Returns:
        (dict of branches with `Tau_index`, `*_genTauIdx` (-1 without truth) and `__entry__`,
        the resolved schema, whether truth was read).
    """
    from data import schemas

    paths = io.expand_paths(paths)
    wp = working_points or schemas.WorkingPoints()
    schema, needed, has_truth, keys = check_branches(
        paths[0], schema=schema, mapping=mapping, working_points=wp, require_truth=require_truth
    )
    smearing = ["smearing"] if "smearing" in keys else []  # detector-pass copies (augmentation)
    a = io.read_branches(
        paths,
        needed + TRUTH_BRANCHES * has_truth + smearing,
        mapping=mapping,
        drop_nonfinite=drop_nonfinite,
        entries=entries,
        with_entry=True,
    )
    for name in ("Tau", "Muon", "Electron"):
        if not has_truth:
            a[f"{name}_genTauIdx"] = ak.values_astype(a[f"{name}_pt"] * 0 - 1, np.int64)
    a["Tau_index"] = ak.local_index(a["Tau_pt"])
    if schema != "hepformers":
        a = _identify(a, keys, wp)
    if schema == "nanoaod":  # no PF candidates: no product tokens
        empty = a["Tau_pt"][:, :0]
        a.update({f"PFCand_{f}": empty for f in (*_PF, "tauIdx")})
    return a, schema, has_truth


def detector_passes(path):
    """How many detector passes (`data.generate --smearings S`) the file holds: 1 + the largest
    `smearing` value (every generated file has the branch, all 0 without passes); 1 without it.
    """
    from data import schemas

    if "smearing" not in schemas.keys_of(path):
        return 1
    passes = io.read_branches([path], ["smearing"])["smearing"]
    return int(ak.max(passes)) + 1 if len(passes) else 1


def check_branches(path, *, schema="auto", mapping=None, working_points=None, require_truth=False):
    """What `load` will read from `path`, checked before any reading (one line if it lacks
    something).

    Returns:
        (resolved schema, branches to read without truth, whether truth is there, file keys).
    Raises:
        UserError: a branch the schema needs, or with `require_truth` the truth, is missing.
    """
    from data import schemas

    mapping = mapping or {}
    keys = schemas.keys_of(path)
    schema = schemas.resolve(schema, keys, path)
    wp = working_points or schemas.WorkingPoints()
    needed = RECO_BRANCHES + PRODUCT_BRANCHES[schema]
    if schema != "hepformers":
        needed += schemas.id_branches(keys, wp, ("Tau", "Muon", "Electron", "Jet"))
    schemas.require(path, keys, [mapping.get(b, b) for b in needed], schema, "TPMT inputs")
    has_truth = schemas.has_truth(
        path, keys, TRUTH_BRANCHES, mapping, schema, "TPMT", require_truth
    )
    return schema, needed, has_truth, keys


def _identify(a, keys, wp):
    """NanoAOD objects that pass identification and the seed-000 kinematic selection; taus
    away from the identified leptons (a lepton is also reconstructed as a tau)."""
    from data import schemas

    masks = schemas.object_masks(a, keys, wp, ("Tau", "Muon", "Electron", "Jet"))
    for name in ("Muon", "Electron"):
        masks[name] = masks[name] & (a[f"{name}_pt"] > schemas.LEG_MIN_PT)
    a = schemas.filter_collections(a, masks)
    tau_ok = ak.ones_like(a["Tau_pt"], dtype=bool)
    for name in ("Muon", "Electron"):
        deta = a["Tau_eta"][:, :, None] - a[f"{name}_eta"][:, None, :]
        dphi = wrap_ak(a["Tau_phi"][:, :, None] - a[f"{name}_phi"][:, None, :])
        near = ak.any(deta**2 + dphi**2 < wp.lepton_tau_dr**2, axis=2)
        tau_ok = tau_ok & ~near
    return schemas.filter_collections(a, {"Tau": tau_ok})


def _pfnano_products(a, legs):
    """PFNano candidates of each tau_h leg: those of the tau's jet (JetPFCands) inside its HPS
    signal region, as `PFCand_*` branches with `PFCand_tauIdx` = the leg's tau index."""
    slots = legs["tau_slot"].astype(np.int64)
    jet_of_tau = a["Tau_jetIdx"]
    parts = []
    for s in (0, 1):
        hadronic = legs["kind"][:, s] == 1
        jet = ak.fill_none(ak.firsts(jet_of_tau[a["Tau_index"] == slots[:, s : s + 1]]), -1)
        jet = np.where(hadronic, ak.to_numpy(jet), -1)
        link = a["JetPFCands_jetIdx"] == jet[:, None]
        idx = a["JetPFCands_pFCandsIdx"][link & (jet[:, None] >= 0)]
        cand = ak.zip({f: a[f"PFCands_{f}"][idx] for f in _PF})
        deta = cand.eta - legs["eta"][:, s : s + 1]
        dphi = wrap_ak(cand.phi - legs["phi"][:, s : s + 1])
        k, lo, hi = SIGNAL_CONE
        cone = np.clip(k / np.maximum(legs["pt"][:, s : s + 1], 1e-3), lo, hi)
        charged = (cand.charge != 0) & (deta**2 + dphi**2 < cone**2)
        neutral = (cand.charge == 0) & (abs(deta) < STRIP_MAX[0]) & (abs(dphi) < STRIP_MAX[1])
        cand = cand[charged | neutral]
        leg = ak.values_astype(cand.pt * 0, np.int64) + slots[:, s : s + 1]
        parts.append(ak.with_field(cand, leg, "tauIdx"))
    pf = ak.concatenate(parts, axis=1)
    return {f"PFCand_{f}": pf[f] for f in (*_PF, "tauIdx")}


def _build(a, legs, channel, truth, max_products, max_jets):
    n = len(channel)
    phi0 = legs["phi"][:, :1]
    dphi = wrap(legs["phi"] - phi0)
    kind, dm = legs["kind"], legs["decayMode"]
    leg_x = np.stack(
        [
            np.log(np.maximum(legs["pt"], 1e-3)),
            legs["eta"],
            dphi,
            legs["mass"],
            legs["charge"],
            kind == 1,
            kind == 3,
            kind == 2,
            dm == 0,
            (dm >= 1) & (dm <= 4),
            dm == 10,
            dm >= 11,
        ],
        -1,
    ).astype(np.float32)
    # decay products of the tau_h legs: PFCand_tauIdx points into the event's Tau collection
    pf = ak.zip({f: a[f"PFCand_{f}"] for f in ("pt", "eta", "phi", "charge", "pdgId", "tauIdx")})
    slots = ak.Array(legs["tau_slot"].astype(np.int64))
    in_leg = (pf.tauIdx == slots[:, 0:1]) & (kind[:, 0:1] == 1) | (pf.tauIdx == slots[:, 1:2])
    pf = pf[in_leg]
    pf_leg = ak.values_astype(pf.tauIdx == slots[:, 1:2], np.int64)
    order = ak.argsort(pf.pt, ascending=False)
    pf, pf_leg = pf[order], pf_leg[order]
    pmask = _pad(ak.ones_like(pf.pt), max_products) > 0
    ppt, peta, pphi = (_pad(pf[f], max_products) for f in ("pt", "eta", "phi"))
    pq, pid, pleg = (
        _pad(pf.charge, max_products),
        _pad(pf.pdgId, max_products),
        _pad(pf_leg, max_products),
    )
    leg_i = pleg.astype(int)
    rows = np.arange(n)[:, None]
    prod_x = (
        np.stack(
            [
                np.log(np.maximum(ppt, 1e-3)),
                peta,
                wrap(pphi - phi0),
                pq,
                np.abs(pid) == 22,
                (pq == 0) & (np.abs(pid) != 22),
                peta - legs["eta"][rows, leg_i],
                wrap(pphi - legs["phi"][rows, leg_i]),
                pleg,
            ],
            -1,
        )
        * pmask[..., None]
    )
    # jets cleaned against both legs
    jet = ak.zip({f: a[f"Jet_{f}"] for f in ("pt", "eta", "phi", "mass")})
    clean = ak.ones_like(jet.pt, dtype=bool)
    for s in (0, 1):
        d = np.hypot(jet.eta - legs["eta"][:, s], wrap_ak(jet.phi - legs["phi"][:, s]))
        clean = clean & (d > JET_CLEANING_DR)
    jet = jet[clean]
    jet = jet[ak.argsort(jet.pt, ascending=False)]
    jmask = _pad(ak.ones_like(jet.pt), max_jets) > 0
    jpt, jeta, jphi, jm = (_pad(jet[f], max_jets) for f in ("pt", "eta", "phi", "mass"))
    jet_x = (
        np.stack(
            [np.log(np.maximum(jpt, 1e-3)), jeta, wrap(jphi - phi0), np.log(np.maximum(jm, 1e-3))],
            -1,
        )
        * jmask[..., None]
    )
    # MET and its covariance, rotated into the frame of leg 1
    met_pt, met_phi = ak.to_numpy(a["MET_pt"]), ak.to_numpy(a["MET_phi"])
    cov = np.stack(
        [
            np.stack([ak.to_numpy(a["MET_covXX"]), ak.to_numpy(a["MET_covXY"])], -1),
            np.stack([ak.to_numpy(a["MET_covXY"]), ak.to_numpy(a["MET_covYY"])], -1),
        ],
        -2,
    )
    c, s = np.cos(phi0[:, 0]), np.sin(phi0[:, 0])
    rot = np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], -2)
    cov_r = rot @ cov @ np.swapaxes(rot, 1, 2)
    m_vis = pair_mass(legs["pt"], legs["eta"], legs["phi"], legs["mass"])
    met_x = np.stack(
        [
            np.log(np.maximum(met_pt, 1e-3)),
            wrap(met_phi - phi0[:, 0]),
            cov_r[:, 0, 0] / 400.0,
            cov_r[:, 1, 1] / 400.0,
            cov_r[:, 0, 1] / 400.0,
            np.log(np.maximum(m_vis, 1e-3)),
            *collinear_features(legs["pt"], legs["phi"], met_pt, met_phi),
        ],
        -1,
    )
    targets, m_true = _targets(legs, truth)
    process = truth["process"]
    return dict(
        inputs=dict(
            legs=leg_x,
            products=prod_x.astype(np.float32),
            product_mask=pmask,
            jets=jet_x.astype(np.float32),
            jet_mask=jmask,
            met=met_x.astype(np.float32),
            leg_kinematics=np.stack([legs["eta"], dphi, legs["mass"]], -1).astype(np.float32),
        ),
        targets=targets,
        meta=dict(
            legs=legs,
            met_x=met_pt * np.cos(met_phi),
            met_y=met_pt * np.sin(met_phi),
            met_cov=cov,
            channel=channel,
            m_vis=m_vis,
            m_true=m_true,
            process=ak.to_numpy(process) if process is not None else np.full(n, -1),
        ),
    )


def collinear_features(pt, phi, met_pt, met_phi):
    """Neutrino-to-visible ratios r1, r2 of the collinear approximation (MET = r1 p1T + r2 p2T)
    and the MET component along each leg over that leg's pT; all rotation invariant.

    Args:
        pt, phi: (N, 2) leg pT and phi. met_pt, met_phi: (N,).
    Returns:
        four (N,) arrays: r1, r2 (clipped to COLLINEAR_R_RANGE), par1, par2.
    """
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    mx, my = met_pt * np.cos(met_phi), met_pt * np.sin(met_phi)
    det = px[:, 0] * py[:, 1] - py[:, 0] * px[:, 1]
    safe = np.where(np.abs(det) > 1e-6 * pt[:, 0] * pt[:, 1], det, np.nan)
    r1 = (mx * py[:, 1] - my * px[:, 1]) / safe
    r2 = (px[:, 0] * my - py[:, 0] * mx) / safe
    lo, hi = COLLINEAR_R_RANGE
    r1, r2 = (np.clip(np.nan_to_num(r, nan=hi), lo, hi) for r in (r1, r2))
    par = (mx[:, None] * px + my[:, None] * py) / np.maximum(pt, 1e-3) ** 2
    return r1, r2, par[:, 0], par[:, 1]


def wrap_ak(dphi):
    return (dphi + np.pi) % (2 * np.pi) - np.pi


def _targets(legs, truth):
    """Generated tau pT for genuine legs, reconstructed pT for fakes (seed 000)."""
    pt = legs["pt"].copy()
    if truth["GenTau_pt"] is None:
        return None, None
    gen_pt = _pad(truth["GenTau_pt"], 2)
    idx = legs["genTauIdx"].astype(int)
    genuine = idx >= 0
    rows = np.repeat(np.arange(len(pt))[:, None], 2, 1)
    pt[genuine] = gen_pt[rows[genuine], idx[genuine]]
    m = pair_mass(pt, legs["eta"], legs["phi"], np.full_like(pt, TAU_MASS))
    gen_m = ak.to_numpy(truth["GenDiTau_mass"])
    m_true = np.where(genuine.all(1), gen_m, m)
    return dict(tau_pt=pt.astype(np.float32), m_tautau=m_true.astype(np.float32)), m_true
