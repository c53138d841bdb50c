"""`python -m models.lgatr.fit`: train L-GATr (or the plain transformer) on dilepton ttbar.

With no arguments: generate (or reuse) the default dilepton ttbar sample in cache/ttbar, train
the `default` preset and write lgatr.keras into a new run folder runs/lgatr/fit-<time>/;
`--model plain` trains the plain transformer of about the same size into plain.keras. The
harness outputs (run_config.json, history.csv, train_summary.json) go to OUT/<model>/. A folder
with a model card (saved_models/lgatr) is written only with `--overwrite`. `--data` takes files,
globs and generation manifests; the training events are streamed from them in chunks
(data/stream.py), so the sample may exceed memory, and 20% of every chunk's events are held out
for validation (at most 50k kept in memory).

Examples:
    python -m models.lgatr.fit
    python -m models.lgatr.fit --model plain
    python -m models.lgatr.fit --data my_ttbar.root --preset large --mass-weight 0.1
    python -m models.lgatr.fit --out saved_models/lgatr --overwrite    # replace the shipped one
"""

import argparse
import dataclasses
import functools
import json
import os
import shlex
import sys
import time

from data import checks
from data.errors import UserError, cli
from data.generate.__main__ import cached

INIT_MODELS = {"lgatr": "L-GATr", "plain": "plain transformer"}  # model -> checks.MODEL_NAMES
MODELS = tuple(INIT_MODELS)
DEFAULT_EVENTS = 20000  # ~5 min of generation with 2 workers
CHUNK_EVENTS = 5000  # events read at a time from a file (--chunk-events)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m models.lgatr.fit", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--preset",
        default="default",
        help="small (9k parameters), default (35k), seed (178k), large (540k)",
    )
    p.add_argument("--model", default="lgatr", choices=MODELS, help="L-GATr or plain transformer")
    p.add_argument(
        "--data",
        nargs="+",
        default=None,
        help="training ROOT files, globs or *.manifest.json (default: generated sample)",
    )
    p.add_argument(
        "--events", type=int, default=None, help=f"generated events (default {DEFAULT_EVENTS})"
    )
    p.add_argument(
        "--chunk-events",
        type=int,
        default=CHUNK_EVENTS,
        help="events read at a time from a file; 4 chunks are shuffled together",
    )
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: preset)")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time budget")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--mass-weight", type=float, default=None, help="weight of the m_tt loss term")
    from models.lgatr.config import CHOICES

    for field, help_text in (
        ("output", "top output: on shell or raw four-vectors"),
        ("loss", "loss (see models/lgatr/losses.py)"),
        ("spurions", "symmetry breaking"),
        ("beam_spurion", "beam spurion: x-y plane bivector or a beam vector"),
    ):
        p.add_argument(
            "--" + field.replace("_", "-"), default=None, choices=CHOICES[field], help=help_text
        )
    p.add_argument("--seed", type=int, default=1, help="random seed (sample, split, weights)")
    checks.add_out_arguments(p, "lgatr")
    p.add_argument("--cache", default="cache/ttbar", help="folder of generated samples")
    p.add_argument("--drop-nonfinite", action="store_true", help="drop events with NaN/inf")
    p.add_argument(
        "--init-from",
        default=None,
        help="start from the weights of a trained .keras of the same model and preset "
        "(continue a training with more epochs or another learning rate)",
    )
    p.add_argument(
        "--no-jit",
        action="store_true",
        help="train without XLA (jit_compile); XLA is on by default on TensorFlow, where the "
        "large preset trains 1.5x faster on CPU (evaluate.bench.lgatr_reference_speed); "
        "TF_ENABLE_ONEDNN_OPTS=1 in the environment also turns TensorFlow's oneDNN kernels "
        "on (off by default, so reruns give the same numbers), another 1.6x",
    )
    p.add_argument("--quiet", action="store_true", help="no per-epoch log lines")
    p.add_argument(
        "--restart",
        action="store_true",
        help="discard the backup of an interrupted run and start afresh (by default the same "
        "command resumes it)",
    )
    from data import schemas

    schemas.add_arguments(p, working_points=True)
    from models import distribute

    distribute.add_arguments(p)
    return p.parse_args(argv)


def make_config(args):
    """The preset with the CLI overrides and the loader's token and feature lists."""
    from data.lgatr import MAX_JETS, SCALAR_FEATURES, tokens
    from models.lgatr.config import get_config

    fields = ("epochs", "batch_size", "learning_rate", "mass_weight")
    fields += ("output", "loss", "spurions", "beam_spurion")
    overrides = {f: getattr(args, f, None) for f in fields}  # callers may pass fewer fields
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        config = get_config(
            args.preset, objects=tokens(MAX_JETS), scalar_features=SCALAR_FEATURES, **overrides
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    if not (config.epochs > 0 and config.batch_size > 0 and config.learning_rate > 0):
        raise UserError("--epochs, --batch-size and --learning-rate must be positive")
    if not config.mass_weight >= 0:
        raise UserError(f"--mass-weight must be non-negative, got {config.mass_weight}")
    return config


def check_inputs(config, inputs):
    """The config's token count and scalar width must match the loaded arrays."""
    n_tok, n_sc = inputs["scalars"].shape[1:]
    if (config.n_objects, config.n_scalar) != (n_tok, n_sc) or inputs["fourvectors"].shape[1:] != (
        n_tok,
        4,
    ):
        raise ValueError(
            f"config expects {config.n_objects} tokens x {config.n_scalar} scalars, the loader "
            f"gives {n_tok} x {n_sc}"
        )


def load_chunk(chunk, *, drop_nonfinite=False, reading=None):
    """(inputs, targets) of one chunk of a training file (`data.lgatr.load` of its range)."""
    from data.lgatr import load

    d = load(
        chunk.path,
        drop_nonfinite=drop_nonfinite,
        require_truth=True,
        entries=(chunk.start, chunk.stop),
        **(reading or {}),
    )
    if d["targets"] is None:
        raise UserError(f"{chunk.path} has no generator truth (GenTop_*): cannot train on it")
    return d["inputs"], d["targets"]


def training_events(
    files,
    config,
    *,
    chunk_events=CHUNK_EVENTS,
    seed=1,
    drop_nonfinite=False,
    reading=None,
    progress=False,
    plan=None,
):
    """The streamed training events and the in-memory validation events (fit and search);
    with a distributed `plan` (models/distribute.py) this process's shard of the chunks.

    Returns:
        (train, val): a `data.stream.ChunkStream` of (inputs, targets) batches and the
        validation (inputs, targets), 20% of every chunk's events (at most 50k).
    Raises:
        UserError: fewer than 10 training events, or none for validation.
    """
    from data import lgatr, stream
    from models import distribute

    plan = plan or distribute.Plan()
    lgatr.check_branches(files[0], require_truth=True, **(reading or {}))  # before the scan
    chunks = stream.make_chunks(files, chunk_events)
    loader = functools.partial(load_chunk, drop_nonfinite=drop_nonfinite, reading=reading)
    scan = plan.scan(chunks, loader, seed=seed, val_fraction=0.2, progress=progress)
    check_inputs(config, scan.subset[0])
    n_train = int(sum(scan.counts))
    n_val = 0 if scan.validation is None else len(scan.validation[1]["tops"])
    if n_train < 10 or n_val < 1:
        raise UserError(
            f"only {n_train} training and {n_val} validation events in the training files"
        )
    train = stream.ChunkStream(
        plan.shard(chunks), scan.counts, loader, config.batch_size, seed=seed, val_fraction=0.2
    )
    return train, plan.finish(train, scan.validation, config.batch_size)


def compile_model(model, config, jit_compile="auto"):
    """Adam + the config's loss (PhysicalTopLoss or TopReconstructionLoss), with each loss
    term logged as a metric; `jit_compile` as in `keras.Model.compile` ("auto": no XLA on a
    CPU-only TensorFlow)."""
    import keras

    from models.lgatr import losses

    if config.loss == "physical":
        loss = losses.PhysicalTopLoss(mass_weight=config.mass_weight)
        metrics = losses.physical_term_metrics()
    else:
        loss = losses.TopReconstructionLoss(
            momentum_scale=config.momentum_scale, mass_weight=config.mass_weight
        )
        metrics = losses.loss_term_metrics(config.momentum_scale)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss={"tops": loss},
        metrics={"tops": metrics},
        jit_compile=jit_compile,
    )
    return model


def _onednn_state():
    """TensorFlow's oneDNN kernels as this process runs them (read when TensorFlow started)."""
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") == "0":
        return "oneDNN off (TF_ENABLE_ONEDNN_OPTS=1 trains the large preset ~1.6x faster)"
    return "oneDNN on"


def main_impl(args, argv=None):
    import keras

    from data import io, schemas
    from models import training
    from models.lgatr.baseline_transformer import build_plain_transformer
    from models.lgatr.model import build_model

    config = make_config(args)
    files = (
        io.expand_paths(args.data)
        if args.data
        else [
            cached(
                "ttbar_dilepton",
                args.events or DEFAULT_EVENTS,
                args.seed,
                args.cache,
                process=None,
                sample="ttbar-dilepton",
            )
        ]
    )
    from models import distribute

    plan = distribute.setup(args)
    training.set_seed(args.seed)
    train, val = training_events(
        files,
        config,
        chunk_events=args.chunk_events,
        seed=args.seed,
        drop_nonfinite=args.drop_nonfinite,
        reading=schemas.reading_options(args),
        progress=not args.quiet,
        plan=plan,
    )
    n_train, n_val = int(sum(train.counts)), len(val[1]["tops"])
    builder = build_model if args.model == "lgatr" else build_plain_transformer
    with plan.scope():  # the model's variables live on every device of the run
        model = builder(config)
        if args.init_from:
            training.init_from(
                model,
                args.init_from,
                INIT_MODELS[args.model],
                f"{args.model} preset {args.preset} with these settings",
            )
        tf_backend = keras.backend.backend() == "tensorflow"
        jit = tf_backend and not args.no_jit
        model = compile_model(model, config, jit_compile=True if jit else "auto")
    print(
        f"{args.model} preset {args.preset}: {model.count_params()} parameters, "
        f"{n_train} training events (streamed from {len(files)} files) and {n_val} validation"
        + (f"; XLA {'on' if jit else 'off'}, {_onednn_state()}" if tf_backend else ""),
        file=sys.stderr,
    )
    out = plan.out_dir(args.out)
    run_dir = os.path.join(out, args.model)
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m models.lgatr.fit", shlex.join(argv)]).strip()
    run_config = {
        "args": vars(args),
        "command": command,
        "config": dataclasses.asdict(config),
        "files": files,
    }
    start = time.perf_counter()
    with plan.scope():
        history = training.fit(
            model,
            train,
            val,
            config,
            model_name=f"lgatr_{args.model}",
            out_dir=run_dir,
            run_config=run_config,
            verbose=0 if args.quiet else 2,
            seed=args.seed,
            restart=args.restart,
            max_minutes=args.max_minutes,
            keep_start=bool(args.init_from),
            **plan.fit_options(args.out),
        )
    seconds = time.perf_counter() - start
    path = os.path.join(out, f"{args.model}.keras")
    training.save_model(model, path)  # atomic: never a half-written file
    # The final model holds the best weights (EarlyStopping restores them): drop the duplicate.
    checkpoint = os.path.join(run_dir, "checkpoint.keras")
    if os.path.exists(checkpoint):
        os.remove(checkpoint)
    val_loss = history.history.get("val_loss", [float("nan")])
    summary = {
        "command": command,
        "model": args.model,
        "preset": args.preset,
        "parameters": int(model.count_params()),
        "train_events": n_train,
        "val_events": n_val,
        "epochs_run": len(val_loss),
        "best_val_loss": float(min(val_loss)),
        "train_seconds": seconds,
        "cpu_count": os.cpu_count(),
        "file_bytes": os.path.getsize(path),
        "files": files,
    }
    with open(os.path.join(run_dir, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"saved {path} ({summary['file_bytes'] / 1e6:.2f} MB, {seconds / 60:.1f} min)")
    return path


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    checks.fit_args(args)
    checks.non_negative(args.mass_weight, "--mass-weight")
    if args.init_from:
        checks.model_file(args.init_from, INIT_MODELS[args.model], "--init-from")
    from models import distribute

    distribute.check_fit_args(args, "lgatr")


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    main_impl(args, argv)


if __name__ == "__main__":
    main()
