"""CMS-like parametric detector response (Run 2/3 conditions, no pileup overlay).

Every number cites its source; the reference note is shared/reference/ditau.md (section 5).
All functions take numpy arrays and a `numpy.random.Generator`, and return new arrays.
"""

import numpy as np

# --- Hadronic taus -----------------------------------------------------------------------
# pT response reco/visible: double-sided Crystal Ball. The SVfit paper's CMS-like transfer
# function has a narrow 3% core with tails (arXiv:1603.05910); CMS TAU-14-001 quotes 5-25%
# overall. We use a 6% core with a long low-side tail (energy lost to neutral hadrons / out of
# cone) and a shorter high-side tail (pileup, photon conversions): ditau.md 5.1 "suggested
# simplified model".
TAU_RESPONSE = dict(mu=0.985, sigma=0.06, alpha_lo=1.3, n_lo=3.0, alpha_hi=1.8, n_hi=6.0)
TAU_ETA_MAX = 2.3  # CMS tau_h acceptance (seed 000 selection)
LEPTON_ETA_MAX = 2.4  # muon system / tracker acceptance (seed 000 selection)
JET_ETA_MAX = 4.7  # CMS HF coverage for PF jets
VISIBLE_ETA_MAX = 5.0  # calorimeter coverage for the unclustered recoil

# --- Muons / electrons: Delphes CMS card sigma(pT)/pT = sqrt(a^2 + (b*pT)^2) (ditau.md 5.2-5.3)
MUON_RES = ((0.5, 0.01, 1.0e-4), (1.5, 0.015, 1.5e-4), (np.inf, 0.025, 3.5e-4))
ELECTRON_RES = ((0.5, 0.03, 1.3e-3), (1.5, 0.05, 1.7e-3), (np.inf, 0.15, 3.1e-3))
# --- PF candidates of a tau decay
# charged hadrons: tracker, CMS JINST 9 (2014) P10009: ~0.5% + 1.5e-4*pT (barrel, |eta|<1.5)
TRACK_RES = ((1.5, 0.005, 1.5e-4), (np.inf, 0.012, 2.5e-4))
# photons: ECAL barrel sigma_E = sqrt((0.008E)^2 + 0.11^2 E + 0.40^2)  (ditau.md 5.4)
ECAL = (0.008, 0.11, 0.40)
# neutral hadrons: HCAL sigma_E = sqrt((0.05E)^2 + 1.5^2 E)  (Delphes CMS card, ditau.md 5.4)
HCAL = (0.05, 1.5, 0.0)
# --- Jets: sigma/pT = sqrt(N^2/pT^2 + S^2/pT + C^2) fitted to CMS JME-13-004 (15-20% at 30 GeV,
# ~10% at 100 GeV, 5% at 1 TeV); N raised to 3 GeV for Run-3 pileup (ditau.md 5.4).
JET_NSC = (3.0, 0.9, 0.045)
JET_ANGLE_RES = 0.01  # eta and phi, rad: PF jets at ~30 GeV (CMS JME-13-004)
# --- MET recoil: unclustered energy smeared per component with sigma_u^2 = a^2 sumET + b^2.
# a = 0.6 sqrt(GeV) is the common fast-simulation form (ditau.md 5.5); b = 15 GeV stands for
# Run-3 pileup so that sigma lands in the measured 15-30 GeV per component (JME-17-001).
RECOIL_STOCHASTIC = 0.6
RECOIL_PILEUP = 15.0
RECOIL_SCALE = 0.9  # unclustered hadronic response below 1 (CMS JME-17-001 "unclustered")


def _binned_relative(pt, eta, table):
    """sigma(pT)/pT from an |eta|-binned table of (eta_max, a, b): sqrt(a^2 + (b pT)^2)."""
    a = np.empty_like(pt)
    b = np.empty_like(pt)
    lo = 0.0
    for eta_max, aa, bb in table:
        sel = (np.abs(eta) >= lo) & (np.abs(eta) < eta_max)
        a[sel], b[sel] = aa, bb
        lo = eta_max
    return np.sqrt(a**2 + (b * pt) ** 2)


def sample_dscb(rng, size, mu, sigma, alpha_lo, n_lo, alpha_hi, n_hi):
    """Draw from a double-sided Crystal Ball by inverting its tabulated CDF."""
    x = np.linspace(mu - 12 * sigma * n_lo, mu + 12 * sigma * n_hi, 20001)
    t = (x - mu) / sigma
    pdf = np.exp(-0.5 * t**2)
    lo, hi = t < -alpha_lo, t > alpha_hi
    a_lo = (n_lo / alpha_lo) ** n_lo * np.exp(-0.5 * alpha_lo**2)
    b_lo = n_lo / alpha_lo - alpha_lo
    pdf[lo] = a_lo * (b_lo - t[lo]) ** (-n_lo)
    a_hi = (n_hi / alpha_hi) ** n_hi * np.exp(-0.5 * alpha_hi**2)
    b_hi = n_hi / alpha_hi - alpha_hi
    pdf[hi] = a_hi * (b_hi + t[hi]) ** (-n_hi)
    cdf = np.cumsum(pdf)
    cdf /= cdf[-1]
    return np.interp(rng.random(size), cdf, x)


TAU_RESPONSE_RANGE = (0.3, 2.0)  # clip of the tails (bounds the reco pT for pre-selections)


def tau_response(rng, size):
    """Reco / visible pT ratio of hadronic taus, shape (size,)."""
    return np.clip(sample_dscb(rng, size, **TAU_RESPONSE), *TAU_RESPONSE_RANGE)


def lepton_resolution(pt, eta, flavour):
    """sigma(pT)/pT of muons (flavour 13) or electrons (11), Delphes CMS parametrisation."""
    return _binned_relative(pt, eta, MUON_RES if flavour == 13 else ELECTRON_RES)


def smear_lepton_pt(rng, pt, eta, flavour):
    """Smear muon (flavour 13) or electron (11) pT with `lepton_resolution`."""
    sigma = lepton_resolution(pt, eta, flavour)
    return pt * np.maximum(1.0 + sigma * rng.standard_normal(pt.shape), 0.05)


def pf_resolution(pt, eta, energy, kind):
    """Relative energy/pT resolution of PF candidates; kind: 0 charged, 1 photon, 2 neutral."""
    res = np.empty_like(pt)
    ch, ph, nh = kind == 0, kind == 1, kind == 2
    res[ch] = _binned_relative(pt[ch], eta[ch], TRACK_RES)
    for sel, (c, s, n) in ((ph, ECAL), (nh, HCAL)):
        e = np.maximum(energy[sel], 1e-3)
        res[sel] = np.sqrt(c**2 + s**2 / e + (n / e) ** 2)
    return res


def smear_pf(rng, pt, eta, energy, kind):
    """Smear PF candidate pT by its resolution (directions kept)."""
    res = pf_resolution(pt, eta, energy, kind)
    return pt * np.maximum(1.0 + res * rng.standard_normal(pt.shape), 0.05)


def jet_resolution(pt):
    n, s, c = JET_NSC
    pt = np.maximum(pt, 1.0)
    return np.sqrt((n / pt) ** 2 + s**2 / pt + c**2)


def smear_jets(rng, pt, eta, phi):
    """Smear jet pT (relative resolution above) and direction; returns (pt, eta, phi, sigma)."""
    sigma = jet_resolution(pt)
    pt_r = pt * np.maximum(1.0 + sigma * rng.standard_normal(pt.shape), 0.05)
    eta_r = eta + JET_ANGLE_RES * rng.standard_normal(eta.shape)
    phi_r = wrap_phi(phi + JET_ANGLE_RES * rng.standard_normal(phi.shape))
    return pt_r, eta_r, phi_r, sigma


def recoil_sigma(sum_et_unclustered):
    """Per-component resolution (GeV) of the unclustered recoil."""
    return np.sqrt(RECOIL_STOCHASTIC**2 * sum_et_unclustered + RECOIL_PILEUP**2)


def object_covariance(pt, phi, rel_sigma_pt, sigma_phi):
    """MET-significance covariance contribution of objects, summed per event.

    V = sum_obj R(phi) diag(sigma_pT^2, pT^2 sigma_phi^2) R(phi)^T  (ditau.md 5.5, JME-17-001).

    Args:
        pt, phi, rel_sigma_pt, sigma_phi: (N, K) arrays, zero pt for padding.
    Returns:
        (N, 2, 2) covariance in GeV^2.
    """
    s_par = (rel_sigma_pt * pt) ** 2
    s_perp = (pt * sigma_phi) ** 2
    c, s = np.cos(phi), np.sin(phi)
    xx = (c * c * s_par + s * s * s_perp).sum(-1)
    yy = (s * s * s_par + c * c * s_perp).sum(-1)
    xy = (c * s * (s_par - s_perp)).sum(-1)
    return np.stack([np.stack([xx, xy], -1), np.stack([xy, yy], -1)], -2)


def wrap_phi(phi):
    """Wrap angles to (-pi, pi]."""
    out = np.mod(phi + np.pi, 2 * np.pi) - np.pi
    return np.where(out == -np.pi, np.pi, out)
