"""Data-parallel training (models/distribute.py) on 2 simulated CPU devices.

JAX: `keras.distribution.DataParallel` over two devices (XLA_FLAGS=
--xla_force_host_platform_device_count=2) must train TPMT, and ParTau with its own PCGrad step,
like one device on the same batches. TensorFlow: ParTau's PCGrad step under MirroredStrategy
over two logical CPUs must train like one replica. The device count is fixed when the backend
starts, so every run is a fresh process.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.backends
jax_only = pytest.mark.skipif(keras.backend.backend() != "jax", reason="keras.distribution: JAX")

TWO_DEVICES = "--xla_force_host_platform_device_count=2"

SCRIPT = r"""
import argparse, sys
import numpy as np
import keras
from models import distribute
from models.tpmt.config import get_config
from models.tpmt.model import build_model, compile_model
from tests.models.tpmt.test_tpmt import random_inputs

mode, out = sys.argv[1], sys.argv[2]
plan = distribute.setup(argparse.Namespace(
    distribution=mode, job_addresses=None, num_processes=1, process_id=0))
keras.utils.set_random_seed(3)
config = get_config("cpu", dropout=0.0, d_model=16, num_heads=2, key_dim=8, ff_dim=16,
                    head_dim=8, num_blocks=1, batch_size=8)
model = compile_model(build_model(config), config)
x = random_inputs(32, seed=5, config=config)
y = np.random.default_rng(6).uniform(20, 200, size=(32, 3)).astype("float32")
for k in range(4):
    model.train_on_batch({n: v[8 * k : 8 * k + 8] for n, v in x.items()}, y[8 * k : 8 * k + 8])
np.savez(out, *[np.asarray(w) for w in model.get_weights()])
print("devices", plan.devices)
"""


PARTAU = r"""
import argparse, sys
import numpy as np
import keras
from models import distribute
from models.partau.config import get_config
from models.partau.losses import TASK_WEIGHTS, task_losses
from models.partau.model import build_model
from tests.models.partau.test_model import _inputs

mode, out = sys.argv[1], sys.argv[2]
if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    plan = distribute.Plan()
    if mode != "none":
        two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        plan = distribute.Plan(devices=2, strategy=two)
else:
    plan = distribute.setup(argparse.Namespace(
        distribution=mode, job_addresses=None, num_processes=1, process_id=0))
keras.utils.set_random_seed(3)
config = get_config("tiny", dropout=0.0, head_dropout=(0.0,) * 4, batch_size=8)
with plan.scope():  # SGD: Adam would lift round-off on ~0 gradients to a full step
    model = build_model(config)
    model.compile(keras.optimizers.SGD(0.05), loss=task_losses(), loss_weights=TASK_WEIGHTS)
x = _inputs(32, seed=5)
rng = np.random.default_rng(6)
# JAX computes the global batch's losses; a TensorFlow replica averages the tau-only losses over
# its own taus, which is its exact share of the global mean only when every jet is a tau
tau = rng.random(32) < 0.6 if keras.backend.backend() == "jax" else np.ones(32, bool)
kin = np.concatenate([rng.normal(size=(32, 5)), tau[:, None]], 1).astype("float32")
y = {"tau_id": tau.astype("int32"), "charge": np.where(tau, rng.integers(0, 2, 32), -1).astype(
     "float32"), "decay_mode": np.where(tau, rng.integers(0, 6, 32), -1).astype("int32"),
     "kinematics": kin}
w = rng.uniform(0.5, 2.0, 32).astype("float32")
with plan.scope():
    for k in range(4):
        part = slice(8 * k, 8 * k + 8)
        model.train_on_batch({n: v[part] for n, v in x.items()},
                             {n: v[part] for n, v in y.items()}, sample_weight=w[part])
np.savez(out, *[np.asarray(w) for w in model.get_weights()])
assert type(model).__name__ == "PCGradModel" and model.pcgrad
print("devices", plan.devices)
"""


def _run(args, env_extra, cwd, backend="jax"):
    env = dict(os.environ, KERAS_BACKEND=backend, XLA_FLAGS=TWO_DEVICES, **env_extra)
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


@jax_only
def test_two_devices_train_like_one(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    weights = {}
    for mode in ("data-parallel", "none"):
        out = tmp_path / f"{mode}.npz"
        r = _run(["-c", SCRIPT, mode, str(out)], {"PYTHONPATH": root}, root)
        assert r.returncode == 0, r.stderr[-2000:]
        assert f"devices {2 if mode == 'data-parallel' else 1}" in r.stdout
        weights[mode] = np.load(out)
    a, b = weights["data-parallel"], weights["none"]
    # the two devices sum the batch halves in another order: round-off, which Adam's
    # normalisation lifts to ~1e-6 on weights whose gradients are ~0
    for k in a.files:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(
    keras.backend.backend() not in ("jax", "tensorflow"), reason="JAX or TensorFlow distribution"
)
def test_partau_pcgrad_on_two_devices_trains_like_one(tmp_path):
    """PCGrad merges the gradients of the whole global batch: JAX jits the step as one global
    computation; on TensorFlow the step all-reduces each task's gradients before the merge."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    backend = keras.backend.backend()
    weights = {}
    for mode in ("data-parallel", "none"):
        out = tmp_path / f"{mode}.npz"
        r = _run(["-c", PARTAU, mode, str(out)], {"PYTHONPATH": root}, root, backend)
        assert r.returncode == 0, r.stderr[-2000:]
        assert f"devices {2 if mode == 'data-parallel' else 1}" in r.stdout
        weights[mode] = np.load(out)
    a, b = weights["data-parallel"], weights["none"]
    for k in a.files:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
