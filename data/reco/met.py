"""Reconstructed MET from objects plus a smeared unclustered recoil, with its covariance."""

import numpy as np

from data.detector import cms


def pt_phi(px, py):
    return np.hypot(px, py), np.arctan2(py, px)


def reconstruct_met(rng, objects, recoil_true, sum_et_unclustered):
    """MET = -(sum of reconstructed objects + response * unclustered recoil + noise).

    Args:
        rng: numpy Generator.
        objects: dict with (N, K) arrays `pt`, `phi` (reconstructed, 0 for padding),
            `rel_sigma_pt`, `sigma_phi` of every reconstructed object (legs and jets).
        recoil_true: (N, 2) true transverse momentum (x, y) of everything visible that is not
            in an object.
        sum_et_unclustered: (N,) scalar pT sum of that recoil.
    Returns:
        dict of (N,) arrays: MET_pt, MET_phi, MET_covXX, MET_covXY, MET_covYY.
    """
    pt, phi = objects["pt"], objects["phi"]
    obj_x = (pt * np.cos(phi)).sum(-1)
    obj_y = (pt * np.sin(phi)).sum(-1)
    sigma_u = cms.recoil_sigma(sum_et_unclustered)
    noise = sigma_u[:, None] * rng.standard_normal((len(sigma_u), 2))
    recoil = cms.RECOIL_SCALE * recoil_true + noise
    met_x = -(obj_x + recoil[:, 0])
    met_y = -(obj_y + recoil[:, 1])
    cov = cms.object_covariance(pt, phi, objects["rel_sigma_pt"], objects["sigma_phi"])
    cov[:, 0, 0] += sigma_u**2
    cov[:, 1, 1] += sigma_u**2
    met_pt, met_phi = pt_phi(met_x, met_y)
    return dict(
        MET_pt=met_pt,
        MET_phi=met_phi,
        MET_covXX=cov[:, 0, 0],
        MET_covXY=cov[:, 0, 1],
        MET_covYY=cov[:, 1, 1],
    )
