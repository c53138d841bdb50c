"""The batch loop shared by every sample: Pythia batches until enough events pass, timed."""

import time
from dataclasses import dataclass

from data.generate import ditau_output
from data.generate.pythia import flatten_batch


@dataclass
class Timing:
    """Wall time spent in Pythia (init + generation) and in everything else."""

    pythia: float = 0.0
    other: float = 0.0
    generated: int = 0
    selected: int = 0


def subseed(seed, worker, point):
    """Distinct Pythia seeds per (seed, worker, point); Pythia accepts 0..900000000."""
    return (int(seed) * 1_000_003 + worker * 10_007 + point * 7 + 1) % 900_000_000


def collect(next_batch, reconstruct, n_events, *, worker=0, timing=None, progress=None):
    """Generate batches until `n_events` events pass the selection.

    Args:
        next_batch: callable(point) -> a `Pythia.nextBatch` awkward array (timed as Pythia,
            so it may also (re)initialise Pythia).
        reconstruct: callable(FlatRecord) -> column dict of the selected events.
        n_events: events to keep.
        worker: worker index; event numbers are unique across workers and batches.
        timing: optional `Timing` to fill.
        progress: optional callable(n) called with the number of newly selected events.
    Returns:
        the concatenated column dict, exactly `n_events` long.
    """
    timing = timing if timing is not None else Timing()
    chunks, n_sel, point = [], 0, 0
    while n_sel < n_events:
        t0 = time.perf_counter()
        batch = next_batch(point)
        t1 = time.perf_counter()
        rec = flatten_batch(batch)
        cols = reconstruct(rec)
        n_new = min(len(cols["event"]), n_events - n_sel)
        cols = ditau_output.truncate(cols, n_new)
        # unique event numbers across workers (shards) and batches: worker, batch, index bits
        cols["event"] = cols["event"] + (worker << 40) + (point << 20)
        chunks.append(cols)
        n_sel += n_new
        point += 1
        timing.pythia += t1 - t0
        timing.other += time.perf_counter() - t1
        timing.generated += rec.n_events
        timing.selected += n_new
        if progress:
            progress(n_new)
    t0 = time.perf_counter()
    out = ditau_output.concatenate(chunks)
    timing.other += time.perf_counter() - t0
    return out


def run_job(job):
    """One generation job in a worker process: (generate, n, seed, worker, queue, out).

    Returns the columns, or writes them to `out` (a ROOT file) and returns the event count.
    """
    generate, n, seed, worker, queue, out = job
    cols = generate(n, seed, worker=worker, progress=queue.put)
    if out is None:
        return cols
    from data import io

    io.write_events(out, ditau_output.to_root_columns(cols))
    return len(cols["event"])
