"""`python -m models.metperceiver.fit`: train the MET Perceiver (or the DeepMET baseline) at PU200.

With no `--data`: generate (or reuse) a default dileptonic ttbar PU200 sample in `--cache`.
The model goes into a new run folder runs/metperceiver/fit-<time>/ unless `--out` says otherwise
(a folder with a model card, such as saved_models/metperceiver, only with `--overwrite`).
Events are streamed from the ROOT files in chunks (data/stream.py, ~250 kB per event at ~10k
candidates), 10% of every chunk is held out for validation, and events are weighted to a flat
generated-MET spectrum unless `--weighting none`.

Examples:
    python -m models.metperceiver.fit                              # Perceiver, cpu preset
    python -m models.metperceiver.fit --variant deepmet
    python -m models.metperceiver.fit --data 'cache/ttbarpu/train.manifest.json' --max-minutes 90
"""

import argparse
import functools
import os
import sys

from data import checks, schemas
from data.errors import UserError, cli
from data.generate.__main__ import cached

DEFAULT_EVENTS = 2000
VAL_FRACTION = 0.1
INIT_MODELS = {"perceiver": "MET Perceiver", "deepmet": "DeepMET"}  # what --init-from may hold


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m models.metperceiver.fit", description=__doc__.split("\n")[0]
    )
    p.add_argument("--variant", default="perceiver", choices=("perceiver", "deepmet"))
    p.add_argument("--preset", default="cpu", help="cpu (default, small), seed or tiny")
    p.add_argument("--data", nargs="+", default=None, help="ROOT files, globs or *.manifest.json")
    p.add_argument("--events", type=int, default=None, help="events of the default sample")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--loss", default=None, choices=("mse", "mae"), help="default mse")
    p.add_argument(
        "--target",
        default=None,
        choices=("v", "met"),
        help="Perceiver target: v (default, the seed's) or met (MET vector / 50 GeV, as DeepMET)",
    )
    p.add_argument(
        "--response-weight",
        type=float,
        default=None,
        help="weight of DeepMET's response term on the MET loss (DeepMET, --target met; "
        "default 10 as DeepMET's training code, 0 turns it off)",
    )
    p.add_argument(
        "--response-edges",
        type=float,
        nargs="+",
        default=None,
        metavar="GEV",
        help="generated-MET bin edges of the response term (default 50 100)",
    )
    p.add_argument(
        "--hs-weight",
        type=float,
        default=None,
        help="weight of the per-candidate truth term: the Perceiver's candidate weights are "
        "also fitted to the candidates' hard-scatter flag (needs PFCand_fromPU; default 0, off)",
    )
    p.add_argument(
        "--puppi-input",
        action="store_true",
        help="Perceiver: also feed each candidate's PUPPI weight (not a seed input); "
        "--init-from may then name a Perceiver without it (its new input starts at zero)",
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="start from the weights of a trained .keras of the same architecture",
    )
    p.add_argument(
        "--weighting",
        default=None,
        choices=("flat", "none"),
        help="flat (default): weight events to a flat generated-MET spectrum; none",
    )
    p.add_argument("--max-cands", type=int, default=None, help="candidates per event (12288)")
    p.add_argument(
        "--chunk-events",
        type=int,
        default=2000,
        help="events per streamed chunk (a generated shard's basket: reading part of a basket "
        "decompresses all of it)",
    )
    p.add_argument(
        "--max-val-events", type=int, default=2000, help="validation events kept in memory"
    )
    p.add_argument("--no-jit", action="store_true", help="train without XLA (jit_compile)")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time budget")
    p.add_argument("--seed", type=int, default=1)
    checks.add_out_arguments(p, "metperceiver")
    p.add_argument("--cache", default="cache/ttbarpu_default", help="default-sample folder")
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


def model_file(variant):
    return "metperceiver.keras" if variant == "perceiver" else "deepmet.keras"


def load_chunk(chunk, *, features, max_cands, with_hs=False):
    """Arrays of one chunk (data.metperceiver.load over its entry range)."""
    from data.metperceiver import load

    return load(
        chunk.path,
        features=features,
        max_cands=max_cands,
        entries=(chunk.start, chunk.stop),
        with_hs=with_hs,
    )


def to_xyw(data, variant, weights=None):
    """(inputs, targets, sample weights) of loaded arrays for the variant; with the truth flags
    loaded (`hs`), the Perceiver's `weights` output gets (flag, pT) per candidate."""
    import numpy as np

    from data.metperceiver import met_of, target_v

    x = {"cands": data["cands"], "mask": data["mask"]}
    if variant == "perceiver":
        y = {
            "v": target_v(data["met_gen"], met_of(data["cands"], data["mask"])),
            "met": data["met_gen"],
        }
        if "hs" in data:
            pt = np.hypot(data["cands"][..., 0], data["cands"][..., 1]) * data["mask"]
            y["weights"] = np.stack([data["hs"], pt.astype(np.float32)], axis=-1)
    else:
        y = {"met": data["met_gen"]}
    gen = np.linalg.norm(data["met_gen"], axis=1)
    w = weights(gen) if weights is not None else np.ones(len(gen), np.float32)
    return x, y, w


def met_weights(config, met_gen):
    """`training.FlatWeights` flattening the generated-MET spectrum `met_gen` (GeV) with the
    config's histogram, or None without `weighting="flat"`."""
    import numpy as np

    from models import training

    if config.weighting != "flat":
        return None
    lo, hi, step = config.weight_edges
    return training.FlatWeights(met_gen, np.arange(lo, hi + step, step), config.weight_cap)


def compile_model(model, config, jit_compile="auto"):
    import keras

    from models.metperceiver.losses import CandidateWeightLoss, VectorLoss

    met_loss = VectorLoss(config.loss, 50.0, config.response_weight, config.response_edges)
    if config.variant == "perceiver" and config.target == "v":
        loss = {"v": VectorLoss(config.loss, 1.0), "met": None}
    elif config.variant == "perceiver":
        loss = {"v": None, "met": met_loss}
    else:
        loss = {"met": met_loss}
    loss_weights = None
    if config.hs_weight:
        loss["weights"] = CandidateWeightLoss()
        loss_weights = {k: (config.hs_weight if k == "weights" else 1.0) for k in loss}
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clip_norm),
        loss=loss,
        loss_weights=loss_weights,
        weighted_metrics={"met": [keras.metrics.MeanAbsoluteError(name="mae_gev")]},
        jit_compile=jit_compile,
    )
    return model


def scan_events(files, config, chunk_events, max_val_events, seed, progress, plan=None):
    """Chunks, chunk loader, validation scan and event weights of a training (fit and search);
    with a distributed `plan` (models/distribute.py) the scan covers this process's shard.

    Raises:
        UserError: fewer than 10 training events.
    """
    import numpy as np

    from data import stream
    from models import distribute
    from models.metperceiver.model import features_of

    chunks = stream.make_chunks(files, chunk_events)
    loader = functools.partial(
        load_chunk,
        features=features_of(config),
        max_cands=config.max_cands,
        with_hs=config.hs_weight > 0,
    )
    scan = (plan or distribute.Plan()).scan(
        chunks,
        loader,
        seed=seed,
        val_fraction=VAL_FRACTION,
        max_val_events=max_val_events,
        subset_events=1,  # no input statistics needed; keeps memory at one chunk
        summary=lambda d: np.linalg.norm(d["met_gen"], axis=1),
        progress=progress,
    )
    if scan.validation is None or sum(scan.counts) < 10:
        raise UserError(f"only {sum(scan.counts)} training events in the files")
    return chunks, loader, scan, met_weights(config, scan.summary)


def make_config(args):
    """The preset of `--variant` with the CLI overrides."""
    from models.metperceiver.config import get_config

    try:
        config = get_config(
            args.preset,
            variant=args.variant,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            loss=args.loss,
            target=args.target,
            response_weight=args.response_weight,
            response_edges=None if args.response_edges is None else tuple(args.response_edges),
            hs_weight=args.hs_weight,
            puppi_input=args.puppi_input or None,
            weighting=args.weighting,
            max_cands=args.max_cands,
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    if not (config.epochs > 0 and config.batch_size > 0 and config.learning_rate > 0):
        raise UserError("--epochs, --batch-size and --learning-rate must be positive")
    return config


def training_stream(files, config, *, chunk_events, max_val_events, seed, progress, plan=None):
    """The streamed training events and the in-memory validation events (fit and search).

    With a distributed `plan` (models/distribute.py) the process streams its own shard of the
    chunks, in as many full batches as every other process.

    Returns:
        (train, val, scan): a `data.stream.ChunkStream` of (inputs, targets, weights) batches
        (~2000 events a buffer), the validation (inputs, targets, weights) and the scan.
    """
    from data import stream
    from models import distribute

    plan = plan or distribute.Plan()
    chunks, loader, scan, weights = scan_events(
        files, config, chunk_events, max_val_events, seed, progress, plan
    )
    train = stream.ChunkStream(
        plan.shard(chunks),
        scan.counts,
        loader,
        config.batch_size,
        seed=seed,
        val_fraction=VAL_FRACTION,
        buffer_chunks=max(1, 2000 // chunk_events),  # ~2000 events (0.5 GB) a buffer
        transform=functools.partial(_transform, variant=config.variant, weights=weights),
    )
    val = plan.finish(train, to_xyw(scan.validation, config.variant, weights), config.batch_size)
    return train, val, scan


def _transform(data, rng, *, variant, weights):
    return to_xyw(data, variant, weights)


def widen_from(model, start):
    """Copy the weights of a Perceiver `start` into `model`, which reads more candidate features
    (`--puppi-input`): the embedding kernels get zero rows for the new features, so `model`
    starts as the same function of the old inputs.

    Raises:
        UserError: the architectures differ otherwise.
    """
    import numpy as np

    new, old = model.get_weights(), start.get_weights()
    ok = len(new) == len(old)
    out = []
    for n, o in zip(new, old):
        if n.shape == o.shape:
            out.append(o)
        elif ok and n.ndim == 2 and n.shape[1] == o.shape[1] and n.shape[0] > o.shape[0]:
            out.append(
                np.concatenate([o, np.zeros((n.shape[0] - o.shape[0], n.shape[1]), o.dtype)])
            )
        else:
            ok = False
    if not ok:
        raise UserError("--init-from does not have the architecture of this Perceiver")
    model.set_weights(out)
    return model


def main_impl(args):
    import keras

    from data import io
    from models import training
    from models.metperceiver.model import build_model, without_weights

    config = make_config(args)
    if args.data:
        files = io.expand_paths(args.data)
        schemas.only_own_files(args.schema, "the MET Perceiver", files[0])
    else:
        pileup = dict(mu=200.0, library_events=100_000, library_seed=1, cache="cache")
        n = args.events or DEFAULT_EVENTS
        files = [
            cached(
                "ttbar_pu", n, args.seed, args.cache, process=None, sample="ttbar-pu",
                pileup=pileup,
            )
        ]  # fmt: skip
    from models import distribute

    plan = distribute.setup(args)
    training.set_seed(args.seed)
    train, val, scan = training_stream(
        files,
        config,
        chunk_events=args.chunk_events,
        max_val_events=args.max_val_events,
        seed=args.seed,
        progress=not args.quiet,
        plan=plan,
    )
    dropped = int((scan.validation["n_dropped"] > 0).sum())
    if dropped:
        print(
            f"note: {dropped} validation events have more than {config.max_cands} candidates; "
            "their softest are dropped",
            file=sys.stderr,
        )
    with plan.scope():  # the model's variables live on every device of the run
        model = build_model(config)
        if args.init_from and config.puppi_input:
            widen_from(model, training.load_trained(args.init_from, INIT_MODELS["perceiver"]))
        elif args.init_from:
            training.init_from(
                model, args.init_from, INIT_MODELS[config.variant], f"preset {args.preset}"
            )
        jit = keras.backend.backend() == "tensorflow" and not args.no_jit
        compile_model(model, config, jit_compile=True if jit else "auto")
    n_train = int(sum(scan.counts))
    print(
        f"MET {config.variant} preset {args.preset}: {model.count_params()} parameters; "
        f"{n_train} training events streamed from {len(files)} files, {len(val[2])} validation",
        file=sys.stderr,
    )
    stem = model_file(config.variant)[: -len(".keras")]
    out = plan.out_dir(args.out)
    run_dir = os.path.join(out, stem)
    run_config = {
        "args": vars(args),
        "config": config.to_dict(),
        "files": files,
        "training_events": n_train,
        "validation_events": len(val[2]),
    }
    with plan.scope():
        training.fit(
            model,
            train,
            val,
            config,
            model_name=f"metperceiver_{stem}",
            out_dir=run_dir,
            run_config=run_config,
            verbose=0 if args.quiet else 2,
            seed=args.seed,
            restart=args.restart,
            max_minutes=args.max_minutes,
            keep_start=bool(args.init_from),
            **plan.fit_options(args.out),
        )
    path = os.path.join(out, model_file(config.variant))
    training.save_model(without_weights(model), path)  # atomic: never a half-written file
    print(f"saved {path}")
    return path


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    checks.fit_args(args, min_events=20)
    checks.positive(args.max_val_events, "--max-val-events")
    if args.variant == "perceiver" and args.target != "met":
        if args.response_weight is not None or args.response_edges is not None:
            raise UserError("--response-weight/-edges apply to the MET loss: --target met")
    if args.hs_weight is not None and not args.hs_weight >= 0:
        raise UserError(f"--hs-weight must be >= 0, got {args.hs_weight}")
    if (args.hs_weight or args.puppi_input) and args.variant != "perceiver":
        raise UserError("--hs-weight and --puppi-input apply to the Perceiver")
    if args.response_weight is not None and not args.response_weight >= 0:
        raise UserError(f"--response-weight must be >= 0, got {args.response_weight}")
    edges = args.response_edges or []
    if any(not b > a for a, b in zip(edges, edges[1:])) or any(e != e for e in edges):
        raise UserError("--response-edges must increase")
    if args.init_from:
        checks.model_file(args.init_from, INIT_MODELS[args.variant], "--init-from")
    from models import distribute

    distribute.check_fit_args(args, "metperceiver")


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    import models  # noqa: F401  registers the toolkit's classes

    models.register()
    main_impl(args)


if __name__ == "__main__":
    main()
