"""MultiParTau / SingleParTau: build, masks, save/load, the fit and evaluate CLIs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from data import io
from data.generate import fcctau
from data.generate.ditau_output import to_root_columns
from models.partau.config import get_config
from models.partau.model import build_model
from tests.helpers import assert_keras_round_trip

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TINY = dict(embed_dims=(16, 16), pair_embed_dims=(8,), num_heads=2, num_layers=1, num_cls_layers=1)


def _inputs(n=6, seed=0):
    rng = np.random.default_rng(seed)
    real = rng.integers(1, 21, n)
    mask = np.arange(20)[None] < real[:, None]
    fv = np.abs(rng.normal(size=(n, 20, 4))) + 0.1
    fv[..., 3] = np.linalg.norm(fv[..., :3], axis=-1) + 0.2
    return {
        "features": (rng.normal(size=(n, 20, 17)) * mask[..., None]).astype("float32"),
        "fourvectors": (fv * mask[..., None]).astype("float32"),
        "mask": mask.astype("float32"),
    }


@pytest.mark.parametrize("variant", ["multi", "single"])
def test_outputs_and_padding(variant):
    model = build_model(get_config("cpu", variant=variant, task="decay_mode", **TINY))
    x = _inputs()
    out = model.predict(x, verbose=0)
    expected = (
        {"tau_id": 2, "charge": 1, "decay_mode": 6, "kinematics": 5}
        if variant == "multi"
        else {"decay_mode": 6}
    )
    assert {k: v.shape[1] for k, v in out.items()} == expected
    # padded candidates never change the outputs
    noisy = {k: v.copy() for k, v in x.items()}
    pad = x["mask"] == 0
    noisy["features"][pad] = 7.0
    noisy["fourvectors"][pad] = 3.0
    again = model.predict(noisy, verbose=0)
    for k in out:
        np.testing.assert_allclose(out[k], again[k], atol=1e-5)


def test_seed_preset_size():
    """The seed preset is ML-Tau's MultiParTau: ~8.34M parameters (partau.md 1.4)."""
    model = build_model(get_config("seed"))
    assert 8.3e6 < model.count_params() < 8.4e6


@pytest.mark.parametrize("variant", ["multi", "single"])
def test_save_load_fresh_process(variant, tmp_path):
    model = build_model(get_config("cpu", variant=variant, task="kinematics", **TINY))
    assert_keras_round_trip(model, _inputs(), tmp_path, atol=1e-6, fresh_process=True)


def test_config_errors():
    with pytest.raises(ValueError, match="unknown task"):
        get_config("cpu", variant="single", task="mass")
    with pytest.raises(ValueError, match="unknown preset"):
        get_config("gpu")


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("partau")
    paths = []
    for process, n, seed in (("ztautau", 200, 11), ("zqq", 100, 12)):
        path = str(folder / f"{process}.root")
        io.write_events(path, to_root_columns(fcctau.generate(process, n, seed, batch_size=n)))
        paths.append(path)
    return paths


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_fit_and_evaluate_cli(samples, tmp_path):
    """Both fits and the evaluation through their CLI entry points (in-process: no three
    TensorFlow start-ups; the fresh-process start is covered by the save/load tests)."""
    from evaluate.partau import main as evaluate_main
    from models.partau.fit import main as fit_main

    out = str(tmp_path / "m")
    tiny = ["--epochs", "1", "--batch-size", "64", "--quiet", "--no-jit", "--out", out]
    fit_main(["--data", *samples, *tiny, "--preset", "tiny"])
    fit_main(["--data", *samples, *tiny, "--preset", "tiny", "--variant", "single", "--task",
              "charge"])  # fmt: skip
    ev = str(tmp_path / "ev")
    evaluate_main(["--model", f"{out}/partau_multi.keras", "--model",
                   f"{out}/partau_single_charge.keras", "--input", *samples,
                   "--out", ev])  # fmt: skip
    with open(os.path.join(ev, "metrics.json")) as f:
        metrics = json.load(f)
    for key in ("auc", "fake_rate_at_eff60", "dm_accuracy", "charge_misid", "pt_resolution"):
        assert key in metrics["multi"] and key in metrics["hps"]
    assert set(metrics["single_charge"]) >= {"charge_misid"}
    assert "auc" not in metrics["single_charge"]
    # predictions are aligned jet by jet with the input files
    import uproot

    pred = uproot.open(os.path.join(ev, "predictions.root"))["Events"].arrays(library="ak")
    n_in = [uproot.open(p)["Events"].arrays(["nJet"], library="np")["nJet"] for p in samples]
    np.testing.assert_array_equal(np.asarray(pred["nJet"]), np.concatenate(n_in))
    assert os.path.exists(os.path.join(ev, "roc.png"))


@pytest.mark.parametrize(
    "args, words",
    [
        (["--variant", "single", "--task", "mass"], ["unknown task 'mass'"]),
        (["--data", "/no/such.root"], ["no such file"]),
        (["--epochs", "0", "--data", "x.root"], ["must be positive"]),
        # distributed training (models/distribute.py)
        (["--num-processes", "2", "--job-addresses", "h:1"], ["needs --distribution"]),
        (["--distribution", "data-parallel", "--num-processes", "2"], ["--job-addresses"]),
        (["--num-processes", "2", "--process-id", "2"], ["--process-id must be in"]),
    ],
)
def test_fit_cli_errors(args, words):
    res = _run("models.partau.fit", *args)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 1 and "Traceback" not in res.stderr
    for w in words:
        assert w in lines[0]


def test_evaluate_cli_missing_model(samples, tmp_path):
    res = _run(
        "evaluate.partau", "--model", "nope.keras", "--input", samples[0], "--out", str(tmp_path)
    )
    assert res.returncode == 2 and "no such model file: nope.keras" in res.stderr
