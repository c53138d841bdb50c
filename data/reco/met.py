"""Reconstructed MET from objects plus a smeared unclustered recoil, with its covariance."""

import numpy as np

from data.detector import cms


def pt_phi(px, py):
    return np.hypot(px, py), np.arctan2(py, px)


def object_table(lead, jet_event, jet_pt, jet_phi, jet_rel_sigma, n):
    """Per-event table of MET objects: two leading objects (legs/leptons) then the jets.

    Args:
        lead: dict of (n, 2) arrays `pt` (0 = not an object), `phi`, `rel_sigma_pt`,
            `sigma_phi`.
        jet_event: (n_jets,) event index of each jet, ascending; jet_pt, jet_phi,
            jet_rel_sigma: (n_jets,) reconstructed jets.
        n: number of events.
    Returns:
        dict of (n, 2 + max jets) arrays, zero-padded, as `reconstruct_met` takes.
    """
    k = np.bincount(jet_event, minlength=n)
    width = 2 + (k.max() if len(k) else 0)
    out = {f: np.zeros((n, width)) for f in ("pt", "phi", "rel_sigma_pt", "sigma_phi")}
    for f in out:
        out[f][:, :2] = lead[f]
    slot = 2 + (np.arange(len(jet_event)) - np.repeat(np.cumsum(k) - k, k))
    out["pt"][jet_event, slot] = jet_pt
    out["phi"][jet_event, slot] = jet_phi
    out["rel_sigma_pt"][jet_event, slot] = jet_rel_sigma
    out["sigma_phi"][jet_event, slot] = cms.JET_ANGLE_RES
    return out


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
