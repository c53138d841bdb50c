"""X -> tautau samples for TPMT: Pythia8 events, CMS-like detector, seed-000 selection.

Processes (13.6 TeV): `flat` (ggH + VBF H -> tautau, boson mass flat in 30-300 GeV), `h125`
(ggH + VBF at 125 GeV), `dy` (Z/gamma* -> tautau, mHat > 50 GeV), `ttbar` (inclusive, taus are
jets faking tau_h, matched to top daughters), `bsm350` (ggH + bbH-like scalar at 350 GeV).
"""

import time
from dataclasses import dataclass, field

import numpy as np

from data.generate import ditau_events, ditau_output
from data.generate.pythia import flatten_batch, make_pythia, reinit

PROCESSES = {"flat": 0, "h125": 1, "dy": 2, "ttbar": 3, "bsm350": 4}
CHANNELS = {"tauh-tauh": 0, "mu-tauh": 1, "e-tauh": 2}
FLAT_MASS_RANGE = (30.0, 300.0)
EVENTS_PER_MASS_POINT = 250  # re-initialising Pythia costs ~0.3 s, ~15% of a point's time

_GGH = ("HiggsSM:gg2H = on",)
_VBF = ("HiggsSM:ff2Hff(t:WW) = on", "HiggsSM:ff2Hff(t:ZZ) = on")
_BBH = ("HiggsSM:gg2Hbbbar = on", "HiggsSM:qqbar2Hbbbar = on")
_DY = (
    "WeakSingleBoson:ffbar2gmZ = on",
    "WeakZ0:gmZmode = 0",
    "23:onMode = off",
    "23:onIfAny = 15",
    "PhaseSpace:mHatMin = 50.",
)
_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on")


def higgs_decay(mass):
    """A narrow scalar of `mass` GeV decaying only to tau pairs (ditau.md 4.2)."""
    return (
        "25:onMode = off",
        "25:onIfAny = 15",
        f"25:m0 = {mass:.4f}",
        "25:mWidth = 0.01",
        "25:doForceWidth = on",
        f"25:mMin = {max(mass - 1.0, 1.0):.4f}",
        f"25:mMax = {mass + 1.0:.4f}",
    )


def streams(process):
    """(production settings, boson mass or None) alternatives for fixed-mass processes."""
    return {
        "h125": [(_GGH + higgs_decay(125.0), 25), (_VBF + higgs_decay(125.0), 25)],
        "bsm350": [(_GGH + higgs_decay(350.0), 25), (_BBH + higgs_decay(350.0), 25)],
        "dy": [(_DY, 23)],
        "ttbar": [(_TTBAR, None)],
    }[process]


@dataclass
class Timing:
    """Wall time spent in Pythia (init + generation) and in everything else."""

    pythia: float = 0.0
    other: float = 0.0
    generated: int = 0
    selected: int = 0
    parts: list = field(default_factory=list)


def generate(process, n_events, seed, *, worker=0, batch_size=250, progress=None, timing=None):
    """Generate `n_events` selected events of `process`.

    Args:
        process: a key of PROCESSES.
        n_events: number of events that pass the selection (generation continues until then).
        seed: random seed; (seed, worker) fixes everything.
        worker: index of this worker (separate random streams per worker).
        batch_size: events per Pythia batch.
        progress: optional callable(n) called with the number of newly selected events.
        timing: optional `Timing` to fill.
    Returns:
        dict of columns (see `ditau_events.assemble`), exactly `n_events` long.
    """
    timing = timing or Timing()
    rng = np.random.default_rng([seed, worker, PROCESSES[process]])
    chunks, n_sel, point = [], 0, 0
    instances = {}
    while n_sel < n_events:
        t0 = time.perf_counter()
        if process == "flat":
            # one instance per production mode, re-initialised at each new mass point
            k = point % 2
            mass = float(rng.uniform(*FLAT_MASS_RANGE))
            if k not in instances:
                instances[k] = make_pythia((_GGH, _VBF)[k], _subseed(seed, worker, point))
            py, boson, n_batch = instances[k], 25, EVENTS_PER_MASS_POINT
            reinit(py, higgs_decay(mass), _subseed(seed, worker, point))
        else:
            options = streams(process)
            k = point % len(options)
            settings, boson = options[k]
            if k not in instances:
                instances[k] = make_pythia(settings, _subseed(seed, worker, k))
            py, n_batch = instances[k], batch_size
        batch = py.nextBatch(n_batch, "skip")
        t1 = time.perf_counter()
        rec = flatten_batch(batch)
        cols = ditau_events.reconstruct(rec, py, rng, boson=boson, process=PROCESSES[process])
        n_new = min(len(cols["event"]), n_events - n_sel)
        cols = ditau_output.truncate(cols, n_new)
        cols["event"] = cols["event"] + 10_000_000 * worker + 100_000 * point
        chunks.append(cols)
        n_sel += n_new
        point += 1
        t2 = time.perf_counter()
        timing.pythia += t1 - t0
        timing.other += t2 - t1
        timing.generated += len(rec.offsets) - 1
        timing.selected += n_new
        if progress:
            progress(n_new)
    t0 = time.perf_counter()
    out = ditau_output.concatenate(chunks)
    timing.other += time.perf_counter() - t0
    return out


def generate_job(job):
    """`generate` for a worker process: job = (process, n_events, seed, worker, queue)."""
    process, n, seed, worker, queue = job
    return generate(process, n, seed, worker=worker, progress=queue.put if queue else None)


def _subseed(seed, worker, point):
    # distinct Pythia seeds per (seed, worker, point); Pythia accepts 0..900000000
    return (int(seed) * 1_000_003 + worker * 10_007 + point * 7 + 1) % 900_000_000
