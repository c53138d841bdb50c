"""The per-candidate truth term (`--hs-weight`): loss by hand, loader flags, model, fit CLI."""

import json

import keras
import numpy as np
import pytest
import uproot
from keras import ops

from data import metperceiver as dm
from models.metperceiver.config import get_config
from models.metperceiver.losses import CandidateWeightLoss
from models.metperceiver.model import build_model, without_weights


def test_candidate_weight_loss_by_hand():
    # event 0: pT 10 (hs, w 0.5) and 30 (pileup, w 0.1); event 1: one real candidate, padding
    y = np.array([[[1, 10], [0, 30]], [[1, 20], [0, 0]]], "float32")
    w = np.array([[0.5, 0.1], [1.0, 7.0]], "float32")
    got = ops.convert_to_numpy(CandidateWeightLoss().call(y, w))
    np.testing.assert_allclose(got, [(10 * 0.25 + 30 * 0.01) / 40, 0.0], rtol=1e-6)
    assert CandidateWeightLoss.from_config(CandidateWeightLoss().get_config()).name


def test_loader_reads_the_truth_flag(pu_file):
    d = dm.load(pu_file, max_cands=4096, with_hs=True)
    flags = uproot.open(pu_file)["Events"]["PFCand_fromPU"].array(library="np")
    for i, f in enumerate(flags):
        m = d["mask"][i]
        np.testing.assert_array_equal(d["hs"][i, m], ~np.asarray(f, bool))
        assert not d["hs"][i, ~m].any()
    assert 0 < d["hs"].sum() < d["mask"].sum()  # both kinds present
    assert "hs" not in dm.load(pu_file, max_cands=4096)


def test_model_with_the_truth_term_saves_without_it(tmp_path):
    config = get_config("tiny", max_cands=32, hs_weight=1.0)
    model = build_model(config)
    assert set(model.output) == {"v", "met", "weights"}
    x = {"cands": np.random.default_rng(0).normal(size=(2, 32, 5)).astype("float32"),
         "mask": np.arange(32)[None].repeat(2, 0) < [[20], [7]]}  # fmt: skip
    out = model(x)
    slim = without_weights(model)
    path = str(tmp_path / "m.keras")
    slim.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert set(loaded.output) == {"v", "met"}
    np.testing.assert_allclose(loaded(x)["met"], out["met"], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="hs_weight"):
        get_config("tiny", variant="deepmet", hs_weight=1.0)


def test_fit_cli_with_the_truth_term(pu_file, tmp_path):
    from models.metperceiver.fit import main as fit_main

    common = ["--preset", "tiny", "--data", pu_file, "--chunk-events", "12", "--epochs", "1",
              "--no-jit", "--quiet", "--out", str(tmp_path)]  # fmt: skip
    fit_main(common + ["--hs-weight", "2"])
    run = json.loads((tmp_path / "metperceiver" / "run_config.json").read_text())
    assert run["config"]["hs_weight"] == 2.0
    model = keras.saving.load_model(str(tmp_path / "metperceiver.keras"), safe_mode=True)
    assert set(model.output) == {"v", "met"}
    with pytest.raises(SystemExit) as exit_info:
        fit_main(common + ["--variant", "deepmet", "--hs-weight", "1"])
    assert exit_info.value.code == 2


def test_puppi_input_widens_a_trained_perceiver(tmp_path):
    from models.metperceiver.fit import widen_from

    rng = np.random.default_rng(1)
    old = build_model(get_config("tiny", max_cands=32))
    old.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in old.get_weights()])
    new = widen_from(build_model(get_config("tiny", max_cands=32, puppi_input=True)), old)
    cands = rng.normal(size=(2, 32, 6)).astype("float32")
    cands[..., 3:5] = cands[..., 3:5] > 0
    mask = np.arange(32)[None].repeat(2, 0) < [[20], [7]]
    want = old({"cands": cands[..., :5], "mask": mask})["met"]
    np.testing.assert_allclose(
        new({"cands": cands, "mask": mask})["met"], want, rtol=1e-5, atol=1e-4
    )
    other = build_model(get_config("tiny", max_cands=32, dim=16, puppi_input=True))
    with pytest.raises(Exception, match="architecture"):
        widen_from(other, old)


def test_fit_cli_with_the_puppi_input(pu_file, tmp_path):
    from models.metperceiver.fit import main as fit_main

    common = ["--preset", "tiny", "--data", pu_file, "--chunk-events", "12", "--epochs", "1",
              "--no-jit", "--quiet"]  # fmt: skip
    fit_main(common + ["--out", str(tmp_path / "a")])
    fit_main(common + ["--out", str(tmp_path / "b"), "--puppi-input", "--hs-weight", "1",
                       "--init-from", str(tmp_path / "a" / "metperceiver.keras")])  # fmt: skip
    model = keras.saving.load_model(str(tmp_path / "b" / "metperceiver.keras"), safe_mode=True)
    assert model.input["cands"].shape[-1] == 6
