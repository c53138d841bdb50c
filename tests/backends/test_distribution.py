"""Data-parallel training (models/distribute.py) on 2 simulated CPU devices, JAX backend.

`keras.distribution.DataParallel` over two devices (XLA_FLAGS=
--xla_force_host_platform_device_count=2) must train like one device on the same batches, and
the TPMT fit CLI must train with `--distribution data-parallel`. The device count is fixed
when JAX starts, so both run in fresh processes.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

pytestmark = [
    pytest.mark.backends,
    pytest.mark.skipif(keras.backend.backend() != "jax", reason="keras.distribution: JAX"),
]

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


def _run(args, env_extra, cwd):
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS=TWO_DEVICES, **env_extra)
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


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
