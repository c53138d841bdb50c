"""keras-tuner search over TPMT hyperparameters.

    python -m tuning.tpmt --data flat.root --max-trials 10 --epochs 20 --out tuning_runs/tpmt
    python -m tuning.tpmt --data 'nano/*.root' --schema nanoaod --tuner bayesian --max-trials 30
    python -m tuning.tpmt --data flat.root --tuner hyperband --epochs 27

`--trials` is an alias of `--max-trials`. The hypermodel declares every `hp.*` up front (named
after the `TPMTConfig` field that it sets: depth, heads, widths, dropout, learning rate and the
mass-loss weight lambda_m) and maps them onto the same `TPMTConfig`, `build_model` and
`compile_model` that `models.tpmt.fit` uses, with the fit's input statistics. The options and
outputs shared by every search (the project folder in `--out`, resumable; a TensorBoard run per
trial in OUT/logs; OUT/best_trials.md) are described in tuning/search.py.
"""

import argparse
import functools

from data.errors import UserError, cli
from tuning import search


@functools.cache
def _hypermodel_class():
    class TPMTHyperModel(search.config_hypermodel()):
        """Maps a keras-tuner HyperParameters onto `TPMTConfig` fields.

        Args:
            base: the `TPMTConfig` whose fields the search does not touch.
            stats: standardisation statistics passed to `build_model`.
        """

        def __init__(self, base, stats=None, **kwargs):
            super().__init__(base, **kwargs)
            self.stats = stats

        def space(self, hp):
            return dict(
                d_model=hp.Choice("d_model", [32, 64, 128]),
                num_heads=hp.Choice("num_heads", [2, 4, 8]),
                key_dim=hp.Choice("key_dim", [8, 16, 32]),
                num_blocks=hp.Int("num_blocks", 1, 3),
                ff_dim=hp.Choice("ff_dim", [64, 128, 256]),
                dropout=hp.Float("dropout", 0.0, 0.2, step=0.1),
                learning_rate=hp.Float("learning_rate", 1e-4, 3e-3, sampling="log"),
                lambda_m=hp.Float("lambda_m", 1e-3, 1e-1, sampling="log"),
            )

        def make(self, config):
            from models.tpmt.model import build_model, compile_model

            return compile_model(build_model(config, self.stats), config)

    TPMTHyperModel.__module__ = __name__
    TPMTHyperModel.__qualname__ = "TPMTHyperModel"
    return TPMTHyperModel


# `TPMTHyperModel` subclasses keras_tuner.HyperModel: defined on first use (keeps the import of
# this module light)
__getattr__ = search.hypermodel_getattr(__name__, "TPMTHyperModel", _hypermodel_class)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tuning.tpmt", description=__doc__.split("\n")[0])
    search.add_arguments(p, "tpmt", trials_alias=True)
    p.add_argument("--preset", default="cpu", help="base config of the search (default cpu)")
    p.add_argument("--channel", default="all", help="all, tauh-tauh, mu-tauh or e-tauh")
    from data import schemas

    schemas.add_arguments(p, working_points=True)
    return p.parse_args(argv)


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    search.check_args(args, trials_alias=True)
    if args.channel not in ("all", "tauh-tauh", "mu-tauh", "e-tauh"):
        raise UserError(f"unknown channel '{args.channel}'")


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    from data import io, schemas
    from data.ditau import load

    files = io.expand_paths(args.data)
    from models import training
    from models.tpmt.config import get_config
    from models.tpmt.fit import check_statistics, input_stats, target_matrix

    try:
        base = get_config(args.preset, epochs=args.epochs)
    except ValueError as err:
        raise UserError(str(err)) from None
    d = load(files, channel=args.channel, require_truth=True, **schemas.reading_options(args))
    if d["targets"] is None:
        raise UserError(f"{files[0]} has no generator truth: cannot tune on it")
    training.set_seed(args.seed)
    tr, va = training.split_indices(len(d["meta"]["channel"]), (0.8, 0.2), seed=args.seed)
    check_statistics(len(tr), len(va))  # the fit's minimum statistics
    x, y = d["inputs"], target_matrix(d["targets"])
    xt = training.take(x, tr)
    search.run(
        args,
        _hypermodel_class()(base, input_stats(xt)),
        xt,
        y[tr],
        validation_data=(training.take(x, va), y[va]),
        batch_size=base.batch_size,
    )


if __name__ == "__main__":
    main()
