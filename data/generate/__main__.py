"""`python -m data.generate <sample> ...`: generate an event sample and write it as ROOT.

Examples:
    python -m data.generate ditau --process h125 --events 2000 --seed 1 --out h125.root
    python -m data.generate ttbar-dilepton --events 2000 --seed 1 --out ttbar_dilepton.root
    python -m data.generate fcctau --process ztautau --events 2000 --seed 1 --out ztautau.root
    # dileptonic ttbar at 14 TeV with 200 pileup (the minimum-bias library is cached once)
    python -m data.generate ttbar-pu --events 1000 --pileup 200 --seed 1 --out ttbar_pu.root
    python -m data.generate scouttau --process lowmass --events 1000 --seed 1 --out lowmass.root
    # 300k events as 60 independent seeded jobs of 5000 (flat_0000.root ... and
    # flat.manifest.json listing them), two at a time, each tau pair decayed 8 times:
    python -m data.generate ditau --process flat --events 300000 --shard-size 5000 \
        --tau-decays 8 --seed 7 --workers 2 --out cache/flat300k/flat.root
    # the same with 4 detector passes of every event (an augmentation, branch `smearing`;
    # training uses them with `python -m models.tpmt.fit --smearings 4`)
    python -m data.generate ditau --process flat --events 300000 --shard-size 20000 \
        --tau-decays 8 --smearings 4 --seed 7 --workers 2 --out cache/flat300k_s4/flat.root
"""

import argparse
import functools
import json
import math
import multiprocessing as mp
import os
import sys

from data import checks
from data.errors import UserError, cli
from data.generate.batches import run_job

SAMPLES = ("ditau", "ttbar-dilepton", "fcctau", "ttbar-pu", "scouttau")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m data.generate", description=__doc__.split("\n")[0])
    p.add_argument("sample", choices=SAMPLES, help="sample family")
    p.add_argument(
        "--process",
        default=None,
        help="ditau: flat, flatz, h125, dy, ttbar or bsm350 (default h125); fcctau: ztautau or zqq "
        "(default ztautau); scouttau: lowmass or minbias (zero bias; default lowmass)",
    )
    p.add_argument(
        "--events",
        type=int,
        default=2000,
        help=f"selected events to write (at most {checks.MAX_EVENTS:.0e})",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same file)")
    p.add_argument(
        "--out", default=None, help="output ROOT file (default <process>.root, ttbar_dilepton.root)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="parallel processes; a single file depends on (seed, workers), shards do not",
    )
    p.add_argument(
        "--shard-size",
        type=int,
        default=0,
        help="split the request into independent seeded jobs of this many events, one ROOT "
        "file each (OUT_0000.root, ...) plus OUT.manifest.json; 0 = one file",
    )
    p.add_argument(
        "--tau-decays",
        type=int,
        default=1,
        help="ditau boson processes: decays of each generated tau pair (training samples; "
        "copies share the rest of the event, see data/generate/redecay.py); 1 = inline",
    )
    p.add_argument(
        "--smearings",
        type=int,
        default=1,
        help="ditau: detector passes per generated event, written as copies with a `smearing` "
        "branch (an augmentation that models.tpmt.fit uses only with --smearings); 1 = none",
    )
    p.add_argument(
        "--with-taus",
        action="store_true",
        help="ttbar-dilepton: also W -> tau nu (leptonic tau decays give the leptons)",
    )
    p.add_argument(
        "--pileup",
        type=float,
        default=200.0,
        help="ttbar-pu, scouttau: mean pileup interactions (Poisson), 0 = none (default 200)",
    )
    p.add_argument(
        "--minbias-events",
        type=int,
        default=100_000,
        help="ttbar-pu, scouttau: size of the cached minimum-bias library (default 100000)",
    )
    p.add_argument(
        "--minbias-seed",
        type=int,
        default=1,
        help="ttbar-pu, scouttau: seed of the minimum-bias library (another one for test samples)",
    )
    p.add_argument(
        "--cache",
        default="cache",
        help="ttbar-pu, scouttau: folder of the minimum-bias library (cache)",
    )
    return p.parse_args(argv)


def _check(args):
    from data.generate.ditau import PROCESSES
    from data.generate.fcctau import PROCESSES as FCC_PROCESSES

    if args.sample == "scouttau":
        from data.generate.scouttau import PROCESSES as SCOUT_PROCESSES

        args.process = args.process or "lowmass"
        if args.process not in SCOUT_PROCESSES:
            raise UserError(
                f"unknown scouttau process '{args.process}' "
                f"(choose from {', '.join(SCOUT_PROCESSES)})"
            )
    if args.sample == "fcctau":
        args.process = args.process or "ztautau"
        if args.process not in FCC_PROCESSES:
            raise UserError(
                f"unknown fcctau process '{args.process}' (choose from {', '.join(FCC_PROCESSES)})"
            )
        if args.with_taus:
            raise UserError("--with-taus applies to ttbar-dilepton only")
    elif args.sample == "scouttau":
        pass
    elif args.sample != "ditau":
        if args.process is not None:
            raise UserError(f"--process applies to ditau only, not to {args.sample}")
        args.process = args.sample.replace("-", "_")
    elif args.with_taus:
        raise UserError("--with-taus applies to ttbar-dilepton only")
    elif args.process is None:
        args.process = "h125"
    if args.sample == "ditau" and args.process not in PROCESSES:
        raise UserError(f"unknown process '{args.process}' (choose from {', '.join(PROCESSES)})")
    if args.sample in ("ttbar-pu", "scouttau"):
        if not 0 <= args.pileup <= 1000:
            raise UserError(f"--pileup must be between 0 and 1000, got {args.pileup}")
        if args.minbias_events <= 0:
            raise UserError(f"--minbias-events must be positive, got {args.minbias_events}")
        if args.minbias_seed < 0:
            raise UserError(f"--minbias-seed must be non-negative, got {args.minbias_seed}")
    if args.events <= 0:
        raise UserError(f"--events must be positive, got {args.events}")
    if args.events > checks.MAX_EVENTS:
        raise UserError(
            f"--events must be at most {checks.MAX_EVENTS:.0e} (about 10^4 CPU hours of "
            f"generation), got {args.events}; split bigger requests by seed"
        )
    if args.workers <= 0 or args.workers > (os.cpu_count() or 1) * 4:
        raise UserError(f"--workers must be between 1 and {(os.cpu_count() or 1) * 4}")
    if args.seed < 0:
        raise UserError(f"--seed must be non-negative, got {args.seed}")
    if args.shard_size < 0:
        raise UserError(f"--shard-size must be non-negative, got {args.shard_size}")
    if not 1 <= args.tau_decays <= 100:
        raise UserError(f"--tau-decays must be between 1 and 100, got {args.tau_decays}")
    if args.tau_decays > 1 and (args.sample != "ditau" or args.process == "ttbar"):
        raise UserError("--tau-decays applies to the ditau boson processes (not ttbar)")
    from data.generate.ditau import MAX_SMEARINGS

    if not 1 <= args.smearings <= MAX_SMEARINGS:
        raise UserError(f"--smearings must be between 1 and {MAX_SMEARINGS}, got {args.smearings}")
    if args.smearings > 1 and args.sample != "ditau":
        raise UserError("--smearings applies to the ditau samples")
    out = args.out or f"{args.process}.root"
    checks.writable_file(out)
    if args.sample in ("ttbar-pu", "scouttau") and args.pileup > 0:
        checks.writable_dir(args.cache, "--cache")
    return out


def _sample(sample, process, with_taus, tau_decays=1, pileup=None, smearings=1):
    """(generate(n, seed, *, worker, progress), progress label) of a sample."""
    if sample in ("ttbar-pu", "scouttau"):
        from data.generate import pileup as pu
        from data.generate import scouttau, ttbar_pu

        opts = dict(pileup or {})
        if opts.get("mu", 200) > 0:  # build the library once here, not in every worker
            pu.load_library(
                opts.get("cache", "cache"),
                opts.get("library_events", pu.DEFAULT_LIBRARY_EVENTS),
                opts.get("library_seed", 1),
            )
        label = f"PU{opts.get('mu', 200):g}"
        if sample == "scouttau":
            return functools.partial(scouttau.generate, process, **opts), f"{process} {label}"
        return functools.partial(ttbar_pu.generate, **opts), f"ttbar {label}"
    if sample == "fcctau":
        from data.generate import fcctau

        return functools.partial(fcctau.generate, process), f"fcctau {process}"
    if sample == "ttbar-dilepton":
        from data.generate import ttbar_dilepton as mod

        generate = functools.partial(mod.generate, with_taus=with_taus)
        return generate, "ttbar-dilepton" + " with taus" * with_taus
    from data.generate import ditau as mod

    generate = functools.partial(mod.generate, process, tau_decays=tau_decays, smearings=smearings)
    return generate, f"ditau {process}"


def _pool_map(jobs, n_events, workers, bar):
    """Run `batches.run_job` over `jobs` (queue slot filled here) in `workers` processes."""
    with mp.Manager() as manager, mp.get_context("spawn").Pool(workers) as pool:
        queue = manager.Queue()
        result = pool.map_async(run_job, [(*j[:4], queue, j[5]) for j in jobs], chunksize=1)
        done = 0
        while done < n_events and not result.ready():
            try:
                step = queue.get(timeout=1.0)
            except Exception:  # queue.Empty: poll again (a failed job ends the wait)
                continue
            bar.update(step)
            done += step
        return result.get()  # re-raises a job's exception here


def run(
    process,
    n_events,
    seed,
    out,
    workers=1,
    progress=True,
    *,
    sample="ditau",
    with_taus=False,
    tau_decays=1,
    pileup=None,
    smearings=1,
):
    """Generate and write a sample (`process`: the di-tau process); returns the events written.

    `pileup`: ttbar-pu options (mu, library_events, library_seed, cache) for `ttbar_pu.generate`.
    """
    from tqdm import tqdm

    from data import io
    from data.generate.ditau_output import concatenate, to_root_columns

    generate, label = _sample(sample, process, with_taus, tau_decays, pileup, smearings)
    bar = tqdm(total=n_events, unit="ev", desc=label, disable=not progress, file=sys.stderr)
    if workers == 1:
        cols = generate(n_events, seed, progress=bar.update)
    else:
        shares = [n_events // workers + (w < n_events % workers) for w in range(workers)]
        jobs = [(generate, s, seed, w, None, None) for w, s in enumerate(shares) if s > 0]
        cols = concatenate(_pool_map(jobs, n_events, workers, bar))
    bar.close()
    io.write_events(out, to_root_columns(cols))
    return len(cols["event"])


def shard_paths(out, n_shards):
    """File names of the shards of `out` (OUT_0000.root, ...) and of its manifest."""
    stem = out[:-5] if out.endswith(".root") else out
    return [f"{stem}_{k:04d}.root" for k in range(n_shards)], f"{stem}.manifest.json"


def run_sharded(
    process,
    n_events,
    seed,
    out,
    shard_size,
    workers=1,
    progress=True,
    *,
    sample="ditau",
    with_taus=False,
    tau_decays=1,
    pileup=None,
    smearings=1,
):
    """Generate `n_events` as independent jobs of `shard_size` events, one file each.

    Job k is generation worker k of `seed` (its own random streams), so every shard is
    reproducible on its own and does not depend on `workers`. Shards that exist already (from
    an interrupted run with the same settings, as the manifest says) are kept.
    Returns:
        the manifest path.
    """
    from tqdm import tqdm

    generate, label = _sample(sample, process, with_taus, tau_decays, pileup, smearings)
    n_shards = math.ceil(n_events / shard_size)
    sizes = [min(shard_size, n_events - k * shard_size) for k in range(n_shards)]
    paths, manifest = shard_paths(out, n_shards)
    settings = dict(
        sample=sample,
        process=process,
        seed=seed,
        shard_size=shard_size,
        with_taus=with_taus,
        tau_decays=tau_decays,
        smearings=smearings,
    )
    if pileup:
        settings["pileup"] = {k: v for k, v in pileup.items() if k != "cache"}
    done = _done_shards(manifest, settings, paths, sizes)
    todo = [k for k in range(n_shards) if k not in done]
    bar = tqdm(total=n_events, unit="ev", desc=label, disable=not progress, file=sys.stderr)
    bar.update(sum(sizes[k] for k in done))
    jobs = [(generate, sizes[k], seed, k, None, paths[k]) for k in todo]
    for k, n in zip(todo, _pool_map(jobs, sum(sizes[k] for k in todo), workers, bar)):
        done[k] = n
    bar.close()
    files = [
        dict(path=os.path.basename(paths[k]), events=sizes[k], worker_stream=k)
        for k in range(n_shards)
    ]
    with open(manifest, "w") as f:
        json.dump(dict(settings, events=n_events, files=files), f, indent=1)
    return manifest


def _done_shards(manifest, settings, paths, sizes):
    """Shards already written by an earlier run with the same settings (resumable requests)."""
    if not os.path.exists(manifest):
        return {}
    with open(manifest) as f:
        old = {"smearings": 1, **json.load(f)}  # manifests from before the option: one pass
    if any(old.get(k) != v for k, v in settings.items()):
        return {}
    return {k: sizes[k] for k, p in enumerate(paths) if os.path.exists(p)}


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
    options = dict(
        sample=args.sample,
        with_taus=args.with_taus,
        tau_decays=args.tau_decays,
        smearings=args.smearings,
    )
    if args.sample in ("ttbar-pu", "scouttau"):
        options["pileup"] = dict(
            mu=args.pileup,
            library_events=args.minbias_events,
            library_seed=args.minbias_seed,
            cache=args.cache,
        )
    if args.shard_size:
        manifest = run_sharded(
            args.process, args.events, args.seed, out, args.shard_size, args.workers, **options
        )
        print(f"wrote {args.events} events in shards listed in {manifest}")
        return
    n = run(args.process, args.events, args.seed, out, args.workers, **options)
    print(f"wrote {n} events to {out}")


if __name__ == "__main__":
    main()
