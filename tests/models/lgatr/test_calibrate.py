"""Top pT response calibration of the L-GATr and plain transformer (models/lgatr/calibrate.py)."""

import json
import os

import keras
import numpy as np
import pytest

from data import io
from data.errors import UserError
from data.generate.ditau_output import to_root_columns
from data.generate.ttbar_dilepton import generate
from data.lgatr import MAX_JETS, SCALAR_FEATURES, tokens
from models.lgatr import baseline_transformer, calibrate
from models.lgatr import config as lgatr_config
from models.lgatr.layers import TopPtCalibration
from models.lgatr.model import build_model

TINY = lgatr_config.LGATrConfig(
    num_blocks=1,
    hidden_mv_channels=2,
    hidden_s_channels=4,
    num_heads=1,
    plain_dim=8,
    objects=tokens(MAX_JETS),
    scalar_features=SCALAR_FEATURES,
)
MT = 172.5


def _kin(p):
    px, py, pz, e = np.moveaxis(np.asarray(p, np.float64), -1, 0)
    return {
        "pt": np.hypot(px, py),
        "phi": np.arctan2(py, px),
        "y": 0.5 * np.log((e + pz) / (e - pz)),
        "m": np.sqrt(e**2 - px**2 - py**2 - pz**2),
    }


def _top(px, py, pz, m=MT):
    return [px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)]


def test_layer_hand_computed():
    layer = TopPtCalibration([40.0, 80.0], [1.2, 0.8])
    tops = np.array([[_top(30.0, 40.0, 100.0), _top(0.0, 100.0, -50.0), _top(12.0, -16.0, 7.0)]])
    out = keras.ops.convert_to_numpy(layer(tops.astype("float32")))
    # pT 50 -> r = 1.2 - 0.4 * 10 / 40 = 1.1; pT 100 -> 0.8 (end knot); pT 20 -> 1.2
    np.testing.assert_allclose(out[0, :, :2], tops[0, :, :2] * [[1.1], [0.8], [1.2]], rtol=1e-6)
    k_in, k_out = _kin(tops), _kin(out)
    for q in ("phi", "y", "m"):
        np.testing.assert_allclose(k_out[q], k_in[q], rtol=2e-5, atol=2e-5)


def test_layer_commutes_with_beam_rotations_and_boosts():
    rng = np.random.default_rng(1)
    p3 = rng.normal(0, 120, (64, 2, 3))
    tops = np.stack(_top(p3[..., 0], p3[..., 1], p3[..., 2]), -1)
    a, eta = 0.7, 0.9
    rot = np.eye(4)
    rot[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    boost = np.eye(4)
    boost[2:, 2:] = [[np.cosh(eta), np.sinh(eta)], [np.sinh(eta), np.cosh(eta)]]
    layer = TopPtCalibration([30.0, 90.0, 200.0], [1.3, 0.9, 0.95])
    for g in (rot, boost):
        first = keras.ops.convert_to_numpy(layer((tops @ g.T).astype("float64")))
        then = keras.ops.convert_to_numpy(layer(tops.astype("float64"))) @ g.T
        np.testing.assert_allclose(first, then, rtol=1e-4, atol=1e-3)


def test_layer_config_round_trip_and_bad_knots():
    layer = TopPtCalibration([10.0, 50.0, 90.0], [1.1, 0.9, 1.0], name="cal")
    again = TopPtCalibration.from_config(layer.get_config())
    assert again.knots_pt == layer.knots_pt and again.knots_ratio == layer.knots_ratio
    for pt, r in (([10.0], [1.0]), ([50.0, 10.0], [1.0, 1.0]), ([10.0, 50.0], [1.0, 0.0])):
        with pytest.raises(ValueError):
            TopPtCalibration(pt, r)


def test_derive_knots_removes_a_scale_bias():
    rng = np.random.default_rng(2)
    true = rng.exponential(100.0, 40000) + 10.0
    pred = 1.1 * true * np.exp(rng.normal(0, 0.2, true.size))
    knots_pt, knots_ratio = calibrate.derive_knots(pred, true, bins=10, min_events=500)
    assert len(knots_pt) >= 5 and all(np.diff(knots_pt) > 0)
    assert np.all(np.diff(np.asarray(knots_pt) * knots_ratio) > 0)  # calibrated pT increases
    r = np.interp(pred, knots_pt, knots_ratio)
    assert abs(np.median(pred / true) - 1.1) < 0.01
    assert abs(np.median(pred * r / true) - 1.0) < 0.02
    knots_pt, knots_ratio = calibrate.derive_knots(pred, true)  # default: one factor
    assert len(knots_pt) == 2 and knots_ratio[0] == knots_ratio[1]
    assert abs(np.median(pred * knots_ratio[0] / true) - 1.0) < 1e-3
    knots_pt, knots_ratio = calibrate.derive_knots(pred[:300], true[:300], bins=4, min_events=200)
    assert knots_ratio[0] == knots_ratio[-1]  # too few tops for 4 bins: one factor
    with pytest.raises(UserError):
        calibrate.derive_knots(pred[:150], true[:150], min_events=200)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ttbar_cal") / "ttbar.root")
    io.write_events(path, to_root_columns(generate(60, seed=5)))
    return path


@pytest.mark.parametrize("builder", [build_model, baseline_transformer.build_plain_transformer])
def test_calibrate_cli_round_trip(sample, tmp_path, builder):
    keras.utils.set_random_seed(0)
    model = builder(TINY)
    raw = str(tmp_path / "raw.keras")
    model.save(raw)
    out = str(tmp_path / "cal.keras")
    calibrate.main(
        ["--model", raw, "--input", sample, "--out", out, "--bins", "4", "--min-events", "20"]
    )
    card = json.load(open(str(tmp_path / "cal_calibration.json")))
    assert len(card["knots_pt"]) >= 2 and card["events"] > 0
    cal = keras.models.load_model(out, safe_mode=True)
    assert cal.name == model.name and calibrate.calibration_layer(cal) is not None
    from data.lgatr import load

    x = load(sample)["inputs"]
    p_raw = model.predict(x, verbose=0)["tops"]
    p_cal = cal.predict(x, verbose=0)["tops"]
    r = np.interp(np.hypot(p_raw[..., 0], p_raw[..., 1]), card["knots_pt"], card["knots_ratio"])
    np.testing.assert_allclose(p_cal[..., :2], p_raw[..., :2] * r[..., None], rtol=1e-4, atol=1e-3)
    stripped = calibrate.without_calibration(cal)
    np.testing.assert_allclose(stripped.predict(x, verbose=0)["tops"], p_raw, rtol=1e-5, atol=1e-4)
    # recalibrating replaces the layer instead of stacking a second one
    again = calibrate.with_calibration(cal, [50.0, 100.0], [1.0, 1.0])
    assert sum(isinstance(la, TopPtCalibration) for la in again.layers) == 1


def test_calibrate_cli_bad_inputs(sample, tmp_path):
    model = build_model(TINY)
    raw = str(tmp_path / "raw.keras")
    model.save(raw)
    with pytest.raises(SystemExit) as e:
        calibrate.main(["--model", raw, "--input", sample, "--out", str(tmp_path / "x.h5")])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:  # 60 events are too few at the default 200 tops / bin
        calibrate.main(["--model", raw, "--input", sample, "--out", str(tmp_path / "x.keras")])
    assert e.value.code == 2
    assert not os.path.exists(str(tmp_path / "x.keras"))
