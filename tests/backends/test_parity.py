"""Backend parity: every model builds, trains, saves and loads on this process's Keras backend.

Run on each backend (CI does all three):

    KERAS_BACKEND=jax pytest -m backends tests/backends

Each case (tests/backends/cases.py) is a tiny model compiled as its `fit.py` does; it trains
two steps with `model.fit` on a valid random batch with padded masks, is saved to `.keras`,
loaded in safe mode, and must predict as before saving. The shipped `saved_models/*/*.keras`
(trained on TensorFlow) must load in safe mode here and predict what TensorFlow predicted on
the stored inputs in `fixtures/` (`python -m tests.backends.fixtures.make_reference`).
"""

import glob
import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import models
from tests.backends.cases import CASES, N_EVENTS
from tests.backends.fixtures.make_reference import (
    FIXTURES,
    ROOT,
    file_digest,
    flatten_outputs,
    model_inputs,
)

pytestmark = pytest.mark.backends
models.register()  # the toolkit's classes, as a user's `import models` (any test order, worker)

SAVED = sorted(glob.glob(os.path.join(ROOT, "saved_models", "*", "*.keras")))


def _as_numpy(y):
    return {k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in flatten_outputs(y).items()}


def _predict(model, x):
    """Outputs of one inference call (no `predict`: its jit compile would double the cost)."""
    return _as_numpy(model(x, training=False))


@pytest.mark.parametrize("name", sorted(CASES))
def test_build_train_save_load(name, tmp_path):
    keras.utils.set_random_seed(0)
    model, x, y, sample_weight = CASES[name](0)
    before = [np.array(w) for w in model.get_weights()]
    history = model.fit(
        x, y, sample_weight=sample_weight, batch_size=N_EVENTS // 2, epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][-1]), history.history
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))

    want = _predict(model, x)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    got = _predict(loaded, x)
    assert got.keys() == want.keys()
    for k in want:
        assert np.isfinite(want[k]).all(), k
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5, err_msg=k)


@pytest.mark.parametrize("path", SAVED, ids=lambda p: os.path.relpath(p, ROOT))
def test_saved_model_predicts_as_on_tensorflow(path):
    ref_path = os.path.join(FIXTURES, os.path.basename(path).replace(".keras", ".npz"))
    assert os.path.exists(ref_path), (
        f"no reference for {path}: run `KERAS_BACKEND=tensorflow python -m "
        "tests.backends.fixtures.make_reference`"
    )
    ref = np.load(ref_path)
    assert str(ref["sha256"]) == file_digest(path), (
        f"{path} changed since its reference was written: rerun `KERAS_BACKEND=tensorflow "
        "python -m tests.backends.fixtures.make_reference`"
    )
    x = {k[len("in/") :]: ref[k] for k in ref.files if k.startswith("in/")}
    want = {k[len("out/") :]: ref[k] for k in ref.files if k.startswith("out/")}
    model = keras.models.load_model(path, safe_mode=True)
    got = _predict(model, model_inputs(model, x))
    assert got.keys() == want.keys()
    for k in want:
        scale = 1.0 + np.abs(want[k]).max()
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-4 * scale, err_msg=k)


def _other_backends():
    here = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
    return [b for b, m in module.items() if b != here and importlib.util.find_spec(m)]


def test_trained_here_loads_and_predicts_the_same_on_the_other_backends(tmp_path):
    """A model trained and saved on this backend predicts the same on every other installed one
    (a fresh process each, no custom_objects)."""
    others = _other_backends()
    if not others:
        pytest.skip("no other Keras backend installed (pip install -e '.[backends]')")
    keras.utils.set_random_seed(0)
    model, x, y, sample_weight = CASES["tpmt"](0)
    model.fit(x, y, sample_weight=sample_weight, batch_size=N_EVENTS // 2, epochs=1, verbose=0)
    want = _predict(model, x)
    path, x_path = str(tmp_path / "model.keras"), str(tmp_path / "x.npz")
    model.save(path)
    np.savez(x_path, **x)
    code = (
        "import sys, numpy as np, keras, models\n"
        f"m = keras.models.load_model({path!r}, safe_mode=True)\n"
        f"y = m(dict(np.load({x_path!r})), training=False)\n"
        "np.save(sys.argv[1], keras.ops.convert_to_numpy(y))\n"
    )
    for backend in others:
        out = str(tmp_path / f"{backend}.npy")
        env = {**os.environ, "KERAS_BACKEND": backend}
        subprocess.run([sys.executable, "-c", code, out], check=True, cwd=ROOT, env=env)
        np.testing.assert_allclose(
            np.load(out), want["output"], rtol=1e-4, atol=1e-4, err_msg=backend
        )


def test_fit_harness_callbacks(tmp_path):
    """The shared harness (models/training.py: EarlyStopping, ReduceLROnPlateau, TensorBoard,
    ModelCheckpoint, BackupAndRestore, CSVLogger) trains and writes its files on this backend."""
    import dataclasses

    from models import training
    from models.scouttau.config import get_config

    keras.utils.set_random_seed(0)
    model, x, y, sample_weight = CASES["scouttau"](0)
    config = dataclasses.replace(get_config("tiny"), epochs=2, batch_size=N_EVENTS // 2)
    history = training.fit(
        model,
        (x, y),
        (x, y, sample_weight),
        config,
        model_name="parity",
        out_dir=str(tmp_path / "out"),
        run_config={},
        log_root=str(tmp_path / "runs"),
        verbose=0,
        sample_weight=sample_weight,
    )
    assert np.isfinite(history.history["val_loss"]).all()
    written = {f for _, _, files in os.walk(tmp_path) for f in files}
    assert {"run_config.json", "checkpoint.keras", "history.csv"} <= written, written
    assert any(f.startswith("events.out.tfevents") for f in written), written  # TensorBoard
    loaded = keras.models.load_model(str(tmp_path / "out" / "checkpoint.keras"), safe_mode=True)
    assert set(_predict(loaded, x)) == set(y)
