"""Level-1 "linearised" PUPPI (CMSSW LinearizedPuppiAlgo, met_l1.md 3.4).

* charged candidates (charged hadrons, electrons, muons): w = 1 if the track comes from the
  primary vertex (|z0 - z_PV| < `dz_cut`) or is a muon, else 0;
* neutrals: alpha = log sum pT_j^2 / DeltaR_ij^2 over primary-vertex tracks j with
  `dr_min` < DeltaR < `cone` (alpha = 0 if the sum is empty);
  x = clamp(a_s (alpha - alpha_0), +-crop) + p_s (min(pT, pt_max) - p_0)
      - (prior + log(N_PU / 200)),   w = 1 / (1 + exp(-x));
  neutrals below `pt_cut` get w = 0. Barrel parameters of the CMSSW configuration; photons
  have their own p_0 and prior.
"""

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class L1PuppiConfig:
    dz_cut: float = 0.5  # cm; with ~1-3.6 mm L1 z0 resolution (assumption of this model)
    cone: float = 0.3
    dr_min: float = 0.07  # puppiDrMin
    alpha_slope: float = 0.7
    alpha_zero: float = 6.0
    alpha_crop: float = 4.0
    pt_slope: float = 0.3
    pt_zero: float = 4.0  # GeV, neutral hadrons
    pt_zero_photon: float = 2.5
    prior: float = 5.0
    prior_photon: float = 1.0
    pt_cut: float = 1.0  # GeV
    pt_max: float = 50.0  # puppiPtMax


def neutral_alpha(eta, phi, pt, neutral, pv_track, cfg):
    """alpha of the neutral candidates of one event (0 where no PV track is in the cone)."""
    alpha = np.zeros(len(pt))
    tgt, nb = np.nonzero(neutral)[0], np.nonzero(pv_track)[0]
    if len(tgt) == 0 or len(nb) == 0:
        return alpha
    box = [1000.0, 2 * np.pi]
    xy = np.stack([eta + 100.0, np.mod(np.mod(phi, 2 * np.pi), 2 * np.pi)], axis=1)
    pairs = cKDTree(xy[tgt], boxsize=box).sparse_distance_matrix(
        cKDTree(xy[nb], boxsize=box), cfg.cone, output_type="ndarray"
    )
    ok = pairs["v"] > cfg.dr_min
    total = np.bincount(
        pairs["i"][ok], pt[nb][pairs["j"][ok]] ** 2 / pairs["v"][ok] ** 2, minlength=len(tgt)
    )
    alpha[tgt] = np.where(total > 0, np.log(np.maximum(total, 1e-300)), 0.0)
    return alpha


def event_weights(pt, eta, phi, pdg, z0, z_pv, n_pu, cfg=None):
    """L1 PUPPI weights of one event's candidates (pdg: PF codes, charged ones signed)."""
    cfg = cfg or L1PuppiConfig()
    pt, eta, phi = (np.asarray(a, np.float64) for a in (pt, eta, phi))
    apdg = np.abs(np.asarray(pdg))
    charged = np.isin(apdg, (211, 11, 13))
    from_pv = charged & (np.abs(np.asarray(z0) - z_pv) < cfg.dz_cut)
    w = np.where(charged, (from_pv | (apdg == 13)).astype(float), 0.0)
    neutral = ~charged
    alpha = neutral_alpha(eta, phi, pt, neutral, from_pv, cfg)
    photon = apdg == 22
    p0 = np.where(photon, cfg.pt_zero_photon, cfg.pt_zero)
    prior = np.where(photon, cfg.prior_photon, cfg.prior)
    x = (
        np.clip(cfg.alpha_slope * (alpha - cfg.alpha_zero), -cfg.alpha_crop, cfg.alpha_crop)
        + cfg.pt_slope * (np.minimum(pt, cfg.pt_max) - p0)
        - (prior + np.log(max(float(n_pu), 1.0) / 200.0))
    )
    wn = 1.0 / (1.0 + np.exp(-x))
    return np.where(neutral, np.where(pt < cfg.pt_cut, 0.0, wn), w)


def weights(pt, eta, phi, pdg, z0, counts, z_pv, n_pu, cfg=None):
    """`event_weights` over many events (flat arrays, per-event `counts`, z_pv, n_pu)."""
    offsets = np.concatenate([[0], np.cumsum(counts)])
    out = np.zeros(int(offsets[-1]))
    for k in range(len(counts)):
        a, b = offsets[k], offsets[k + 1]
        out[a:b] = event_weights(
            pt[a:b], eta[a:b], phi[a:b], pdg[a:b], z0[a:b], z_pv[k], n_pu[k], cfg
        )
    return out
