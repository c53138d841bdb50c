"""Interrupted fits resume where they stopped, only for the same run; atomic saves; NaN stops."""

import os
import shutil
import signal
import subprocess
import sys
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from data.errors import UserError
from models import training

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPOCHS, KILLED_IN = 12, 5  # the kill comes in the 6th epoch, after 5 completed ones


def _config(**kw):
    return SimpleNamespace(
        epochs=EPOCHS,
        batch_size=16,
        reduce_lr_patience=1,
        min_learning_rate=1e-5,
        early_stopping_patience=2,
        **kw,
    )


def _data():
    rng = np.random.default_rng(0)
    w = np.array([1.0, -2.0, 0.5, 0.0], "float32")
    x, xv = rng.normal(size=(96, 4)).astype("float32"), rng.normal(size=(48, 4)).astype("float32")
    y = (x @ w + rng.normal(0, 1, 96))[:, None].astype("float32")
    yv = (xv @ w + rng.normal(0, 1, 48))[:, None].astype("float32")
    return (x, y), (xv, yv)


def _model(learning_rate=0.02):
    training.set_seed(3)  # a fresh process builds the same model
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.3),  # a random state that the resumed run must continue
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model


def _fit(out, *, seed=1, data_file="a.root", restart=False, model=None, extra=(), quiet=True):
    """training.fit of the tiny model; `extra` callbacks go after the harness's own."""
    train, val = _data()
    model = model or _model()
    run_config = {"args": {"seed": seed, "quiet": quiet, "out": out}, "files": [data_file]}
    harness = training.callbacks
    try:
        training.callbacks = lambda *a, **k: harness(*a, **k) + list(extra)
        history = training.fit(
            model,
            train,
            val,
            _config(),
            model_name="tiny",
            out_dir=out,
            run_config=run_config,
            log_root=os.path.join(out, "runs"),
            verbose=0,
            seed=seed,
            restart=restart,
        )
    finally:
        training.callbacks = harness
    return model, history


class _Interrupt(keras.callbacks.Callback):
    """Ends the process (SIGKILL) or raises KeyboardInterrupt in the middle of an epoch."""

    def __init__(self, epoch, kill=False):
        super().__init__()
        self.epoch, self.kill, self.now = epoch, kill, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.now = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.now == self.epoch and batch == 2:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise KeyboardInterrupt


def killed_run(out):
    """Run in a subprocess by the kill test: SIGKILL in the middle of the 6th epoch."""
    _fit(out, extra=[_Interrupt(KILLED_IN, kill=True)])


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """The folder of a run interrupted (KeyboardInterrupt) in the middle of its 6th epoch."""
    out = str(tmp_path_factory.mktemp("interrupted") / "run")
    with pytest.raises(KeyboardInterrupt):
        _fit(out, extra=[_Interrupt(KILLED_IN)])
    return out


def _copy(folder, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(folder, out)
    return out


def _read(path):
    with open(path) as f:
        return f.read()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("whole"))
    model, history = _fit(out)
    return out, model.get_weights(), history


def test_killed_fit_resumes_and_ends_like_an_uninterrupted_one(uninterrupted, tmp_path):
    whole, weights, history = uninterrupted
    # the uninterrupted run stops early; the kill comes after its best epoch and before the
    # stop, so the resumed run must know the early-stopping state to stop at the same epoch
    assert int(np.argmin(history.history["val_loss"])) < KILLED_IN < len(history.epoch) - 1
    assert len(history.epoch) < EPOCHS
    out = str(tmp_path / "run")
    code = f"from tests.models.test_resume import killed_run; killed_run({out!r})"
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert _read(os.path.join(out, "history.csv")).count("\n") == 1 + KILLED_IN
    assert not [f for f in os.listdir(os.path.join(out, "backup")) if ".tmp" in f]

    model, resumed = _fit(out, quiet=False)  # the same command (verbosity may change)
    assert resumed.epoch == history.epoch
    np.testing.assert_allclose(resumed.history["val_loss"], history.history["val_loss"], 1e-5)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # every epoch once, as the uninterrupted run wrote them; the backup is gone
    assert _read(os.path.join(out, "history.csv")) == _read(os.path.join(whole, "history.csv"))
    assert not os.path.exists(os.path.join(out, "backup"))


class _InterruptAtStop(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:  # early stopping decided, the backup knows it
            raise KeyboardInterrupt


def test_killed_after_early_stopping_decided_runs_no_more_epochs(uninterrupted, tmp_path):
    _, weights, history = uninterrupted
    out = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        _fit(out, extra=[_InterruptAtStop()])
    model, resumed = _fit(out)
    assert resumed.epoch == history.epoch
    for a, b in zip(model.get_weights(), weights):  # the best epoch's, restored
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_rerun_with_other_settings_names_them_and_restart_starts_afresh(interrupted, tmp_path):
    out = _copy(interrupted, tmp_path)
    with pytest.raises(UserError, match=r"args\.seed: 1 -> 2.*--restart"):
        _fit(out, seed=2)
    with pytest.raises(UserError, match=r"files: \[\"a\.root\"\] -> \[\"b\.root\"\]"):
        _fit(out, data_file="b.root")
    _, fresh = _fit(out, seed=2, restart=True)
    assert fresh.epoch[0] == 0
    assert _read(os.path.join(out, "history.csv")).count("\n") == 1 + len(fresh.epoch)
    assert not os.path.exists(os.path.join(out, "backup"))


@pytest.mark.parametrize("damage", ["weights", "state"])
def test_damaged_backup_asks_for_restart(damage, interrupted, tmp_path):
    out = _copy(interrupted, tmp_path)
    backup = os.path.join(out, "backup")
    name = "state.json" if damage == "state" else f"epoch{KILLED_IN:04d}.weights.h5"
    path = os.path.join(backup, name)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(UserError, match=r"backup .* (damaged|cannot be loaded).*--restart"):
        _fit(out)


def test_non_finite_loss_stops_with_a_user_error_and_keeps_the_good_model(tmp_path):
    out = str(tmp_path / "run")
    checkpoint = os.path.join(out, "checkpoint.keras")
    training.save_model(_model(), checkpoint)  # the good model of an earlier run
    before = os.stat(checkpoint)
    with pytest.raises(UserError, match=r"epoch 1: the (loss|val_loss) is (nan|inf)"):
        _fit(out, model=_model(learning_rate=1e30))
    after = os.stat(checkpoint)
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    keras.models.load_model(checkpoint, compile=False)  # still the good one
    assert not os.path.exists(os.path.join(out, "backup"))
    assert not os.path.exists(os.path.join(out, "run_config.json"))  # describes good runs only


class _Poison(keras.callbacks.Callback):
    """Makes the weights NaN at the end of the 2nd epoch."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            self.model.set_weights([w * np.nan for w in self.model.get_weights()])


def test_nan_in_the_middle_keeps_the_best_finite_epoch(tmp_path):
    out = str(tmp_path / "run")
    model = _model()
    with pytest.raises(UserError, match=r"epoch 3: the loss is nan.*best finite epoch \(2\)"):
        _fit(out, model=model, extra=[_Poison()])
    assert all(np.isfinite(w).all() for w in model.get_weights())  # the best epoch's weights
    good = keras.models.load_model(os.path.join(out, "checkpoint.keras"), compile=False)
    for a, b in zip(good.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_save_model_is_atomic(tmp_path, monkeypatch):
    path = str(tmp_path / "model.keras")
    model = _model()
    training.save_model(model, path)
    good = _read_bytes(path)

    def broken_save(self, filepath, *a, **k):
        with open(filepath, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    with pytest.raises(OSError):
        training.save_model(model, path)
    assert _read_bytes(path) == good
    assert os.listdir(tmp_path) == ["model.keras"]


def _read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("name", ["tpmt", "lgatr", "metperceiver", "partau", "scouttau"])
def test_every_fit_cli_has_restart(name):
    import importlib

    fit = importlib.import_module(f"models.{name}.fit")
    assert fit.parse_args(["--restart"]).restart
    assert not fit.parse_args([]).restart
