"""`python -m data.generate <sample> ...`: generate an event sample and write it as ROOT.

Examples:
    python -m data.generate ditau --process h125 --events 2000 --seed 1 --out h125.root
    python -m data.generate ttbar-dilepton --events 2000 --seed 1 --out ttbar_dilepton.root
"""

import argparse
import functools
import multiprocessing as mp
import os
import sys

from data.errors import UserError, cli

SAMPLES = ("ditau", "ttbar-dilepton")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m data.generate", description=__doc__.split("\n")[0])
    p.add_argument("sample", choices=SAMPLES, help="sample family")
    p.add_argument(
        "--process", default=None, help="ditau: flat, h125, dy, ttbar or bsm350 (default h125)"
    )
    p.add_argument("--events", type=int, default=2000, help="selected events to write")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same file)")
    p.add_argument(
        "--out", default=None, help="output ROOT file (default <process>.root, ttbar_dilepton.root)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="parallel processes; the file depends on (seed, workers)",
    )
    p.add_argument(
        "--with-taus",
        action="store_true",
        help="ttbar-dilepton: also W -> tau nu (leptonic tau decays give the leptons)",
    )
    return p.parse_args(argv)


def _check(args):
    from data.generate.ditau import PROCESSES

    if args.sample != "ditau":
        if args.process is not None:
            raise UserError(f"--process applies to ditau only, not to {args.sample}")
        args.process = args.sample.replace("-", "_")
    elif args.with_taus:
        raise UserError("--with-taus applies to ttbar-dilepton only")
    elif args.process is None:
        args.process = "h125"
    if args.sample == "ditau" and args.process not in PROCESSES:
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
    # os.access says yes to root everywhere (e.g. /proc): probe by opening before generating
    existed = os.path.exists(out)
    try:
        with open(out, "ab"):
            pass
    except OSError as err:
        raise UserError(f"cannot write {out}: {err.strerror or err}") from None
    if not existed:
        os.remove(out)
    return out


def _sample(sample, process, with_taus):
    """(generate(n, seed, progress=...), worker function, job key, progress label) of a sample."""
    if sample == "ttbar-dilepton":
        from data.generate import ttbar_dilepton as mod

        generate = functools.partial(mod.generate, with_taus=with_taus)
        return generate, mod.generate_job, with_taus, "ttbar-dilepton" + " with taus" * with_taus
    from data.generate import ditau as mod

    return functools.partial(mod.generate, process), mod.generate_job, process, f"ditau {process}"


def run(process, n_events, seed, out, workers=1, progress=True, *, sample="ditau", with_taus=False):
    """Generate and write a sample (`process`: the di-tau process); returns the events written."""
    from tqdm import tqdm

    from data import io
    from data.generate.ditau_output import concatenate, to_root_columns

    generate, generate_job, key, label = _sample(sample, process, with_taus)
    bar = tqdm(total=n_events, unit="ev", desc=label, disable=not progress, file=sys.stderr)
    if workers == 1:
        cols = generate(n_events, seed, progress=bar.update)
    else:
        shares = [n_events // workers + (w < n_events % workers) for w in range(workers)]
        with mp.Manager() as manager, mp.get_context("spawn").Pool(workers) as pool:
            queue = manager.Queue()
            jobs = [(key, s, seed, w, queue) for w, s in enumerate(shares) if s > 0]
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


def cached(name, n_events, seed, cache, **run_kwargs):
    """Path of a generated sample in the `cache` folder, generating it first if needed.

    Args:
        name: file stem (e.g. the process), the path is `<cache>/<name>_seed<seed>_<n>.root`.
        n_events, seed: as for `run`.
        cache: folder of generated samples.
        run_kwargs: passed to `run` (process, sample, ...).
    """
    path = os.path.join(cache, f"{name}_seed{seed}_{n_events}.root")
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        print(f"generating {n_events} events into {path} (once; cached after)", file=sys.stderr)
        # the file content depends on the worker count; it is part of the run config
        run(
            n_events=n_events,
            seed=seed,
            out=path,
            workers=max(1, min(4, os.cpu_count() or 1)),
            **run_kwargs,
        )
    return path


@cli
def main(argv=None):
    args = parse_args(argv)
    out = _check(args)
    n = run(
        args.process,
        args.events,
        args.seed,
        out,
        args.workers,
        sample=args.sample,
        with_taus=args.with_taus,
    )
    print(f"wrote {n} events to {out}")


if __name__ == "__main__":
    main()
