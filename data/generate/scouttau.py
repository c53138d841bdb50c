"""ScoutTau samples: a light scalar -> tautau at 14 TeV with pileup, and zero-bias pileup.

Processes (seed 001, met_l1.md 6.4): `lowmass` (gg -> H and H + jet with pT-hat > 20 GeV,
alternating, with a narrow scalar of mass uniform in 10-60 GeV decaying to tau pairs, so that
visible taus span 5-60 GeV) and `minbias` (zero-bias bunch crossings: pileup only, for rates).
Both are overlaid with Poisson(mu) minimum-bias interactions from the cached library
(`data.generate.pileup`) and reconstructed with the Phase-2 Level-1 particle-flow model
(`data.detector.l1`): L1 tracks and calorimeter towers, a pT-weighted histogram vertex and
the linearised L1 PUPPI weights (`data.reco.l1puppi`).

Columns: event, nPU, PV_z, GenPV_z, GenScalar_mass; `L1Cand_*` (pt, eta, phi, charge, pdgId,
z0, puppiWeight, fromPU, tauIdx: index of the generated tau whose products dominate the
candidate, -1 none), only |eta| < 3; `GenVisTau_*` (pt, eta, phi, mass, charge, kind,
decayMode) of both taus of the scalar (kind: tau_decays HADRONIC / ELECTRON / MUON).
"""

import numpy as np

from data.detector import l1, phase2
from data.generate import pileup
from data.generate import tau_decays as td
from data.generate.batches import subseed
from data.generate.ditau import higgs_decay
from data.generate.ditau_events import kinematics
from data.generate.ditau_output import collection, concatenate
from data.generate.pythia import (
    NEUTRINOS,
    ChargeTable,
    ancestor_owner,
    bottom_copy,
    daughters,
    flatten_batch,
    last_of_id,
    make_pythia,
    reinit,
)
from data.reco import l1puppi

PROCESSES = {"lowmass": 0, "minbias": 1}
MASS_RANGE = (10.0, 60.0)
PRODUCTION = (
    ("HiggsSM:gg2H = on",),
    (
        "HiggsSM:gg2Hg(l:t) = on",
        "HiggsSM:qg2Hq(l:t) = on",
        "HiggsSM:qqbar2Hg(l:t) = on",
        "PhaseSpace:pTHatMin = 20.",
    ),
)
ETA_MAX = 3.0  # written candidates: the tracker and the calorimeter around it
PV_BIN, PV_WINDOW = 0.1, 1  # cm: the L1 vertex histogram for ~1 mm z0 resolution
SAMPLE_CODE = 30


def _taus(rec, charges):
    """Truth of the scalar's two taus: owner label per particle and per-tau arrays."""
    n = rec.n_events
    iboson = last_of_id(rec, [25])
    dau = daughters(rec, np.maximum(iboson, 0))
    valid = (iboson >= 0) & np.all(np.abs(rec.id[np.maximum(dau, 0)]) == 15, axis=1)
    taus = bottom_copy(rec, np.where(valid[:, None], dau, -1).ravel()).reshape(n, 2)
    labels = np.arange(2 * n).reshape(n, 2)
    owner = ancestor_owner(rec, taus[valid].ravel(), labels[valid].ravel())
    info = td.classify(rec, charges(rec.id), owner, 2 * n)
    fin = np.nonzero(rec.is_final & (owner >= 0) & ~np.isin(np.abs(rec.id), NEUTRINOS))[0]
    vis = np.stack([np.bincount(owner[fin], rec.p4[fin, k], 2 * n) for k in range(4)], axis=1)
    mass = np.where(valid, kinematics(rec.p4[np.maximum(iboson, 0)])[3], -1.0)
    return owner, dict(
        valid=valid,
        vis=vis,
        charge=-np.sign(rec.id[np.maximum(taus, 0)]).ravel(),  # tau- has PDG id +15
        kind=info["kind"],
        decay_mode=info["decay_mode"],
        mass=mass,
    )


def process_batch(rec, charges, library, mu, rng, timing=None):
    """Overlay pileup on a batch (None: zero-bias crossings of `n` events), reconstruct at L1."""
    if isinstance(rec, int):  # zero bias: no hard scatter
        n, owner, truth = rec, None, None
        hard = {k: np.zeros(0) for k in ("px", "py", "pz", "e", "vz", "vertex_z")}
        hard.update(pdg=np.zeros(0, np.int64), charge=np.zeros(0, np.int8))
        hard_counts = np.zeros(n, np.int64)
        gen_pv = np.full(n, np.nan)
        hard_label = np.zeros(0, np.int64)
    else:
        n = rec.n_events
        owner, truth = _taus(rec, charges)
        hard, hard_counts, vis, gen_pv = pileup.hard_event(rec, charges, rng)
        hard_label = owner[vis]
    parts, counts, n_pu = pileup.overlay(hard, hard_counts, library, mu, rng)
    parts["event"] = np.repeat(np.arange(n), counts)
    # the hard particles come first in every event: their labels, then -1 for pileup
    label = np.full(len(parts["event"]), -1, np.int64)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.repeat(first, hard_counts) + (
        np.arange(hard_counts.sum()) - np.repeat(np.cumsum(hard_counts) - hard_counts, hard_counts)
    )
    label[pos] = hard_label
    c = l1.reconstruct(parts, rng, label=label)
    ev = c["event"]
    charged = c["charge"] != 0
    pv = phase2.primary_vertex(
        c["z0"], c["pt"], charged, ev, n, bin_width=PV_BIN, window=PV_WINDOW, power=1
    )
    w = l1puppi.weights(
        c["pt"], c["eta"], c["phi"], c["pdgId"], c["z0"], np.bincount(ev, minlength=n), pv, n_pu
    )
    keep = np.abs(c["eta"]) < ETA_MAX
    cols = {
        "event": np.arange(n, dtype=np.int64),
        "nPU": n_pu.astype(np.int32),
        "PV_z": pv.astype(np.float32),
        "GenPV_z": gen_pv.astype(np.float32),
        "GenScalar_mass": (truth["mass"] if truth else np.full(n, -1.0)).astype(np.float32),
    }
    cols["L1Cand"], _ = collection(
        ev[keep],
        n,
        c["pt"][keep],
        pt=c["pt"][keep].astype(np.float32),
        eta=c["eta"][keep].astype(np.float32),
        phi=c["phi"][keep].astype(np.float32),
        charge=c["charge"][keep],
        pdgId=c["pdgId"][keep].astype(np.int16),
        z0=c["z0"][keep].astype(np.float32),
        puppiWeight=w[keep].astype(np.float32),
        fromPU=c["is_pu"][keep],
        tauIdx=np.where(c["label"][keep] >= 0, c["label"][keep] % 2, -1).astype(np.int8),
    )
    if truth is None:
        cols["GenVisTau"] = {"_counts": np.zeros(n, np.int64)}
        for k in ("pt", "eta", "phi", "mass"):
            cols["GenVisTau"][k] = np.zeros(0, np.float32)
        for k in ("charge", "kind", "decayMode"):
            cols["GenVisTau"][k] = np.zeros(0, np.int8)
    else:
        ok = np.repeat(truth["valid"], 2)
        pt, eta, phi, m = kinematics(truth["vis"][ok])
        cols["GenVisTau"], _ = collection(
            np.repeat(np.arange(n), 2)[ok],
            n,
            None,
            pt=pt.astype(np.float32),
            eta=eta.astype(np.float32),
            phi=phi.astype(np.float32),
            mass=m.astype(np.float32),
            charge=truth["charge"][ok].astype(np.int8),
            kind=truth["kind"][ok].astype(np.int8),
            decayMode=truth["decay_mode"][ok].astype(np.int8),
        )
    return cols


def generate(
    process,
    n_events,
    seed,
    *,
    mu=pileup.DEFAULT_MU,
    library_events=pileup.DEFAULT_LIBRARY_EVENTS,
    library_seed=1,
    cache="cache",
    worker=0,
    batch_size=40,
    progress=None,
    timing=None,
):
    """Generate `n_events` events of `process` ("lowmass" or "minbias") with pileup.

    Args as `data.generate.ttbar_pu.generate`; every generated event is written.
    """
    library = pileup.load_library(cache, library_events, library_seed) if mu > 0 else None
    rng = np.random.default_rng([seed, worker, SAMPLE_CODE + PROCESSES[process]])
    instances, charges = {}, None
    chunks, done, point = [], 0, 0
    while done < n_events:
        k = min(batch_size, n_events - done)
        if process == "minbias":
            rec = k
        else:
            slot = point % len(PRODUCTION)
            mass = float(rng.uniform(*MASS_RANGE))
            if slot not in instances:
                instances[slot] = make_pythia(
                    PRODUCTION[slot] + higgs_decay(mass), subseed(seed, worker, point),
                    ecm=pileup.ECM,
                )  # fmt: skip
                charges = charges or ChargeTable(instances[slot])
            else:
                reinit(instances[slot], higgs_decay(mass), subseed(seed, worker, point))
            rec = flatten_batch(instances[slot].nextBatch(k, "skip"))
        cols = process_batch(rec, charges, library, mu, rng, timing)
        cols["event"] = cols["event"] + (worker << 40) + (point << 20)
        chunks.append(cols)
        done += len(cols["event"])
        point += 1
        if progress:
            progress(len(cols["event"]))
    return concatenate(chunks)
