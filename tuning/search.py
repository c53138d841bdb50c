"""Shared keras-tuner plumbing of the `python -m tuning.<model>` searches.

Every search CLI takes the same options:

    python -m tuning.<model> --data FILES... [--tuner {random,bayesian,hyperband}]
        [--max-trials N] [--epochs E] [--out DIR] [--seed S]

and leaves in DIR (the keras-tuner project folder):

    trial_*/            keras-tuner's state of each trial; rerunning the same command resumes the
                        search (finished trials are kept, a finished search runs no new trial)
    logs/<trial_id>/    the TensorBoard run of each trial (`tensorboard --logdir DIR/logs`)
    best_trials.md      the best trials: rank, trial id, objective and hyperparameter values
    best_trials.json    the same, for scripts
    trials_run.tsv      one line per trial run: trial id, the tuner (process) that ran it, status

Distributed: the same command runs as keras-tuner's chief (which serves the oracle) or as one
of its workers (which run trials) when keras-tuner's environment variables are set, e.g.

    KERASTUNER_TUNER_ID=chief   KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 CMD
    KERASTUNER_TUNER_ID=tuner0  KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 CMD
    KERASTUNER_TUNER_ID=tuner1  ...

with `--out` on a file system shared by all of them; the chief writes best_trials.md when the
workers are done. `python -m tuning.cluster` starts a chief and N workers on this machine.

Each trial trains with `keras.callbacks.EarlyStopping` on the objective (`--objective`, default
val_loss; the base config's patience)
and, where the model's learning rate is not a schedule, ReduceLROnPlateau as in the fits.
`--max-trials` bounds random and Bayesian searches; Hyperband sizes its brackets from
`--epochs` (its longest trials) and runs its own number of trials.

A hypermodel (`config_hypermodel()`) declares every hp.* up front in `space(hp)`, named after the
config field that it sets, and maps them with `dataclasses.replace` onto the same config, builder
and compile that the model's `fit.py` uses. keras_tuner is imported only after the arguments are
checked, so `--help` and bad arguments are quick.
"""

import dataclasses
import functools
import json
import os
import sys

from data import checks
from data.errors import UserError

TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVE = "val_loss"
TOP_TRIALS = 10  # rows of best_trials.md
TRIAL_LOG = "trials_run.tsv"  # trial id, tuner id (chief/worker), status: one line per trial run


def add_arguments(parser, model, *, trials_alias=False):
    """The options shared by every search CLI (`--trials` as an alias of `--max-trials`)."""
    parser.add_argument("--data", nargs="+", required=True, help="training ROOT files or globs")
    parser.add_argument("--tuner", default="random", choices=TUNERS, help="default random")
    names = ("--max-trials", "--trials") if trials_alias else ("--max-trials",)
    parser.add_argument(
        *names,
        dest="max_trials",
        type=int,
        default=10,
        help="trials of a random or Bayesian search (default 10; Hyperband sets its own)",
    )
    parser.add_argument(
        "--epochs", type=int, default=20, help="maximum epochs of a trial (default 20)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--objective",
        default=OBJECTIVE,
        help="validation metric that ranks the trials, minimised (default val_loss; when loss "
        "weights are searched, a metric they do not scale, e.g. TPMT's val_m_tautau_mae)",
    )
    parser.add_argument(
        "--out",
        default=f"tuning_runs/{model}",
        help="search folder, kept: rerunning the same command resumes the search",
    )


def check_args(args, *, trials_alias=False):
    """Checks of the shared options that need no data and no backend."""
    if not args.objective.startswith("val_"):
        raise UserError(f"--objective must be a validation metric (val_...), got {args.objective}")
    if args.max_trials <= 0 or args.epochs <= 0:
        flag = "--max-trials / --trials" if trials_alias else "--max-trials"
        raise UserError(f"{flag} and --epochs must be positive")
    checks.non_negative(args.seed, "--seed")
    checks.writable_dir(args.out)


def tuple_choice(text):
    """A tuple config field from its hp.Choice string: "32,64,32" -> (32, 64, 32)."""
    return tuple(int(v) for v in text.split(","))


@functools.cache
def config_hypermodel():
    """The base class of the hypermodels (defined on first use: keeps imports light).

    A subclass defines `space(hp)`, a dict of config fields -> values drawn from `hp`, and
    `make(config)`, the compiled model of a config (the fit's builder and compile).
    """
    import keras_tuner

    class ConfigHyperModel(keras_tuner.HyperModel):
        """Maps keras-tuner HyperParameters onto fields of a frozen config dataclass.

        Args:
            base: the config whose fields the search does not touch.
        """

        def __init__(self, base, **kwargs):
            super().__init__(**kwargs)
            self.base = base

        def space(self, hp):
            raise NotImplementedError

        def make(self, config):
            raise NotImplementedError

        def config(self, hp):
            """The base config with the searched fields replaced."""
            return dataclasses.replace(self.base, **self.space(hp))

        def build(self, hp):
            return self.make(self.config(hp))

    ConfigHyperModel.__module__ = __name__
    return ConfigHyperModel


def hypermodel_getattr(module, name, factory):
    """Module `__getattr__` that defines the hypermodel class `name` on first use."""

    def __getattr__(attr):
        if attr == name:
            return factory()
        raise AttributeError(f"module {module!r} has no attribute {attr!r}")

    return __getattr__


def _tuner_class(kind):
    import keras
    import keras_tuner

    base = {
        "random": keras_tuner.RandomSearch,
        "bayesian": keras_tuner.BayesianOptimization,
        "hyperband": keras_tuner.Hyperband,
    }[kind]

    class Tuner(base):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            # which process ran which trial (appended line by line: safe from several workers)
            path = os.path.join(self.project_dir, TRIAL_LOG)
            with open(path, "a") as f:
                f.write(f"{trial.trial_id}\t{self.tuner_id}\t{trial.status}\n")

        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            # keras-tuner gives each trial its own TensorBoard folder (with hparams) on the
            # TensorFlow backend only: do the same on the others
            if keras.backend.backend() == "tensorflow":
                return super()._configure_tensorboard_dir(callbacks, trial, execution)
            for callback in callbacks:
                if isinstance(callback, keras.callbacks.TensorBoard):
                    callback.log_dir = os.path.join(
                        callback.log_dir, str(trial.trial_id), f"execution{execution}"
                    )

    Tuner.__name__ = Tuner.__qualname__ = base.__name__
    return Tuner


def make_tuner(args, hypermodel):
    """The `--tuner` over `hypermodel`, with its project in `--out` (resumed when there)."""
    import keras_tuner

    out = os.path.abspath(args.out)
    budget = {"max_epochs": args.epochs} if args.tuner == "hyperband" else {}
    if args.tuner != "hyperband":
        budget["max_trials"] = args.max_trials
    return _tuner_class(args.tuner)(
        hypermodel,
        objective=keras_tuner.Objective(args.objective, "min"),
        seed=args.seed,
        directory=os.path.dirname(out),
        project_name=os.path.basename(out),
        overwrite=False,
        **budget,
    )


def trial_callbacks(out, config, *, reduce_lr=True, objective=OBJECTIVE):
    """EarlyStopping (and ReduceLROnPlateau) on the objective and a TensorBoard run per trial."""
    import keras

    cbs = [
        keras.callbacks.EarlyStopping(
            monitor=objective, mode="min", patience=config.early_stopping_patience
        )
    ]
    if reduce_lr:
        cbs.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=objective,
                mode="min",
                factor=0.5,
                patience=config.reduce_lr_patience,
                min_lr=config.min_learning_rate,
            )
        )
    # keras-tuner moves it into logs/<trial_id>/execution0 for each trial
    cbs.append(keras.callbacks.TensorBoard(log_dir=os.path.join(out, "logs")))
    return cbs


def run(args, hypermodel, x, y=None, *, validation_data, reduce_lr=True, **fit_kwargs):
    """Run (or resume) the search, write best_trials.md / .json and return the tuner.

    Args:
        args: the parsed CLI arguments (`add_arguments`).
        hypermodel: a `config_hypermodel()` subclass instance.
        x, y, validation_data, **fit_kwargs: passed to every trial's `model.fit`; `x` may be
            a `keras.utils.PyDataset` of batches (a streamed training set, `data.stream`),
            whose batches are then taken in its own seeded order (as `models.training.fit`
            does: Keras' batch-order shuffling would make every batch load another chunk).
        reduce_lr: False for models whose learning rate is a schedule.
    """
    import keras

    if isinstance(x, keras.utils.PyDataset):
        fit_kwargs.setdefault("shuffle", False)
    tuner = make_tuner(args, hypermodel)
    worker = role() == "worker"
    done = 0 if worker else _finished(tuner)
    if done:
        print(f"resuming the search in {args.out}: {done} trials done", file=sys.stderr)
    tuner.search(
        x,
        y,
        validation_data=validation_data,
        epochs=args.epochs,
        callbacks=trial_callbacks(
            args.out, hypermodel.base, reduce_lr=reduce_lr, objective=args.objective
        ),
        verbose=2,
        **fit_kwargs,
    )
    if worker:  # the chief holds the oracle and writes the summary
        print(f"worker {tuner.tuner_id}: no trials left", file=sys.stderr)
        return tuner
    failed = [t.trial_id for t in tuner.oracle.trials.values() if t.status == "FAILED"]
    if failed:
        print(f"{len(failed)} trials failed (their trial.json holds the error)", file=sys.stderr)
    if not _finished(tuner):
        raise UserError(f"no trial completed: see {args.out}/trial_*/trial.json")
    rows = write_best(tuner, args.out, objective=args.objective)
    if rows:
        print(f"best trial {rows[0]['trial_id']}: {rows[0]['hyperparameters']}", file=sys.stderr)
    print(f"wrote {os.path.join(args.out, 'best_trials.md')}", file=sys.stderr)
    return tuner


def role():
    """ "chief", "worker" or None: keras-tuner's distributed mode, from its environment
    variables KERASTUNER_TUNER_ID ("chief" or a worker's id such as "tuner0"),
    KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT (the chief's gRPC oracle)."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def _finished(tuner):
    return sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())


def best_rows(tuner, top=TOP_TRIALS):
    """[{rank, trial_id, score, hyperparameters}] of the `top` best completed trials."""
    trials = tuner.oracle.get_best_trials(top)
    return [
        {
            "rank": i + 1,
            "trial_id": t.trial_id,
            "score": None if t.score is None else float(t.score),
            "hyperparameters": dict(t.hyperparameters.values),
        }
        for i, t in enumerate(trials)
    ]


def write_best(tuner, out, top=TOP_TRIALS, objective=OBJECTIVE):
    """best_trials.md and best_trials.json in `out`; returns the rows."""
    rows = best_rows(tuner, top)
    summary = {
        "objective": objective,
        "direction": "min",
        "tuner": type(tuner).__name__,
        "trials_completed": _finished(tuner),
        "best": rows,
    }
    with open(os.path.join(out, "best_trials.json"), "w") as f:
        json.dump(summary, f, indent=2)
    names = []
    for row in rows:
        names += [k for k in row["hyperparameters"] if k not in names]
    lines = [
        f"# Best trials ({summary['tuner']}, {summary['trials_completed']} trials completed)",
        "",
        f"Ranked by {objective} (lower is better). TensorBoard: `tensorboard --logdir "
        f"{os.path.join(out, 'logs')}`.",
        "",
        "| " + " | ".join(["rank", "trial", objective, *names]) + " |",
        "|" + "---|" * (3 + len(names)),
    ]
    for row in rows:
        values = [_fmt(row["hyperparameters"].get(k, "")) for k in names]
        cells = [str(row["rank"]), row["trial_id"], _fmt(row["score"]), *values]
        lines.append("| " + " | ".join(cells) + " |")
    with open(os.path.join(out, "best_trials.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return rows


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
