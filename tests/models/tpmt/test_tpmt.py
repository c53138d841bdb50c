"""TPMT layers, loss and model: configs, save/load, masks and hand-computed physics."""

import keras
import numpy as np
import pytest

from models.tpmt.config import get_config
from models.tpmt.layers import TAU_MASS, CollinearDiTau, EncoderBlock, TokenMask, TokenType
from models.tpmt.losses import MassMAE, TauPtMAE, TPMTLoss, tpmt_loss
from models.tpmt.model import build_model, compile_model
from tests.helpers import assert_keras_round_trip, assert_layer_config_round_trip

TINY = get_config("cpu", d_model=16, num_heads=2, key_dim=8, ff_dim=16, head_dim=8)


def random_inputs(n=6, seed=0, config=TINY):
    rng = np.random.default_rng(seed)
    c = config
    x = {
        "legs": rng.normal(size=(n, 2, c.n_leg_features)).astype("float32"),
        "products": rng.normal(size=(n, c.n_products, c.n_product_features)).astype("float32"),
        "product_mask": rng.random((n, c.n_products)) > 0.4,
        "jets": rng.normal(size=(n, c.n_jets, c.n_jet_features)).astype("float32"),
        "jet_mask": rng.random((n, c.n_jets)) > 0.5,
        "met": rng.normal(size=(n, c.n_met_features)).astype("float32"),
        "leg_kinematics": rng.normal(size=(n, 2, 3)).astype("float32"),
    }
    x["legs"][..., 0] = np.log(rng.uniform(20, 80, size=(n, 2)))
    return x


@pytest.mark.parametrize(
    "layer",
    [
        TokenType(),
        TokenMask(n_leading=2, n_trailing=1),
        EncoderBlock(d_model=16, num_heads=2, key_dim=8, ff_dim=32, dropout=0.1),
        CollinearDiTau(log_pt_index=0),
    ],
)
def test_layer_config_round_trip(layer):
    assert_layer_config_round_trip(layer)


def test_loss_and_metric_config_round_trip():
    loss = TPMTLoss(lambda_tau=2.0, lambda_m=0.5)
    clone = TPMTLoss.from_config(loss.get_config())
    assert (clone.lambda_tau, clone.lambda_m) == (2.0, 0.5)
    for cls in (TauPtMAE, MassMAE):
        assert cls.from_config(cls().get_config()).name == cls().name


def test_collinear_ditau_back_to_back_hand_computed():
    # two taus of pT 50 GeV at eta 0, back to back: m = 2 E = 2 sqrt(50^2 + m_tau^2)
    legs = np.zeros((1, 2, 12), "float32")
    legs[..., 0] = np.log(40.0)
    delta = np.full((1, 2), np.log(50.0 / 40.0), "float32")
    kin = np.array([[[0.0, 0.0, 0.5], [0.0, np.pi, 0.8]]], "float32")
    out = keras.ops.convert_to_numpy(CollinearDiTau()([delta, legs, kin]))
    np.testing.assert_allclose(out[0, :2], [50.0, 50.0], rtol=1e-5)
    np.testing.assert_allclose(out[0, 2], 2 * np.sqrt(50.0**2 + TAU_MASS**2), rtol=1e-5)


def test_collinear_ditau_general_event_matches_numpy():
    rng = np.random.default_rng(3)
    legs = np.zeros((5, 2, 12), "float32")
    legs[..., 0] = np.log(rng.uniform(20, 100, (5, 2)))
    delta = rng.normal(0, 0.3, (5, 2)).astype("float32")
    kin = np.stack(
        [rng.uniform(-2, 2, (5, 2)), rng.uniform(-3, 3, (5, 2)), np.ones((5, 2))], -1
    ).astype("float32")
    out = keras.ops.convert_to_numpy(CollinearDiTau()([delta, legs, kin]))
    pt = np.exp(legs[..., 0] + delta)
    p = np.stack(
        [pt * np.cos(kin[..., 1]), pt * np.sin(kin[..., 1]), pt * np.sinh(kin[..., 0])], -1
    )
    e = np.sqrt((p**2).sum(-1) + TAU_MASS**2)
    tot_p, tot_e = p.sum(1), e.sum(1)
    m = np.sqrt(tot_e**2 - (tot_p**2).sum(-1))
    np.testing.assert_allclose(out[:, 2], m, rtol=1e-4)


def test_loss_hand_computed():
    y_true = np.array([[10.0, 20.0, 100.0]], "float32")
    y_pred = np.array([[12.0, 17.0, 90.0]], "float32")
    # tau term: (2 + 3) / 2 = 2.5; mass term: 0.01 * 10 = 0.1
    got = keras.ops.convert_to_numpy(tpmt_loss(y_true, y_pred))
    np.testing.assert_allclose(got, [2.6], rtol=1e-6)
    np.testing.assert_allclose(float(TPMTLoss()(y_true, y_pred)), 2.6, rtol=1e-6)


def test_padded_objects_do_not_change_outputs():
    model = build_model(TINY)
    x = random_inputs()
    y = model.predict(x, verbose=0)
    x2 = {k: v.copy() for k, v in x.items()}
    x2["products"][~x["product_mask"]] = 123.0
    x2["jets"][~x["jet_mask"]] = -77.0
    np.testing.assert_allclose(model.predict(x2, verbose=0), y, rtol=1e-5, atol=1e-4)


def test_untrained_model_returns_reco_pt():
    # the regression head starts at zero: predicted pT = reconstructed pT
    model = build_model(TINY)
    x = random_inputs()
    y = model.predict(x, verbose=0)
    np.testing.assert_allclose(y[:, :2], np.exp(x["legs"][..., 0]), rtol=1e-5)


def test_model_save_load_round_trip_fresh_process(tmp_path):
    model = compile_model(build_model(TINY, stats={"legs": ([0.5] * 12, [2.0] * 12)}), TINY)
    x = random_inputs()
    y = np.abs(np.random.default_rng(1).normal(50, 10, (6, 3))).astype("float32")
    model.fit(x, y, epochs=1, verbose=0)  # non-trivial weights
    assert_keras_round_trip(model, x, tmp_path, atol=1e-5, fresh_process=True)


def test_seed_preset_matches_talk():
    c = get_config("seed")
    assert (c.num_blocks, c.num_heads, c.d_model, c.batch_size, c.learning_rate) == (
        1,
        8,
        512,
        1024,
        1e-4,
    )
    n = build_model(c).count_params()
    assert 700_000 < n < 1_000_000  # the talk: ~800k trainable parameters


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset"):
        get_config("huge")
