"""Shared test helpers: config and `.keras` save/load round trips for layers and models."""

import os
import subprocess
import sys

import numpy as np


def assert_layer_config_round_trip(layer):
    """`from_config(get_config())` rebuilds a layer with the same config."""
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config


def assert_keras_round_trip(model, inputs, tmp_path, atol=1e-6, fresh_process=False):
    """Save `model` to `.keras`, load it in safe mode and check identical predictions.

    Args:
        model: a built keras.Model.
        inputs: inputs accepted by `model.predict`.
        tmp_path: a folder for the file.
        atol: absolute tolerance on outputs.
        fresh_process: also load and predict in a new Python process with no custom_objects,
            which proves the saved file needs nothing but the toolkit's registered classes.
    Returns:
        The loaded model.
    """
    import keras

    path = os.path.join(str(tmp_path), "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    before = model.predict(inputs, verbose=0)
    after = loaded.predict(inputs, verbose=0)
    for a, b in zip(_flatten(before), _flatten(after)):
        np.testing.assert_allclose(a, b, atol=atol)
    if fresh_process:
        npz = os.path.join(str(tmp_path), "inputs.npz")
        out = os.path.join(str(tmp_path), "outputs.npz")
        flat_in = inputs if isinstance(inputs, dict) else {"__single__": inputs}
        np.savez(npz, **flat_in)
        code = (
            "import numpy as np, keras\n"
            f"d = dict(np.load({npz!r}))\n"
            "x = d['__single__'] if '__single__' in d else d\n"
            f"m = keras.models.load_model({path!r}, safe_mode=True)\n"
            "y = m.predict(x, verbose=0)\n"
            "y = y if isinstance(y, (list, tuple)) else [y] if not isinstance(y, dict) "
            "else [y[k] for k in sorted(y)]\n"
            f"np.savez({out!r}, *y)\n"
        )
        # The toolkit registers its classes on import of its packages; a user loading a model
        # imports `models` (see README), so the subprocess does the same.
        code = "import models  # noqa: F401  registers hepformers classes\n" + code
        subprocess.run([sys.executable, "-c", code], check=True, cwd=_repo_root())
        got = np.load(out)
        for i, a in enumerate(_flatten(before, sort_dict=True)):
            np.testing.assert_allclose(a, got[f"arr_{i}"], atol=atol)
    return loaded


def _flatten(y, sort_dict=False):
    if isinstance(y, dict):
        keys = sorted(y) if sort_dict else list(y)
        return [np.asarray(y[k]) for k in keys]
    if isinstance(y, (list, tuple)):
        return [np.asarray(v) for v in y]
    return [np.asarray(y)]


def _repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
