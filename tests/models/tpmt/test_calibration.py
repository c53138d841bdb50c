"""Mass-response calibration of a flat TPMT: `MassCalibration` on hand-computed cases, the knots
from a known response, and the calibrated model's graph, save/load and removal."""

import keras
import numpy as np
import pytest

from data.errors import UserError
from models.tpmt.calibrate import (
    derive_knots,
    response_table,
    with_calibration,
    without_calibration,
)
from models.tpmt.layers import MassCalibration
from models.tpmt.model import build_model, predict_named
from tests.helpers import assert_keras_round_trip, assert_layer_config_round_trip
from tests.models.tpmt.test_tpmt import TINY, random_inputs

# tauh-tauh: 10 GeV down everywhere; mu-tauh: identity; e-tauh: x2 above 100 GeV
KX = [[100.0, 200.0], [50.0, 250.0], [50.0, 100.0, 200.0]]
KY = [[90.0, 190.0], [50.0, 250.0], [50.0, 100.0, 300.0]]


def _legs(flags):
    """(B, 2, 12) leg features with the channel flags (is_muon 6, is_electron 7) of `flags`."""
    legs = np.zeros((len(flags), 2, 12), "float32")
    for i, f in enumerate(flags):
        if f == "mu":
            legs[i, 0, 6] = 1.0
        if f == "e":
            legs[i, 1, 7] = 1.0
    return legs


def test_mass_calibration_hand_computed():
    layer = MassCalibration(KX, KY)
    m = np.array([150.0, 50.0, 300.0, 150.0, 150.0, 150.0, 20.0], "float32")
    flags = ["hh", "hh", "hh", "mu", "e", "e", "e"]
    y = np.stack([m / 4, m / 2, m, 0.9 * m, 1.1 * m], axis=-1).astype("float32")
    out = np.asarray(layer([y, _legs(flags)]))
    # inside the knots: linear; outside: the end knots' ratio (90/100 below, 190/200 above)
    expected_m = [140.0, 45.0, 285.0, 150.0, 200.0, 200.0, 20.0]
    np.testing.assert_allclose(out[:, 2], expected_m, rtol=1e-5)
    # every column is scaled by the same factor m_cal / m
    np.testing.assert_allclose(out / y, (out[:, 2] / m)[:, None] * np.ones((1, 5)), rtol=1e-5)


def test_mass_calibration_config_and_bad_knots():
    assert_layer_config_round_trip(MassCalibration(KX, KY, name="c"))
    with pytest.raises(ValueError, match="increase"):
        MassCalibration([[100.0, 90.0]] * 3, [[1.0, 2.0]] * 3)
    with pytest.raises(ValueError, match="one list per channel"):
        MassCalibration(KX[:2], KY[:2])


def test_derive_knots_inverts_a_known_response():
    rng = np.random.default_rng(3)
    n = 60000
    m_true = rng.uniform(30, 300, n)
    channel = rng.integers(0, 3, n)
    scale = np.array([1.06, 1.03, 0.95])[channel]  # a response per channel
    m_pred = m_true * scale * np.exp(rng.normal(0, 0.15, n))
    kx, ky = derive_knots(m_pred, m_true, channel)
    cal = MassCalibration(kx, ky)
    y = np.stack([m_pred] * 5, axis=-1).astype("float32")
    flags = np.array(["hh", "mu", "e"])[channel]
    m_cal = np.asarray(cal([y, _legs(flags)]))[:, 2]
    for ch, lo, hi, count, r in response_table(m_cal, m_true, channel):
        if 45 <= lo and hi <= 285:
            assert abs(r - 1) < 0.02, (ch, lo, r, count)  # ~1% statistical per bin
    before = response_table(m_pred, m_true, channel)
    assert np.median([r for ch, *_, r in before if ch == 0]) > 1.05


def test_derive_knots_refuses_a_resonant_sample():
    rng = np.random.default_rng(0)
    m_true = rng.normal(125, 1, 3000)
    with pytest.raises(UserError, match="flat-mass sample"):
        derive_knots(m_true * 1.05, m_true, rng.integers(0, 3, 3000))


def test_calibrated_model_round_trips_and_strips(tmp_path):
    model = build_model(TINY)
    x = random_inputs(8)
    raw = model.predict(x, verbose=0)
    calibrated = with_calibration(model, KX, KY)
    out = calibrated.predict(x, verbose=0)
    assert out.shape == raw.shape
    assert not np.allclose(out, raw)
    assert_keras_round_trip(calibrated, x, tmp_path)  # safe mode
    stripped = without_calibration(calibrated)
    np.testing.assert_allclose(stripped.predict(x, verbose=0), raw, rtol=1e-6)
    assert without_calibration(model) is model
    # recalibrating replaces the calibration, never stacks a second one
    again = with_calibration(calibrated, KX, KY)
    assert sum(isinstance(lay, MassCalibration) for lay in again.layers) == 1
    assert list(predict_named(again, x)) == list(predict_named(model, x))


def test_calibrate_cli_bad_inputs(tmp_path, capsys):
    from models.tpmt import calibrate

    missing = str(tmp_path / "none.keras")
    with pytest.raises(SystemExit) as err:
        calibrate.main(
            ["--model", missing, "--input", "x.root", "--out", str(tmp_path / "o.keras")]
        )
    assert err.value.code == 2
    with pytest.raises(SystemExit) as err:
        calibrate.main(["--model", missing, "--input", "x.root", "--out", str(tmp_path / "o.h5")])
    assert err.value.code == 2
    assert ".keras" in capsys.readouterr().err
    keras.backend.clear_session()
