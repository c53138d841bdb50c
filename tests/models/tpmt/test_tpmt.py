"""TPMT layers, loss and model: configs, save/load, masks and hand-computed physics."""

import keras
import numpy as np
import pytest

from models.tpmt.config import get_config
from models.tpmt.layers import (
    TAU_MASS,
    CollinearDiTau,
    EncoderBlock,
    MassQuantiles,
    TokenMask,
    TokenType,
)
from models.tpmt.losses import (
    MassMAE,
    MassQuantileCoverage,
    MassQuantileLoss,
    TauPtMAE,
    TPMTLoss,
    mass_quantile_coverage,
    mass_quantile_loss,
    pinball,
    tpmt_loss,
)
from models.tpmt.model import (
    OUTPUT_COLUMNS,
    QUANTILE_INIT_OFFSET,
    build_model,
    compile_model,
    predict_named,
)
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
        MassQuantiles(detach_point=False),
    ],
)
def test_layer_config_round_trip(layer):
    assert_layer_config_round_trip(layer)


def test_loss_and_metric_config_round_trip():
    loss = TPMTLoss(lambda_tau=2.0, lambda_m=0.5, lambda_q=0.25)
    clone = TPMTLoss.from_config(loss.get_config())
    assert (clone.lambda_tau, clone.lambda_m, clone.lambda_q) == (2.0, 0.5, 0.25)
    # a loss saved before the quantile term (no lambda_q in its config) still loads
    old = {k: v for k, v in loss.get_config().items() if k != "lambda_q"}
    assert TPMTLoss.from_config(old).lambda_q == get_config("cpu").lambda_q
    for cls in (TauPtMAE, MassMAE, MassQuantileLoss, MassQuantileCoverage):
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
    # 3-column prediction (no quantile head): tau term (2 + 3) / 2 = 2.5; mass 0.01 * 10 = 0.1
    got = keras.ops.convert_to_numpy(tpmt_loss(y_true, y_pred))
    np.testing.assert_allclose(got, [2.6], rtol=1e-6)
    np.testing.assert_allclose(float(TPMTLoss()(y_true, y_pred)), 2.6, rtol=1e-6)
    # with quantiles q16 = 92, q84 = 95 below m_true = 100: pinball 0.16 * 8 + 0.84 * 5 = 5.48
    y_pred5 = np.array([[12.0, 17.0, 90.0, 92.0, 95.0]], "float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(mass_quantile_loss(y_true, y_pred5)), [5.48], rtol=1e-6
    )
    np.testing.assert_allclose(float(TPMTLoss()(y_true, y_pred5)), 2.6 + 0.0548, rtol=1e-6)
    np.testing.assert_allclose(float(TPMTLoss(lambda_q=0.0)(y_true, y_pred5)), 2.6, rtol=1e-6)


def test_pinball_hand_computed():
    # m_true = 10: q16 = 12 is above it, costs (1 - 0.16) * 2; q84 = 8 is below, costs 0.84 * 2
    y_true = np.array([[0.0, 0.0, 10.0], [0.0, 0.0, 10.0]], "float32")
    y_pred = np.array([[0.0, 0.0, 10.0, 12.0, 8.0], [0.0, 0.0, 10.0, 9.0, 11.0]], "float32")
    got = keras.ops.convert_to_numpy(mass_quantile_loss(y_true, y_pred))
    # second event inside its interval: 0.16 * 1 + (1 - 0.84) * 1 = 0.32
    np.testing.assert_allclose(got, [0.84 * 2 + 0.84 * 2, 0.32], rtol=1e-6)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(pinball(np.float32(10.0), np.float32(12.0), 0.16)), 1.68
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(mass_quantile_coverage(y_true, y_pred)), [0.0, 1.0]
    )
    # 3-column predictions have no quantile term and no coverage
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(mass_quantile_loss(y_true, y_pred[:, :3])), [0.0, 0.0]
    )


def test_mass_quantiles_ordered_and_detached():
    rng = np.random.default_rng(4)
    point = np.abs(rng.normal(80, 30, (64, 3))).astype("float32")
    raw = rng.normal(0, 5, (64, 2)).astype("float32")
    out = keras.ops.convert_to_numpy(MassQuantiles()([point, raw]))
    np.testing.assert_array_equal(out[:, :3], point)
    assert np.all(out[:, 3] <= out[:, 2]) and np.all(out[:, 2] <= out[:, 4])
    softplus = np.log1p(np.exp(raw))
    np.testing.assert_allclose(out[:, 3], point[:, 2] * np.exp(-softplus[:, 0]), rtol=1e-5)
    np.testing.assert_allclose(out[:, 4], point[:, 2] * np.exp(softplus[:, 1]), rtol=1e-5)


def test_model_outputs_ordered_quantiles():
    model = build_model(TINY)
    x = random_inputs(n=64, seed=5)
    y = model.predict(x, verbose=0)
    assert y.shape == (64, 5) and len(OUTPUT_COLUMNS) == 5
    assert np.all(y[:, 3] <= y[:, 2]) and np.all(y[:, 2] <= y[:, 4])
    # the untrained quantile head starts at the interval m * [exp(-0.15), exp(+0.15)]
    np.testing.assert_allclose(y[:, 3], y[:, 2] * np.exp(-QUANTILE_INIT_OFFSET), rtol=1e-4)
    np.testing.assert_allclose(y[:, 4], y[:, 2] * np.exp(QUANTILE_INIT_OFFSET), rtol=1e-4)
    named = predict_named(model, x)
    assert list(named) == list(OUTPUT_COLUMNS)
    np.testing.assert_allclose(named["m_tautau_q84"], y[:, 4])


def test_short_fit_logs_every_loss_term_and_trains_quantiles():
    keras.utils.set_random_seed(0)
    model = compile_model(build_model(TINY), TINY)
    x = random_inputs(n=32, seed=6)
    y = np.abs(np.random.default_rng(2).normal(50, 10, (32, 3))).astype("float32")
    before = model.get_layer("quantile_out").get_weights()
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0).history
    for name in ("loss", "tau_pt_mae", "m_tautau_mae", "m_quantile_loss", "m_coverage_68"):
        assert name in history and np.all(np.isfinite(history[name])), name
    after = model.get_layer("quantile_out").get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


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


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
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


def test_config_dict_round_trip_and_quantile_defaults():
    from models.tpmt.config import TPMTConfig

    c = get_config("seed", lambda_q=0.05)
    assert TPMTConfig(**c.to_dict()) == c
    assert (c.lambda_q, c.lambda_m, get_config("cpu").lambda_q) == (0.05, 1e-2, 1e-2)
    # a run config written before the quantile head (no quantile fields) still builds a config
    old = {k: v for k, v in c.to_dict().items() if k not in ("lambda_q", "quantile_dim")}
    assert TPMTConfig(**old).quantile_dim == TPMTConfig().quantile_dim
