"""Generation speed of dileptonic ttbar at PU200 (data/generate/ttbar_pu.py), by stage.

    python -m evaluate.bench.pileup_generation --events 200 --workers 2

Part 1 runs `ttbar_pu.generate` in this process (one core) with the minimum-bias library
already cached and loaded, and times each stage: Pythia (hard scatter), pileup overlay,
particle flow + vertexing, PUPPI weights and the ROOT write. Part 2 (with --workers > 1) runs
the CLI, `python -m data.generate ttbar-pu --workers W`, and reports its wall-clock events/s
on W cores (process start-up and each worker's library load included). The cpu/wall column of
part 1 shows whether the core was shared; rerun on an idle machine before quoting.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from data.errors import UserError, cli


def bench_stages(n_events, seed, mu, cache, library_events, out_dir):
    from data import io
    from data.generate import pileup, ttbar_pu
    from data.generate.ditau_output import to_root_columns

    t0 = time.perf_counter()
    pileup.load_library(cache, library_events, 1)
    t_lib = time.perf_counter() - t0
    timing = ttbar_pu.Timing()
    start, cpu0 = time.perf_counter(), time.process_time()
    cols = ttbar_pu.generate(
        n_events, seed, mu=mu, library_events=library_events, cache=cache, timing=timing
    )
    t1 = time.perf_counter()
    io.write_events(os.path.join(out_dir, "bench.root"), to_root_columns(cols))
    t_io = time.perf_counter() - t1
    total = time.perf_counter() - start
    stages = dict(
        pythia=timing.pythia,
        overlay=timing.overlay,
        particle_flow=timing.reco,
        puppi=timing.puppi,
        root_write=t_io,
    )
    stages["other"] = total - sum(stages.values())
    return dict(
        events=n_events,
        mu=mu,
        candidates_per_event=float(cols["PFCand"]["_counts"].mean()),
        library_load_s=t_lib,
        total_s=total,
        events_per_s_one_core=n_events / total,
        cpu_over_wall=(time.process_time() - cpu0) / total,
        shares={k: v / total for k, v in stages.items()},
        seconds=stages,
    )


def bench_cli(n_events, workers, mu, cache, library_events, out_dir):
    cmd = [
        sys.executable, "-m", "data.generate", "ttbar-pu", "--events", str(n_events),
        "--pileup", str(mu), "--seed", "3", "--workers", str(workers), "--cache", cache,
        "--minbias-events", str(library_events), "--out", os.path.join(out_dir, "cli.root"),
    ]  # fmt: skip
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return dict(events=n_events, workers=workers, wall_s=wall, events_per_s=n_events / wall)


@cli
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m evaluate.bench.pileup_generation")
    p.add_argument("--events", type=int, default=200, help="events of the one-core part")
    p.add_argument("--workers", type=int, default=2, help="CLI part on this many cores (1: skip)")
    p.add_argument("--pileup", type=float, default=200.0)
    p.add_argument("--cache", default="cache", help="folder of the minimum-bias library")
    p.add_argument("--minbias-events", type=int, default=100_000)
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    if args.events <= 0 or args.workers <= 0:
        raise UserError("--events and --workers must be positive")
    with tempfile.TemporaryDirectory() as tmp:
        stages = bench_stages(args.events, 1, args.pileup, args.cache, args.minbias_events, tmp)
        multi = None
        if args.workers > 1:
            multi = bench_cli(
                args.events * args.workers, args.workers, args.pileup, args.cache,
                args.minbias_events, tmp,
            )  # fmt: skip
    print(
        f"ttbar + PU{args.pileup:g}: {stages['candidates_per_event']:.0f} candidates/event; "
        f"one core: {stages['events_per_s_one_core']:.1f} events/s "
        f"(cpu/wall {stages['cpu_over_wall']:.2f})"
    )
    for k, v in stages["shares"].items():
        print(f"  {k:>14}: {100 * v:5.1f}%  ({stages['seconds'][k]:.1f} s)")
    if multi:
        print(
            f"CLI on {multi['workers']} cores: {multi['events']} events in {multi['wall_s']:.1f} s"
            f" = {multi['events_per_s']:.1f} events/s (start-up and library loads included)"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(one_core=stages, cli=multi), f, indent=1)


if __name__ == "__main__":
    main()
