"""`python -m models.partau.fit`: train MultiParTau or a SingleParTau on FCC-ee jets.

With no `--data`: generate (or reuse) default Z -> tautau and Z -> qq samples in `--cache`. The
model goes into a new run folder runs/partau/fit-<time>/ unless `--out` says otherwise (a folder
with a model card, such as saved_models/partau, only with `--overwrite`). Jets
are split 70/10/20 by event (data/partau.py; the last 20% is left for testing), background jets
are reweighted to the taus' (p, theta) spectrum with both classes of equal total weight. The
training jets are streamed from the files in chunks (data/stream.py), so the sample may exceed
memory; the validation jets are kept in memory (at most 50k).

Examples:
    python -m models.partau.fit                                   # MultiParTau, cpu preset
    python -m models.partau.fit --variant single --task decay_mode
    python -m models.partau.fit --data 'cache/fcctau/*.manifest.json' --max-minutes 60
"""

import argparse
import functools
import os
import sys

from data import checks, schemas
from data.errors import UserError, cli
from data.generate.__main__ import cached

DEFAULT_EVENTS = {"ztautau": 20000, "zqq": 10000}
CHUNK_EVENTS = 5000  # events read at a time from a file (--chunk-events)


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
    p.add_argument(
        "--chunk-events",
        type=int,
        default=CHUNK_EVENTS,
        help="events read at a time from a file; 4 chunks are shuffled together",
    )
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
    from models import distribute

    distribute.add_arguments(p)
    return p.parse_args(argv)


def model_file(config):
    """`partau_multi.keras` or `partau_single_<task>.keras`."""
    return (
        "partau_multi.keras" if config.variant == "multi" else f"partau_single_{config.task}.keras"
    )


def p_theta(jets):
    """(p, theta) of jets with pt and eta: momentum (GeV) and polar angle (rad)."""
    import numpy as np

    return jets["pt"] * np.cosh(jets["eta"]), 2.0 * np.arctan(np.exp(-jets["eta"]))


def jet_weights(jets, is_tau):
    from data.partau import class_weights

    return class_weights(is_tau, *p_theta(jets))


def load_chunk(chunk):
    """The arrays of one chunk that a training needs: inputs, targets and the jets' pt, eta
    and event number."""
    from data import partau

    d = partau.load(chunk.path, entries=(chunk.start, chunk.stop))
    jets = {k: d["jets"][k] for k in ("pt", "eta", "event")}
    return {"inputs": d["inputs"], "targets": d["targets"], "jets": jets}


def split(data, rng):
    """(train, val) masks of a chunk: the 70/10/20 split of `data.partau.select` by event."""
    from data.partau import part_mask

    event = data["jets"]["event"]
    return part_mask(event, "train"), part_mask(event, "val")


def jet_summary(data):
    """(N, 4) per training jet: is_tau, p, theta, decay-mode class (for weights and counts)."""
    import numpy as np

    t = data["targets"]
    return np.stack([t["tau_id"] == 1, *p_theta(data["jets"]), t["decay_mode"]], 1)


def to_xyw(data, rng=None, *, tasks, weights):
    """(inputs, targets of `tasks`, per-jet weights) of loaded jets (`weights`: a
    `data.partau.ClassWeights`); `rng` is unused (the `ChunkStream` transform signature)."""
    is_tau = data["targets"]["tau_id"] == 1
    w = weights(is_tau, *p_theta(data["jets"]))
    return data["inputs"], targets_for(data["targets"], tasks), w


def training_jets(files, config, *, chunk_events=CHUNK_EVENTS, seed=1, progress=False, plan=None):
    """The streamed training jets and the in-memory validation jets of `files` (fit and search);
    with a distributed `plan` (models/distribute.py) this process's shard of the chunks.

    One pass over the chunks (`data.stream.scan`) counts the training jets and learns the
    class weights from all of them (`data.partau.ClassWeights`, as `jet_weights` on the whole
    training set; in a multi-process run from every process's jets, so all weigh alike); the
    validation jets are weighted among themselves, as before streaming.

    Returns:
        (train, val, info): a `data.stream.ChunkStream` of (inputs, targets, weights) batches,
        the validation (inputs, targets, weights) and a dict of counts (training_jets,
        training_tau_jets, training_per_class: over all processes; validation_jets).
    Raises:
        UserError: too few jets, or tau identification without both jet kinds.
    """
    import numpy as np

    from data import partau, stream
    from models import distribute

    plan = plan or distribute.Plan()
    chunks = stream.make_chunks(files, chunk_events)
    scan = plan.scan(
        chunks,
        load_chunk,
        seed=seed,
        summary=jet_summary,
        split=split,
        progress=progress,
        subset_events=1,  # ParTau learns no input statistics
    )
    summary = plan.gather(scan.summary)
    n_train = len(summary)
    n_val = 0 if scan.validation is None else len(scan.validation["jets"]["pt"])
    if n_train < 10 or n_val < 1:
        raise UserError(f"only {n_train} training / {n_val} validation jets in the files")
    tau_t = summary[:, 0] > 0.5
    if config.variant == "multi" or config.task == "tau_id":
        if tau_t.all() or not tau_t.any():
            raise UserError("tau identification needs both tau and quark/gluon jets in --data")
    weights = partau.ClassWeights(tau_t, summary[:, 1], summary[:, 2])
    v = scan.validation
    val_weights = jet_weights(v["jets"], v["targets"]["tau_id"] == 1)
    val = (v["inputs"], targets_for(v["targets"], config.tasks), val_weights)
    train = stream.ChunkStream(
        plan.shard(chunks),
        scan.counts,
        load_chunk,
        config.batch_size,
        seed=seed,
        split=split,
        transform=functools.partial(to_xyw, tasks=config.tasks, weights=weights),
    )
    val = plan.finish(train, val, config.batch_size)
    modes = summary[tau_t, 3].astype(np.int64)
    info = {
        "training_jets": n_train,
        "training_tau_jets": int(tau_t.sum()),
        "training_per_class": np.bincount(modes, minlength=6).tolist(),
        "validation_jets": stream.length(val),
    }
    return train, val, info


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


def make_config(args):
    """The preset of `--variant` / `--task` with the CLI overrides."""
    from models.partau.config import get_config

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
    return config


def main_impl(args):
    import keras

    from data import io
    from models import training
    from models.partau.model import build_model

    config = make_config(args)
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
    from models import distribute

    plan = distribute.setup(args)
    training.set_seed(args.seed)
    train, val, info = training_jets(
        files,
        config,
        chunk_events=args.chunk_events,
        seed=args.seed,
        progress=not args.quiet,
        plan=plan,
    )
    n_train, n_tau = info["training_jets"], info["training_tau_jets"]
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    jit = keras.backend.backend() == "tensorflow" and not args.no_jit
    with plan.scope():  # the model's variables live on every device of the run
        model = build_model(config)
        compile_model(model, config, len(train), jit_compile=True if jit else "auto")
    print(
        f"ParTau {config.variant}{'' if config.variant == 'multi' else ' ' + config.task} "
        f"preset {args.preset}: {model.count_params()} parameters; {n_train} training jets "
        f"({n_tau} tau, {n_train - n_tau} quark/gluon, streamed from {len(files)} files), "
        f"{info['validation_jets']} validation",
        file=sys.stderr,
    )
    stem = model_file(config)[: -len(".keras")]
    out = plan.out_dir(args.out)
    run_config = {"args": vars(args), "config": config.to_dict(), "files": files, **info}
    with plan.scope():
        training.fit(
            model,
            train,
            val,
            config,
            model_name=stem,
            out_dir=os.path.join(out, stem),
            run_config=run_config,
            verbose=0 if args.quiet else 1 if args.progress else 2,
            seed=args.seed,
            restart=args.restart,
            max_minutes=args.max_minutes,
            reduce_lr=config.schedule == "plateau",
            **plan.fit_options(args.out),
        )
    path = os.path.join(out, model_file(config))
    training.save_model(model, path)  # atomic: never a half-written file
    print(f"saved {path}")
    return path


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    checks.fit_args(args)
    from models import distribute

    distribute.check_fit_args(args, "partau")


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    import models  # noqa: F401  registers the toolkit's classes

    models.register()
    main_impl(args)


if __name__ == "__main__":
    main()
