"""keras-tuner search over L-GATr hyperparameters (dilepton ttbar top reconstruction).

    python -m tuning.lgatr --data ttbar.root --max-trials 10 --epochs 20 --out tuning_runs/lgatr
    python -m tuning.lgatr --data 'ttbar_*.root' --tuner bayesian --max-trials 30 --preset large

The hypermodel declares every `hp.*` up front, named after the `LGATrConfig` field that it sets
(num_blocks, num_heads, hidden_mv_channels, hidden_s_channels, learning_rate and the m_tt loss
weight mass_weight), and builds through the same config (`models.lgatr.fit.make_config`),
`build_model` and `compile_model` as `python -m models.lgatr.fit`. Events are streamed from the
files in chunks and split 80/20 as the fit does (`models.lgatr.fit.training_events`). The
options and outputs shared by every search (resumable project folder in `--out`, a TensorBoard
run per trial in OUT/logs, OUT/best_trials.md) are described in tuning/search.py.
"""

import argparse
import functools

from data import checks
from data.errors import cli
from tuning import search


@functools.cache
def _hypermodel_class():
    class LGATrHyperModel(search.config_hypermodel()):
        """Maps a keras-tuner HyperParameters onto `LGATrConfig` fields.

        Args:
            base: the `LGATrConfig` whose fields the search does not touch.
        """

        def space(self, hp):
            return dict(
                num_blocks=hp.Int("num_blocks", 1, 3),
                num_heads=hp.Choice("num_heads", [1, 2, 4]),
                hidden_mv_channels=hp.Choice("hidden_mv_channels", [4, 8, 16]),
                hidden_s_channels=hp.Choice("hidden_s_channels", [8, 16, 32]),
                learning_rate=hp.Float("learning_rate", 1e-4, 3e-3, sampling="log"),
                mass_weight=hp.Choice("mass_weight", [0.0, 0.5, 1.0]),
            )

        def make(self, config):
            from models.lgatr.fit import compile_model
            from models.lgatr.model import build_model

            return compile_model(build_model(config), config)

    LGATrHyperModel.__module__ = __name__
    LGATrHyperModel.__qualname__ = "LGATrHyperModel"
    return LGATrHyperModel


__getattr__ = search.hypermodel_getattr(__name__, "LGATrHyperModel", _hypermodel_class)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tuning.lgatr", description=__doc__.split("\n")[0])
    search.add_arguments(p, "lgatr")
    p.add_argument("--preset", default="default", help="base config: default (small), large, seed")
    p.add_argument("--drop-nonfinite", action="store_true", help="drop events with NaN/inf")
    p.add_argument(
        "--chunk-events", type=int, default=5000, help="events per streamed chunk (as the fit)"
    )
    from data import schemas

    schemas.add_arguments(p, working_points=True)  # as models.lgatr.fit
    return p.parse_args(argv)


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    search.check_args(args)
    checks.positive(args.chunk_events, "--chunk-events")


def base_config(args):
    """The fit's config (`models.lgatr.fit.make_config`: preset, token and feature lists) of
    the search's `--preset` and `--epochs`."""
    from models.lgatr.fit import make_config

    fit_args = argparse.Namespace(
        preset=args.preset, epochs=args.epochs, batch_size=None, learning_rate=None,
        mass_weight=None,
    )  # fmt: skip
    return make_config(fit_args)


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    from data import io, schemas

    files = io.expand_paths(args.data)
    from models import training
    from models.lgatr.fit import training_events

    base = base_config(args)
    training.set_seed(args.seed)
    train, val = training_events(
        files,
        base,
        chunk_events=args.chunk_events,
        seed=args.seed,
        drop_nonfinite=args.drop_nonfinite,
        reading=schemas.reading_options(args),
    )
    search.run(args, _hypermodel_class()(base), train, validation_data=val)


if __name__ == "__main__":
    main()
