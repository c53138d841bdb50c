"""PF MET and PUPPI MET from particle-flow candidates (met_l1.md 3).

PF MET is minus the vector sum of every candidate; PUPPI MET weights each candidate with its
PUPPI weight (`data.reco.puppi`, the CMS algorithm with charged-hadron subtraction). The
weights can be taken from the file (`PFCand_puppiWeight`) or recomputed with another
`PuppiConfig`.
"""

import numpy as np

from data.reco import puppi


def pf_met(px, py, counts):
    """(n_events, 2) MET = -sum (px, py) over each event's candidates (flat arrays)."""
    event = np.repeat(np.arange(len(counts)), counts)
    n = len(counts)
    return -np.stack(
        [np.bincount(event, px, minlength=n), np.bincount(event, py, minlength=n)], axis=1
    )


def puppi_met(px, py, weights, counts):
    """(n_events, 2) MET = -sum w (px, py) with per-candidate PUPPI weights."""
    w = np.asarray(weights, np.float64)
    return pf_met(w * px, w * py, counts)


def recompute_weights(px, py, eta, charged, is_reco_pu, counts, n_pu, cfg=None):
    """PUPPI weights of flat candidate arrays, recomputed with `cfg` (default `PuppiConfig()`)."""
    cfg = cfg or puppi.PuppiConfig()
    pt, phi = np.hypot(px, py), np.arctan2(py, px)
    return puppi.weights(pt, eta, phi, charged, is_reco_pu, counts, n_pu, cfg)
