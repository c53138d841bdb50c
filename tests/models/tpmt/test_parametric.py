"""Parametric TPMT: the hypothesised mass as an input; training, save/load, evaluation scan."""

import json
import os

import numpy as np
import pytest

from models.tpmt.fit import draw_hypotheses
from models.tpmt.layers import LogMass
from models.tpmt.model import build_model, input_names, is_parametric, predict_named
from tests.helpers import assert_keras_round_trip, assert_layer_config_round_trip
from tests.models.tpmt.test_tpmt import TINY, random_inputs

PARAMETRIC = TINY.__class__(**{**TINY.to_dict(), "parametric": True})


def _with_hypothesis(x, mass):
    return {**x, "mass_hypothesis": np.full((len(x["legs"]), 1), mass, "float32")}


def test_log_mass_layer():
    assert_layer_config_round_trip(LogMass())
    out = LogMass()(np.array([[0.5], [np.e], [100.0]], "float32"))
    np.testing.assert_allclose(np.asarray(out)[:, 0], [0.0, 1.0, np.log(100.0)], rtol=1e-6)


def test_parametric_model_takes_the_hypothesis_and_round_trips(tmp_path):
    model = build_model(PARAMETRIC)
    assert is_parametric(model) and not is_parametric(build_model(TINY))
    assert set(input_names(model)) == set(input_names(build_model(TINY))) | {"mass_hypothesis"}
    # untrained heads start at zero, so move the weights to see the hypothesis act
    rng = np.random.default_rng(0)
    model.set_weights([w + 0.3 * rng.normal(size=w.shape) for w in model.get_weights()])
    x = random_inputs()
    a = predict_named(model, _with_hypothesis(x, 60.0))["m_tautau"]
    b = predict_named(model, _with_hypothesis(x, 250.0))["m_tautau"]
    assert not np.allclose(a, b)
    assert_keras_round_trip(model, _with_hypothesis(x, 125.0), tmp_path, atol=1e-5)


def test_draw_hypotheses_mixes_true_and_wrong_masses():
    y = np.zeros((20000, 3), "float32")
    y[:, 2] = 111.0
    h = draw_hypotheses(y, 0.3, np.random.default_rng(1))[:, 0]
    assert h.shape == (20000,)
    assert abs(np.mean(h == 111.0) - 0.3) < 0.02
    wrong = h[h != 111.0]
    assert wrong.min() >= 30.0 and wrong.max() <= 300.0
    np.testing.assert_array_equal(h, draw_hypotheses(y, 0.3, np.random.default_rng(1))[:, 0])


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from data.generate.__main__ import run

    d = tmp_path_factory.mktemp("param")
    path = str(d / "flat.root")
    run("flat", 150, 31, path, progress=False)
    return path


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_fit_and_scan_a_parametric_model(sample, tmp_path):
    from evaluate.tpmt import main as evaluate_main
    from models.tpmt.fit import main as fit_main

    out = str(tmp_path / "m")
    fit_main(["--data", sample, "--epochs", "1", "--out", out, "--quiet", "--parametric"])
    ev = str(tmp_path / "ev")
    evaluate_main(
        ["--model", f"{out}/tpmt.keras", "--input", sample, "--out", ev, "--no-fastmtt"]
        + ["--scan", "50", "250", "50"]
    )
    with open(os.path.join(ev, "metrics.json")) as f:
        res = json.load(f)
    scan = res["hypothesis_scan"]["flat"]
    assert [r["hypothesis"] for r in scan] == [50.0, 100.0, 150.0, 200.0, 250.0]
    assert all(np.isfinite(r["median_m"]) for r in scan)
    assert os.path.exists(os.path.join(ev, "hypothesis_scan.png"))
    import uproot

    t = uproot.open(os.path.join(ev, "predictions.root"))["Events"]
    h = t["m_hypothesis"].array(library="np")
    np.testing.assert_allclose(h, t["m_true"].array(library="np"), rtol=1e-5)  # nominal: flat


def test_scan_needs_a_parametric_model(sample, tmp_path):
    from evaluate.tpmt import main as evaluate_main

    with pytest.raises(SystemExit) as err:
        evaluate_main(
            ["--model", "saved_models/tpmt/tpmt.keras", "--input", sample, "--out", str(tmp_path)]
            + ["--no-fastmtt", "--scan", "50", "250", "50"]
        )
    assert err.value.code == 2
