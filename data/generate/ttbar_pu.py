"""Dileptonic ttbar at 14 TeV with pileup (default mu = 200) and Phase-2-like particle flow.

The MET seed's sample (seed 003): pp -> ttbar at 14 TeV with both W decaying leptonically
(e, mu or tau), overlaid with Poisson(mu) minimum-bias interactions from the cached library
(`data.generate.pileup`), reconstructed with the parametric Phase-2 particle flow
(`data.detector.phase2`): a primary vertex from the tracks, `IsRecoPU` for tracks away from
it, and PUPPI weights (`data.reco.puppi`). Generated MET is the vector sum of the hard
scatter's neutrinos (pileup neutrinos are dropped, as in Delphes).

Columns: event, nPU, PV_z, GenPV_z, GenMET_pt/phi, PFMET_pt/phi (all candidates),
PuppiMET_pt/phi, and the jagged `PFCand_*` (px, py, eta, charge, pdgId, vz, isRecoPU,
puppiWeight, and the truth flag fromPU).
"""

import time
from dataclasses import dataclass

import numpy as np

from data.detector import phase2
from data.generate import batches, pileup
from data.generate.batches import subseed
from data.generate.ditau_output import collection
from data.generate.pythia import (
    NEUTRINOS,
    ChargeTable,
    make_pythia,
)
from data.generate.ttbar_dilepton import PRODUCTION, W_LEPTONS_WITH_TAUS
from data.reco import puppi

SAMPLE_CODE = 20
SETTINGS = (
    *PRODUCTION,
    "24:onMode = off",
    f"24:onIfAny = {' '.join(map(str, W_LEPTONS_WITH_TAUS))}",
)


@dataclass
class Timing(batches.Timing):
    """`batches.Timing` (Pythia vs the rest) with the rest split: pileup overlay, particle flow
    + vertexing, PUPPI."""

    overlay: float = 0.0
    reco: float = 0.0
    puppi: float = 0.0


def _met(px, py, event, n):
    mx = -np.bincount(event, weights=px, minlength=n)
    my = -np.bincount(event, weights=py, minlength=n)
    return np.hypot(mx, my), np.arctan2(my, mx)


def process_batch(rec, charges, library, mu, rng, timing=None):
    """Overlay pileup on a Pythia batch and reconstruct it; returns the column dict."""
    t0 = time.perf_counter()
    n = rec.n_events
    final = rec.is_final
    nu = final & np.isin(np.abs(rec.id), NEUTRINOS)
    gen_mx = np.bincount(rec.event[nu], weights=rec.p4[nu, 0], minlength=n)
    gen_my = np.bincount(rec.event[nu], weights=rec.p4[nu, 1], minlength=n)
    hard, hard_counts, _, gen_pv = pileup.hard_event(rec, charges, rng)
    parts, counts, n_pu = pileup.overlay(hard, hard_counts, library, mu, rng)
    parts["event"] = np.repeat(np.arange(n), counts)
    t1 = time.perf_counter()
    c = phase2.reconstruct(parts, rng)
    ev = c["event"]
    charged = c["charge"] != 0
    pt = np.hypot(c["px"], c["py"])
    phi = np.arctan2(c["py"], c["px"])
    pv = phase2.primary_vertex(c["vz"], pt, charged, ev, n, c["sigma_z"])
    is_reco_pu = charged & (np.abs(c["vz"] - pv[ev]) > phase2.DELTA_Z_CUT)
    ccounts = np.bincount(ev, minlength=n)
    t2 = time.perf_counter()
    w = puppi.weights(pt, c["eta"], phi, charged, is_reco_pu, ccounts, n_pu)
    t3 = time.perf_counter()
    pf_met, pf_phi = _met(c["px"], c["py"], ev, n)
    pu_met, pu_phi = _met(w * c["px"], w * c["py"], ev, n)
    cols = {
        "event": np.arange(n, dtype=np.int64),
        "nPU": n_pu.astype(np.int32),
        "PV_z": pv.astype(np.float32),
        "GenPV_z": gen_pv.astype(np.float32),
        "GenMET_pt": np.hypot(gen_mx, gen_my).astype(np.float32),
        "GenMET_phi": np.arctan2(gen_my, gen_mx).astype(np.float32),
        "PFMET_pt": pf_met.astype(np.float32),
        "PFMET_phi": pf_phi.astype(np.float32),
        "PuppiMET_pt": pu_met.astype(np.float32),
        "PuppiMET_phi": pu_phi.astype(np.float32),
    }
    cols["PFCand"], _ = collection(
        ev,
        n,
        None,
        px=c["px"].astype(np.float32),
        py=c["py"].astype(np.float32),
        eta=c["eta"].astype(np.float32),
        charge=c["charge"].astype(np.int8),
        pdgId=c["pdgId"].astype(np.int16),
        vz=c["vz"].astype(np.float32),
        isRecoPU=is_reco_pu,
        fromPU=c["is_pu"],
        puppiWeight=w.astype(np.float32),
    )
    if timing is not None:
        timing.overlay += t1 - t0
        timing.reco += t2 - t1 + time.perf_counter() - t3
        timing.puppi += t3 - t2
    return cols


def generate(
    n_events,
    seed,
    *,
    mu=pileup.DEFAULT_MU,
    library_events=pileup.DEFAULT_LIBRARY_EVENTS,
    library_seed=1,
    cache="cache",
    worker=0,
    batch_size=25,
    progress=None,
    timing=None,
):
    """Generate `n_events` dileptonic ttbar events with Poisson(`mu`) pileup.

    Args:
        n_events: events to write (every generated event is kept).
        seed: random seed; (seed, worker) fixes everything given the library.
        mu: mean number of pileup interactions.
        library_events, library_seed: the minimum-bias library (generated once into `cache`).
        cache: folder of the cached library.
        worker: index of this worker (its own random streams).
        batch_size: hard events per Pythia batch.
        progress: optional callable(n) called with the number of new events.
        timing: optional `Timing` to fill.
    Returns:
        dict of columns (collections as dicts with `_counts`), exactly `n_events` long.
    """
    library = pileup.load_library(cache, library_events, library_seed) if mu > 0 else None
    rng = np.random.default_rng([seed, worker, SAMPLE_CODE])
    instance = {"left": n_events}

    def next_batch(point):
        if "py" not in instance:  # inside the timed call: Pythia's init counts as Pythia time
            instance["py"] = make_pythia(SETTINGS, subseed(seed, worker, 0), ecm=pileup.ECM)
            instance["charges"] = ChargeTable(instance["py"])
        # every generated event is kept: ask for no more than are still missing
        batch = instance["py"].nextBatch(min(batch_size, instance["left"]), "skip")
        instance["left"] -= len(batch)
        return batch

    def reco(rec):
        return process_batch(rec, instance["charges"], library, mu, rng, timing)

    return batches.collect(
        next_batch, reco, n_events, worker=worker, timing=timing, progress=progress
    )
