"""`python -m data.generate <sample> ...`: generate an event sample and write it as ROOT.

Example:
    python -m data.generate ditau --process h125 --events 2000 --seed 1 --out h125.root
"""

import argparse
import multiprocessing as mp
import os
import sys

from data.errors import UserError, cli

SAMPLES = ("ditau",)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m data.generate", description=__doc__.split("\n")[0])
    p.add_argument("sample", choices=SAMPLES, help="sample family")
    p.add_argument("--process", default="h125",
                   help="ditau: flat, h125, dy, ttbar or bsm350 (default h125)")
    p.add_argument("--events", type=int, default=2000, help="selected events to write")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same file)")
    p.add_argument("--out", default=None, help="output ROOT file (default <process>.root)")
    p.add_argument("--workers", type=int, default=1,
                   help="parallel processes; the file depends on (seed, workers)")
    return p.parse_args(argv)


def _check(args):
    from data.generate.ditau import PROCESSES

    if args.process not in PROCESSES:
        raise UserError(f"unknown process '{args.process}' (choose from {', '.join(PROCESSES)})")
    if args.events <= 0:
        raise UserError(f"--events must be positive, got {args.events}")
    if args.workers <= 0 or args.workers > (os.cpu_count() or 1) * 4:
        raise UserError(f"--workers must be between 1 and {(os.cpu_count() or 1) * 4}")
    if args.seed < 0:
        raise UserError(f"--seed must be non-negative, got {args.seed}")
    out = args.out or f"{args.process}.root"
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise UserError(f"cannot write {out}: folder {folder} does not exist or is not writable")
    if os.path.isdir(out):
        raise UserError(f"cannot write {out}: it is a folder")
    return out


def run(process, n_events, seed, out, workers=1, progress=True):
    """Generate and write a di-tau sample; returns the number of events written."""
    from tqdm import tqdm

    from data import io
    from data.generate.ditau import generate, generate_job
    from data.generate.ditau_output import concatenate, to_root_columns

    bar = tqdm(total=n_events, unit="ev", desc=f"ditau {process}", disable=not progress,
               file=sys.stderr)
    if workers == 1:
        cols = generate(process, n_events, seed, progress=bar.update)
    else:
        shares = [n_events // workers + (w < n_events % workers) for w in range(workers)]
        with mp.Manager() as manager, mp.get_context("spawn").Pool(workers) as pool:
            queue = manager.Queue()
            jobs = [(process, s, seed, w, queue) for w, s in enumerate(shares) if s > 0]
            result = pool.map_async(generate_job, jobs)
            done = 0
            while done < n_events:
                step = queue.get()
                bar.update(step)
                done += step
            cols = concatenate(result.get())
    bar.close()
    io.write_events(out, to_root_columns(cols))
    return len(cols["event"])


@cli
def main(argv=None):
    args = parse_args(argv)
    out = _check(args)
    n = run(args.process, args.events, args.seed, out, args.workers)
    print(f"wrote {n} events to {out}")


if __name__ == "__main__":
    main()
