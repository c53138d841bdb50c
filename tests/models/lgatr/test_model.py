"""Tests of the L-GATr top reconstruction model, its layers, loss and plain baseline."""

import dataclasses

import keras
import numpy as np
import pytest

from models.lgatr import (
    ClassToken,
    FourVectorReadout,
    PlainTransformerBlock,
    TopEventEmbedding,
    TopReconstructionLoss,
    build_model,
    build_plain_transformer,
    get_config,
    loss_term_metrics,
    top_reconstruction_loss,
)
from tests.helpers import assert_keras_round_trip, assert_layer_config_round_trip
from tests.models.layers.lorentz import (
    act_on_fourvectors,
    random_boost,
    random_lorentz,
    random_rotation,
    relative_error,
)

BATCH = 3


def _events(config, seed=0, n_jets=(7, 4, 2)):
    rng = np.random.default_rng(seed)
    n = config.n_objects
    p3 = rng.normal(scale=50.0, size=(BATCH, n, 3))
    m = rng.uniform(0.0, 10.0, size=(BATCH, n, 1))
    p = np.concatenate([p3, np.sqrt(m**2 + (p3**2).sum(-1, keepdims=True))], -1)
    p[:, 4, 2] = 0.0  # MET: (px, py, 0, |pT|)
    p[:, 4, 3] = np.hypot(p[:, 4, 0], p[:, 4, 1])
    scalars = np.zeros((BATCH, n, config.n_scalar), "float32")
    types = [0, 1, 2, 3, 4] + [5] * (n - 5)
    scalars[:, np.arange(n), types] = 1.0
    mask = np.ones((BATCH, n), "float32")
    for i, k in enumerate(n_jets):
        mask[i, 5 + k :] = 0.0
    p[mask == 0] = 0.0
    return {"fourvectors": p.astype("float32"), "scalars": scalars, "mask": mask}


def _tops(model, events):
    return np.asarray(model(events)["tops"], np.float64)


@pytest.mark.parametrize(
    "overrides",
    [
        {"spurions": "none"},
        {"spurions": "none", "readout": "leptons"},
        {"spurions": "none", "spurion_mode": "channel"},
    ],
)
def test_model_lorentz_equivariant_without_spurions(overrides):
    keras.utils.set_random_seed(0)
    config = get_config("default", **overrides)
    model = build_model(config)
    events = _events(config)
    rng = np.random.default_rng(1)
    out = _tops(model, events)
    for _ in range(3):
        lam = random_lorentz(rng, max_gamma=10.0)
        moved = dict(events, fourvectors=act_on_fourvectors(lam, events["fourvectors"]))
        moved["fourvectors"] = moved["fourvectors"].astype("float32")
        err = relative_error(_tops(model, moved), act_on_fourvectors(lam, out))
        assert err < 1e-4, err


@pytest.mark.parametrize("mode", ["token", "channel"])
def test_model_with_spurions_keeps_only_beam_rotations(mode):
    keras.utils.set_random_seed(0)
    config = get_config("default", spurions="beam_time", spurion_mode=mode)
    model = build_model(config)
    events = _events(config)
    out = _tops(model, events)
    rng = np.random.default_rng(2)

    def err(lam):
        p = act_on_fourvectors(lam, events["fourvectors"]).astype("float32")
        return relative_error(
            _tops(model, dict(events, fourvectors=p)), act_on_fourvectors(lam, out)
        )

    assert err(random_rotation(rng, axis="z")) < 1e-4
    assert err(random_boost(rng, max_gamma=3.0)) > 1e-2
    assert err(random_rotation(rng)) > 1e-3


@pytest.mark.parametrize("builder", [build_model, build_plain_transformer])
def test_padded_objects_do_not_change_outputs(builder):
    keras.utils.set_random_seed(0)
    config = get_config("default")
    model = builder(config)
    events = _events(config)
    noisy = {k: v.copy() for k, v in events.items()}
    pad = events["mask"] == 0
    rng = np.random.default_rng(3)
    noisy["fourvectors"][pad] = rng.normal(scale=300.0, size=noisy["fourvectors"][pad].shape)
    noisy["scalars"][pad] = rng.normal(size=noisy["scalars"][pad].shape)
    np.testing.assert_allclose(_tops(model, noisy), _tops(model, events), rtol=1e-5, atol=1e-3)


def test_presets_and_overrides():
    assert get_config("default").n_scalar == 6
    assert get_config("seed", num_blocks=3).num_blocks == 3
    with pytest.raises(ValueError):
        get_config("nope")
    with pytest.raises(ValueError):
        get_config("default", spurions="everything")
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_config().num_blocks = 1


@pytest.mark.parametrize(
    "layer",
    [
        TopEventEmbedding(50.0, spurions="beam", beam_spurion="spacelike", spurion_mode="channel"),
        FourVectorReadout([0, 0], [0, 1], 100.0),
        ClassToken(),
        PlainTransformerBlock(num_heads=2, mlp_ratio=2),
    ],
)
def test_layer_config_round_trip(layer):
    assert_layer_config_round_trip(layer)


@pytest.mark.parametrize("builder", [build_model, build_plain_transformer])
def test_model_keras_round_trip_and_training_step(builder, tmp_path):
    keras.utils.set_random_seed(0)
    config = get_config("default", num_blocks=1)
    model = builder(config)
    events = _events(config)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss={"tops": TopReconstructionLoss(config.momentum_scale, mass_weight=0.1)},
        metrics={"tops": loss_term_metrics(config.momentum_scale)},
    )
    targets = {"tops": np.asarray(_events(config, seed=9)["fourvectors"][:, :2])}
    history = model.fit(events, targets, batch_size=BATCH, epochs=1, verbose=0)
    assert {"loss", "top_momentum_mse", "ttbar_mass_mse"} <= set(history.history)
    assert np.isfinite(history.history["loss"][0])
    assert_keras_round_trip(model, events, tmp_path, atol=1e-4, fresh_process=True)


def test_loss_hand_computed():
    y_true = np.zeros((1, 2, 4), "float32")
    y_true[0, 0] = [0.0, 0.0, 0.0, 200.0]  # m_tt = 200 + 100 = 300 GeV
    y_true[0, 1] = [0.0, 0.0, 0.0, 100.0]
    y_pred = y_true.copy()
    y_pred[0, 0, 3] = 300.0  # m_tt = 400 GeV
    # MSE: one component off by 1 (in units of 100 GeV) over 8 -> 0.125; mass: (1)^2 = 1.
    np.testing.assert_allclose(np.asarray(top_reconstruction_loss(y_true, y_pred)), [0.125])
    np.testing.assert_allclose(
        np.asarray(top_reconstruction_loss(y_true, y_pred, mass_weight=0.5)), [0.625], rtol=1e-4
    )  # the smooth mass differs from sqrt(m2) by ~1e-5 relative at these masses
    loss = TopReconstructionLoss(momentum_scale=50.0, mass_weight=1.0)
    np.testing.assert_allclose(float(loss(y_true, y_pred)), 0.5 + 4.0, rtol=1e-4)
    clone = TopReconstructionLoss.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()


def test_mass_term_gradient_is_finite_for_massless_and_spacelike_predictions():
    import tensorflow as tf

    from models.lgatr.losses import ttbar_mass_mse

    y_true = tf.constant([[[0.0, 0.0, 100.0, 200.0], [0.0, 0.0, -100.0, 200.0]]] * 2)
    # a zero prediction and a space-like one
    y_pred = tf.Variable([[[0.0, 0.0, 0.0, 0.0]] * 2, [[50.0, 0.0, 0.0, 1.0]] * 2])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(ttbar_mass_mse(y_true, y_pred))
    grad = tape.gradient(loss, y_pred).numpy()
    assert np.all(np.isfinite(grad))
    assert np.abs(grad[1]).max() > 0  # pushes the space-like prediction back


def test_mass_term_equals_mass_for_timelike_pairs():
    from models.lgatr.losses import _pair_mass

    p = np.array([[[0.0, 0.0, 100.0, 200.0], [0.0, 0.0, -100.0, 200.0]]], "float32")
    m = keras.ops.convert_to_numpy(_pair_mass(p))
    np.testing.assert_allclose(m, 400.0 * 400.0 / np.sqrt(400.0**2 + 1.0), rtol=1e-6)
