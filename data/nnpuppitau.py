"""NNPuppiTau-like L1 taus: the seeded-cone clustering of CMSSW L1NNTauProducer + a small NN.

Clustering (met_l1.md 5.1, `L1Trigger/Phase2L1ParticleFlow/plugins/L1NNTauProducer.cc`): seeds
are PUPPI charged hadrons and electrons (photons too with `em_seed`) with |eta| < 2.4, taken in
descending pT. The highest-pT seed collects every PUPPI candidate within DeltaR < `conesize`
(0.4) of it; the tau four-momentum is the sum of the (massless) charged hadrons, electrons and
photons within `tausize` (0.1); the collected candidates (seeds included) are removed and the
next seed is taken, up to `max_taus` taus, while the seed pT >= `seed_pt`. Changes for soft
taus: `seed_pt` 2 GeV instead of CMSSW's 20 GeV (there it cuts the cone pT), `max_taus` 16
instead of 5, seed |eta| < 2.4 (the tracker acceptance of `data.scouttau`) instead of 2.5.

NN input (`TauNNId::SetNNVectorVar`): the 10 highest-pT candidates of the cone, each with 8
features (pT, delta eta and delta phi to the seed, one-hot photon, electron, muon, neutral
hadron, charged hadron), candidate after candidate: 80 inputs, zero-padded. The network is
TauNNId's small dense classifier (`models.scouttau.nnpuppitau`).

For the di-tau working points every tau also carries the seed track's z0 and a charge: the sum
of the charges in its core (CMSSW: the seed's), whose sign is the charge "score".
"""

import numpy as np

from data import scouttau

CONESIZE, TAUSIZE = 0.4, 0.1
SEED_PT = 2.0  # GeV (CMSSW: 20)
MAX_TAUS = 16  # per event (CMSSW: 5)
SEED_ETA_MAX = scouttau.ETA_MAX
N_PARTICLES = 10
FEATURES = ("pt", "delta_eta", "delta_phi", "is_photon", "is_electron", "is_muon",
            "is_neutral_hadron", "is_charged_hadron")  # fmt: skip
ONE_HOT_PDG = (22, 11, 13, 130, 211)
N_INPUTS = N_PARTICLES * len(FEATURES)  # 80
CORE_PDG = (211, 11, 22)  # enter the tau pT within tausize


def seeded_cone(
    puppi,
    *,
    conesize=CONESIZE,
    tausize=TAUSIZE,
    seed_pt=SEED_PT,
    max_taus=MAX_TAUS,
    em_seed=False,
    n_particles=N_PARTICLES,
):
    """Seeded-cone taus from PUPPI candidates, vectorised over events (one pass per tau rank).

    Args:
        puppi: flat candidates as from `data.scouttau.puppi_candidates` (pt, eta, phi, pdg,
            event, n_events), in event order.
        conesize, tausize: cone radii; seed_pt: minimum seed pT (GeV); max_taus: per event;
        em_seed: photons may seed too; n_particles: cone candidates in the NN input.
    Returns:
        dict of (n_taus,) arrays ordered by event then seed pT: pt, eta, phi (tau core sum),
        seed_pt, cone_pt (scalar sum), event, z0 (the seed's; with `puppi["z0"]`), charge (sum
        in the core; with `puppi["charge"]`), and inputs (n_taus, n_particles * 8) float32;
        member (n,) the tau of each PUPPI candidate, -1 for none.
    Raises:
        ValueError: non-positive radii or max_taus, tausize > conesize.
    """
    if not (0 < tausize <= conesize) or max_taus < 1 or n_particles < 1:
        raise ValueError(
            f"need 0 < tausize <= conesize and max_taus, n_particles >= 1, got tausize "
            f"{tausize}, conesize {conesize}, max_taus {max_taus}, n_particles {n_particles}"
        )
    pt, eta, phi, ev = (np.asarray(puppi[k]) for k in ("pt", "eta", "phi", "event"))
    pdg = np.abs(np.asarray(puppi["pdg"]))
    extra = {k: np.asarray(puppi[k]) for k in ("z0", "charge") if k in puppi}
    n, n_ev = len(pt), int(puppi["n_events"])
    order = np.lexsort((-pt, ev))  # work on (event, descending pT) order
    pt, eta, phi, ev, pdg = pt[order], eta[order], phi[order], ev[order], pdg[order]
    extra = {k: v[order] for k, v in extra.items()}
    seed_types = (211, 11, 22) if em_seed else (211, 11)
    can_seed = np.isin(pdg, seed_types) & (np.abs(eta) < SEED_ETA_MAX) & (pt >= seed_pt)
    free = np.ones(n, bool)
    member = np.full(n, -1, np.int64)
    seeds = []
    for _ in range(max_taus):
        first = np.full(n_ev, n)
        ok = can_seed & free
        np.minimum.at(first, ev[ok], np.flatnonzero(ok))  # highest-pT free seed per event
        has = first < n
        if not has.any():
            break
        s = first[ev]
        live = free & has[ev]
        s = np.where(live, s, 0)
        dr = np.hypot(eta - eta[s], scouttau.wrap_phi(phi - phi[s]))
        cone = live & (dr < conesize)
        member[cone] = s[cone]  # the seed's index names the tau for now
        free &= ~cone
        seeds.append(first[has])
    seed = np.sort(np.concatenate(seeds)) if seeds else np.zeros(0, np.int64)  # event, pT order
    tau = np.full(n + 1, -1, np.int64)
    tau[seed] = np.arange(len(seed))
    member = tau[member]
    k = len(seed)
    m = np.flatnonzero(member >= 0)
    m = m[np.lexsort((m, member[m]))]  # by tau, then descending pT
    row = member[m]
    deta, dphi = eta[m] - eta[seed][row], scouttau.wrap_phi(phi[m] - phi[seed][row])
    core = np.isin(pdg[m], CORE_PDG) & (np.hypot(deta, dphi) < tausize)
    px = np.bincount(row[core], (pt * np.cos(phi))[m][core], k)
    py = np.bincount(row[core], (pt * np.sin(phi))[m][core], k)
    pz = np.bincount(row[core], (pt * np.sinh(eta))[m][core], k)
    tau_pt = np.hypot(px, py)
    out = {
        "pt": tau_pt,
        "eta": np.arcsinh(pz / np.maximum(tau_pt, 1e-12)),
        "phi": np.arctan2(py, px),
        "seed_pt": pt[seed],
        "cone_pt": np.bincount(row, pt[m], k),
        "event": ev[seed].astype(np.int64),
    }
    if "z0" in extra:
        out["z0"] = extra["z0"][seed]
    if "charge" in extra:
        q = extra["charge"][m]
        out["charge"] = np.bincount(row[core], q[core], k).astype(np.int64)
    # NN inputs: the n_particles leading members of each tau
    n_per = np.bincount(row, minlength=k)
    rank = np.arange(len(m)) - np.repeat(np.cumsum(n_per) - n_per, n_per)
    take = rank < n_particles
    cols = [pt[m], deta, dphi, *[pdg[m] == p for p in ONE_HOT_PDG]]
    x = np.zeros((k, n_particles, len(FEATURES)), np.float32)
    x[row[take], rank[take]] = np.stack(cols, 1)[take]
    out["inputs"] = x.reshape(k, n_particles * len(FEATURES))
    back = np.empty(n, np.int64)
    back[order] = np.arange(n)
    out["member"] = member[back]
    return out


def nnpuppitau_candidates(arrays, *, puppi_eta_max=3.0, **params):
    """NNPuppiTau candidates of every event, with truth when the arrays carry it.

    Args:
        arrays: dict branch -> awkward array as from `data.scouttau.read`.
        puppi_eta_max: PUPPI candidates that may enter a cone (the written |eta| < 3).
        **params: see `seeded_cone`.
    Returns:
        `seeded_cone`'s dict and, with `GenVisTau_*` present, is_tau, tau_charge, tau_vis_pt,
        decay_mode (matching of `data.scouttau.tau_truth`) and gen_taus.
    """
    puppi = scouttau.puppi_candidates(arrays, eta_max=puppi_eta_max)
    out = seeded_cone(puppi, **params)
    if "GenVisTau_kind" in arrays:
        truth, out["gen_taus"] = scouttau.tau_truth(out, arrays)
        out.update(truth)
    return out
