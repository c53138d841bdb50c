"""Generation speed of the di-tau samples: Pythia8 alone vs detector, reconstruction and I/O.

    python -m evaluate.bench.generation --events 300 --processes h125 dy ttbar
    python -m evaluate.bench.generation --events 2000 --processes flat --tau-decays 1 8
    python -m evaluate.bench.generation --events 4000 --processes flat --tau-decays 1 8 \
        --smearings 1 4

With several `--tau-decays` values, each boson process runs once per value in the same run
(1 = Pythia's inline tau decays, the reference path; K > 1 = K decays of each generated tau
pair, data/generate/redecay.py), and the table ends with the selected-events-per-second ratio
of each K to K = 1 (issue goal: >= 5x for flat). With several `--smearings` values, every K
also runs with S detector passes per event (`data.generate --smearings`, an augmentation: the
passes share the generated event, see `data.generate.ditau.smeared_copies`); its rows count
every pass as a selected event and are compared with K = 1, S = 1 as well.

For each process, `data.generate.ditau.generate` runs in this one process (one core) with a
`Timing`, and the columns are written with `data.io.write_events` (timed as well). Pythia time
is `Pythia.init`/`reinit` plus `nextBatch`; "outside" is everything else: flattening the record,
truth navigation, detector response, jet clustering, MET, selection, column assembly, and the
ROOT write. The goal (issue): outside / Pythia <= 25%. Times are wall-clock; the cpu/wall
column (process CPU time / wall time) shows whether the core was shared, in which case rates
are low and should be rerun before quoting.
"""

import argparse
import json
import os
import tempfile
import time

from data.generate.ditau import PROCESSES, Timing, generate

GOAL = 0.25


def bench_process(process, n_events, seed, out_dir, tau_decays=1, smearings=1):
    """Time generation and writing of `n_events` selected events; returns a dict of numbers."""
    from data import io
    from data.generate.ditau_output import to_root_columns

    timing = Timing()
    start, cpu_start = time.perf_counter(), time.process_time()
    cols = generate(
        process, n_events, seed, timing=timing, tau_decays=tau_decays, smearings=smearings
    )
    t_gen = time.perf_counter() - start
    path = os.path.join(out_dir, f"{process}.root")
    t0 = time.perf_counter()
    io.write_events(path, to_root_columns(cols))
    t_io = time.perf_counter() - t0
    cpu_wall = (time.process_time() - cpu_start) / (time.perf_counter() - start)
    outside = timing.other + t_io
    total = timing.pythia + outside
    return dict(
        process=process,
        tau_decays=tau_decays,
        smearings=smearings,
        generated=timing.generated,
        selected=timing.selected,
        pythia_s=timing.pythia,
        detector_reco_s=timing.other,
        io_s=t_io,
        unaccounted_s=t_gen - timing.pythia - timing.other,
        generated_per_s=timing.generated / timing.pythia,
        selected_per_s=timing.selected / total,
        efficiency=timing.selected / max(timing.generated, 1),
        outside_share=outside / timing.pythia,
        goal_met=outside / timing.pythia <= GOAL,
        file_mb=os.path.getsize(path) / 1e6,
        cpu_wall=cpu_wall,
    )


def print_table(rows):
    head = (
        f"{'process':>8} {'K':>3} {'S':>2} {'generated':>9} {'selected':>8} {'eff':>5} "
        f"{'gen/s/core':>10} "
        f"{'sel/s/core':>10} {'pythia s':>8} {'det+reco s':>10} {'I/O s':>6} "
        f"{'outside/pythia':>14} {'<=25%':>5} {'cpu/wall':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['process']:>8} {r['tau_decays']:>3d} {r['smearings']:>2d} "
            f"{r['generated']:>9d} {r['selected']:>8d} "
            f"{r['efficiency']:>5.2f} "
            f"{r['generated_per_s']:>10.1f} {r['selected_per_s']:>10.1f} {r['pythia_s']:>8.2f} "
            f"{r['detector_reco_s']:>10.2f} {r['io_s']:>6.2f} {100 * r['outside_share']:>13.1f}% "
            f"{'yes' if r['goal_met'] else 'NO':>5} {r['cpu_wall']:>8.2f}"
        )
    print(
        "cpu/wall < 1: the core was shared with other work, so rates are low (the shares less so)"
    )
    base = {
        r["process"]: r["selected_per_s"]
        for r in rows
        if r["tau_decays"] == 1 and r["smearings"] == 1
    }
    for r in rows:
        k, s = r["tau_decays"], r["smearings"]
        if (k > 1 or s > 1) and r["process"] in base:
            ratio = r["selected_per_s"] / base[r["process"]]
            what = f"K = {k}" + (f", S = {s} (S passes counted as events)" if s > 1 else "")
            print(
                f"{r['process']}: {what} gives {ratio:.2f}x the selected events/s of inline "
                f"decays, one pass (goal >= 5x: {'met' if ratio >= 5 else 'NOT met'})"
            )


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.bench.generation", description=__doc__.splitlines()[0]
    )
    p.add_argument("--events", type=int, default=300, help="selected events per process")
    p.add_argument(
        "--processes",
        nargs="+",
        default=list(PROCESSES),
        choices=list(PROCESSES),
        help="processes to time (default: all)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--tau-decays",
        type=int,
        nargs="+",
        default=[1],
        help="tau decays per generated event to time (boson processes; 1 = inline)",
    )
    p.add_argument(
        "--smearings",
        type=int,
        nargs="+",
        default=[1],
        help="detector passes per generated event to time (1 = one, the reference)",
    )
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    if args.events < 1:
        p.error("--events must be >= 1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for process in args.processes:
            for k in args.tau_decays if process != "ttbar" else [1]:
                for s in args.smearings:
                    rows.append(bench_process(process, args.events, args.seed, tmp, k, s))
                    print(f"done {process} K={k} S={s}", flush=True)
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
