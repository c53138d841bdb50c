"""hepformers models. Importing this package registers every custom layer, loss and metric, so
`keras.models.load_model(path)` works on the toolkit's `.keras` files after `import models`."""

import importlib
import os
import sys

# Quiet TensorFlow's C++ start-up chatter (it buries the CLIs' one-line messages) and keep
# oneDNN's reordered float sums off so reruns give the same numbers; set these yourself to
# override.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# The modules whose import registers the toolkit's serialisable classes.
REGISTERING = (
    "models.layers",
    "models.layers.geometric",
    "models.lgatr",
    "models.lgatr.baseline_transformer",
    "models.lgatr.layers",
    "models.lgatr.losses",
    "models.lgatr.model",
    "models.metperceiver",
    "models.metperceiver.layers",
    "models.metperceiver.losses",
    "models.metperceiver.model",
    "models.partau",
    "models.partau.losses",
    "models.partau.model",
    "models.partau.pcgrad",
    "models.partau.schedule",
    "models.scouttau",
    "models.scouttau.layers",
    "models.scouttau.losses",
    "models.scouttau.model",
    "models.tpmt",
    "models.tpmt.layers",
    "models.tpmt.losses",
    "models.tpmt.model",
)


def register():
    """Import every module that registers custom classes (what `import models` does)."""
    for name in REGISTERING:
        importlib.import_module(name)


def starting_cli():
    """True while `python -m models.<name>.<cli>` imports its parent packages.

    Python sets sys.argv[0] to "-m" while it looks the module up. The package imports then skip
    the backend, so that a CLI's --help and argument errors answer in a second; the CLI imports
    what it needs after parsing (and `training.load_trained` calls `register`).
    """
    return sys.argv[:1] == ["-m"]


if not starting_cli():
    register()
