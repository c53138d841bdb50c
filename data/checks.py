"""Up-front checks of CLI arguments, shared by every CLI: output paths, numbers, model files.

Each check raises `UserError` (one line, exit status 2 under `@cli`) before any work starts and
writes nothing. The module imports only the standard library, so a CLI can run its checks
before it loads the deep-learning backend.
"""

import datetime
import json
import math
import os
import tempfile
import zipfile

from data.errors import UserError

# data.generate refuses larger requests: 1e8 events is ~10^4 CPU hours of Pythia at the
# measured ~1-3 ms per selected event (evaluate/bench/generation.py) and ~100 GB of ROOT.
MAX_EVENTS = 100_000_000


# --- output paths -------------------------------------------------------------------------


def _nearest_existing(path):
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _probe(folder, target, flag):
    """Create and remove a temporary folder in `folder` (os.access says yes to root even in
    /proc, so only a real write tells)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-probe-", dir=folder))
    except OSError as err:
        raise UserError(
            f"cannot write {target} ({flag}): {folder} is not writable ({err.strerror or err})"
        ) from None


def writable_dir(path, flag="--out", *, _target=None):
    """Check that `path` is, or can be created as, a writable folder (nothing is created).

    Raises:
        UserError: `path` or a folder above it is a file, or the place cannot be written.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{flag} {path} is a file, not a folder")
    base = _nearest_existing(path)
    if not os.path.isdir(base):
        raise UserError(f"cannot write {_target or path} ({flag}): {base} is a file, not a folder")
    _probe(base, _target or path, flag)
    return path


def new_keras_file(path, overwrite, flag="--out"):
    """Check that `path` names a `.keras` file that can be written (a calibration's output);
    an existing one is replaced only with `overwrite`.

    Raises:
        UserError: another suffix, an existing file without `overwrite`, or an unwritable place.
    """
    if not path.endswith(".keras"):
        raise UserError(f"{flag} must name a .keras file, got {path}")
    if os.path.exists(path) and not overwrite:
        raise UserError(f"{path} exists (use --overwrite to replace it)")
    return writable_file(path, flag)


def writable_file(path, flag="--out", *, folder_must_exist=True):
    """Check that `path` can be written as a file (an existing file is replaced later).

    Raises:
        UserError: `path` is a folder, its folder is missing (when `folder_must_exist`) or a
            file, or the place cannot be written.
    """
    if os.path.isdir(path):
        raise UserError(f"cannot write {path} ({flag}): it is a folder")
    folder = os.path.dirname(os.path.abspath(path))
    if folder_must_exist and not os.path.isdir(folder):
        if os.path.exists(folder):
            raise UserError(f"cannot write {path} ({flag}): {folder} is a file, not a folder")
        raise UserError(f"cannot write {path} ({flag}): folder {folder} does not exist")
    writable_dir(folder, flag, _target=path)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UserError(f"cannot write {path} ({flag}): permission denied")
    return path


def holds_model_card(folder):
    """True when `folder` holds a model card: a README.md next to a `.keras` file."""
    if not os.path.isfile(os.path.join(folder, "README.md")):
        return False
    return any(name.endswith(".keras") for name in os.listdir(folder))


def add_out_arguments(parser, model):
    """The `--out` and `--overwrite` options of a fit CLI (resolved by `fit_out_dir`)."""
    parser.add_argument(
        "--out", default=None, help=f"output folder (default: a new runs/{model}/fit-<time>)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"allow --out to be a folder with a model card (e.g. saved_models/{model})",
    )


def fit_out_dir(out, model, overwrite=False):
    """The output folder of a fit: `out`, or by default a new `runs/<model>/fit-<time>`.

    A folder that holds a model card (a shipped, measured model) is refused unless `overwrite`.
    Raises:
        UserError: an unwritable `out`, or a model card without `overwrite`.
    """
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = os.path.join("runs", model, f"fit-{stamp}")
    writable_dir(out)
    if os.path.isdir(out) and holds_model_card(out) and not overwrite:
        raise UserError(
            f"--out {out} holds a model card (README.md and a .keras file): pass --overwrite to "
            "replace its model, or choose another --out"
        )
    return out


# --- numbers --------------------------------------------------------------------------------


def positive(value, flag):
    """`value` (int or float) is finite and > 0; None (not given) passes."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UserError(f"{flag} must be positive, got {value}")
    return value


def non_negative(value, flag):
    """`value` is finite and >= 0; None passes."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise UserError(f"{flag} must be non-negative, got {value}")
    return value


def fit_args(args, *, min_events=10):
    """The numeric options every fit CLI shares (those it has): --seed, --epochs,
    --batch-size, --learning-rate, --events, --max-minutes, --chunk-events."""
    non_negative(getattr(args, "seed", None), "--seed")
    for name in ("epochs", "batch_size", "learning_rate", "max_minutes", "chunk_events"):
        positive(getattr(args, name, None), "--" + name.replace("_", "-"))
    events = getattr(args, "events", None)
    if events is not None:
        if events < min_events:
            raise UserError(f"--events must be at least {min_events}, got {events}")
        if events > MAX_EVENTS:
            raise UserError(f"--events must be at most {MAX_EVENTS:.0e}, got {events}")
        if getattr(args, "data", None):
            raise UserError("--events applies to the generated default sample, not to --data")


# --- model files ----------------------------------------------------------------------------

# keras.Model names given by the builders -> the model they hold
MODEL_NAMES = {
    "tpmt": "TPMT",
    "lgatr": "L-GATr",
    "plain_transformer": "plain transformer",
    "met_perceiver": "MET Perceiver",
    "deepmet": "DeepMET",
    "MultiParTau": "ParTau",
    "scouttau": "ScoutTau",
    "nnpuppitau": "NNPuppiTau",
}
# input names -> model, for a file whose keras.Model was renamed
MODEL_INPUTS = {
    ("jet_mask", "jets", "leg_kinematics", "legs", "met", "product_mask", "products"): "TPMT",
    ("fourvectors", "mask", "scalars"): "L-GATr",
    ("cands", "mask"): "MET Perceiver",
    ("features", "fourvectors", "mask"): "ParTau",
    ("constituents", "mask"): "ScoutTau",
}


def keras_file_model(path):
    """(model, keras.Model name, input names) of a `.keras` file, read from its config.json
    without loading it; model is one of `MODEL_NAMES`' values, or None (unknown), and all three
    are None when the file is no readable `.keras` archive."""
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))["config"]
        name = config.get("name")
        layers = config.get("input_layers")
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, AttributeError):
        return None, None, None
    if isinstance(layers, dict):
        inputs = sorted(layers)
    elif isinstance(layers, list) and layers and isinstance(layers[0], str):
        inputs = [layers[0]]
    elif isinstance(layers, list):
        inputs = sorted(str(x[0]) for x in layers if isinstance(x, list) and x)
    else:
        inputs = []
    model = MODEL_NAMES.get(name)
    if model is None and isinstance(name, str) and name.startswith("SingleParTau"):
        model = "ParTau"
    if model is None:
        key = tuple(i for i in inputs if i != "mass_hypothesis")
        model = MODEL_INPUTS.get(key)
    return model, name, inputs


def model_file(path, expected, flag="--model"):
    """Check that `path` exists and holds one of the `expected` models (`MODEL_NAMES` values).

    A file that is no `.keras` archive passes here; loading it then names the problem.
    Raises:
        UserError: a missing file, a folder, or a file of another model.
    """
    if not os.path.exists(path):
        raise UserError(f"no such model file: {path}")
    if os.path.isdir(path):
        raise UserError(f"{flag} {path} is a folder, not a .keras file")
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    model, name, inputs = keras_file_model(path)
    if name is None or model in expected:
        return path
    if model:
        what = f"{'an' if model[0] in 'AEILMN' else 'a'} {model} model"
    else:
        what = f"a Keras model named '{name}'"
    raise UserError(
        f"{path} holds {what} (inputs {', '.join(inputs) or 'none'}), not {' or '.join(expected)}"
    )
