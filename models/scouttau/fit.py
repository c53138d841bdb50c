"""`python -m models.scouttau.fit`: train the ScoutTau transformer or the NNPuppiTau-like baseline.

Both learn from the same `scouttau --process lowmass` events (light scalar -> tautau at 200
pileup): the transformer from CLUE (or anti-kT) clusters of L1 PUPPI candidates (or, with
`--inputs pf`, of L1 PF candidates: `scouttau_pf.keras`), with the tau class, charge, pT and
per-constituent pileup targets; the baseline from the seeded-cone taus
of `data.nnpuppitau`, tau class only. A candidate is a tau when a generated hadronic visible
tau lies within DeltaR < 0.2. Tau and non-tau candidates get equal total weight. Events are
split at random into training and validation (`--val-fraction`, every candidate of an event on
the same side); test on other seeds. The training candidates are streamed from the files in
chunks of events (data/stream.py), so the sample may exceed memory; the validation candidates
are kept in memory (at most 50k). The model
goes into a new run folder runs/scouttau/fit-<time>/ unless `--out` says otherwise (a folder with
a model card, such as saved_models/scouttau, only with `--overwrite`).

Examples:
    python -m models.scouttau.fit                               # transformer, cpu preset
    python -m models.scouttau.fit --variant nnpuppitau
    python -m models.scouttau.fit --inputs pf --negative-fraction 0.1   # the shipped model
    python -m models.scouttau.fit --data 'cache/scouttau/*.manifest.json' --max-minutes 60
"""

import argparse
import functools
import os
import sys

from data import checks, schemas
from data.errors import UserError, cli
from data.generate.__main__ import cached

VARIANTS = ("transformer", "nnpuppitau")
MODEL_FILES = {"transformer": "scouttau.keras", "nnpuppitau": "nnpuppitau.keras"}


def model_file(args):
    """scouttau.keras (PUPPI inputs), scouttau_pf.keras (PF inputs) or nnpuppitau.keras."""
    if args.variant == "transformer" and args.inputs == "pf":
        return "scouttau_pf.keras"
    return MODEL_FILES[args.variant]


DEFAULT_EVENTS = 4000
CHUNK_EVENTS = 1000  # PU200 events read at a time from a file (--chunk-events)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m models.scouttau.fit", description=__doc__.split("\n")[0]
    )
    p.add_argument("--variant", default="transformer", choices=VARIANTS)
    p.add_argument("--preset", default="cpu", help="cpu (default), seed (the talk's) or tiny")
    p.add_argument("--data", nargs="+", default=None, help="ROOT files, globs or *.manifest.json")
    p.add_argument(
        "--events", type=int, default=None, help=f"events of the default sample ({DEFAULT_EVENTS})"
    )
    p.add_argument("--clustering", default="clue", choices=("clue", "antikt"))
    p.add_argument(
        "--inputs",
        default="puppi",
        choices=("puppi", "pf"),
        help="transformer: cluster L1 PUPPI (default) or L1 PF candidates (data.scouttau.load)",
    )
    p.add_argument(
        "--negative-fraction",
        type=float,
        default=1.0,
        help="keep this random fraction of the non-tau training candidates (PF inputs give "
        "~100 per event)",
    )
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--val-fraction", type=float, default=0.1, help="events for validation")
    p.add_argument(
        "--chunk-events",
        type=int,
        default=CHUNK_EVENTS,
        help="events read (and clustered) at a time from a file; 4 chunks are shuffled together",
    )
    add_cache_arguments(p)
    p.add_argument("--no-jit", action="store_true", help="train without XLA (jit_compile)")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time budget")
    p.add_argument("--seed", type=int, default=1)
    checks.add_out_arguments(p, "scouttau")
    p.add_argument("--cache", default="cache/scouttau", help="folder of generated samples")
    p.add_argument("--quiet", action="store_true", help="no per-epoch log lines")
    p.add_argument(
        "--restart",
        action="store_true",
        help="discard the backup of an interrupted run and start afresh (by default the same "
        "command resumes it)",
    )
    schemas.add_arguments(p, mapping=False)
    from models import distribute

    distribute.add_arguments(p)
    return p.parse_args(argv)


def add_cache_arguments(p):
    """--chunk-cache / --no-chunk-cache (fit and search)."""
    p.add_argument(
        "--chunk-cache",
        default=None,
        metavar="DIR",
        help="keep each chunk's clustered candidates in DIR after the scan reads them, so every "
        "epoch reads them from there instead of decompressing and clustering the L1 candidates "
        "again (data.stream.ChunkCache; a later run with the same files and options reuses "
        "DIR; delete it after updating the toolkit); default: a temporary folder removed at "
        "the end",
    )
    p.add_argument(
        "--no-chunk-cache",
        action="store_true",
        help="read and cluster the ROOT files again every epoch (no disk space used)",
    )


def cache_tag(variant, **options):
    """What a cached chunk depends on besides its file and entries (`data.stream.ChunkCache`)."""
    from importlib import metadata

    try:
        version = metadata.version("hepformers")
    except metadata.PackageNotFoundError:
        version = "source"
    return repr(("scouttau", version, variant, sorted(options.items())))


def class_weights(is_tau, of=None):
    """Per-candidate weights giving the taus and non-taus of `is_tau` equal total weight (mean
    1 over `is_tau`), for the candidates `is_tau` or, given, the candidates flagged `of`."""
    import numpy as np

    is_tau = np.asarray(is_tau, bool)
    n, n_tau = len(is_tau), int(is_tau.sum())
    if n_tau == 0 or n_tau == n:
        raise UserError("tau identification needs both tau and non-tau candidates in --data")
    of = is_tau if of is None else np.asarray(of, bool)
    return np.where(of, n / (2.0 * n_tau), n / (2.0 * (n - n_tau))).astype("float32")


def transformer_targets(data):
    """The four targets of `models.scouttau.losses` from `data.scouttau.load` output."""
    import numpy as np

    is_tau = data["is_tau"]
    ratio = np.log(np.maximum(data["tau_vis_pt"], 1e-3) / data["cands"]["pt"])
    pu = np.where(data["mask"], data["constituent_pu"], -1)
    return {
        "tau_id": is_tau.astype("float32")[:, None],
        "charge": np.where(is_tau, data["tau_charge"] > 0, -1).astype("float32")[:, None],
        "pt": np.stack([np.where(is_tau, ratio, 0.0), is_tau], 1).astype("float32"),
        "pileup": pu.astype("float32"),
    }


def split(data, rng, *, val_fraction, negative_fraction=1.0):
    """(train, val) masks over the candidates of a chunk of events (`data.stream` split).

    A seeded random `val_fraction` of the chunk's events (of those with candidates) is for
    validation, so every candidate of an event is on the same side (chunks are entry ranges:
    an event never spans two); of the other events' candidates, every tau and a random
    `negative_fraction` of the non-taus are for training (validation keeps every candidate).
    """
    import numpy as np

    events, inverse = np.unique(data["event"], return_inverse=True)
    val = (rng.random(len(events)) < val_fraction)[inverse]
    keep = data["is_tau"] | (rng.random(len(val)) < negative_fraction)
    return ~val & keep, val


def compile_transformer(model, config, jit_compile):
    import keras

    from models.scouttau.losses import MaskedBinaryCrossentropy, MaskedMAE

    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss={
            "tau_id": MaskedBinaryCrossentropy(),
            "charge": MaskedBinaryCrossentropy(),
            "pt": MaskedMAE(),
            "pileup": MaskedBinaryCrossentropy(),
        },
        loss_weights=dict(zip(("tau_id", "charge", "pt", "pileup"), config.task_weights)),
        weighted_metrics={"tau_id": [keras.metrics.AUC(from_logits=True, name="auc")]},
        jit_compile=jit_compile,
    )


def load_candidates(
    paths, *, variant="transformer", clustering="clue", inputs="puppi", entries=None
):
    """The training arrays of the candidates in `paths` (or an entry range of one file).

    Returns:
        dict of per-candidate arrays: x (the model inputs), y (the targets), is_tau (n,) and
        event (n,), the candidate's event (its entry among those read).
    """
    from data import scouttau

    if variant == "transformer":
        data = scouttau.load(paths, clustering=clustering, inputs=inputs, entries=entries)
        x = {"constituents": data["constituents"], "mask": data["mask"]}
        y, event = transformer_targets(data), data["cands"]["event"]
    else:
        from data import nnpuppitau

        data = nnpuppitau.nnpuppitau_candidates(scouttau.read(paths, entries=entries))
        x, y, event = data["inputs"], data["is_tau"].astype("float32")[:, None], data["event"]
    return {"x": x, "y": y, "is_tau": data["is_tau"], "event": event}


def load_chunk(chunk, **options):
    """`load_candidates` of one chunk (`data.stream.Chunk`)."""
    return load_candidates(chunk.path, entries=(chunk.start, chunk.stop), **options)


def to_xyw(data, rng=None, *, is_tau):
    """(inputs, targets, weights) of loaded candidates, with the `class_weights` of the
    candidates flagged `is_tau` (the training set's); `rng` is unused (`ChunkStream`)."""
    return data["x"], data["y"], class_weights(is_tau, data["is_tau"])


def training_candidates(files, args, batch_size, plan=None):
    """The streamed training candidates and the in-memory validation ones (fit and search);
    with a distributed `plan` (models/distribute.py) this process's shard of the chunks.

    Args:
        args: with variant (default transformer), clustering, inputs, val_fraction,
            negative_fraction (default 1), chunk_events, seed, chunk_cache and
            no_chunk_cache (default: no cache).
    Returns:
        (train, val, info): a `data.stream.ChunkStream` of (inputs, targets, weights) batches,
        the validation (inputs, targets, weights), and info: training_candidates,
        training_taus, validation_candidates, events, subset (the first training candidates'
        arrays, for input statistics).
    Raises:
        UserError: too few candidates, or not both kinds among the training ones.
    """
    import numpy as np

    from data import stream
    from models import distribute

    plan = plan or distribute.Plan()
    chunks = stream.make_chunks(files, args.chunk_events)
    options = dict(clustering=args.clustering, inputs=args.inputs)
    variant = getattr(args, "variant", "transformer")
    loader = functools.partial(load_chunk, variant=variant, **options)
    if not getattr(args, "no_chunk_cache", True):
        # reading and clustering a chunk costs more than training on its few candidates
        tag = cache_tag(variant, **options)
        loader = stream.ChunkCache(loader, args.chunk_cache, tag)
    splitter = functools.partial(
        split,
        val_fraction=args.val_fraction,
        negative_fraction=getattr(args, "negative_fraction", 1.0),
    )
    scan = plan.scan(
        chunks,
        loader,
        seed=args.seed,
        summary=lambda d: d["is_tau"],
        split=splitter,
        progress=not getattr(args, "quiet", True),
    )
    is_tau = scan.summary.astype(bool)
    n_train = len(is_tau)
    n_val = 0 if scan.validation is None else len(scan.validation["is_tau"])
    if n_train < 10 or n_val < 1:
        raise UserError(f"only {n_train} training / {n_val} validation candidates in the files")
    class_weights(is_tau)  # both kinds among the training candidates
    v = scan.validation
    n_val_tau = int(v["is_tau"].sum())
    w_val = class_weights(v["is_tau"]) if 0 < n_val_tau < n_val else np.ones(n_val, "float32")
    train = stream.ChunkStream(
        plan.shard(chunks),
        scan.counts,
        loader,
        batch_size,
        seed=args.seed,
        split=splitter,
        transform=functools.partial(to_xyw, is_tau=is_tau),
    )
    info = {
        "training_candidates": n_train,
        "training_taus": int(is_tau.sum()),
        "validation_candidates": n_val,
        "events": sum(c.stop - c.start for c in plan.shard(chunks)),
        "subset": scan.subset,
    }
    return train, plan.finish(train, (v["x"], v["y"], w_val), batch_size), info


def make_config(args):
    """The preset with the CLI overrides."""
    from models.scouttau.config import get_config

    try:
        config = get_config(
            args.preset,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    if not (config.epochs > 0 and config.batch_size > 0 and config.learning_rate > 0):
        raise UserError("--epochs, --batch-size and --learning-rate must be positive")
    return config


def _make_model(args, config, info, jit):
    """The compiled transformer or NNPuppiTau baseline of a fit."""
    import keras

    from models import training

    if args.variant == "transformer":
        from models.scouttau.model import build_model

        model = build_model(config)
        compile_transformer(model, config, True if jit else "auto")
    else:
        from models.scouttau.nnpuppitau import build_nnpuppitau

        # standardisation from the first training candidates (up to 50k, data.stream.scan)
        mean, var = training.masked_stats(info["subset"]["x"])
        model = build_nnpuppitau(mean=mean, variance=var)
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
            weighted_metrics=[keras.metrics.AUC(from_logits=True, name="auc")],
            jit_compile=True if jit else "auto",
        )
    return model


def main_impl(args):
    import keras

    from data import io
    from models import training

    config = make_config(args)
    files = (
        io.expand_paths(args.data)
        if args.data
        else [
            cached(
                "lowmass",
                args.events or DEFAULT_EVENTS,
                args.seed,
                args.cache,
                sample="scouttau",
                process="lowmass",
            )
        ]
    )
    schemas.only_own_files(args.schema, "ScoutTau", files[0])
    from models import distribute

    plan = distribute.setup(args)
    training.set_seed(args.seed)
    train, val, info = training_candidates(files, args, config.batch_size, plan)
    jit = keras.backend.backend() == "tensorflow" and not args.no_jit
    with plan.scope():  # the model's variables live on every device of the run
        model = _make_model(args, config, info, jit)
    n_train, n_tau, n_val = (
        info[k] for k in ("training_candidates", "training_taus", "validation_candidates")
    )
    print(
        f"ScoutTau {args.variant} preset {args.preset}: {model.count_params()} parameters; "
        f"{n_train} training candidates ({n_tau} tau) from {info['events']} events (streamed "
        f"from {len(files)} files), {n_val} validation",
        file=sys.stderr,
    )
    stem = model_file(args)[: -len(".keras")]
    out = plan.out_dir(args.out)
    run_config = {
        "args": vars(args),
        "config": config.to_dict(),
        "files": files,
        "training_candidates": n_train,
        "training_taus": n_tau,
        "validation_candidates": n_val,
        "events": info["events"],
        "steps_per_epoch": len(train),
    }
    with plan.scope():
        training.fit(
            model,
            train,
            val,
            config,
            model_name=stem,
            out_dir=os.path.join(out, stem),
            run_config=run_config,
            verbose=0 if args.quiet else 2,
            seed=args.seed,
            restart=args.restart,
            max_minutes=args.max_minutes,
            **plan.fit_options(args.out),
        )
    path = os.path.join(out, model_file(args))
    training.save_model(model, path)  # atomic: never a half-written file
    print(f"saved {path}")
    return path


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    checks.fit_args(args)
    if not 0 < args.negative_fraction <= 1:
        raise UserError(f"--negative-fraction must be in (0, 1], got {args.negative_fraction}")
    if not 0 < args.val_fraction < 1:
        raise UserError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
    if args.chunk_cache and args.no_chunk_cache:
        raise UserError("--chunk-cache and --no-chunk-cache exclude each other")
    if args.variant == "nnpuppitau" and args.inputs != "puppi":
        raise UserError("--inputs applies to the transformer; the baseline clusters PUPPI")
    from models import distribute

    distribute.check_fit_args(args, "scouttau")


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    import models  # noqa: F401  registers the toolkit's classes

    models.register()
    main_impl(args)


if __name__ == "__main__":
    main()
