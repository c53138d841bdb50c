"""End to end on tiny generated files: fit the transformer and the NNPuppiTau-like baseline,
evaluate both against zero bias; the CLIs' bad-input exits."""

import json
import os

import keras
import numpy as np
import pytest

from evaluate import scouttau as evaluate_scouttau
from models.scouttau import fit


@pytest.fixture(scope="module")
def trained(scouttau_file, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("scouttau_models"))
    common = ["--preset", "tiny", "--data", scouttau_file, "--out", out, "--quiet", "--no-jit",
              "--val-fraction", "0.3"]  # fmt: skip
    fit.main(common)
    fit.main(common + ["--variant", "nnpuppitau"])
    return out


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_fit_writes_both_models_that_load_in_safe_mode(trained, scouttau_file):
    from data import scouttau

    model = keras.models.load_model(os.path.join(trained, "scouttau.keras"), safe_mode=True)
    d = scouttau.load(scouttau_file)
    y = model.predict({"constituents": d["constituents"], "mask": d["mask"]}, verbose=0)
    assert y["tau_id"].shape == (len(d["cands"]["pt"]), 1) and np.isfinite(y["pt"]).all()
    base = keras.models.load_model(os.path.join(trained, "nnpuppitau.keras"), safe_mode=True)
    assert base.input_shape == (None, 80)
    run = json.load(open(os.path.join(trained, "scouttau", "run_config.json")))
    assert run["training_candidates"] + run["validation_candidates"] == len(d["cands"]["pt"])


def test_evaluate_writes_the_named_metrics(trained, scouttau_file, zerobias_file, tmp_path):
    out = str(tmp_path / "eval")
    evaluate_scouttau.main(["--model", os.path.join(trained, "scouttau.keras"),
                            "--input", scouttau_file, "--zerobias", zerobias_file,
                            "--tune-input", scouttau_file, "--tune-zerobias", zerobias_file,
                            "--out", out])  # fmt: skip
    m = json.load(open(os.path.join(out, "metrics.json")))
    for name in ("transformer", "nnpuppitau"):
        assert 0.0 <= m[name]["ditau_eff_at_50khz"] <= 1.0
        assert set(m[name]["working_point"]) == {"score_cut", "charge_cut", "dvz_cut"}
        assert "eff_vis_pt_5_20" in m[name]
        # 12 zero-bias events: one passing event is 2.6 MHz, so the WP lets none through
        assert m[name]["rate_khz"] == 0.0
    assert set(m["reco"]) == {"clue", "antikt", "seeded_cone", "clue_pf"}
    assert 0.0 <= m["transformer"]["ditau_eff_rate_matched"] <= 1.0
    assert m["zerobias_events"] == 12 and m["signal_events"] == 8
    for name in ("efficiency_vs_vis_pt.png", "wp_scan.png"):
        assert os.path.exists(os.path.join(out, name))
    from evaluate import scouttau_report

    card = os.path.join(out, "README.md")
    scouttau_report.main(["--metrics", os.path.join(out, "metrics.json"), "--out", card])
    text = open(card).read()
    assert "NNPuppiTau-like" in text and "PUPPI inputs" in text and "CLUE (PF)" in text


def test_pf_inputs_fit_names_its_model_and_evaluate_reads_them(scouttau_file, tmp_path):
    out = str(tmp_path)
    fit.main(["--preset", "tiny", "--data", scouttau_file, "--out", out, "--quiet", "--no-jit",
              "--val-fraction", "0.3", "--inputs", "pf", "--negative-fraction", "0.5"])  # fmt: skip
    model = os.path.join(out, "scouttau_pf.keras")
    assert os.path.exists(model)
    assert evaluate_scouttau._run_inputs(model) == "pf"
    assert evaluate_scouttau._run_inputs(str(tmp_path / "other.keras")) == "puppi"


def test_fit_missing_data_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        fit.main(["--data", str(tmp_path / "missing.root"), "--out", str(tmp_path)])
    assert err.value.code == 2
    assert "missing.root" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags",
    [["--epochs", "0"], ["--val-fraction", "1.5"], ["--negative-fraction", "0"],
     ["--variant", "nnpuppitau", "--inputs", "pf"]],
)  # fmt: skip
def test_fit_bad_values_exit_2(flags, scouttau_file, tmp_path):
    with pytest.raises(SystemExit) as err:
        fit.main(flags + ["--data", scouttau_file, "--out", str(tmp_path), "--no-jit"])
    assert err.value.code == 2


def test_evaluate_needs_both_tune_samples(trained, scouttau_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        evaluate_scouttau.main(["--model", os.path.join(trained, "scouttau.keras"),
                                "--input", scouttau_file, "--zerobias", scouttau_file,
                                "--tune-input", scouttau_file, "--out", str(tmp_path)])  # fmt: skip
    assert err.value.code == 2
    assert "--tune-zerobias" in capsys.readouterr().err


def test_evaluate_missing_baseline_exits_2(trained, scouttau_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        evaluate_scouttau.main(["--model", os.path.join(trained, "scouttau.keras"),
                                "--baseline", str(tmp_path / "none.keras"), "--input",
                                scouttau_file, "--zerobias", scouttau_file, "--out",
                                str(tmp_path)])  # fmt: skip
    assert err.value.code == 2
    assert "none.keras" in capsys.readouterr().err
