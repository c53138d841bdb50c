"""HPS-like (hadrons-plus-strips) hadronic-tau reconstruction for FCC-ee (CLD) jets at the Z pole.

The cut-based baseline that ParTau is compared with for tau ID, decay mode, charge and visible
kinematics. It follows CMS HPS (JINST 11 (2016) P01019; dynamic strips and strip-size mass
correction from JINST 13 (2018) P10005, code in CMSSW RecoTauTag/RecoTau) with the FCC-ee
settings of the ML-Tau HPS (HEP-KBFI/ml-tau-reco config/hpsAlgo_cfg.py and src/hpsAlgo.py,
Laurits7/HPyS hpys/config/hps.yaml). Everything is numpy, vectorised over jets; loops run only
over candidate slots, strips and the fixed list of hadron/strip combinations.

Angles suit e+e-: cones (signal, matching, isolation) use the 3D opening angle; strips use a
(dtheta, dphi) window, CMS's (deta, dphi) with eta -> theta (equal at 90 deg), as in HPyS.
Charged prongs are |pdg| 211 only: e and mu are not prongs (a tau -> e/mu nu nu jet is not a
hadronic tau, and ML-Tau drops such gen jets, partau.md 2.9); electrons go into strips
(conversions), as in CMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

PI0_MASS = 0.1349768  # GeV, PDG 2024
PION_MASS = 0.13957  # GeV, floor of m_tau in the CMS strip-size mass correction
FAIL_SCORE = 0.0  # score of jets failing decay-mode finding; passing jets score in (0, 1]
# HPS code 5*(n_charged - 1) + n_strips -> ML-Tau class (partau.md 2.8: 2-prong folds into 3h)
CODE_TO_CLASS = np.array([0, 1, 2, 2, 2, 3, 4, 4, 4, 4, 3, 4, 4, 4, 4, 5])


@dataclass(frozen=True)
class DecayModeCuts:
    """One HPS hypothesis: n_charged hadrons + n_strips strips and its mass window (GeV).

    The upper edge is ``max_mass * sqrt(p / 100 GeV)`` limited to ``[max_mass, max_mass_ceiling]``
    when a ceiling is given (CMS; at the Z pole p < 46 GeV, so it stays at ``max_mass``), widened
    by the strip-size correction when ``strip_mass_correction``. Each strip's visible mass must lie
    in ``(min_strip_mass, max_strip_mass)``; only the ``max_strips`` leading such strips are tried.
    """

    n_charged: int
    n_strips: int
    min_mass: float
    max_mass: float
    max_mass_ceiling: float | None = None
    strip_mass_correction: bool = False
    min_strip_mass: float = -np.inf
    max_strip_mass: float = np.inf
    max_strips: int = 0

    @property
    def code(self) -> int:
        return 5 * (self.n_charged - 1) + self.n_strips


# CMS windows (P01019 table 1 and CMSSW hpsSelectionDiscriminator: h+pi0 max(1.3, min(1.3
# sqrt(pT/100), 4.2)), h+2pi0 max(1.2, min(1.2 sqrt(pT/100), 4.0)), 3h 0.8-1.5, 3h+pi0 0.9-1.6);
# h < 1.0, per-strip mass 0.05-0.20 for h+2 strips (a CLD strip holds both photons of a pi0) and
# strip multiplicities 6/5/3 from ML-Tau. A 2-prong mode (code 5) can be added by the user.
DEFAULT_MODES = (
    DecayModeCuts(1, 0, -np.inf, 1.0),
    DecayModeCuts(1, 1, 0.3, 1.3, 4.2, True, max_strips=6),
    DecayModeCuts(1, 2, 0.4, 1.2, 4.0, True, 0.05, 0.20, max_strips=5),
    DecayModeCuts(3, 0, 0.8, 1.5),
    DecayModeCuts(3, 1, 0.9, 1.6, max_strips=3),
)


@dataclass(frozen=True)
class HPSConfig:
    """Thresholds (GeV, rad). Sources: CMS = P01019/P10005, ML = ML-Tau FCC-ee HPS (see module)."""

    charged_min_pt: float = 0.5  # CMS and ML signal charged hadrons
    max_charged: int = 6  # ML: combinations of the 6 leading charged hadrons
    gamma_min_pt: float = 1.0  # ML strip photons (seed and add)
    electron_min_pt: float = 0.5  # ML strip electrons (seed and add)
    strip_min_pt: float = 1.0  # CMS and ML minimum strip pT
    max_strips: int = 6  # strips kept per jet (largest ML max_strips)
    dynamic_strips: bool = True  # CMS 2018 window f(pT_cand) + f(pT_strip); False: static 2016
    strip_theta: tuple = (0.20, 0.66, 0.05, 0.15)  # f = a pT^-b, window clamp [lo, hi] (CMS 2018)
    strip_phi: tuple = (0.35, 0.71, 0.05, 0.30)  # same for phi (bending in the 2 T field)
    static_strip: tuple = (0.05, 0.20)  # (dtheta, dphi) of the CMS 2012-2016 fixed strip
    strip_pi0_mass: bool = True  # strips enter the tau p4 with the pi0 mass (CMS, ML)
    signal_cone: tuple = (3.0, 0.05, 0.10)  # R = 3.0/p clamped to [0.05, 0.10] (CMS, with p: 3D)
    matching_cone: float = 0.1  # tau axis within 0.1 of the jet axis (CMS, ML)
    mass_scale_ref: float = 100.0  # GeV, reference p of the CMS dynamic upper mass edge
    iso_cone: float = 0.4  # isolation cone (CMS/ML use 0.5; 0.4 = ee-genkt jet radius, all we see)
    iso_charged_min_pt: float = 0.5  # ML isolation charged (211, 11, 13)
    iso_photon_min_pt: float = 1.0  # ML isolation photons; neutral hadrons unused (CMS, ML)
    score_isolation: str = "relative"  # score = 1 / (1 + iso_rel) or 1 / (1 + iso_abs / GeV)
    modes: tuple = DEFAULT_MODES


def _kin(p4):
    """(pt, p, theta, phi) of (..., 4) four-vectors."""
    px, py, pz = p4[..., 0], p4[..., 1], p4[..., 2]
    pt = np.hypot(px, py)
    return pt, np.hypot(pt, pz), np.arctan2(pt, pz), np.arctan2(py, px)


def _mass(p4):
    return np.sqrt(np.maximum(p4[..., 3] ** 2 - np.sum(p4[..., :3] ** 2, -1), 0.0))


def _angle(a, b):
    """3D opening angle between the three-momenta of a and b (broadcast), 0 for null vectors."""
    cross = np.linalg.norm(np.cross(a[..., :3], b[..., :3]), axis=-1)
    return np.arctan2(cross, np.sum(a[..., :3] * b[..., :3], -1))


def _size(x, par):
    """CMS strip-size function a x^-b (x = pT in GeV); the clamp is applied by the caller."""
    return par[0] * np.maximum(x, 1e-6) ** -par[1]


def _take(a, idx):
    return np.take_along_axis(a, idx[..., None] if a.ndim == 3 else idx, axis=1)


def _strips(p4, pt, theta, phi, eg, cfg):
    """Cluster e/gamma into strips, seeded by the hardest unused one and grown until stable.

    Returns strip p4 (N,S,4) sorted by decreasing pT (zeros where absent), strip index of each
    candidate (N,P) (-1 if none) and the energy-weighted strip size (N,S,2) for the mass correction.
    """
    n, n_cand = eg.shape
    n_max, rows = cfg.max_strips, np.arange(n)
    strips, bend = np.zeros((n, n_max, 4)), np.zeros((n, n_max, 2))
    strip_of, count = np.full((n, n_cand), -1), np.zeros(n, dtype=int)
    used = np.zeros((n, n_cand), dtype=bool)
    f_th, f_ph = _size(pt, cfg.strip_theta), _size(pt, cfg.strip_phi)
    for s in range(n_cand):
        seed = eg[:, s] & ~used[:, s] & (count < n_max)
        if not seed.any():
            continue
        cur = np.zeros((n, n_cand), dtype=bool)
        cur[:, s] = seed
        sp4 = p4[:, s] * seed[:, None]
        for _ in range(n_cand):  # re-centre on the summed strip after each pass (CMS 2018)
            spt, _, sth, sph = (v[:, None] for v in _kin(sp4))
            if cfg.dynamic_strips:
                th, ph = cfg.strip_theta, cfg.strip_phi
                w_th = np.clip(f_th + _size(spt, th), th[2], th[3])
                w_ph = np.clip(f_ph + _size(spt, ph), ph[2], ph[3])
            else:
                w_th, w_ph = cfg.static_strip
            add = eg & ~used & ~cur & seed[:, None] & (np.abs(theta - sth) < w_th)
            add &= np.abs(np.mod(phi - sph + np.pi, 2 * np.pi) - np.pi) < w_ph
            if not add.any():
                break
            cur |= add
            sp4 = np.sum(p4 * cur[..., None], 1)
        keep = seed & (np.hypot(sp4[:, 0], sp4[:, 1]) > cfg.strip_min_pt)
        member = cur & keep[:, None]
        e = np.where(member, p4[..., 3], 0.0)
        esum = np.maximum(e.sum(1), 1e-12)
        strips[rows[keep], count[keep]] = sp4[keep]
        bend_k = np.stack([(e * f_th).sum(1) / esum, (e * f_ph).sum(1) / esum], -1)
        bend[rows[keep], count[keep]] = bend_k[keep]  # CMS RecoTauPiZeroStripPlugin3 bendCorr
        strip_of = np.where(member, count[:, None], strip_of)
        used |= member
        count += keep
    order = np.argsort(-np.hypot(strips[..., 0], strips[..., 1]), axis=1, kind="stable")
    rank = np.argsort(order, axis=1)
    strip_of = np.where(strip_of >= 0, _take(rank, np.maximum(strip_of, 0)), -1)
    return _take(strips, order), strip_of, _take(bend, order)


def _bend_mass(tau, st, bend, mass):
    """CMS strip-size mass correction (RecoTauBuilderCombinatoricPlugin), eta -> theta.

    dm/dX = -(P_tau . dp_strip/dX) / m_tau at fixed strip |p| and E; tau (N,4), st (N,k,4),
    bend (N,k,2) the (dtheta, dphi) sizes. Returns (N,).
    """
    _, sp, sth, sph = _kin(st)
    c = sp * np.cos(sth)
    dp_th = np.stack([c * np.cos(sph), c * np.sin(sph), -sp * np.sin(sth)], -1)
    dp_ph = np.stack([-st[..., 1], st[..., 0], np.zeros_like(sp)], -1)
    m = np.maximum(mass, PION_MASS)[:, None]
    dm_th = -np.sum(tau[:, None, :3] * dp_th, -1) / m
    dm_ph = -np.sum(tau[:, None, :3] * dp_ph, -1) / m
    return np.sqrt(np.sum((dm_th * bend[..., 0]) ** 2 + (dm_ph * bend[..., 1]) ** 2, -1))


def reconstruct(cand_p4, cand_charge, cand_pdg, mask, jet_p4, *, config=HPSConfig()):
    """Reconstruct one HPS tau per jet.

    Args:
        cand_p4: (N, P, 4) candidate (px, py, pz, E) in GeV.
        cand_charge: (N, P) charges in {-1, 0, 1}.
        cand_pdg: (N, P) PDG ids (211, 11, 13, 22, 130; sign ignored).
        mask: (N, P) bool, True for real candidates; padded slots are ignored whatever they hold.
        jet_p4: (N, 4) jet four-vectors.
        config: `HPSConfig`.
    Returns:
        dict of (N,) arrays: ``decay_mode`` (ML-Tau class 0-4, -1 failing), ``hps_code``
        (5*(n_charged-1)+n_strips, -1), ``passes_dm`` bool, ``charge`` (+-1, 0), ``tau_p4`` (N, 4)
        (jet p4 when failing), ``iso_abs`` (GeV) and ``iso_rel`` (scalar pT sum of charged and
        photon candidates within ``iso_cone`` of the tau axis, signal constituents excluded; for
        failing jets around the jet axis), ``score`` (1/(1+iso) for passing jets, `FAIL_SCORE`).
    """
    cfg, cand_p4 = config, np.asarray(cand_p4, float)
    mask = np.asarray(mask, dtype=bool)
    n, n_cand = mask.shape
    if np.shape(cand_p4) != (n, n_cand, 4) or np.shape(jet_p4) != (n, 4):
        raise ValueError("expected cand_p4 (N,P,4), mask (N,P) and jet_p4 (N,4)")
    if cfg.score_isolation not in ("relative", "absolute"):
        raise ValueError(f"score_isolation must be relative or absolute: {cfg.score_isolation!r}")
    # pT order with padding last: strip seeding is order dependent
    order = np.argsort(
        np.where(mask, -np.hypot(cand_p4[..., 0], cand_p4[..., 1]), np.inf), 1, kind="stable"
    )
    mask = _take(mask, order)
    p4 = np.where(mask[..., None], _take(cand_p4, order), 0.0)
    q = np.where(mask, _take(np.asarray(cand_charge, float), order), 0.0)
    apdg = np.where(mask, np.abs(_take(np.asarray(cand_pdg), order)), 0)
    jet = np.asarray(jet_p4, float)
    slots = np.arange(n_cand)
    pt, _, theta, phi = _kin(p4)

    eg = ((apdg == 22) & (pt > cfg.gamma_min_pt)) | ((apdg == 11) & (pt > cfg.electron_min_pt))
    st_vis, strip_of, bend = _strips(p4, pt, theta, phi, eg, cfg)
    st_ok = np.hypot(st_vis[..., 0], st_vis[..., 1]) > 0
    st_mass = _mass(st_vis)
    st_p4 = st_vis.copy()
    if cfg.strip_pi0_mass:
        st_p4[..., 3] = np.where(st_ok, np.sqrt(np.sum(st_vis[..., :3] ** 2, -1) + PI0_MASS**2), 0)

    is_ch = (apdg == 211) & (pt > cfg.charged_min_pt)
    n_ch = min(cfg.max_charged, n_cand)
    ch_idx = np.argsort(~is_ch, axis=1, kind="stable")[:, :n_ch]  # leading charged hadrons
    ch_ok, ch_p4, ch_q = _take(is_ch, ch_idx), _take(p4, ch_idx), _take(q, ch_idx)

    best = dict(pt=np.full(n, -np.inf), p4=jet.copy(), code=np.full(n, -1), q=np.zeros(n))
    best["sig"] = np.zeros((n, n_cand), dtype=bool)  # signal constituents, for the isolation
    for mode in cfg.modes:
        sel = st_ok & (st_mass > mode.min_strip_mass) & (st_mass < mode.max_strip_mass)
        n_sel = min(mode.max_strips, cfg.max_strips)
        sel_idx = np.argsort(~sel, axis=1, kind="stable")[:, :n_sel]
        sel_ok = _take(sel, sel_idx)
        for cc in combinations(range(n_ch), mode.n_charged):
            for sc in combinations(range(n_sel), mode.n_strips):
                cc_, sc_ = list(cc), list(sc)
                si = sel_idx[:, sc_]
                parts = np.concatenate([ch_p4[:, cc_], _take(st_p4, si)], 1)
                tau = parts.sum(1)
                tpt, tp, _, _ = _kin(tau)
                m = _mass(tau)
                charge = ch_q[:, cc_].sum(1)
                ok = ch_ok[:, cc_].all(1) & sel_ok[:, sc_].all(1) & (np.abs(charge) == 1)
                cone = np.clip(cfg.signal_cone[0] / np.maximum(tp, 1e-9), *cfg.signal_cone[1:])
                ok &= np.all(_angle(parts, tau[:, None]) <= cone[:, None], 1)
                ok &= _angle(tau, jet) < cfg.matching_cone
                hi = np.full(n, mode.max_mass)
                if mode.max_mass_ceiling is not None:
                    scaled = mode.max_mass * np.sqrt(tp / cfg.mass_scale_ref)
                    hi = np.clip(scaled, mode.max_mass, mode.max_mass_ceiling)
                dm = 0.0
                if mode.strip_mass_correction and mode.n_strips:
                    dm = _bend_mass(tau, _take(st_p4, si), _take(bend, si), m)
                ok &= (m > mode.min_mass - dm) & (m < hi + dm)
                better = ok & (tpt > best["pt"])  # CMS: the hardest passing hypothesis
                sig = np.any(ch_idx[:, cc_, None] == slots, 1)
                sig |= np.any(strip_of[..., None] == si[:, None], -1)
                new = dict(pt=tpt, p4=tau, code=mode.code, q=charge, sig=sig)
                for k, v in new.items():
                    best[k] = np.where(better.reshape(-1, *[1] * (best[k].ndim - 1)), v, best[k])

    best_p4, best_code = best["p4"], best["code"]
    passes = best_code >= 0
    charged_iso = np.isin(apdg, (211, 11, 13)) & (pt > cfg.iso_charged_min_pt)
    photon_iso = (apdg == 22) & (pt > cfg.iso_photon_min_pt)
    in_cone = _angle(p4, best_p4[:, None]) < cfg.iso_cone
    iso_abs = np.sum(
        np.where((charged_iso | photon_iso) & in_cone & ~best["sig"] & mask, pt, 0.0), 1
    )
    iso_rel = iso_abs / np.maximum(np.hypot(best_p4[:, 0], best_p4[:, 1]), 1e-9)
    iso = iso_rel if cfg.score_isolation == "relative" else iso_abs
    return dict(
        decay_mode=np.where(passes, CODE_TO_CLASS[np.clip(best_code, 0, 15)], -1),
        hps_code=best_code,
        passes_dm=passes,
        charge=np.rint(best["q"]).astype(np.int64),
        tau_p4=best_p4,
        iso_abs=iso_abs,
        iso_rel=iso_rel,
        score=np.where(passes, 1.0 / (1.0 + iso), FAIL_SCORE),
    )


def jet_charge(cand_p4, cand_charge, mask, jet_p4, kappa=1.0):
    """pT-weighted jet charge Q_kappa = sum_i q_i pT_i^kappa / pT_jet^kappa, shape (N,)."""
    mask, cand_p4, jet_p4 = np.asarray(mask, bool), np.asarray(cand_p4), np.asarray(jet_p4)
    pt = np.hypot(cand_p4[..., 0], cand_p4[..., 1])
    w = np.where(mask, np.maximum(pt, 0.0) ** kappa, 0.0)
    q = np.where(mask, np.asarray(cand_charge, float), 0.0)
    jet_pt = np.hypot(jet_p4[..., 0], jet_p4[..., 1])
    return np.sum(q * w, 1) / np.maximum(jet_pt, 1e-9) ** kappa
