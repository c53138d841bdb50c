"""MET Perceiver and DeepMET models: layers, round trips, padding, MET algebra, CLIs."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from models.metperceiver.config import get_config
from models.metperceiver.layers import (
    CandidateFeatures,
    ChargedNeutralEmbedding,
    LatentDecoder,
    MetToV,
    MissingET,
    RebuildMet,
)
from models.metperceiver.losses import VectorLoss, vector_loss
from models.metperceiver.model import build_model
from tests.helpers import assert_keras_round_trip, assert_layer_config_round_trip

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def _inputs(config, n_real=(20, 7), seed=0):
    rng = np.random.default_rng(seed)
    n_feat = 5 if config.variant == "perceiver" else 9
    cands = np.zeros((len(n_real), config.max_cands, n_feat), np.float32)
    mask = np.zeros((len(n_real), config.max_cands), bool)
    for i, n in enumerate(n_real):
        cands[i, :n, :2] = rng.normal(0, 5, (n, 2))
        cands[i, :n, 2] = rng.uniform(-4, 4, n)
        cands[i, :n, 4] = rng.random(n) < 0.4
        cands[i, :n, 3] = cands[i, :n, 4] * (rng.random(n) < 0.5)
        cands[i, :n, 5:] = rng.random((n, n_feat - 5)) < 0.5
        mask[i, :n] = True
    return {"cands": cands, "mask": mask}


@pytest.fixture(params=["perceiver", "deepmet", "pool"])
def config(request):
    if request.param == "pool":
        return get_config("tiny", max_cands=32, decoder="pool")
    return get_config("tiny", max_cands=32, variant=request.param)


def test_layer_configs():
    for layer in (
        CandidateFeatures(),
        ChargedNeutralEmbedding(8),
        LatentDecoder(8, 2),
        MissingET(),
        RebuildMet(),
        MetToV(),
    ):
        assert_layer_config_round_trip(layer)


def test_save_load_round_trip(config, tmp_path):
    keras.utils.set_random_seed(1)
    model = build_model(config)
    fresh = config.variant == "perceiver" and config.decoder == "weights"
    assert_keras_round_trip(model, _inputs(config), tmp_path, atol=1e-5, fresh_process=fresh)


def test_padding_and_order_do_not_matter(config):
    keras.utils.set_random_seed(2)
    model = build_model(config)
    x = _inputs(config)
    base = model.predict(x, verbose=0)
    garbage = {k: v.copy() for k, v in x.items()}
    pad = ~garbage["mask"]
    garbage["cands"][pad] = np.random.default_rng(5).normal(
        0, 100, (pad.sum(), x["cands"].shape[2])
    )
    perm = {k: v.copy() for k, v in x.items()}
    order = np.random.default_rng(6).permutation(20)
    perm["cands"][0, :20] = x["cands"][0, order]
    for other in (garbage, perm):
        out = model.predict(other, verbose=0)
        for k in base:
            np.testing.assert_allclose(out[k], base[k], atol=2e-4, rtol=1e-4)


def test_untrained_model_starts_at_pf_met():
    """Both Perceiver decoders start at v = 0, i.e. the PF MET of the inputs."""
    for decoder in ("weights", "pool"):
        config = get_config("tiny", max_cands=32, decoder=decoder)
        model = build_model(config)
        x = _inputs(config)
        out = model.predict(x, verbose=0)
        pf = -(x["cands"][..., :2] * x["mask"][..., None]).sum(1)
        np.testing.assert_allclose(out["met"], pf, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(out["v"], 0.0, atol=1e-5)


def test_met_algebra_by_hand():
    cands = np.zeros((1, 3, 5), np.float32)
    cands[0, 0, :2] = (10.0, 0.0)
    cands[0, 1, :2] = (0.0, 5.0)
    cands[0, 2, :2] = (99.0, 99.0)  # padded
    mask = np.array([[True, True, False]])
    np.testing.assert_allclose(MissingET()(cands, mask), [[-10.0, -5.0]])
    w = np.array([[0.5, 2.0, 7.0]], np.float32)
    np.testing.assert_allclose(MissingET()(cands, mask, w), [[-5.0, -10.0]])
    reco = np.array([[3.0, 4.0]], np.float32)
    met = np.array([[8.0, -1.0]], np.float32)
    v = MetToV()(reco, met)
    np.testing.assert_allclose(v, [[1.0, -1.0]], atol=1e-6)
    np.testing.assert_allclose(RebuildMet()(reco, v), met, atol=1e-5)


def test_vector_loss_by_hand():
    y = np.array([[0.0, 0.0], [1.0, 1.0]], np.float32)
    p = np.array([[3.0, 4.0], [1.0, 2.0]], np.float32)
    np.testing.assert_allclose(vector_loss(y, p, kind="mse"), [12.5, 0.5])
    np.testing.assert_allclose(vector_loss(y, p, kind="mae", scale=2.0), [1.75, 0.25])
    assert VectorLoss.from_config(VectorLoss("mae", 50.0).get_config()).scale == 50.0
    with pytest.raises(ValueError):
        VectorLoss("huber")


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_fit_and_evaluate_cli(pu_file, tmp_path):
    """Both fits and the evaluation through their CLI entry points (in-process: fast)."""
    from evaluate.metperceiver import main as evaluate_main
    from models.metperceiver.fit import main as fit_main

    out = tmp_path / "models"
    for variant in ("perceiver", "deepmet"):
        fit_main(
            ["--variant", variant, "--preset", "tiny", "--data", pu_file, "--chunk-events", "12",
             "--epochs", "1", "--no-jit", "--quiet", "--out", str(out)]
        )  # fmt: skip
    ev = tmp_path / "eval"
    evaluate_main(
        ["--model", str(out / "metperceiver.keras"), "--deepmet", str(out / "deepmet.keras"),
         "--input", pu_file, "--out", str(ev), "--quiet"]
    )  # fmt: skip
    metrics = json.loads((ev / "metrics.json").read_text())
    for method in ("perceiver", "puppi", "pf", "deepmet"):
        for key in ("bias_x", "res_x", "res_para", "res_perp"):
            assert np.isfinite(metrics[method][key])
    assert metrics["events"] == 24
    assert (ev / "vs_npu.png").exists()
    # fine-tuning on the MET target from the trained weights; a foreign start is refused
    common = ["--preset", "tiny", "--data", pu_file, "--chunk-events", "12", "--epochs", "1",
              "--no-jit", "--quiet", "--out", str(tmp_path / "tuned")]  # fmt: skip
    fit_main(common + ["--target", "met", "--init-from", str(out / "metperceiver.keras")])
    tuned = json.loads((tmp_path / "tuned" / "metperceiver" / "run_config.json").read_text())
    assert tuned["config"]["target"] == "met"
    with pytest.raises(SystemExit) as exit_info:
        fit_main(common + ["--init-from", str(out / "deepmet.keras")])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    "module, args, words",
    [
        ("fit", ["--preset", "huge"], "unknown preset"),
        ("fit", ["--data", "/nonexistent.root"], "/nonexistent.root"),
        ("fit", ["--max-cands", "0"], "max_cands"),
        ("evaluate", ["--model", "/no.keras", "--input", "x"], "no such"),
    ],
)
def test_cli_bad_input(module, args, words, capsys):
    from evaluate.metperceiver import main as evaluate_main
    from models.metperceiver.fit import main as fit_main

    with pytest.raises(SystemExit) as exit_info:
        (fit_main if module == "fit" else evaluate_main)(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines


def test_cli_help_and_error_in_a_fresh_process():
    r = subprocess.run(
        [sys.executable, "-m", "models.metperceiver.fit", "--preset", "huge"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: unknown preset 'huge' (choose from seed, cpu, tiny)"
    ]
