"""keras-tuner search over ScoutTau transformer hyperparameters (L1 scouting tau ID).

    python -m tuning.scouttau --data lowmass.root --max-trials 10 --epochs 20
    python -m tuning.scouttau --data 'cache/scouttau/*.manifest.json' --inputs pf --tuner bayesian

The hypermodel declares every `hp.*` up front, named after the `ScoutTauConfig` field that it
sets (embed_dims, num_heads, num_layers, dropout, learning_rate and the loss weights
task_weights_charge and task_weights_pileup; tau_id and pt keep the preset's) and builds
through the same config, `build_model` and `compile_transformer` as
`python -m models.scouttau.fit`. Candidates are streamed from the files in chunks of events,
targeted, split by event (`--val-fraction`) and class-weighted as the fit does
(`models.scouttau.fit.training_candidates`). The options and outputs shared by
every search (resumable project folder in `--out`, a TensorBoard run per trial in OUT/logs,
OUT/best_trials.md) are described in tuning/search.py.
"""

import argparse
import functools

from data import checks, schemas
from data.errors import UserError, cli
from tuning import search

WEIGHTED_TASKS = ("charge", "pileup")  # tau_id and pt keep the preset's weights


@functools.cache
def _hypermodel_class():
    class ScoutTauHyperModel(search.config_hypermodel()):
        """Maps a keras-tuner HyperParameters onto `ScoutTauConfig` fields.

        Args:
            base: the `ScoutTauConfig` whose fields the search does not touch.
            jit_compile: passed to `compile_transformer`.
        """

        def __init__(self, base, jit_compile="auto", **kwargs):
            super().__init__(base, **kwargs)
            self.jit_compile = jit_compile

        def space(self, hp):
            from models.scouttau.config import TASKS

            weights = dict(zip(TASKS, self.base.task_weights))
            for task in WEIGHTED_TASKS:
                weights[task] = hp.Choice(f"task_weights_{task}", [0.25, 0.5, 1.0])
            return dict(
                # "E1,E2,E3": the per-constituent MLP widths (the last is the model width)
                embed_dims=search.tuple_choice(
                    hp.Choice("embed_dims", ["16,32,16", "32,64,32", "64,128,64"])
                ),
                num_heads=hp.Choice("num_heads", [2, 4]),  # divides every width
                num_layers=hp.Int("num_layers", 1, 3),
                dropout=hp.Float("dropout", 0.0, 0.2, step=0.1),
                learning_rate=hp.Float("learning_rate", 1e-4, 3e-3, sampling="log"),
                task_weights=tuple(weights[t] for t in TASKS),
            )

        def make(self, config):
            from models.scouttau.fit import compile_transformer
            from models.scouttau.model import build_model

            model = build_model(config)
            compile_transformer(model, config, self.jit_compile)
            return model

    ScoutTauHyperModel.__module__ = __name__
    ScoutTauHyperModel.__qualname__ = "ScoutTauHyperModel"
    return ScoutTauHyperModel


__getattr__ = search.hypermodel_getattr(__name__, "ScoutTauHyperModel", _hypermodel_class)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m tuning.scouttau", description=__doc__.split("\n")[0]
    )
    search.add_arguments(p, "scouttau")
    p.add_argument("--preset", default="cpu", help="base config: cpu (default), tiny or seed")
    p.add_argument("--clustering", default="clue", choices=("clue", "antikt"))
    p.add_argument(
        "--inputs", default="puppi", choices=("puppi", "pf"), help="L1 PUPPI or PF candidates"
    )
    p.add_argument("--val-fraction", type=float, default=0.1, help="events for validation")
    p.add_argument(
        "--chunk-events", type=int, default=1000, help="events per streamed chunk (as the fit)"
    )
    from models.scouttau.fit import add_cache_arguments

    add_cache_arguments(p)
    p.add_argument("--no-jit", action="store_true", help="train without XLA (jit_compile)")
    schemas.add_arguments(p, mapping=False)
    return p.parse_args(argv)


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    search.check_args(args)
    if not 0 < args.val_fraction < 1:
        raise UserError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
    checks.positive(args.chunk_events, "--chunk-events")
    if args.chunk_cache and args.no_chunk_cache:
        raise UserError("--chunk-cache and --no-chunk-cache exclude each other")


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    from data import io

    files = io.expand_paths(args.data)
    schemas.only_own_files(args.schema, "ScoutTau", files[0])
    import keras

    import models
    from models import training
    from models.scouttau.config import get_config
    from models.scouttau.fit import training_candidates

    models.register()
    try:
        base = get_config(args.preset, epochs=args.epochs)
    except ValueError as err:
        raise UserError(str(err)) from None
    training.set_seed(args.seed)
    train, val, _ = training_candidates(files, args, base.batch_size)
    jit = keras.backend.backend() == "tensorflow" and not args.no_jit
    search.run(args, _hypermodel_class()(base, True if jit else "auto"), train, validation_data=val)


if __name__ == "__main__":
    main()
