"""PUPPI: pileup per particle identification (Bertolini et al., arXiv:1407.6013; met_l1.md 3).

The CMS offline form (`CommonTools/PileupAlgos`, algoId 5):

* local shape alpha_i = log sum_j pT_j^2 / DeltaR_ij^2 over neighbours j with
  0.01 < DeltaR_ij < R0 = 0.4; in the tracker region the neighbours are the charged candidates
  from the primary vertex, beyond it (no tracks) all candidates;
* the pileup reference: the median and the left RMS (RMS about the median of the values below
  it) of alpha over the charged pileup candidates (tracker region) or over all candidates
  (forward region);
* signed chi2 = (alpha - median) |alpha - median| / RMS^2 and w = F_chi2(NDF=1)(chi2), w = 0
  for chi2 <= 0 and for w < 0.01;
* charged-hadron subtraction: charged candidates get w = 1 from the primary vertex and w = 0
  from pileup (their `IsRecoPU` flag);
* neutrals with w pT below a pileup-dependent threshold get w = 0. The thresholds are those of
  the Delphes CMS Phase-II card (met_l1.md 3.3), the detector simulation of the MET seed.
"""

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import chi2


@dataclass(frozen=True)
class PuppiConfig:
    r0: float = 0.4  # CMS offline cone
    dr_min: float = 0.01  # CMS skips pairs with DeltaR^2 < 1e-4
    tracker_eta: float = 2.5  # charged information used inside
    min_weight: float = 0.01  # CMS MinPuppiWeight
    # (|eta| upper edge, minimum pT, pT slope per pileup vertex): Delphes Phase-II RunPUPPI
    neutral_pt: tuple = ((1.5, 0.2, 0.006), (4.0, 0.2, 0.013), (np.inf, 0.5, 0.067))


def _alpha(eta, phi, pt, targets, neighbours, cfg):
    """alpha of the `targets` (index array) against the `neighbours` (index array)."""
    out = np.full(len(targets), -np.inf)
    if len(targets) == 0 or len(neighbours) == 0:
        return out
    box = [1000.0, 2 * np.pi]  # periodic in phi
    xy = np.stack([eta + 100.0, np.mod(np.mod(phi, 2 * np.pi), 2 * np.pi)], axis=1)  # -1e-17 -> 0
    t_tree = cKDTree(xy[targets], boxsize=box)
    n_tree = cKDTree(xy[neighbours], boxsize=box)
    pairs = t_tree.sparse_distance_matrix(n_tree, cfg.r0, output_type="ndarray")
    ok = pairs["v"] > cfg.dr_min  # also drops every candidate paired with itself
    i, j, dr = pairs["i"][ok], pairs["j"][ok], pairs["v"][ok]
    total = np.bincount(i, weights=pt[neighbours][j] ** 2 / dr**2, minlength=len(targets))
    with np.errstate(divide="ignore"):
        return np.where(total > 0, np.log(total), -np.inf)


def _median_left_rms(values):
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return 0.0, 1.0
    med = float(np.median(values))
    left = values[values <= med]
    rms = float(np.sqrt(np.mean((left - med) ** 2)))
    return med, max(rms, 1e-6)


def _weights_from_alpha(alpha, med, rms, cfg):
    d = alpha - med
    signed = np.where(np.isfinite(alpha), d * np.abs(d) / rms**2, -1.0)
    w = np.where(signed > 0, chi2.cdf(np.maximum(signed, 0.0), 1), 0.0)
    return np.where(w < cfg.min_weight, 0.0, w)


def event_weights(pt, eta, phi, charged, is_reco_pu, n_pu, cfg=PuppiConfig()):
    """PUPPI weights of the candidates of one event (arrays of shape (n,)).

    Args:
        pt, eta, phi: candidate kinematics.
        charged: True for tracks (charged candidates).
        is_reco_pu: True for tracks associated with a pileup vertex.
        n_pu: number of pileup vertices of the event (for the neutral thresholds).
        cfg: `PuppiConfig`.
    Returns:
        (n,) weights in [0, 1].
    """
    pt, eta, phi = (np.asarray(a, np.float64) for a in (pt, eta, phi))
    charged, is_reco_pu = np.asarray(charged, bool), np.asarray(is_reco_pu, bool)
    w = np.zeros(len(pt))
    central = np.abs(eta) < cfg.tracker_eta
    pv_tracks = np.nonzero(charged & ~is_reco_pu)[0]
    # tracker region: alpha against primary-vertex tracks, reference from pileup tracks
    c_neutral = np.nonzero(central & ~charged)[0]
    c_pu = np.nonzero(central & charged & is_reco_pu)[0]
    med, rms = _median_left_rms(_alpha(eta, phi, pt, c_pu, pv_tracks, cfg))
    w[c_neutral] = _weights_from_alpha(
        _alpha(eta, phi, pt, c_neutral, pv_tracks, cfg), med, rms, cfg
    )
    # forward region: alpha against every candidate there, reference from all of them
    fwd = np.nonzero(~central)[0]
    a_fwd = _alpha(eta, phi, pt, fwd, fwd, cfg)
    med, rms = _median_left_rms(a_fwd)
    w[fwd] = _weights_from_alpha(a_fwd, med, rms, cfg)
    # charged-hadron subtraction
    w[charged] = np.where(is_reco_pu[charged], 0.0, 1.0)
    # neutral thresholds on w * pT
    edges = np.array([row[0] for row in cfg.neutral_pt])
    row = np.minimum(np.searchsorted(edges, np.abs(eta), side="right"), len(edges) - 1)
    cut = np.array([r[1] for r in cfg.neutral_pt])[row] + np.array([r[2] for r in cfg.neutral_pt])[
        row
    ] * float(n_pu)
    w = np.where(~charged & (w * pt < cut), 0.0, w)
    return w


def weights(pt, eta, phi, charged, is_reco_pu, counts, n_pu, cfg=PuppiConfig()):
    """PUPPI weights of many events given as flat arrays and per-event `counts`."""
    offsets = np.concatenate([[0], np.cumsum(counts)])
    out = np.zeros(int(offsets[-1]))
    for k in range(len(counts)):
        a, b = offsets[k], offsets[k + 1]
        out[a:b] = event_weights(
            pt[a:b], eta[a:b], phi[a:b], charged[a:b], is_reco_pu[a:b], n_pu[k], cfg
        )
    return out
