"""keras-tuner search over MET Perceiver hyperparameters (MET at 200 pileup).

    python -m tuning.metperceiver --data ttbar_pu.root --max-trials 10 --epochs 10
    python -m tuning.metperceiver --data 'cache/ttbarpu/train.manifest.json' --tuner bayesian

The hypermodel declares every `hp.*` up front, named after the `MetConfig` field that it sets
(num_latents, the latent count; dim, num_blocks, num_heads, dropout and learning_rate) and
builds through the same config, `build_model` and `compile_model` as
`python -m models.metperceiver.fit`. Events are streamed from the files as the fit streams them
(`data.stream`, 10% of every chunk held out for validation) and weighted to a flat generated-MET
spectrum unless the preset says otherwise. The options and outputs shared by every search
(resumable project folder in `--out`, a TensorBoard run per trial in OUT/logs,
OUT/best_trials.md) are described in tuning/search.py.
"""

import argparse
import functools

from data import checks, schemas
from data.errors import UserError, cli
from tuning import search


@functools.cache
def _hypermodel_class():
    class MetPerceiverHyperModel(search.config_hypermodel()):
        """Maps a keras-tuner HyperParameters onto `MetConfig` fields (the Perceiver variant).

        Args:
            base: the `MetConfig` whose fields the search does not touch.
            jit_compile: passed to `compile_model`.
        """

        def __init__(self, base, jit_compile="auto", **kwargs):
            super().__init__(base, **kwargs)
            self.jit_compile = jit_compile

        def space(self, hp):
            return dict(
                num_latents=hp.Choice("num_latents", [8, 16, 32, 64]),
                dim=hp.Choice("dim", [16, 32, 64]),
                num_blocks=hp.Int("num_blocks", 1, 3),
                num_heads=hp.Choice("num_heads", [2, 4]),  # divides every dim
                dropout=hp.Float("dropout", 0.0, 0.2, step=0.1),
                learning_rate=hp.Float("learning_rate", 3e-4, 3e-3, sampling="log"),
            )

        def make(self, config):
            from models.metperceiver.fit import compile_model
            from models.metperceiver.model import build_model

            return compile_model(build_model(config), config, jit_compile=self.jit_compile)

    MetPerceiverHyperModel.__module__ = __name__
    MetPerceiverHyperModel.__qualname__ = "MetPerceiverHyperModel"
    return MetPerceiverHyperModel


__getattr__ = search.hypermodel_getattr(__name__, "MetPerceiverHyperModel", _hypermodel_class)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m tuning.metperceiver", description=__doc__.split("\n")[0]
    )
    search.add_arguments(p, "metperceiver")
    p.add_argument("--preset", default="cpu", help="base config: cpu (default), tiny or seed")
    p.add_argument(
        "--chunk-events", type=int, default=2000, help="events per streamed chunk (as the fit)"
    )
    p.add_argument(
        "--max-val-events", type=int, default=2000, help="validation events kept in memory"
    )
    p.add_argument("--no-jit", action="store_true", help="train without XLA (jit_compile)")
    schemas.add_arguments(p, mapping=False)
    return p.parse_args(argv)


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    search.check_args(args)
    checks.positive(args.chunk_events, "--chunk-events")
    checks.positive(args.max_val_events, "--max-val-events")


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    from data import io

    files = io.expand_paths(args.data)
    schemas.only_own_files(args.schema, "the MET Perceiver", files[0])
    import keras

    import models
    from models import training
    from models.metperceiver.config import get_config
    from models.metperceiver.fit import training_stream

    models.register()
    try:
        base = get_config(args.preset, variant="perceiver", epochs=args.epochs)
    except ValueError as err:
        raise UserError(str(err)) from None
    training.set_seed(args.seed)
    train, val, _ = training_stream(
        files,
        base,
        chunk_events=args.chunk_events,
        max_val_events=args.max_val_events,
        seed=args.seed,
        progress=False,
    )
    jit = keras.backend.backend() == "tensorflow" and not args.no_jit
    search.run(args, _hypermodel_class()(base, True if jit else "auto"), train, validation_data=val)


if __name__ == "__main__":
    main()
