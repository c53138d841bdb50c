"""Tau decay-mode classification of the generated record and the PDG reference fractions."""

import numpy as np

from data.generate.pythia import NEUTRINOS

# Tau kinds, as SVfit's MeasuredTauLepton enum (ditau.md 1.1).
HADRONIC, ELECTRON, MUON = 1, 2, 3
NEUTRAL_KAONS = (130, 310, 311)

# Branching fractions in %, PDG 2024 Review of Particle Physics, tau listings; h = pi or K,
# groups are exclusive of K0 modes (those and 5-prong decays make up "other").
PDG_FRACTIONS = {
    "e": 17.82,  # e nu nu
    "mu": 17.39,  # mu nu nu
    "h": 11.51,  # pi nu 10.82 + K nu 0.696
    "h pi0": 25.93,  # pi pi0 nu 25.49 + K pi0 nu 0.433
    "h >=2pi0": 10.41,  # pi 2pi0 9.26 + K 2pi0 0.065 + pi 3pi0 1.04 + K 3pi0 0.048
    "3h": 9.80,  # h h h nu (ex. K0)
    "3h >=1pi0": 5.26,  # h h h pi0 nu (ex. K0) 4.76 + h h h 2pi0 ~0.5
}
PDG_FRACTIONS["other"] = round(100.0 - sum(PDG_FRACTIONS.values()), 2)


def hps_decay_mode(n_charged, n_pi0):
    """CMS HPS-style code 5*(n_charged - 1) + n_pi0 (0, 1, 2, 10, 11, ...); -1 if no hadron."""
    n_charged = np.asarray(n_charged)
    code = 5 * (n_charged - 1) + np.minimum(n_pi0, 4)
    return np.where(n_charged > 0, code, -1)


def classify(rec, charge, owner, n_taus):
    """Count per tau the decay products that define its kind and decay mode.

    Args:
        rec: `FlatRecord`.
        charge: (n_particles,) electric charges.
        owner: (n_particles,) label of the tau a particle descends from (-1 for none);
            labels run over 0..n_taus-1.
        n_taus: number of labels.
    Returns:
        dict of (n_taus,) arrays: kind (HADRONIC, ELECTRON, MUON), decay_mode (HPS code, -1 for
        leptonic), n_charged, n_pi0, has_k0, lepton_index (global index of the e/mu, -1).
    """
    aid = np.abs(rec.id)
    mine = owner >= 0
    final = mine & rec.is_final
    is_lep = final & np.isin(aid, (11, 13))
    charged_had = final & (charge != 0) & ~np.isin(aid, (11, 13))

    def count(mask):
        return np.bincount(owner[mask], minlength=n_taus)

    n_charged = count(charged_had)
    n_pi0 = count(mine & (aid == 111))
    has_k0 = count(mine & np.isin(aid, NEUTRAL_KAONS)) > 0
    # the lepton of a leptonic decay: Dalitz electrons come with charged hadrons, so a tau is
    # leptonic only when it has no charged hadron
    lepton_index = np.full(n_taus, -1, dtype=np.int64)
    lep = np.nonzero(is_lep)[0]
    lepton_index[owner[lep]] = lep
    flavour = np.where(lepton_index >= 0, aid[np.maximum(lepton_index, 0)], 0)
    kind = np.where(n_charged > 0, HADRONIC, np.where(flavour == 11, ELECTRON, MUON))
    lepton_index = np.where(kind == HADRONIC, -1, lepton_index)
    return dict(
        kind=kind,
        decay_mode=np.where(kind == HADRONIC, hps_decay_mode(n_charged, n_pi0), -1),
        n_charged=n_charged,
        n_pi0=n_pi0,
        has_k0=has_k0,
        lepton_index=lepton_index,
    )


def pdg_group(kind, decay_mode, has_k0):
    """Map kinds and decay modes onto the groups of `PDG_FRACTIONS`."""
    groups = np.full(len(kind), "other", dtype=object)
    groups[kind == ELECTRON] = "e"
    groups[kind == MUON] = "mu"
    had = (kind == HADRONIC) & ~np.asarray(has_k0)
    dm = np.asarray(decay_mode)
    groups[had & (dm == 0)] = "h"
    groups[had & (dm == 1)] = "h pi0"
    groups[had & (dm >= 2) & (dm <= 4)] = "h >=2pi0"
    groups[had & (dm == 10)] = "3h"
    groups[had & (dm >= 11) & (dm <= 14)] = "3h >=1pi0"
    return groups


def is_neutrino(pdg):
    return np.isin(np.abs(pdg), NEUTRINOS)
