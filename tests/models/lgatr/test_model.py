"""Tests of the L-GATr top reconstruction model, its layers, loss and plain baseline."""

import dataclasses

import keras
import numpy as np
import pytest

from models.lgatr import (
    ClassToken,
    FourVectorReadout,
    OnShellTops,
    PhysicalTopLoss,
    PlainTransformerBlock,
    TopEventEmbedding,
    TopReconstructionLoss,
    build_model,
    build_plain_transformer,
    get_config,
    physical_top_loss,
    top_reconstruction_loss,
)
from models.lgatr.losses import physical_terms
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
    config = get_config("default", output="fourvector", loss="mse", **overrides)
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
    config = get_config(
        "default", spurions="beam_time", spurion_mode=mode, output="fourvector", loss="mse"
    )
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


def test_onshell_output_keeps_rotations_and_puts_tops_on_shell():
    keras.utils.set_random_seed(0)
    config = get_config("default", spurions="none")
    assert config.output == "onshell"
    model = build_model(config)
    events = _events(config)
    out = _tops(model, events)
    mass = np.sqrt(out[..., 3] ** 2 - (out[..., :3] ** 2).sum(-1))
    np.testing.assert_allclose(mass, config.top_mass, rtol=1e-3)
    rng = np.random.default_rng(4)

    def err(lam):
        p = act_on_fourvectors(lam, events["fourvectors"]).astype("float32")
        return relative_error(
            _tops(model, dict(events, fourvectors=p)), act_on_fourvectors(lam, out)
        )

    assert err(random_rotation(rng)) < 1e-4  # any rotation: the on-shell step keeps SO(3)
    assert err(random_boost(rng, max_gamma=3.0)) > 1e-2  # not boosts


def test_onshell_tops_layer_hand_computed():
    p = np.array([[[30.0, 40.0, 0.0], [0.0, 0.0, -120.0]]], "float32")
    out = keras.ops.convert_to_numpy(OnShellTops(top_mass=50.0)(p))
    np.testing.assert_allclose(out[0, :, 3], [np.hypot(50.0, 50.0), 130.0], rtol=1e-6)
    np.testing.assert_allclose(out[..., :3], p)
    four = np.concatenate([p, np.full((1, 2, 1), 1e3, "float32")], -1)  # E is replaced
    np.testing.assert_allclose(keras.ops.convert_to_numpy(OnShellTops(50.0)(four)), out)


def test_config_rejects_physical_loss_without_onshell_output():
    with pytest.raises(ValueError, match="onshell"):
        get_config("default", output="fourvector", loss="physical")
    assert get_config("default", output="fourvector", loss="mse").loss == "mse"


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
        OnShellTops(top_mass=173.0),
        ClassToken(),
        PlainTransformerBlock(num_heads=2, mlp_ratio=2),
    ],
)
def test_layer_config_round_trip(layer):
    assert_layer_config_round_trip(layer)


@pytest.mark.parametrize("builder", [build_model, build_plain_transformer])
@pytest.mark.parametrize(
    "output, loss, terms",
    [
        ("fourvector", "mse", {"top_momentum_mse", "ttbar_mass_mse"}),
        ("onshell", "physical", {"top_log_pt", "top_rapidity", "top_transverse", "ttbar_log_mass"}),
    ],
)
def test_model_keras_round_trip_and_training_step(builder, output, loss, terms, tmp_path):
    from models.lgatr.fit import compile_model

    keras.utils.set_random_seed(0)
    config = get_config("default", num_blocks=1, output=output, loss=loss, mass_weight=0.1)
    model = compile_model(builder(config), config)
    events = _events(config)
    targets = {"tops": np.asarray(_events(config, seed=9)["fourvectors"][:, :2])}
    history = model.fit(events, targets, batch_size=BATCH, epochs=1, verbose=0)
    assert {"loss"} | terms <= set(history.history)
    assert np.isfinite(history.history["loss"][0])
    assert_keras_round_trip(model, events, tmp_path, atol=1e-4, fresh_process=True)


def test_xla_training_step_matches_the_graph_step():
    """`python -m models.lgatr.fit` trains with XLA on TensorFlow: the same step as without."""
    from models.lgatr.fit import compile_model

    config = get_config("default", num_blocks=1)
    events = _events(config)
    targets = {"tops": np.asarray(_events(config, seed=9)["fourvectors"][:, :2])}
    results = []
    for jit in (True, False):
        keras.utils.set_random_seed(0)
        model = compile_model(build_model(config), config, jit_compile=jit)
        loss = model.train_on_batch(events, targets, return_dict=True)["loss"]
        results.append((float(loss), [w.copy() for w in model.get_weights()]))
    (loss_xla, w_xla), (loss_graph, w_graph) = results
    np.testing.assert_allclose(loss_xla, loss_graph, rtol=1e-5)
    for a, b in zip(w_xla, w_graph):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


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


def _on_shell(p3, mass=172.5):
    return np.concatenate([p3, np.sqrt((p3**2).sum(-1, keepdims=True) + mass**2)], -1)


def test_physical_loss_hand_computed():
    true = _on_shell(np.array([[[100.0, 0.0, 0.0], [-100.0, 0.0, 0.0]]]))
    pred = _on_shell(np.array([[[0.0, 200.0, 0.0], [-100.0, 0.0, 0.0]]]))
    terms = {k: float(v[0]) for k, v in physical_terms(true, pred).items()}
    # top: pT doubled, dphi = 90 degrees; antitop exact; both at y = 0. pT includes +1 GeV^2.
    log_pt = np.log(np.sqrt(200.0**2 + 1) / np.sqrt(100.0**2 + 1)) ** 2 / 2
    assert terms["log_pt"] == pytest.approx(log_pt, rel=1e-5)
    assert terms["rapidity"] == pytest.approx(0.0, abs=1e-10)
    # transverse: (-100, 200) off a 100 GeV top, over the two tops
    assert terms["transverse"] == pytest.approx(5e4 / (100.0**2 + 1) / 2, rel=1e-5)

    def mtt(p):
        s = p.sum(1)[0]
        return np.sqrt(s[3] ** 2 - (s[:3] ** 2).sum())

    assert terms["log_mtt"] == pytest.approx(np.log(mtt(pred) / mtt(true)) ** 2, rel=1e-3)
    total = float(physical_top_loss(true, pred, mass_weight=2.0)[0])
    expected = terms["log_pt"] + terms["transverse"] + 2.0 * terms["log_mtt"]
    assert total == pytest.approx(expected, rel=1e-5)
    loss = PhysicalTopLoss(mass_weight=2.0)
    assert float(loss(true, pred)) == pytest.approx(expected, rel=1e-5)
    assert PhysicalTopLoss.from_config(loss.get_config()).get_config() == loss.get_config()


def test_physical_loss_invariant_under_beam_rotations_and_boosts():
    rng = np.random.default_rng(5)
    true = _on_shell(rng.normal(scale=80.0, size=(4, 2, 3))).astype("float32")
    pred = _on_shell(rng.normal(scale=80.0, size=(4, 2, 3))).astype("float32")
    ref = np.asarray(physical_top_loss(true, pred, mass_weight=0.5))
    for lam in (random_rotation(rng, axis="z"), random_boost(rng, max_gamma=3.0, axis="z")):
        moved = [act_on_fourvectors(lam, p).astype("float32") for p in (true, pred)]
        loss = np.asarray(physical_top_loss(*moved, mass_weight=0.5))
        np.testing.assert_allclose(loss, ref, rtol=2e-3)
