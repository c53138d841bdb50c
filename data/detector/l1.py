"""Phase-2 Level-1 particle flow at high pileup: L1 tracks, calorimeter towers (met_l1.md 7).

A parametric model of the L1 correlator's PF input (section 7.4, "suggested simplified model"):

* L1 tracks: charged particles with |eta| < 2.4 and pT > 2 GeV, Delphes tracking efficiency,
  the `SimpleResolution` pT resolution table of `pfTracksFromL1Tracks` and a z0 resolution of
  ~1 mm central rising to ~3.5 mm at |eta| = 2.4 (section 7.2, suggested; unconfirmed);
* calorimeter clusters: everything else that is visible (untracked charged particles and
  neutrals) summed into 0.087 x 0.087 towers, EM (photons, electrons) and hadronic apart; the
  tower E_T is smeared with the ECAL term (EM) or the L1 PF hadronic-cluster table (section
  7.3) and kept above the L1 minimum cluster E_T (EM 0.5, hadronic 0.8 GeV);
* particle types: charged hadron, electron, muon (tracks), photon, neutral hadron (towers).

Towers carry the E_T-weighted direction of what hit them, and truth by E_T share: the pileup
fraction and the constituent label (e.g. the generated tau) with the largest share.
"""

import numpy as np

from data.detector.phase2 import _binned

TRACK_ETA_MAX, TRACK_PT_MIN = 2.4, 2.0  # L1 track quality cuts (met_l1.md 7.1)
TRACK_EFF = ((1.2, 0.97), (2.5, 0.87))  # Delphes, as for the offline tracker
# sigma(pT)/pT = min(1, hypot(offset, scale * 1e-3 * pT)) by |eta| (met_l1.md 7.1)
TRACK_RES = ((0.8, 0.007, 0.275), (1.2, 0.009, 0.404), (1.5, 0.011, 0.512),
             (2.0, 0.015, 0.480), (np.inf, 0.025, 1.132))  # fmt: skip
Z0_RES_CENTRAL = 0.1  # cm at eta = 0 (suggested in met_l1.md 7.2)
CALO_ETA_MAX = 5.0
TOWER = 0.087  # HCAL tower size in eta and phi (72 towers in phi)
N_PHI = 72
# L1 PF hadronic clusters: sigma(pT) = min(pT, scale pT + offset) by |eta| (met_l1.md 7.3)
HAD_RES = ((1.3, 2.644, 0.155), (1.7, 1.975, 0.247), (2.8, 2.287, 0.130),
           (3.2, 1.113, 0.266), (4.0, 0.772, 0.205), (np.inf, 0.232, 0.302))  # fmt: skip
ECAL = (0.009, 0.12, 0.45)  # Delphes Phase-II ECAL barrel, sqrt((cE)^2 + s^2 E + n^2)
EM_MIN_ET, HAD_MIN_ET = 0.5, 0.8  # L1 ECAL / HCAL minimum cluster E_T (met_l1.md 7.3)

CHARGED_HADRON, ELECTRON, MUON, PHOTON, NEUTRAL_HADRON = 211, 11, 13, 22, 130


def track_sigma_z0(eta):
    """L1 track z0 resolution (cm): 1 mm at eta = 0, x (1 + (|eta| / 1.5)^2) (3.6 mm at 2.4)."""
    return Z0_RES_CENTRAL * (1.0 + (np.abs(eta) / 1.5) ** 2)


def track_rel_res(pt, abs_eta):
    off, scale = _binned(abs_eta, TRACK_RES, 1), _binned(abs_eta, TRACK_RES, 2)
    return np.minimum(1.0, np.hypot(off, scale * 1e-3 * pt))


def _towers(eta, phi, key_extra):
    """Tower index of each deposit: (eta bin, phi bin, extra key) -> one integer."""
    n_eta = int(np.ceil(2 * CALO_ETA_MAX / TOWER))
    ie = np.clip(((eta + CALO_ETA_MAX) / TOWER).astype(np.int64), 0, n_eta - 1)
    ip = np.mod(np.floor((phi + np.pi) / (2 * np.pi / N_PHI)).astype(np.int64), N_PHI)
    return (key_extra * n_eta + ie) * N_PHI + ip


def reconstruct(p, rng, *, label=None):
    """L1 particle flow of visible particles.

    Args:
        p: dict of flat arrays px, py, pz, e, vz (cm, z0), pdg, charge, event, is_pu.
        rng: numpy Generator.
        label: optional (n,) int labels (>= 0, -1 none; e.g. generated tau index) carried to
            the candidates: a track keeps its particle's, a tower takes the label with the
            largest E_T share if that share is above one half.
    Returns:
        dict of flat candidate arrays sorted by event: pt, eta, phi, charge, pdgId, z0 (cm, 0
        for towers), is_pu (pileup E_T share > 1/2 for towers), label, event.
    """
    px, py, pz, e = (np.asarray(p[k], np.float64) for k in ("px", "py", "pz", "e"))
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-9))
    phi = np.arctan2(py, px)
    aeta = np.abs(eta)
    q = np.asarray(p["charge"])
    apdg = np.abs(np.asarray(p["pdg"]))
    event = np.asarray(p["event"])
    is_pu = np.asarray(p["is_pu"], bool)
    label = np.full(len(pt), -1) if label is None else np.asarray(label)
    tracked = (q != 0) & (aeta < TRACK_ETA_MAX) & (pt > TRACK_PT_MIN)
    tracked &= rng.random(len(pt)) < _binned(aeta, TRACK_EFF, 1)
    t = np.nonzero(tracked)[0]
    t_pt = pt[t] * np.maximum(
        1.0 + track_rel_res(pt[t], aeta[t]) * rng.standard_normal(len(t)), 0.05
    )
    t_code = np.where(apdg[t] == 11, ELECTRON, np.where(apdg[t] == 13, MUON, CHARGED_HADRON))
    t_code = t_code * np.where(t_code == CHARGED_HADRON, 1, -1) * np.sign(q[t])
    t_z0 = np.asarray(p["vz"])[t] + track_sigma_z0(eta[t]) * rng.standard_normal(len(t))
    # calorimeter: untracked visible particles except muons, summed into towers
    c = np.nonzero(~tracked & (apdg != 13) & (aeta < CALO_ETA_MAX))[0]
    em = np.isin(apdg[c], (11, 22))
    key = _towers(eta[c], phi[c], event[c] * 2 + em)
    towers, inv = np.unique(key, return_inverse=True)
    n_t = len(towers)
    w = pt[c]
    sum_et = np.bincount(inv, w, n_t)
    t_eta = np.bincount(inv, w * eta[c], n_t) / np.maximum(sum_et, 1e-12)
    # E_T-weighted mean direction in phi through the unit vector (wraps at pi)
    t_phi = np.arctan2(
        np.bincount(inv, w * np.sin(phi[c]), n_t), np.bincount(inv, w * np.cos(phi[c]), n_t)
    )
    pu_share = np.bincount(inv, w * is_pu[c], n_t) / np.maximum(sum_et, 1e-12)
    tower_em = np.bincount(inv, em.astype(float), n_t) > 0
    tower_event = np.zeros(n_t, np.int64)
    tower_event[inv] = event[c]
    # label with the largest E_T share (> 1/2)
    lab_c = label[c]
    t_label = np.full(n_t, -1, np.int64)
    has = lab_c >= 0
    if has.any():
        pair = inv[has] * (lab_c.max() + 1) + lab_c[has]
        up, pinv = np.unique(pair, return_inverse=True)
        share = np.bincount(pinv, w[has], len(up))
        tower_of, lab_of = up // (lab_c.max() + 1), up % (lab_c.max() + 1)
        best = share > 0.5 * sum_et[tower_of]
        t_label[tower_of[best]] = lab_of[best]
    a_t = np.abs(t_eta)
    sigma = np.where(
        tower_em,
        np.sqrt((ECAL[0] * sum_et) ** 2 + ECAL[1] ** 2 * sum_et + ECAL[2] ** 2),
        np.minimum(sum_et, _binned(a_t, HAD_RES, 2) * sum_et + _binned(a_t, HAD_RES, 1)),
    )
    et_reco = np.maximum(sum_et + sigma * rng.standard_normal(n_t), 0.0)
    keep = et_reco > np.where(tower_em, EM_MIN_ET, HAD_MIN_ET)
    out = dict(
        pt=np.concatenate([t_pt, et_reco[keep]]),
        eta=np.concatenate([eta[t], t_eta[keep]]),
        phi=np.concatenate([phi[t], t_phi[keep]]),
        charge=np.concatenate([q[t], np.zeros(keep.sum(), q.dtype)]).astype(np.int8),
        pdgId=np.concatenate([t_code, np.where(tower_em[keep], PHOTON, NEUTRAL_HADRON)]),
        z0=np.concatenate([t_z0, np.zeros(keep.sum())]),
        is_pu=np.concatenate([is_pu[t], pu_share[keep] > 0.5]),
        label=np.concatenate([label[t], t_label[keep]]),
        event=np.concatenate([event[t], tower_event[keep]]),
    )
    order = np.argsort(out["event"], kind="stable")
    return {k: v[order] for k, v in out.items()}
