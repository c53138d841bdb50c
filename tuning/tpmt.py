"""keras-tuner search over TPMT hyperparameters.

    python -m tuning.tpmt --data flat.root --trials 10 --epochs 20 --out tuning_runs/tpmt

The hypermodel declares every `hp.*` up front and maps them onto the same `TPMTConfig` and
`build_model` that `models.tpmt.fit` uses. keras-tuner (and with it the backend) is imported
only after the arguments are parsed and checked, so `--help` and argument errors are quick.
"""

import argparse
import functools
import os
import sys

from data import checks
from data.errors import UserError, cli


@functools.cache
def _hypermodel_class():
    import keras_tuner

    class TPMTHyperModel(keras_tuner.HyperModel):
        """Maps a keras-tuner HyperParameters onto `TPMTConfig` fields.

        Args:
            base: the `TPMTConfig` whose fields the search does not touch.
            stats: standardisation statistics passed to `build_model`.
        """

        def __init__(self, base, stats=None, **kwargs):
            super().__init__(**kwargs)
            self.base = base
            self.stats = stats

        def config(self, hp):
            from dataclasses import replace

            return replace(
                self.base,
                d_model=hp.Choice("d_model", [32, 64, 128]),
                num_heads=hp.Choice("num_heads", [2, 4, 8]),
                key_dim=hp.Choice("key_dim", [8, 16, 32]),
                num_blocks=hp.Int("num_blocks", 1, 3),
                ff_dim=hp.Choice("ff_dim", [64, 128, 256]),
                dropout=hp.Float("dropout", 0.0, 0.2, step=0.1),
                learning_rate=hp.Float("learning_rate", 1e-4, 3e-3, sampling="log"),
            )

        def build(self, hp):
            from models.tpmt.model import build_model, compile_model

            config = self.config(hp)
            return compile_model(build_model(config, self.stats), config)

    TPMTHyperModel.__module__ = __name__
    TPMTHyperModel.__qualname__ = "TPMTHyperModel"
    return TPMTHyperModel


def __getattr__(name):
    # `TPMTHyperModel` subclasses keras_tuner.HyperModel: defined on first use (keeps the
    # import of this module light)
    if name == "TPMTHyperModel":
        return _hypermodel_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tuning.tpmt", description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+", required=True, help="training ROOT files")
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--channel", default="all")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="tuning_runs/tpmt", help="search folder (kept; reruns resume)")
    from data import schemas

    schemas.add_arguments(p, working_points=True)
    return p.parse_args(argv)


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    if args.trials <= 0 or args.epochs <= 0:
        raise UserError("--trials and --epochs must be positive")
    checks.non_negative(args.seed, "--seed")
    if args.channel not in ("all", "tauh-tauh", "mu-tauh", "e-tauh"):
        raise UserError(f"unknown channel '{args.channel}'")
    checks.writable_dir(args.out)


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    from data import io
    from data.ditau import load

    files = io.expand_paths(args.data)
    from data import schemas

    d = load(files, channel=args.channel, require_truth=True, **schemas.reading_options(args))
    if d["targets"] is None:
        raise UserError(f"{files[0]} has no generator truth: cannot tune on it")
    import keras_tuner

    from models import training
    from models.tpmt.config import get_config
    from models.tpmt.fit import check_statistics, input_stats, target_matrix

    training.set_seed(args.seed)
    tr, va = training.split_indices(len(d["meta"]["channel"]), (0.8, 0.2), seed=args.seed)
    check_statistics(len(tr), len(va))  # the fit's minimum statistics
    x, y = d["inputs"], target_matrix(d["targets"])
    xt = training.take(x, tr)
    base = get_config("cpu", epochs=args.epochs)
    tuner = keras_tuner.RandomSearch(
        _hypermodel_class()(base, input_stats(xt)),
        objective="val_loss",
        max_trials=args.trials,
        seed=args.seed,
        directory=os.path.dirname(os.path.abspath(args.out)) or ".",
        project_name=os.path.basename(os.path.abspath(args.out)),
        overwrite=False,
    )
    tuner.search(
        xt,
        y[tr],
        validation_data=(training.take(x, va), y[va]),
        epochs=args.epochs,
        batch_size=base.batch_size,
        verbose=2,
        callbacks=training.callbacks("tpmt_tuning", args.out, base)[:2],
    )
    best = tuner.get_best_hyperparameters(1)[0]
    print("best hyperparameters:", best.values, file=sys.stderr)


if __name__ == "__main__":
    main()
