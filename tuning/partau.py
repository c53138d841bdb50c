"""keras-tuner search over ParTau hyperparameters (MultiParTau or a SingleParTau).

    python -m tuning.partau --data ztautau.root zqq.root --max-trials 10 --epochs 20
    python -m tuning.partau --data 'cache/fcctau/*.root' --variant single --task decay_mode
    python -m tuning.partau --data 'cache/fcctau/*.root' --no-pcgrad --tuner hyperband --epochs 27

The hypermodel declares every `hp.*` up front, named after the `ParTauConfig` field that it sets
(num_layers, num_heads, embed_dims, dropout, learning_rate and, for the multi-task model, the
loss weights task_weights_<task> of charge, decay_mode and kinematics, tau_id staying at 1) and
builds through the same config, `build_model` and `compile_model` (one-cycle schedule, PCGrad
unless `--no-pcgrad`) as `python -m models.partau.fit`. Jets are split into training and
validation by event (`data.partau.select`), weighted and streamed from the files in chunks as
the fit does (`models.partau.fit.training_jets`). The
options and outputs shared by every search (resumable project folder in `--out`, a TensorBoard
run per trial in OUT/logs, OUT/best_trials.md) are described in tuning/search.py.
"""

import argparse
import functools

from data import checks, schemas
from data.errors import UserError, cli
from tuning import search

WEIGHTED_TASKS = ("charge", "decay_mode", "kinematics")  # tau_id keeps weight 1


@functools.cache
def _hypermodel_class():
    class ParTauHyperModel(search.config_hypermodel()):
        """Maps a keras-tuner HyperParameters onto `ParTauConfig` fields.

        Args:
            base: the `ParTauConfig` (variant, task, pcgrad, schedule) the search keeps.
            steps_per_epoch: training steps of an epoch (the one-cycle schedule's length).
            jit_compile: passed to `compile_model`.
        """

        def __init__(self, base, steps_per_epoch=1, jit_compile="auto", **kwargs):
            super().__init__(base, **kwargs)
            self.steps_per_epoch = steps_per_epoch
            self.jit_compile = jit_compile

        def space(self, hp):
            fields = dict(
                num_layers=hp.Int("num_layers", 1, 3),
                num_heads=hp.Choice("num_heads", [2, 4, 8]),
                # "E1,E2,E3": the particle-embedding widths (the last is the model width)
                embed_dims=search.tuple_choice(
                    hp.Choice("embed_dims", ["32,64,32", "64,128,64", "128,256,128"])
                ),
                dropout=hp.Float("dropout", 0.0, 0.2, step=0.1),
                learning_rate=hp.Float("learning_rate", 3e-4, 3e-3, sampling="log"),
            )
            if self.base.variant == "multi":
                weights = dict(zip(self.base.tasks, self.base.task_weights))
                for task in WEIGHTED_TASKS:
                    weights[task] = hp.Choice(f"task_weights_{task}", [0.5, 1.0, 2.0])
                fields["task_weights"] = tuple(weights[t] for t in self.base.tasks)
            return fields

        def make(self, config):
            from models.partau.fit import compile_model
            from models.partau.model import build_model

            model = build_model(config)
            return compile_model(model, config, self.steps_per_epoch, self.jit_compile)

    ParTauHyperModel.__module__ = __name__
    ParTauHyperModel.__qualname__ = "ParTauHyperModel"
    return ParTauHyperModel


__getattr__ = search.hypermodel_getattr(__name__, "ParTauHyperModel", _hypermodel_class)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tuning.partau", description=__doc__.split("\n")[0])
    search.add_arguments(p, "partau")
    p.add_argument("--variant", default="multi", choices=("multi", "single"))
    p.add_argument(
        "--task", default="tau_id", help="single: tau_id, charge, decay_mode or kinematics"
    )
    p.add_argument("--preset", default="cpu", help="base config: cpu (default), tiny or seed")
    p.add_argument("--no-pcgrad", action="store_true", help="multi: plain summed gradients")
    p.add_argument("--no-jit", action="store_true", help="train without XLA (jit_compile)")
    p.add_argument(
        "--chunk-events", type=int, default=5000, help="events per streamed chunk (as the fit)"
    )
    schemas.add_arguments(p, mapping=False)
    return p.parse_args(argv)


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    search.check_args(args)
    checks.positive(args.chunk_events, "--chunk-events")


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    from data import io

    files = io.expand_paths(args.data)
    schemas.only_own_files(args.schema, "ParTau", files[0])
    import keras

    import models
    from models import training
    from models.partau.config import get_config
    from models.partau.fit import training_jets
    from models.partau.pcgrad import PCGRAD_BACKENDS

    models.register()
    try:
        base = get_config(
            args.preset,
            variant=args.variant,
            task=args.task,
            epochs=args.epochs,
            pcgrad=False if args.no_pcgrad else None,
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    backend = keras.backend.backend()
    if base.variant == "multi" and base.pcgrad and backend not in PCGRAD_BACKENDS:
        raise UserError(
            f"PCGrad needs the TensorFlow, JAX or PyTorch backend: --no-pcgrad on {backend}"
        )
    training.set_seed(args.seed)
    train, val, _ = training_jets(files, base, chunk_events=args.chunk_events, seed=args.seed)
    jit = backend == "tensorflow" and not args.no_jit
    hypermodel = _hypermodel_class()(base, len(train), True if jit else "auto")
    search.run(args, hypermodel, train, validation_data=val, reduce_lr=base.schedule == "plateau")


if __name__ == "__main__":
    main()
