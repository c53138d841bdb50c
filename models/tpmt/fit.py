"""`python -m models.tpmt.fit`: train the Tau Pair Mass Transformer.

With no arguments: generate (or reuse) the default flat-mass sample, train the `cpu` preset and
write tpmt.keras into a new run folder runs/tpmt/fit-<time>/ (`--out` to choose; a folder with a
model card, such as saved_models/tpmt, is replaced only with `--overwrite`). `--data` takes
files, globs and generation manifests; the training set is streamed from them in chunks
(data/stream.py), so it may exceed memory.
"""

import argparse
import dataclasses
import functools
import os
import sys

from data import checks
from data.errors import UserError, cli
from data.generate.__main__ import cached

STRATEGIES = {
    # seed 000: train on flat-mass X -> tautau; resonant trainings on SM (+ BSM) processes
    "flat": ("flat",),
    "resonant-sm": ("dy", "h125", "ttbar"),
    "resonant-bsm": ("dy", "h125", "ttbar", "bsm350"),
}
# flat trainings are reweighted to a flat selected-mass spectrum over the generated range
FLAT_WEIGHT_EDGES = tuple(range(30, 310, 10))
# fewer usable events than this (after the selection) are refused, by the fit and the search
MIN_TRAINING_EVENTS = 10
DEFAULT_EVENTS = {"flat": 30000, "dy": 10000, "h125": 10000, "ttbar": 5000, "bsm350": 5000}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m models.tpmt.fit", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--preset",
        default="cpu",
        help="cpu (default, small), cpu-tuned (cpu's best search trial), cpu-scale (cpu for "
        "~300k streamed events) or seed (the talk's)",
    )
    p.add_argument("--strategy", default="flat", choices=tuple(STRATEGIES))
    p.add_argument("--channel", default="all", help="all, tauh-tauh, mu-tauh or e-tauh")
    p.add_argument(
        "--data",
        nargs="+",
        default=None,
        help="training ROOT files, globs or *.manifest.json (default: generated samples for "
        "the strategy)",
    )
    p.add_argument(
        "--chunk-events",
        type=int,
        default=5000,
        help="events read at a time from a file; 4 chunks are shuffled together",
    )
    p.add_argument(
        "--events",
        type=int,
        default=None,
        help="events per generated default sample (default: 30k flat)",
    )
    p.add_argument(
        "--hyperparameters",
        default=None,
        metavar="BEST_TRIALS_JSON",
        help="apply the best trial of a search (OUT/best_trials.json of python -m tuning.tpmt) "
        "on top of --preset; --epochs / --batch-size / --learning-rate still win",
    )
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--seed", type=int, default=1)
    checks.add_out_arguments(p, "tpmt")
    p.add_argument("--cache", default="cache/ditau", help="folder of generated samples")
    p.add_argument("--drop-nonfinite", action="store_true", help="drop events with NaN/inf")
    p.add_argument(
        "--smearings",
        type=int,
        default=1,
        help="files made with `data.generate --smearings S`: train on the first N detector "
        "passes of every event (an augmentation; default 1 = independent events only; "
        "fine-tuning the shipped model on 4 passes made H and Z worse, see its card)",
    )
    p.add_argument(
        "--no-mirror",
        action="store_true",
        help="do not add the (eta, phi) -> (-eta, -phi) mirrored training events",
    )
    p.add_argument(
        "--no-flat-weights",
        action="store_true",
        help="flat strategy: do not reweight events to a flat selected-mass spectrum",
    )
    p.add_argument(
        "--parametric",
        action="store_true",
        help="parametric TPMT: the hypothesised resonance mass is an extra input; trained with "
        "the true mass as the hypothesis for a fraction of events, wrong ones for the rest",
    )
    p.add_argument(
        "--hypothesis-true-fraction",
        type=float,
        default=0.5,
        help="parametric: fraction of training events whose hypothesis is the true mass",
    )
    p.add_argument(
        "--product-dropout",
        type=float,
        default=0.0,
        metavar="P",
        help="fraction of training events whose tau decay-product tokens are all masked, in "
        "[0, 1), so the model also runs without them (NanoAOD has no PF candidates); with "
        "--init-from it replaces the loaded model's own rate (default 0: none)",
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="start from the weights (and standardisation) of a trained TPMT .keras file, "
        "e.g. fine-tune the flat model into a resonant one",
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="wall-time budget: stop after the epoch that exceeds it, keep the best weights",
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
    """The preset with a search's best trial (`--hyperparameters`), the CLI overrides and the
    loader's token and feature counts."""
    from data.ditau import (
        JET_FEATURES,
        LEG_FEATURES,
        MAX_JETS,
        MAX_PRODUCTS,
        MET_FEATURES,
        PRODUCT_FEATURES,
    )
    from models import training
    from models.tpmt.config import get_config

    try:
        config = get_config(
            args.preset,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            n_leg_features=len(LEG_FEATURES),
            n_products=MAX_PRODUCTS,
            n_product_features=len(PRODUCT_FEATURES),
            n_jets=MAX_JETS,
            n_jet_features=len(JET_FEATURES),
            n_met_features=len(MET_FEATURES),
            parametric=args.parametric or None,
            product_dropout=args.product_dropout,
        )
        if args.hyperparameters:
            explicit = {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "learning_rate": args.learning_rate,
            }
            config = training.apply_hyperparameters(config, args.hyperparameters)
            config = dataclasses.replace(
                config, **{k: v for k, v in explicit.items() if v is not None}
            )
    except ValueError as err:
        raise UserError(str(err)) from None
    if not (config.epochs > 0 and config.batch_size > 0 and config.learning_rate > 0):
        raise UserError("--epochs, --batch-size and --learning-rate must be positive")
    return config


def main_impl(args):
    import numpy as np

    from models import training
    from models.tpmt.model import build_model, compile_model, with_product_dropout

    config = make_config(args)
    from data import io

    files = (
        io.expand_paths(args.data)
        if args.data
        else [
            cached(p, args.events or DEFAULT_EVENTS[p], args.seed, args.cache, process=p)
            for p in STRATEGIES[args.strategy]
        ]
    )
    from data import ditau, schemas

    reading = schemas.reading_options(args)
    ditau.check_branches(files[0], require_truth=True, **reading)  # before the scan
    reading["smearings"] = args.smearings
    _say_smearings(files[0], args.smearings, args.quiet)
    from models import distribute

    plan = distribute.setup(args)
    training.set_seed(args.seed)
    hypotheses = args.hypothesis_true_fraction if args.parametric else None
    train, val, scan, _ = training_stream(
        files,
        reading,
        channel=args.channel,
        drop_nonfinite=args.drop_nonfinite,
        chunk_events=args.chunk_events,
        batch_size=config.batch_size,
        seed=args.seed,
        flat_weights=args.strategy == "flat" and not args.no_flat_weights,
        mirrored=not args.no_mirror,
        hypotheses=hypotheses,
        plan=plan,
    )
    yv = val[1]
    with plan.scope():  # the model's variables live on every device of the run
        if args.init_from:
            # the file holds its own graph: put in (or change, or take out) the product dropout
            model = training.load_trained(args.init_from, "TPMT")
            from models.tpmt.calibrate import calibration_layer, without_calibration

            if calibration_layer(model) is not None:  # stale once the weights move
                print(
                    f"{args.init_from}: its mass calibration is removed; recalibrate the "
                    "fine-tuned flat model with python -m models.tpmt.calibrate",
                    file=sys.stderr,
                )
                model = without_calibration(model)
            model = compile_model(with_product_dropout(model, config.product_dropout), config)
        else:
            stats = input_stats(scan.subset[0])
            if hypotheses is not None:
                h = draw_hypotheses(scan.subset[1], hypotheses, np.random.default_rng(args.seed))
                stats["hypothesis"] = training.masked_stats(np.log(h))
            model = compile_model(build_model(config, stats), config)
    n_train = sum(scan.counts)
    print(
        f"TPMT preset {args.preset}: {model.count_params()} parameters, {n_train} training "
        f"events ({'x2 mirrored, ' * (not args.no_mirror)}streamed from {len(files)} files) "
        f"and {len(yv)} validation events",
        file=sys.stderr,
    )
    # the flat model is the default (tpmt.keras, its run files in --out); resonant models and
    # models trained without products get their own file name and a run folder of their own,
    # so they never overwrite it
    name = model_file(args.strategy, config.product_dropout)
    stem = name[: -len(".keras")]
    out = plan.out_dir(args.out)
    run_dir = out if name == "tpmt.keras" else os.path.join(out, stem)
    run_config = {
        "args": vars(args),
        "config": config.to_dict(),
        "files": files,
        "training_events": n_train,
        "validation_events": len(yv),
    }
    with plan.scope():
        training.fit(
            model,
            train,
            val,
            config,
            model_name="tpmt",
            out_dir=run_dir,
            run_config=run_config,
            verbose=0 if args.quiet else 2,
            seed=args.seed,
            restart=args.restart,
            max_minutes=args.max_minutes,
            keep_start=bool(args.init_from),
            **plan.fit_options(args.out),
        )
    path = os.path.join(out, name)
    training.save_model(model, path)  # atomic: never a half-written file
    print(f"saved {path}")
    return path


def training_stream(
    files,
    reading,
    *,
    channel,
    drop_nonfinite,
    chunk_events,
    batch_size,
    seed,
    flat_weights=True,
    mirrored=True,
    hypotheses=None,
    val_fraction=0.2,
    plan=None,
):
    """The streamed training set of a TPMT fit or search: (train, val, scan, weights).

    `train` is a `stream.ChunkStream` of (x, y[, w]) batches; `val` the (x, y[, w]) validation
    events held out from every chunk (None with val_fraction=0); `scan` the `stream.Scan`;
    `weights` the flat-mass `training.FlatWeights` (or None). With a distributed `plan`
    (models/distribute.py) the process streams its own shard of the chunks, in full batches,
    as many as every other process; the standardisation subset comes from the first chunks
    of the full list (the same in every process).
    """
    import numpy as np

    from data import stream
    from models import distribute, training

    plan = plan or distribute.Plan()
    chunks = stream.make_chunks(files, chunk_events)
    load_chunk = functools.partial(
        _load_chunk, channel=channel, drop_nonfinite=drop_nonfinite, reading=reading
    )
    split = functools.partial(same_event_split, val_fraction=val_fraction)
    scan = plan.scan(
        chunks,
        load_chunk,
        seed=seed,
        val_fraction=val_fraction,
        split=split,
        summary=lambda d: d[1][:, 2],
    )
    n_val = 0 if scan.validation is None else len(scan.validation[1])
    check_statistics(sum(scan.counts), n_val if val_fraction > 0 else 1)
    weights = training.FlatWeights(scan.summary, FLAT_WEIGHT_EDGES) if flat_weights else None
    transform = functools.partial(
        _augment, weights=weights, mirrored=mirrored, hypotheses=hypotheses
    )
    train = stream.ChunkStream(
        plan.shard(chunks),
        scan.counts,
        load_chunk,
        batch_size,
        seed=seed,
        val_fraction=val_fraction,
        split=split,
        transform=transform,
        multiplicity=2 if mirrored else 1,
    )
    val = None
    if scan.validation is not None:
        xv, yv = scan.validation
        if hypotheses is not None:
            h = draw_hypotheses(yv, hypotheses, np.random.default_rng(seed))
            xv = {**xv, "mass_hypothesis": h}
        val = (xv, yv) if weights is None else (xv, yv, weights(yv[:, 2]))
        val = plan.finish(train, val, batch_size)
    return train, val, scan, weights


def same_event_split(data, rng, *, val_fraction):
    """(train, val) masks that keep the copies of one generated event together.

    Files made with `--tau-decays K` and `--smearings S` hold up to K x S rows of one Pythia
    event: other tau decays and detector passes of the same di-tau, with the same jets. A coin
    per row puts copies of one event on both sides, where the validation loss (early stopping,
    the learning rate schedule) could reward recognising an event rather than measuring it. The
    copies share their generator-level targets (the two tau pT before decay and m_tautau), so
    one coin is drawn per distinct target row. Rows with their own targets (fake legs, whose
    target is the reconstructed pT) are their own group, as with the per-row coin. Copies cut
    apart by a chunk boundary can still land on both sides (at most one group per chunk edge).
    """
    import numpy as np

    _, group = np.unique(data[1], axis=0, return_inverse=True)
    val_group = rng.random(group.max() + 1 if len(group) else 0) < val_fraction
    val = val_group[group.ravel()]
    return ~val, val


def check_statistics(n_train, n_val):
    """The minimum statistics of a TPMT training (or search): 10 training events and 1
    validation event."""
    if n_train < MIN_TRAINING_EVENTS or n_val < 1:
        raise UserError(
            f"only {n_train} usable training and {n_val} validation events in the files (at "
            f"least {MIN_TRAINING_EVENTS} and 1 needed)"
        )


def model_file(strategy, product_dropout=0.0):
    """File name of the trained model: tpmt.keras (flat), tpmt_resonant_sm.keras, ...; with
    product dropout tpmt_dropproducts.keras (flat) or tpmt_resonant_sm_dropproducts.keras."""
    stem = "tpmt" if strategy == "flat" else f"tpmt_{strategy.replace('-', '_')}"
    return f"{stem}_dropproducts.keras" if product_dropout > 0 else f"{stem}.keras"


def _say_smearings(path, smearings, quiet):
    """One line when the files hold detector-pass copies, saying how many the training uses."""
    from data.ditau import detector_passes

    held = 1 if quiet else detector_passes(path)
    if held == 1:
        return
    use = "pass 0 only (--smearings N to use N)" if smearings == 1 else f"passes 0-{smearings - 1}"
    print(f"{path} holds {held} detector passes of every event: training on {use}")


def _load_chunk(chunk, *, channel, drop_nonfinite, reading=None):
    """(inputs, targets) of one chunk of a training file."""
    from data.ditau import load

    d = load(
        chunk.path,
        channel=channel,
        drop_nonfinite=drop_nonfinite,
        entries=(chunk.start, chunk.stop),
        require_truth=True,
        **(reading or {}),
    )
    if d["targets"] is None:
        raise UserError(f"{chunk.path} has no generator truth (GenTau_*): cannot train on it")
    return d["inputs"], target_matrix(d["targets"])


def _augment(data, rng, *, weights, mirrored, hypotheses=None):
    """Per-buffer training transform: mirrored copies, mass hypotheses, flat-mass weights."""
    import numpy as np

    from data.ditau import mirror

    x, y = data
    if mirrored:  # exact symmetry: doubles the training sample
        m = mirror(x)
        x = {k: np.concatenate([v, m[k]]) for k, v in x.items()}
        y = np.concatenate([y, y])
    if hypotheses is not None:
        x = {**x, "mass_hypothesis": draw_hypotheses(y, hypotheses, rng)}
    return (x, y) if weights is None else (x, y, weights(y[:, 2]))


def draw_hypotheses(y, true_fraction, rng):
    """(N, 1) hypothesised masses: the true m_tautau for `true_fraction` of the events, else
    a wrong one drawn uniformly over the flat sample's range (so the model learns how far to
    trust the hypothesis)."""
    import numpy as np

    from data.generate.ditau import FLAT_MASS_RANGE

    wrong = rng.uniform(*FLAT_MASS_RANGE, len(y))
    right = rng.random(len(y)) < true_fraction
    return np.where(right, y[:, 2], wrong)[:, None].astype("float32")


def target_matrix(targets):
    """(N, 3) = (tau1 pT, tau2 pT, m_tautau), the layout of the model output."""
    import numpy as np

    return np.concatenate([targets["tau_pt"], targets["m_tautau"][:, None]], 1).astype("float32")


def input_stats(x):
    """Standardisation statistics of each token collection over real entries."""
    from models import training

    return {
        "legs": training.masked_stats(x["legs"]),
        "products": training.masked_stats(x["products"], x["product_mask"]),
        "jets": training.masked_stats(x["jets"], x["jet_mask"]),
        "met": training.masked_stats(x["met"]),
    }


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    if args.channel not in ("all", "tauh-tauh", "mu-tauh", "e-tauh"):
        raise UserError(f"unknown channel '{args.channel}'")
    checks.fit_args(args)
    if not 0.0 <= args.hypothesis_true_fraction <= 1.0:
        raise UserError("--hypothesis-true-fraction must be between 0 and 1")
    if args.smearings < 1:
        raise UserError(f"--smearings must be at least 1, got {args.smearings}")
    if not 0.0 <= args.product_dropout < 1.0:
        raise UserError(f"--product-dropout must be in [0, 1), got {args.product_dropout}")
    if args.init_from:
        checks.model_file(args.init_from, "TPMT", "--init-from")
    from models import distribute

    distribute.check_fit_args(args, "tpmt")


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    main_impl(args)


if __name__ == "__main__":
    main()
