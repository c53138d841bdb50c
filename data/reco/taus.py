"""HPS-like hadronic-tau candidates built from jets (how QCD and top jets fake taus)."""

import awkward as ak
import numpy as np

CHARGED_MIN_PT = 1.0  # GeV, HPS charged-hadron threshold (CMS JINST 11 (2016) P01019)
PHOTON_MIN_PT = 0.5  # GeV, HPS strip photon threshold (same source)
MAX_CONE_MASS = 1.8  # GeV, loose version of the HPS per-mode mass windows


def signal_cone(jet_pt):
    """HPS signal cone radius 3.0 GeV / pT, limited to [0.05, 0.1] (JINST 11 (2016) P01019)."""
    return np.clip(3.0 / np.maximum(jet_pt, 1e-3), 0.05, 0.1)


def tau_candidates_from_jets(jets, constituents, p4, charge, pdg):
    """Find tau-like signal cones in jets.

    Args:
        jets: awkward (events -> jets) Momentum4D.
        constituents: awkward (events -> jets -> global particle indices).
        p4, charge, pdg: per-particle arrays indexed by those global indices.
    Returns:
        dict of flat arrays over all jets in event order: `event`, `jet` (index in event),
        `p4` (n_jets, 4) of the cone, `n_charged`, `n_photons`, `charge`, `is_candidate`,
        and `members` (awkward, jets -> global indices of the cone particles).
    """
    n_per_event = ak.to_numpy(ak.num(jets, axis=1))
    event = np.repeat(np.arange(len(n_per_event)), n_per_event)
    jet_in_event = ak.to_numpy(ak.flatten(ak.local_index(jets, axis=1)))
    flat_jets = ak.flatten(jets)
    jpt = ak.to_numpy(flat_jets.pt)
    jeta, jphi = ak.to_numpy(flat_jets.eta), ak.to_numpy(flat_jets.phi)
    per_jet = ak.flatten(constituents, axis=1)  # jets -> indices
    n_const = ak.to_numpy(ak.num(per_jet))
    idx = ak.to_numpy(ak.flatten(per_jet))
    owner = np.repeat(np.arange(len(jpt)), n_const)

    p = p4[idx]
    pt = np.hypot(p[:, 0], p[:, 1])
    eta = np.arcsinh(p[:, 2] / np.maximum(pt, 1e-9))
    phi = np.arctan2(p[:, 1], p[:, 0])
    dphi = np.mod(phi - jphi[owner] + np.pi, 2 * np.pi) - np.pi
    dr = np.hypot(eta - jeta[owner], dphi)
    in_cone = dr < signal_cone(jpt)[owner]
    aid = np.abs(pdg[idx])
    is_charged = in_cone & (charge[idx] != 0) & (pt > CHARGED_MIN_PT)
    is_photon = in_cone & np.isin(aid, (22, 11)) & (pt > PHOTON_MIN_PT) & ~is_charged
    member = is_charged | is_photon

    n_jets = len(jpt)
    n_charged = np.bincount(owner[is_charged], minlength=n_jets)
    n_photons = np.bincount(owner[is_photon], minlength=n_jets)
    q = np.bincount(owner[is_charged], weights=charge[idx][is_charged], minlength=n_jets)
    cone = np.stack(
        [np.bincount(owner[member], weights=p[member, k], minlength=n_jets) for k in range(4)],
        axis=1,
    )
    mass = np.sqrt(np.maximum(cone[:, 3] ** 2 - (cone[:, :3] ** 2).sum(1), 0.0))
    ok = np.isin(n_charged, (1, 3)) & (np.abs(q) == 1) & (mass < MAX_CONE_MASS)
    members = ak.unflatten(idx[member], np.bincount(owner[member], minlength=n_jets))
    return dict(
        event=event,
        jet=jet_in_event,
        p4=cone,
        n_charged=n_charged,
        n_photons=n_photons,
        charge=np.rint(q).astype(np.int64),
        is_candidate=ok,
        members=members,
    )
