"""PCGrad on this process's backend: one step equals PCGrad applied to the per-task gradients.

The per-task gradients come from the standard Keras step (no PCGrad) with SGD(lr=1) and only
that task's loss weight on, so the reference needs no backend-specific code; the merge is the
pure `pcgrad` / `clip_by_global_norm` of keras.ops.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from models.partau.losses import TASK_WEIGHTS, TASKS, task_losses
from models.partau.pcgrad import PCGradModel, clip_by_global_norm, pcgrad
from tests.backends.fixtures.make_reference import ROOT
from tests.models.partau.test_losses_pcgrad import tiny_data, tiny_model

pytestmark = pytest.mark.backends


def _task_gradient(weights, x, y, sw, task):
    """-(one SGD(lr=1) step) of the plain model on `task`'s weighted loss alone."""
    model = tiny_model(pcgrad_on=False)
    model.set_weights(weights)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=1.0),
        loss=task_losses(),
        loss_weights={t: TASK_WEIGHTS[t] if t == task else 0.0 for t in TASKS},
    )
    model.train_on_batch(x, y, sample_weight=sw)
    return [keras.ops.convert_to_tensor(w0 - w1) for w0, w1 in zip(weights, model.get_weights())]


@pytest.mark.parametrize("per_variable", [False, True])
def test_pcgrad_step_matches_the_merged_task_gradients(per_variable):
    x, y, sw = tiny_data(n=16, seed=3)
    model = tiny_model(True, seed=3, clip_norm=0.5, per_variable=per_variable)
    weights = model.get_weights()
    lr = 0.1
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=lr),
        loss=task_losses(),
        loss_weights=TASK_WEIGHTS,
    )
    assert isinstance(model, PCGradModel)
    # the tiny model's weights are ordered like its trainable variables (no non-trainables)
    grads = [_task_gradient(weights, x, y, sw, t) for t in TASKS]
    merged = pcgrad(grads, protect=TASKS.index("kinematics"), per_variable=per_variable)
    merged = [keras.ops.convert_to_numpy(g) for g in clip_by_global_norm(merged, 0.5)]
    want = [w - lr * g for w, g in zip(weights, merged)]

    logs = model.train_on_batch(x, y, sample_weight=sw, return_dict=True)
    for got, w in zip(model.get_weights(), want):
        np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-6)
    assert np.isfinite(logs["loss"]) and {f"{t}_loss" for t in TASKS} <= set(logs)

    # a batch without taus: tau-only losses 0 and finite weights
    no_taus = {
        "tau_id": np.zeros(16, "int32"),
        "charge": np.full(16, -1.0, "float32"),
        "decay_mode": np.full(16, -1, "int32"),
        "kinematics": np.zeros((16, 6), "float32"),
    }
    logs = model.train_on_batch(x, no_taus, sample_weight=sw, return_dict=True)
    assert logs["charge_loss"] == logs["decay_mode_loss"] == logs["kinematics_loss"] == 0.0
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_fit_cli_pcgrad_needs_a_backend_with_autodiff():
    """On a backend without gradients (numpy) the PCGrad fit stops with one line, status 2."""
    pytest.importorskip("jax")  # Keras' numpy backend imports jax
    res = subprocess.run(
        [sys.executable, "-m", "models.partau.fit", "--data", "x.root"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KERAS_BACKEND": "numpy"},
    )
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "PCGrad needs the TensorFlow, JAX or PyTorch backend" in lines[0]
    assert "--no-pcgrad on numpy" in lines[0]
