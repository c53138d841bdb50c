"""Streaming-loader throughput against training throughput, per model: does the loader keep up?

    python -m evaluate.bench.loader_throughput [--models tpmt partau lgatr metperceiver scouttau]
        [--events 3000] [--pu-events 200] [--out runs/bench_loader]

For each model a small sample is generated with the toolkit's generators (once, cached in
`--cache`, default cache/bench_loader: `--events` events of the light samples, `--pu-events`
PU200 events for the MET Perceiver and ScoutTau, overlaid from a `--library-events` minimum-bias
library). The training stream is built by the fit's own functions with the fit's defaults
(`make_config` and `training_stream` / `training_jets` / `training_events` /
`training_candidates`: chunks, scan, split, weights, mirrored copies), then:

- loader: one epoch of batches is read from the ROOT files (`ChunkStream.__getitem__` in order,
  as `model.fit` asks for them: reading, selection, clustering, shuffling, transform), after
  the scan has put the files in the page cache; training examples per second (TPMT's mirrored
  copies count as examples, as they do in training);
- training: the default preset model, built and compiled as the fit does (XLA on TensorFlow
  where the fit uses it), runs `train_on_batch` on full batches of that epoch; one warm-up step
  (tracing, compilation) is not timed, then `--steps` steps are.

ScoutTau's fit keeps each chunk's clustered candidates on disk after the scan has read them
(`data.stream.ChunkCache`, its default), so its epochs read those; the scan's own seconds (the
one pass that reads and clusters the ROOT files, before the first epoch) are in the last column.

Prints a table (model, loader ex/s, training ex/s, loader / training, "ok" when the loader is at
least as fast, batch size, CPU over wall seconds of the loader and of the training steps, scan
seconds) and
writes OUT/loader_throughput.json. Keras asks a `PyDataset` with one worker for its batches
between training steps, so an epoch takes the sum of both times: a loader at k times the
training rate costs 1 / (k + 1) of the epoch. Figures depend on the machine and its
load: a cpu/wall well under 1 (loader, one thread) or under the core count (training) means the
cores were shared; rerun on an idle machine before quoting.
"""

import argparse
import json
import os
import sys
import time

from data.errors import UserError, cli

MODELS = ("tpmt", "partau", "lgatr", "metperceiver", "scouttau")
UNITS = {  # what one training example is
    "tpmt": "events",
    "partau": "jets",
    "lgatr": "events",
    "metperceiver": "events",
    "scouttau": "candidates",
}


def sample_files(name, events, pu_events, cache, *, seed=1, library_events=2000):
    """The generated sample of a model (made once into `cache`): a list of ROOT files."""
    from data.generate.__main__ import cached

    pileup = dict(mu=200.0, library_events=library_events, library_seed=1, cache=cache)
    if name == "tpmt":
        return [cached("flat", events, seed, cache, process="flat")]
    if name == "partau":  # the fit's default mixture: 2/3 Z -> tautau, 1/3 Z -> qq
        n = {"ztautau": events - events // 3, "zqq": events // 3}
        return [cached(p, k, seed, cache, sample="fcctau", process=p) for p, k in n.items()]
    if name == "lgatr":
        return [
            cached("ttbar_dilepton", events, seed, cache, process=None, sample="ttbar-dilepton")
        ]
    if name == "metperceiver":
        return [
            cached(
                "ttbar_pu", pu_events, seed, cache, process=None, sample="ttbar-pu",
                pileup=pileup,
            )
        ]  # fmt: skip
    if name == "scouttau":
        return [
            cached(
                "lowmass", pu_events, seed, cache, sample="scouttau", process="lowmass",
                pileup=pileup,
            )
        ]  # fmt: skip
    raise UserError(f"unknown model '{name}' (choose from {', '.join(MODELS)})")


def _jit(args):
    import keras

    return True if keras.backend.backend() == "tensorflow" and not args.no_jit else "auto"


def build(name, files):
    """(training stream, model factory, preset) of a model's fit with its default arguments."""
    import importlib

    from data import schemas

    fit = importlib.import_module(f"models.{name}.fit")
    args = fit.parse_args(["--data", *files, "--quiet"])
    config = fit.make_config(args)
    if name == "tpmt":  # as main_impl: the default flat strategy, not parametric
        from models.tpmt.model import build_model, compile_model

        train, _, scan, _ = fit.training_stream(
            files,
            schemas.reading_options(args),
            channel=args.channel,
            drop_nonfinite=args.drop_nonfinite,
            chunk_events=args.chunk_events,
            batch_size=config.batch_size,
            seed=args.seed,
            flat_weights=args.strategy == "flat" and not args.no_flat_weights,
            mirrored=not args.no_mirror,
        )
        stats = fit.input_stats(scan.subset[0])
        return (
            train,
            lambda: compile_model(build_model(config, stats), config),
            args.preset,
        )
    if name == "partau":
        from models.partau.model import build_model

        train, _, _ = fit.training_jets(
            files, config, chunk_events=args.chunk_events, seed=args.seed
        )
        return (
            train,
            lambda: fit.compile_model(build_model(config), config, len(train), _jit(args)),
            args.preset,
        )
    if name == "lgatr":
        from models.lgatr.model import build_model

        train, _ = fit.training_events(
            files,
            config,
            chunk_events=args.chunk_events,
            seed=args.seed,
            drop_nonfinite=args.drop_nonfinite,
            reading=schemas.reading_options(args),
        )
        return train, lambda: fit.compile_model(build_model(config), config), args.preset
    if name == "metperceiver":
        from models.metperceiver.model import build_model

        train, _, _ = fit.training_stream(
            files,
            config,
            chunk_events=args.chunk_events,
            max_val_events=args.max_val_events,
            seed=args.seed,
            progress=False,
        )
        return (
            train,
            lambda: fit.compile_model(build_model(config), config, _jit(args)),
            args.preset,
        )
    from models.scouttau.model import build_model

    train, _, _ = fit.training_candidates(files, args, config.batch_size)

    def make():
        model = build_model(config)
        fit.compile_transformer(model, config, _jit(args))
        return model

    return train, make, args.preset


def batch_size_of(batch):
    """Examples in a batch ((x, y[, w]) with nested dicts of arrays)."""
    first = batch[1]
    while isinstance(first, dict):
        first = next(iter(first.values()))
    return len(first)


class _Clock:
    """Wall and process CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def loader_rate(stream, keep=10):
    """Reads one epoch of `stream` in order.

    Returns:
        (examples/s, examples, clock, the first `keep` full batches); clock.wall and clock.cpu
        are the seconds it took.
    """
    stream.on_epoch_end()  # a fresh epoch: nothing in the stream's buffer cache
    kept, n = [], 0
    with _Clock() as clock:
        for i in range(len(stream)):
            batch = stream[i]
            size = batch_size_of(batch)
            n += size
            if len(kept) < keep and size == stream.batch_size:
                kept.append(batch)
    return n / clock.wall, n, clock, kept


def training_rate(model, batches, steps):
    """Examples/s of `steps` `train_on_batch` calls on `batches` (cycled) after one warm-up
    step (tracing, compilation); returns (examples/s, clock of the timed steps, warm-up s)."""

    def step(batch):
        x, y, *w = batch
        model.train_on_batch(x, y, sample_weight=w[0] if w else None)

    with _Clock() as warmup:
        step(batches[0])
    with _Clock() as clock:
        for i in range(steps):
            step(batches[i % len(batches)])
    return steps * batch_size_of(batches[0]) / clock.wall, clock, warmup.wall


def measure(name, files, steps=10):
    """The figures of one model: loader and training examples/s and their ratio."""
    import keras

    start = time.perf_counter()
    stream, make_model, preset = build(name, files)
    scan_s = time.perf_counter() - start
    load, n, load_clock, batches = loader_rate(stream, keep=max(1, min(steps, 10)))
    if not batches:
        raise UserError(f"{name}: no full batch of {stream.batch_size} in the sample (more events)")
    model = make_model()
    train, train_clock, warmup_s = training_rate(model, batches, steps)
    out = {
        "unit": UNITS[name],
        "preset": preset,
        "files": files,
        "batch_size": stream.batch_size,
        "chunks": len(stream.chunks),
        "buffer_chunks": stream.buffer_chunks,
        "parameters": int(model.count_params()),
        "scan_s": scan_s,
        "epoch_examples": n,
        "loader_s": load_clock.wall,
        "loader_cpu_over_wall": load_clock.cpu / load_clock.wall,
        "loader_per_s": load,
        "train_steps": steps,
        "train_s": train_clock.wall,
        "train_cpu_over_wall": train_clock.cpu / train_clock.wall,
        "warmup_s": warmup_s,
        "train_per_s": train,
        "ratio": load / train,
        "ok": bool(load >= train),
    }
    keras.backend.clear_session()
    return out


def _seconds(value):
    """A scan time for the table; rows measured before the column existed have none."""
    return "" if value is None else f"{value:.1f}"


def table(results):
    """Markdown table of `measure` results."""
    lines = [
        "| model | loader ex/s | training ex/s | loader / training | ok | batch | cpu/wall "
        "| scan s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} ({r['unit']}) | {r['error']} | | | | | | |")
            continue
        lines.append(
            f"| {name} ({r['unit']}) | {r['loader_per_s']:,.0f} | {r['train_per_s']:,.0f} | "
            f"{r['ratio']:.1f} | {'ok' if r['ok'] else 'SLOW'} | {r['batch_size']} | "
            f"{r['loader_cpu_over_wall']:.2f}, {r['train_cpu_over_wall']:.2f} | "
            f"{_seconds(r.get('scan_s'))} |"
        )
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.bench.loader_throughput", description=__doc__.split("\n")[0]
    )
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--events", type=int, default=3000, help="events of the light samples")
    p.add_argument(
        "--pu-events", type=int, default=200, help="PU200 events (MET Perceiver, ScoutTau)"
    )
    p.add_argument(
        "--library-events", type=int, default=2000, help="minimum-bias library of the PU200 events"
    )
    p.add_argument("--steps", type=int, default=10, help="timed training steps per model")
    p.add_argument("--cache", default="cache/bench_loader", help="folder of generated samples")
    p.add_argument("--out", default="runs/bench_loader", help="folder of loader_throughput.json")
    return p.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    for flag in ("events", "pu_events", "library_events", "steps"):
        if getattr(args, flag) <= 0:
            raise UserError(f"--{flag.replace('_', '-')} must be positive")
    import keras

    import models

    models.register()
    results = {}
    for name in args.models:
        files = sample_files(
            name, args.events, args.pu_events, args.cache, library_events=args.library_events
        )
        print(f"{name}: {', '.join(files)}", file=sys.stderr)
        try:
            results[name] = r = measure(name, files, args.steps)
        except UserError as err:  # e.g. too small a sample for one batch: the others go on
            results[name] = {"unit": UNITS[name], "error": str(err)}
            print(f"{name}: {err}", file=sys.stderr)
            continue
        print(
            f"{name}: loader {r['loader_per_s']:,.0f} {r['unit']}/s ({r['epoch_examples']} in "
            f"{r['loader_s']:.1f} s), training {r['train_per_s']:,.0f} {r['unit']}/s "
            f"(warm-up {r['warmup_s']:.1f} s)",
            file=sys.stderr,
        )
    print(table(results))
    print(f"backend {keras.backend.backend()}, {os.cpu_count()} CPU cores")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "loader_throughput.json")
    summary = {
        "command": " ".join(
            [
                "python -m evaluate.bench.loader_throughput",
                *(sys.argv[1:] if argv is None else argv),
            ]
        ),
        "backend": keras.backend.backend(),
        "cpu_count": os.cpu_count(),
        "models": results,
    }
    with open(path, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
