"""ScoutTau transformer: presets, round trips, padding invariance, masked losses by hand."""

import keras
import numpy as np
import pytest

from models.scouttau.config import get_config
from models.scouttau.layers import MaskedMean
from models.scouttau.losses import MaskedBinaryCrossentropy, MaskedMAE, masked_bce, masked_mae
from models.scouttau.model import build_model
from tests.helpers import assert_keras_round_trip, assert_layer_config_round_trip


def _inputs(config, n_real=(5, 16, 1), seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((len(n_real), config.max_constituents, config.num_features), np.float32)
    mask = np.zeros((len(n_real), config.max_constituents), bool)
    for i, n in enumerate(n_real):
        x[i, :n] = rng.normal(size=(n, config.num_features))
        mask[i, :n] = True
    return {"constituents": x, "mask": mask}


def test_seed_preset_size():
    n = build_model(get_config("seed")).count_params()
    assert 300_000 < n < 450_000  # seed 001: "~400k parameters"


def test_round_trips(tmp_path):
    assert_layer_config_round_trip(MaskedMean())
    config = get_config("tiny")
    keras.utils.set_random_seed(3)
    assert_keras_round_trip(build_model(config), _inputs(config), tmp_path, atol=1e-5)


def test_padding_does_not_matter():
    config = get_config("tiny")
    keras.utils.set_random_seed(4)
    model = build_model(config)
    x = _inputs(config)
    base = model.predict(x, verbose=0)
    noisy = {k: v.copy() for k, v in x.items()}
    pad = ~noisy["mask"]
    noisy["constituents"][pad] = 50.0
    out = model.predict(noisy, verbose=0)
    for k in ("tau_id", "charge", "pt"):
        np.testing.assert_allclose(out[k], base[k], atol=1e-4)
    m = x["mask"]
    np.testing.assert_allclose(out["pileup"][m], base["pileup"][m], atol=1e-4)


def test_masked_losses_by_hand():
    logits = np.array([[0.0, 2.0, -1.0]], np.float32)
    y = np.array([[1.0, 0.0, -1.0]], np.float32)
    expected = (np.log(2.0) + (2.0 + np.log1p(np.exp(-2.0)))) / 2
    np.testing.assert_allclose(masked_bce(y, logits), [expected], rtol=1e-5)
    pred = np.array([[0.5], [1.0]], np.float32)
    target = np.array([[0.2, 1.0], [9.0, 0.0]], np.float32)
    np.testing.assert_allclose(masked_mae(target, pred), [0.3, 0.0], atol=1e-6)
    for cls in (MaskedBinaryCrossentropy, MaskedMAE):
        assert cls.from_config(cls().get_config()).name == cls().name


def test_bad_config():
    with pytest.raises(ValueError):
        get_config("nope")
    with pytest.raises(ValueError):
        get_config("cpu", batch_size=0)
