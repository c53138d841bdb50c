"""keras-tuner search over TPMT hyperparameters.

    python -m tuning.tpmt --data flat.root --max-trials 10 --epochs 20 --out tuning_runs/tpmt
    python -m tuning.tpmt --data 'nano/*.root' --schema nanoaod --tuner bayesian --max-trials 30
    python -m tuning.tpmt --data flat.root --tuner hyperband --epochs 27
    python -m tuning.tpmt --data 'train/*.root' --validation heldout.root --tuner hyperband

`--trials` is an alias of `--max-trials`. The hypermodel declares every `hp.*` up front (named
after the `TPMTConfig` field that it sets: depth, heads, widths, dropout, learning rate and the
mass-loss weight lambda_m) and maps them onto the same `TPMTConfig`, `build_model` and
`compile_model` that `models.tpmt.fit` uses, with the fit's input statistics. Trials train on
the fit's streamed sample (`models.tpmt.fit.training_stream`: chunks of the files shuffled
across files, mirrored copies, flat-mass weights), so the training files may exceed memory;
`--validation FILES` scores every trial on held-out files instead of 20% of each chunk. The
options and
outputs shared by every search (the project folder in `--out`, resumable; a TensorBoard run per
trial in OUT/logs; OUT/best_trials.md) are described in tuning/search.py.
"""

import argparse
import functools
import sys

from data import checks
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
    p.add_argument(
        "--validation",
        nargs="+",
        default=None,
        help="held-out ROOT files for val_loss (default: 20%% of every training chunk)",
    )
    p.add_argument(
        "--chunk-events", type=int, default=5000, help="events per streamed chunk (as the fit)"
    )
    p.add_argument("--no-mirror", action="store_true", help="as the fit's --no-mirror")
    p.add_argument(
        "--no-flat-weights",
        action="store_true",
        help="as the fit's: no reweighting to a flat selected-mass spectrum (resonant samples)",
    )
    from data import schemas

    schemas.add_arguments(p, working_points=True)
    return p.parse_args(argv)


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    search.check_args(args, trials_alias=True)
    if args.channel not in ("all", "tauh-tauh", "mu-tauh", "e-tauh"):
        raise UserError(f"unknown channel '{args.channel}'")
    checks.positive(args.chunk_events, "--chunk-events")


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    from data import ditau, io, schemas

    files = io.expand_paths(args.data)
    held_out = io.expand_paths(args.validation) if args.validation else None
    from models import training
    from models.tpmt.config import get_config
    from models.tpmt.fit import input_stats, target_matrix, training_stream

    try:
        base = get_config(args.preset, epochs=args.epochs)
    except ValueError as err:
        raise UserError(str(err)) from None
    reading = schemas.reading_options(args)
    for path in files + (held_out or []):
        ditau.check_branches(path, require_truth=True, **reading)
    training.set_seed(args.seed)
    # the fit's streamed sample (flat-mass weights, mirrored copies): never all in memory
    train, val, scan, weights = training_stream(
        files,
        reading,
        channel=args.channel,
        drop_nonfinite=False,
        chunk_events=args.chunk_events,
        batch_size=base.batch_size,
        seed=args.seed,
        mirrored=not args.no_mirror,
        flat_weights=not args.no_flat_weights,
        val_fraction=0.0 if held_out else 0.2,
    )
    if held_out:
        d = ditau.load(held_out, channel=args.channel, require_truth=True, **reading)
        if len(d["meta"]["channel"]) == 0:
            raise UserError(f"no selected events in the --validation files {held_out}")
        yv = target_matrix(d["targets"])
        if weights is not None:  # flat over the held-out files' own mass spectrum
            from models.tpmt.fit import FLAT_WEIGHT_EDGES

            weights = training.FlatWeights(yv[:, 2], FLAT_WEIGHT_EDGES)
        val = (d["inputs"], yv) if weights is None else (d["inputs"], yv, weights(yv[:, 2]))
    print(
        f"TPMT search: {sum(scan.counts)} training events streamed from {len(files)} files, "
        f"{len(val[1])} validation events" + (" (held-out files)" if held_out else ""),
        file=sys.stderr,
    )
    search.run(
        args,
        _hypermodel_class()(base, input_stats(scan.subset[0])),
        train,
        validation_data=val,
    )


if __name__ == "__main__":
    main()
