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
PROCESSES = {"flat": 0, "h125": 1, "dy": 2, "ttbar": 3, "bsm350": 4}
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

_LEP = ("pt", "eta", "phi", "mass", "charge", "genTauIdx")
BRANCHES = (
    [f"Tau_{f}" for f in (*_LEP, "decayMode")]
    + [f"Muon_{f}" for f in _LEP]
    + [f"Electron_{f}" for f in _LEP]
    + [f"PFCand_{f}" for f in ("pt", "eta", "phi", "charge", "pdgId", "tauIdx")]
    + [f"Jet_{f}" for f in ("pt", "eta", "phi", "mass")]
    + ["MET_pt", "MET_phi", "MET_covXX", "MET_covXY", "MET_covYY"]
)
TRUTH_BRANCHES = [
    "GenTau_pt",
    "GenTau_eta",
    "GenTau_phi",
    "GenTau_mass",
    "GenDiTau_mass",
    "process",
]


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
    tau = ak.zip({f: a[f"Tau_{f}"] for f in (*_LEP, "decayMode")})
    tau = tau[ak.argsort(tau.pt, ascending=False)]
    legs = {f: np.zeros((n, 2)) for f in (*_LEP, "kind", "decayMode", "tau_slot")}
    channel = np.full(n, -1)
    for code, lep_name, kind in ((1, "Muon", 3), (2, "Electron", 2)):
        lep = ak.zip({f: a[f"{lep_name}_{f}"] for f in _LEP})
        lead = ak.firsts(lep[ak.argsort(lep.pt, ascending=False)])
        os_tau = ak.firsts(tau[tau.charge * ak.fill_none(lead.charge, 0) < 0])
        idx = ak.firsts(ak.local_index(tau)[tau.charge * ak.fill_none(lead.charge, 0) < 0])
        ok = ak.to_numpy(~ak.is_none(lead) & ~ak.is_none(os_tau)) & (channel < 0)
        for f in _LEP:
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
    sub_idx = ak.firsts(ak.local_index(tau)[tau.charge * ak.fill_none(lead.charge, 0) < 0])
    ok = ak.to_numpy(~ak.is_none(lead) & ~ak.is_none(sub)) & (channel < 0)
    for s, obj in ((0, lead), (1, sub)):
        for f in (*_LEP, "decayMode"):
            legs[f][ok, s] = ak.to_numpy(ak.fill_none(obj[f], 0))[ok]
    legs["kind"][ok] = 1
    legs["tau_slot"][ok] = np.stack(
        [np.zeros(ok.sum()), ak.to_numpy(ak.fill_none(sub_idx, 0))[ok]], 1
    )
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
):
    """Read di-tau events and build model inputs.

    Args:
        paths: ROOT file or list of files with an `Events` tree.
        channel: "all" or one of CHANNELS.
        mapping: canonical branch name -> name in the file.
        drop_nonfinite: drop events with NaN/inf instead of failing.
        max_products: tau_h decay products kept (pT-ordered, zero-padded).
        max_jets: leading jets kept (Delta R > 0.4 from both legs).
        entries: optional (start, stop) entry range of a single file (chunked reading).
    Returns:
        dict with
          inputs: legs (N, 2, len(LEG_FEATURES)), products (N, P, len(PRODUCT_FEATURES)),
            product_mask (N, P), jets (N, J, len(JET_FEATURES)), jet_mask (N, J),
            met (N, len(MET_FEATURES)), leg_kinematics (N, 2, 3) = (eta, phi, mass) of the legs
            in the rotated frame (phi of leg 1 = 0), for the in-graph collinear mass;
          targets: tau_pt (N, 2) generated tau pT (reconstructed pT for fake candidates),
            m_tautau (N,);
          meta: legs (dict of (N, 2) arrays in the lab frame), met_x, met_y, met_cov (N, 2, 2),
            channel, process, m_true, m_vis, entry (the row of each event in the Events tree,
            or in the files one after another).
    Raises:
        UserError: unknown channel, missing branch, empty selection, non-finite values.
    """
    if channel != "all" and channel not in CHANNELS:
        raise UserError(f"unknown channel '{channel}' (choose all or {', '.join(CHANNELS)})")
    a = io.read_branches(
        paths, BRANCHES, mapping=mapping, drop_nonfinite=drop_nonfinite, entries=entries
    )
    truth = _read_truth(paths, mapping, entries)
    legs, ch = select_pairs(a)
    keep = ch >= 0 if channel == "all" else ch == CHANNELS[channel]
    if not keep.any():
        raise UserError(f"no event in {paths} has a {channel} pair")
    a = {k: v[keep] for k, v in a.items()}
    legs = {k: v[keep] for k, v in legs.items()}
    truth = {k: (v[keep] if v is not None else None) for k, v in truth.items()}
    d = _build(a, legs, ch[keep], truth, max_products, max_jets)
    d["meta"]["entry"] = np.flatnonzero(keep) + (entries[0] if entries else 0)
    return d


def _read_truth(paths, mapping, entries=None):
    """Generator truth if the files have it (own samples), else None (data or user files)."""
    try:
        t = io.read_branches(paths, TRUTH_BRANCHES, mapping=mapping, entries=entries)
    except UserError:
        return {"GenTau_pt": None, "GenDiTau_mass": None, "process": None}
    return {k: t[k] for k in ("GenTau_pt", "GenDiTau_mass", "process")}


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
