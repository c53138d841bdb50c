"""CLD-like parametric detector for FCC-ee at the Z pole (ParTau samples).

CLD (arXiv:1911.12230) derives from CLICdet; the CLICdet Delphes card
(delphes_card_CLICdet_Stage1.tcl) is the proxy parametrisation: BR^2 is about 9 T m^2 for
CLICdet and 8.8 T m^2 for CLD, so the curvature resolutions are comparable (partau.md 4.2).
Each number cites its source; "assumption" marks our own choices. All functions take numpy
arrays and a `numpy.random.Generator`, and return new arrays. Lengths in mm, energies in GeV.
"""

import numpy as np

from data.detector.cms import _binned_relative, wrap_phi

# --- Tracking: sigma(pT)/pT = sqrt((a pT)^2 + b^2), CLICdet card (partau.md 4.2). The card's
# 0.18-0.45 bin is not in the note: it takes the 0.45-0.88 values (assumption). Beyond 1.74 the
# card doubles the 1.32-1.74 values.
TRACK_RES = (
    (0.18, 2.1e-3, 1.33e-5),
    (0.88, 2.6e-3, 1.17e-5),
    (1.32, 3.9e-3, 1.12e-5),
    (1.74, 1.5e-2, 8.6e-5),
    (np.inf, 3.0e-2, 1.72e-4),
)
TRACK_ETA_MAX = 2.54  # CLICdet tracker coverage (partau.md 4.2)
TRACK_MIN_PT = 0.1  # no track below 100 MeV (2 T field, CLICdet card)
# efficiency 1 above 3 GeV (card); 0.98 below is an assumption for soft loopers/material
TRACK_EFF_LOW = 0.98
TRACK_EFF_E = 3.0
TRACK_ANGLE_RES = 1e-4  # rad: negligible next to calorimeter angles (assumption)
# Impact parameters: sigma(d0) = a (+) b / (p sin^{3/2} theta), CLD CDR (arXiv:1911.12230,
# a ~ 5 um, b ~ 15 um GeV); the same form for z0 (assumption; CLD quotes similar values).
IP_A = 5e-3  # mm
IP_B = 15e-3  # mm GeV
# lepton identification (assumption, typical PF performance above these momenta)
ELECTRON_ID = (2.0, 0.95)  # (p min GeV, efficiency); otherwise a charged hadron
MUON_ID = (2.0, 0.97)
# --- Calorimeters: coverage outside the 150 mrad forward cone (CLD MDI): |eta| < 2.59
CALO_ETA_MAX = 2.59
# ECAL sigma_E = sqrt((0.01 E)^2 + s^2 E), s = 0.156 (|eta| <= 0.78) or 0.151 beyond (card)
ECAL_CONSTANT, ECAL_STOCH_BARREL, ECAL_STOCH_ENDCAP, ECAL_BARREL_ETA = 0.01, 0.156, 0.151, 0.78
PHOTON_MIN_E = 0.3  # ECAL clustering threshold (assumption)
PHOTON_EFF = ((2.0, 0.94), (0.3, 0.80))  # 0.94 above 2 GeV (card); 0.8 below (assumption)
# HCAL barrel sigma_E = sqrt(1.38^2 + 0.308^2 E + (0.050 E)^2) (card)
HCAL_NOISE, HCAL_STOCH, HCAL_CONSTANT = 1.38, 0.308, 0.050
NEUTRAL_HADRON_MIN_E = 1.0  # HCAL cluster threshold (assumption, below the noise term)
# Cluster position: 5x5 mm^2 ECAL cells and 3x3 cm^2 HCAL cells at ~2 m (CLD, partau.md 4.2)
PHOTON_ANGLE_RES = 0.002  # rad
NEUTRAL_HADRON_ANGLE_RES = 0.01  # rad

# PF candidate types: the absolute PDG ids of ML-Tau's one-hot features
CHARGED_HADRON, ELECTRON, MUON, PHOTON, NEUTRAL_HADRON = 211, 11, 13, 22, 130
# candidate masses: tracks take their PF mass hypothesis, calorimeter clusters are massless
MASSES = {CHARGED_HADRON: 0.13957, ELECTRON: 0.000511, MUON: 0.10566}


def track_resolution(pt, eta):
    """sigma(pT)/pT of tracks."""
    return _binned_relative(pt, eta, [(e, b, a) for e, b, a in TRACK_RES])


def ip_resolution(p, theta):
    """Impact-parameter resolution (mm) for momentum `p` and polar angle `theta`."""
    sin32 = np.maximum(np.sin(theta), 1e-3) ** 1.5
    return np.hypot(IP_A, IP_B / (np.maximum(p, 1e-3) * sin32))


def impact_parameters(p4, vertex, primary):
    """Transverse and longitudinal impact parameters (mm) of straight tracks at the PV.

    The helix is approximated by its tangent: a 1 GeV track bends with R = 1.7 m in 2 T, so over
    the few-mm tau flight the approximation is good to far below the resolution.
    Args:
        p4: (n, 4) momenta; vertex: (n, 3) production vertices; primary: (n, 3) the event's PV.
    Returns:
        dxy (signed as in CMS: -dx py + dy px over pT) and dz, both (n,).
    """
    d = vertex - primary
    pt = np.maximum(np.hypot(p4[:, 0], p4[:, 1]), 1e-9)
    dxy = (-d[:, 0] * p4[:, 1] + d[:, 1] * p4[:, 0]) / pt
    dz = d[:, 2] - (d[:, 0] * p4[:, 0] + d[:, 1] * p4[:, 1]) / pt * p4[:, 2] / pt
    return dxy, dz


def _polar(p4):
    pt = np.hypot(p4[:, 0], p4[:, 1])
    p = np.linalg.norm(p4[:, :3], axis=1)
    eta = np.arcsinh(p4[:, 2] / np.maximum(pt, 1e-12))
    phi = np.arctan2(p4[:, 1], p4[:, 0])
    return pt, p, eta, phi


def reconstruct(rng, pdg, charge, p4, vertex, primary):
    """Particle-flow candidates from stable generated particles.

    Args:
        rng: numpy Generator.
        pdg: (n,) PDG ids of the stable visible particles (no neutrinos).
        charge: (n,) electric charges.
        p4: (n, 4) px, py, pz, E.
        vertex: (n, 3) production vertices (mm); primary: (n, 3) the event PV per particle.
    Returns:
        keep: (n,) bool, particles that give a candidate;
        dict of (n_kept,) arrays: pt, eta, phi, mass, charge, pdgId (11, 13, 22, 130, 211),
        dxy, dxyErr, dz, dzErr (0 for neutral candidates).
    """
    n = len(pdg)
    aid = np.abs(pdg)
    pt, p, eta, phi = _polar(p4)
    energy = p4[:, 3]
    u = rng.random(n)
    charged = charge != 0
    track = (
        charged
        & (pt > TRACK_MIN_PT)
        & (np.abs(eta) < TRACK_ETA_MAX)
        & (u < np.where(energy > TRACK_EFF_E, 1.0, TRACK_EFF_LOW))
    )
    photon = (aid == 22) & (np.abs(eta) < CALO_ETA_MAX) & (energy > PHOTON_MIN_E)
    photon &= u < np.where(energy >= PHOTON_EFF[0][0], PHOTON_EFF[0][1], PHOTON_EFF[1][1])
    neutral_had = ~charged & (aid != 22) & (np.abs(eta) < CALO_ETA_MAX)
    keep = track | photon | neutral_had

    # type: e/mu identified above their momentum thresholds, other tracks are charged hadrons
    v = rng.random(n)
    kind = np.full(n, NEUTRAL_HADRON)
    kind[photon] = PHOTON
    kind[track] = CHARGED_HADRON
    is_e = track & (aid == 11) & (p > ELECTRON_ID[0]) & (v < ELECTRON_ID[1])
    is_mu = track & (aid == 13) & (p > MUON_ID[0]) & (v < MUON_ID[1])
    kind[is_e], kind[is_mu] = ELECTRON, MUON

    # energy / momentum smearing by subdetector
    g = rng.standard_normal(n)
    rel = np.empty(n)
    rel[track] = track_resolution(pt[track], eta[track])
    stoch = np.where(np.abs(eta) <= ECAL_BARREL_ETA, ECAL_STOCH_BARREL, ECAL_STOCH_ENDCAP)
    e_safe = np.maximum(energy, 1e-3)
    rel[photon] = np.sqrt(ECAL_CONSTANT**2 + stoch[photon] ** 2 / e_safe[photon])
    nh = neutral_had
    rel[nh] = np.sqrt(
        (HCAL_NOISE / e_safe[nh]) ** 2 + HCAL_STOCH**2 / e_safe[nh] + HCAL_CONSTANT**2
    )
    scale = np.maximum(1.0 + rel * g, 0.05)
    angle = np.where(
        track, TRACK_ANGLE_RES, np.where(photon, PHOTON_ANGLE_RES, NEUTRAL_HADRON_ANGLE_RES)
    )
    eta_r = eta + angle * rng.standard_normal(n)
    phi_r = wrap_phi(phi + angle * rng.standard_normal(n))
    m_r = np.zeros(n)
    for k, m in MASSES.items():
        m_r[kind == k] = m
    # tracks: pT smeared; calorimeter clusters: energy smeared, massless
    pt_r = np.where(track, pt * scale, energy * scale / np.cosh(eta_r))
    keep &= pt_r > 0.0
    if photon.any() or nh.any():
        keep &= ~(~track & (energy * scale < np.where(photon, PHOTON_MIN_E, NEUTRAL_HADRON_MIN_E)))

    # impact parameters of tracks, smeared by their resolution
    dxy, dz = impact_parameters(p4, vertex, primary)
    theta = 2.0 * np.arctan(np.exp(-eta))
    sigma = np.where(track, ip_resolution(p, theta), 0.0)
    dxy = np.where(track, dxy + sigma * rng.standard_normal(n), 0.0)
    dz = np.where(track, dz + sigma * rng.standard_normal(n), 0.0)
    out = dict(
        pt=pt_r,
        eta=eta_r,
        phi=phi_r,
        mass=m_r,
        charge=np.where(track, np.sign(charge), 0).astype(np.int32),
        pdgId=kind.astype(np.int32),
        dxy=dxy,
        dxyErr=sigma,
        dz=dz,
        dzErr=sigma,
    )
    return keep, {k: v[keep] for k, v in out.items()}
