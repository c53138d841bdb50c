"""`python -m models.partau.fit`: train MultiParTau or a SingleParTau on FCC-ee jets.

With no `--data`: generate (or reuse) default Z -> tautau and Z -> qq samples in `--cache`. The
model goes into a new run folder runs/partau/fit-<time>/ unless `--out` says otherwise (a folder
with a model card, such as saved_models/partau, only with `--overwrite`). Jets
are split 70/10/20 by event (data/partau.py; the last 20% is left for testing), background jets
are reweighted to the taus' (p, theta) spectrum with both classes of equal total weight.

Examples:
    python -m models.partau.fit                                   # MultiParTau, cpu preset
    python -m models.partau.fit --variant single --task decay_mode
    python -m models.partau.fit --data 'cache/fcctau/*.manifest.json' --max-minutes 60
"""

import argparse
import math
import os
import sys

from data import checks, schemas
from data.errors import UserError, cli
from data.generate.__main__ import cached

DEFAULT_EVENTS = {"ztautau": 20000, "zqq": 10000}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m models.partau.fit", description=__doc__.split("\n")[0]
    )
    p.add_argument("--variant", default="multi", choices=("multi", "single"))
    p.add_argument(
        "--task",
        default="tau_id",
        help="single-task model: tau_id, charge, decay_mode or kinematics (default tau_id)",
    )
    p.add_argument("--preset", default="cpu", help="cpu (default, small) or seed (the card's)")
    p.add_argument("--data", nargs="+", default=None, help="ROOT files, globs or *.manifest.json")
    p.add_argument("--events", type=int, default=None, help="events per default sample")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument(
        "--schedule",
        default=None,
        choices=("onecycle", "plateau"),
        help="onecycle (default, the card's) or plateau (constant rate + ReduceLROnPlateau)",
    )
    p.add_argument("--no-pcgrad", action="store_true", help="multi: plain summed gradients")
    p.add_argument(
        "--mixed-precision", action="store_true", help="mixed_float16 (GPUs; slow on CPU)"
    )
    p.add_argument(
        "--no-jit",
        action="store_true",
        help="train without XLA (jit_compile); XLA is on by default on TensorFlow, where it "
        "trains ~5x faster on CPU",
    )
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time budget")
    p.add_argument("--seed", type=int, default=1)
    checks.add_out_arguments(p, "partau")
    p.add_argument("--cache", default="cache/fcctau", help="folder of generated samples")
    p.add_argument("--quiet", action="store_true", help="no per-epoch log lines")
    p.add_argument(
        "--restart",
        action="store_true",
        help="discard the backup of an interrupted run and start afresh (by default the same "
        "command resumes it)",
    )
    p.add_argument("--progress", action="store_true", help="a progress bar per epoch")
    schemas.add_arguments(p, mapping=False)
    return p.parse_args(argv)


def model_file(config):
    """`partau_multi.keras` or `partau_single_<task>.keras`."""
    return (
        "partau_multi.keras" if config.variant == "multi" else f"partau_single_{config.task}.keras"
    )


def jet_weights(jets, is_tau):
    import numpy as np

    from data.partau import class_weights

    p = jets["pt"] * np.cosh(jets["eta"])
    theta = 2.0 * np.arctan(np.exp(-jets["eta"]))
    return class_weights(is_tau, p, theta)


def training_jets(files, config):
    """The training and validation jets of `files` with their weights (fit and search).

    Returns:
        (train, val, w_train, w_val): `partau.select` dicts and per-jet weights.
    Raises:
        UserError: too few jets, or tau identification without both jet kinds.
    """
    from data import partau

    data = partau.load(files)
    train, val = partau.select(data, "train"), partau.select(data, "val")
    n_train, n_val = len(train["jets"]["pt"]), len(val["jets"]["pt"])
    if n_train < 10 or n_val < 1:
        raise UserError(f"only {n_train} training / {n_val} validation jets in the files")
    tau_t = train["targets"]["tau_id"] == 1
    if config.variant == "multi" or config.task == "tau_id":
        if tau_t.all() or not tau_t.any():
            raise UserError("tau identification needs both tau and quark/gluon jets in --data")
    w_train = jet_weights(train["jets"], tau_t)
    w_val = jet_weights(val["jets"], val["targets"]["tau_id"] == 1)
    return train, val, w_train, w_val


def targets_for(targets, tasks):
    return {t: targets[t] for t in tasks}


def compile_model(model, config, steps_per_epoch, jit_compile="auto"):
    from models.partau.losses import task_loss_weights, task_losses, task_metrics
    from models.partau.schedule import OneCycle, make_optimizer

    if config.schedule == "onecycle":
        rate = OneCycle(config.learning_rate, max(1, config.epochs * steps_per_epoch))
    else:
        rate = config.learning_rate
    # PCGrad clips the merged gradient itself; the standard step clips in the optimizer
    pcgrad_on = config.variant == "multi" and config.pcgrad
    optimizer = make_optimizer(
        rate, config.weight_decay, clipnorm=None if pcgrad_on else config.clip_norm
    )
    tasks = config.tasks
    model.compile(
        optimizer=optimizer,
        loss=task_losses(tasks, label_smoothing=config.label_smoothing),
        loss_weights=task_loss_weights(
            tasks,
            dict(zip(config.tasks, config.task_weights)) if config.variant == "multi" else None,
        ),
        weighted_metrics=task_metrics(tasks),
        jit_compile=jit_compile,
    )
    return model


def main_impl(args):
    import keras
    import numpy as np

    from data import io
    from models import training
    from models.partau.config import get_config
    from models.partau.model import build_model

    try:
        config = get_config(
            args.preset,
            variant=args.variant,
            task=args.task,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            schedule=args.schedule,
            pcgrad=False if args.no_pcgrad else None,
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    if not (config.epochs > 0 and config.batch_size > 0 and config.learning_rate > 0):
        raise UserError("--epochs, --batch-size and --learning-rate must be positive")
    from models.partau.pcgrad import PCGRAD_BACKENDS

    backend = keras.backend.backend()
    if config.variant == "multi" and config.pcgrad and backend not in PCGRAD_BACKENDS:
        raise UserError(
            f"PCGrad needs the TensorFlow, JAX or PyTorch backend; train with --no-pcgrad on "
            f"{backend}"
        )
    files = (
        io.expand_paths(args.data)
        if args.data
        else [
            cached(
                p,
                args.events or DEFAULT_EVENTS[p],
                args.seed,
                args.cache,
                sample="fcctau",
                process=p,
            )
            for p in DEFAULT_EVENTS
        ]
    )
    schemas.only_own_files(args.schema, "ParTau", files[0])
    train, val, w_train, w_val = training_jets(files, config)
    n_train, n_val = len(train["jets"]["pt"]), len(val["jets"]["pt"])
    tau_t = train["targets"]["tau_id"] == 1
    training.set_seed(args.seed)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    model = build_model(config)
    steps = math.ceil(n_train / config.batch_size)
    jit = keras.backend.backend() == "tensorflow" and not args.no_jit
    compile_model(model, config, steps, jit_compile=True if jit else "auto")
    print(
        f"ParTau {config.variant}{'' if config.variant == 'multi' else ' ' + config.task} "
        f"preset {args.preset}: {model.count_params()} parameters; {n_train} training jets "
        f"({int(tau_t.sum())} tau, {int((~tau_t).sum())} quark/gluon), {n_val} validation",
        file=sys.stderr,
    )
    stem = model_file(config)[: -len(".keras")]
    run_dir = os.path.join(args.out, stem)
    run_config = {
        "args": vars(args),
        "config": config.to_dict(),
        "files": files,
        "training_jets": n_train,
        "training_tau_jets": int(tau_t.sum()),
        "training_per_class": np.bincount(
            train["targets"]["decay_mode"][tau_t], minlength=6
        ).tolist(),
        "validation_jets": n_val,
    }
    training.fit(
        model,
        (train["inputs"], targets_for(train["targets"], config.tasks)),
        (val["inputs"], targets_for(val["targets"], config.tasks), w_val),
        config,
        model_name=stem,
        out_dir=run_dir,
        run_config=run_config,
        verbose=0 if args.quiet else 1 if args.progress else 2,
        seed=args.seed,
        restart=args.restart,
        sample_weight=w_train,
        max_minutes=args.max_minutes,
        reduce_lr=config.schedule == "plateau",
    )
    path = os.path.join(args.out, model_file(config))
    training.save_model(model, path)  # atomic: never a half-written file
    print(f"saved {path}")
    return path


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    checks.fit_args(args)
    args.out = checks.fit_out_dir(args.out, "partau", args.overwrite)


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    import models  # noqa: F401  registers the toolkit's classes

    models.register()
    main_impl(args)


if __name__ == "__main__":
    main()
