"""ParTau losses, metrics, PCGrad, PCGradModel training/saving, OneCycle and AdamW exclusion."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from models.partau.losses import (
    TASK_WEIGHTS,
    TASKS,
    ChargeAccuracy,
    ChargeLoss,
    DecayModeAccuracy,
    DecayModeLoss,
    KinematicsLoss,
    KinematicsTerm,
    TauIDAUC,
    TauIDLoss,
    charge_loss,
    decay_mode_loss,
    kinematics_loss,
    task_losses,
    task_metrics,
)
from models.partau.pcgrad import PCGradModel, clip_by_global_norm, pcgrad
from models.partau.schedule import AdamWExclude, OneCycle, make_optimizer


def np_list(tensors):
    return [np.asarray(ops.convert_to_numpy(t)) for t in tensors]


def c(values):
    return ops.convert_to_tensor(np.asarray(values, dtype="float32"))


# ---------------------------------------------------------------- PCGrad


def test_pcgrad_removes_conflicting_component():
    g1, g2 = [c([1.0, 0.0])], [c([-1.0, 1.0])]
    # g1' = g1 - (g1.g2/|g2|^2) g2 = [0.5, 0.5]; g2' = g2 - (g2.g1/|g1|^2) g1 = [0, 1]
    (merged,) = np_list(pcgrad([g1, g2]))
    np.testing.assert_allclose(merged, [0.5, 1.5], atol=1e-6)
    # the same vectors split over two scalar variables: the global dot is the same
    split = pcgrad([[c(1.0), c(0.0)], [c(-1.0), c(1.0)]])
    np.testing.assert_allclose(np_list(split), [0.5, 1.5], atol=1e-6)


def test_pcgrad_non_conflicting_is_plain_sum():
    g1, g2 = [c([1.0, 0.0]), c([3.0])], [c([1.0, 1.0]), c([0.5])]  # dot = 1 + 1.5 > 0
    merged = np_list(pcgrad([g1, g2]))
    np.testing.assert_allclose(merged[0], [2.0, 1.0])
    np.testing.assert_allclose(merged[1], [3.5])


def test_pcgrad_protected_task_is_never_projected():
    g1, g2 = [c([1.0, 0.0])], [c([-1.0, 1.0])]
    (merged,) = np_list(pcgrad([g1, g2], protect=1))
    np.testing.assert_allclose(merged, [0.5 - 1.0, 0.5 + 1.0], atol=1e-6)  # g1' + g2
    (merged,) = np_list(pcgrad([g1, g2], protect=[0, 1]))
    np.testing.assert_allclose(merged, [0.0, 1.0], atol=1e-6)  # nothing projected


def test_pcgrad_per_variable():
    # variable 1 conflicts ([1,0].[-1,1] = -1); variable 2 agrees (1*1 = 1): global dot = 0
    g1 = [c([1.0, 0.0]), c([1.0])]
    g2 = [c([-1.0, 1.0]), c([1.0])]
    glob = np_list(pcgrad([g1, g2]))
    np.testing.assert_allclose(glob[0], [0.0, 1.0], atol=1e-6)  # no projection
    np.testing.assert_allclose(glob[1], [2.0], atol=1e-6)
    per = np_list(pcgrad([g1, g2], per_variable=True))
    np.testing.assert_allclose(per[0], [0.5, 1.5], atol=1e-6)
    np.testing.assert_allclose(per[1], [2.0], atol=1e-6)


def test_pcgrad_zero_task_gradient_gives_no_nan():
    g1 = [c([1.0, -2.0]), c([[0.5]])]
    zero = [c([0.0, 0.0]), c([[0.0]])]
    for per_variable in (False, True):
        merged = np_list(pcgrad([g1, zero, zero], protect=2, per_variable=per_variable))
        assert all(np.isfinite(m).all() for m in merged)
        np.testing.assert_allclose(merged[0], [1.0, -2.0])
        np.testing.assert_allclose(merged[1], [[0.5]])


def _np_pcgrad(grads, protect, per_variable, order, eps=1e-12):
    out = []
    for i, g in enumerate(grads):
        g = [v.copy() for v in g]
        if i != protect:
            for j in order:
                if j == i:
                    continue
                h = grads[j]
                if per_variable:
                    for k in range(len(g)):
                        d = min(np.sum(g[k] * h[k]), 0.0) / (np.sum(h[k] * h[k]) + eps)
                        g[k] = g[k] - d * h[k]
                else:
                    dot = sum(np.sum(a * b) for a, b in zip(g, h))
                    nn = sum(np.sum(b * b) for b in h)
                    d = min(dot, 0.0) / (nn + eps)
                    g = [a - d * b for a, b in zip(g, h)]
        out.append(g)
    return [sum(o[k] for o in out) for k in range(len(grads[0]))]


@pytest.mark.parametrize("per_variable", [False, True])
def test_pcgrad_matches_numpy_reference_three_tasks(per_variable):
    rng = np.random.default_rng(1)
    grads = [[rng.normal(size=(3, 2)), rng.normal(size=(4,))] for _ in range(3)]
    order = [2, 0, 1]
    want = _np_pcgrad(grads, 1, per_variable, order)
    got = pcgrad(
        [[c(v) for v in g] for g in grads], protect=1, per_variable=per_variable, order=order
    )
    for a, b in zip(np_list(got), want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_clip_by_global_norm():
    grads = [c([3.0]), c([4.0])]  # norm 5
    np.testing.assert_allclose(np_list(clip_by_global_norm(grads, 1.0)), [[0.6], [0.8]])
    np.testing.assert_allclose(np_list(clip_by_global_norm(grads, 10.0)), [[3.0], [4.0]])


# ---------------------------------------------------------------- losses


def bce(t, x):
    return max(x, 0) - x * t + math.log1p(math.exp(-abs(x)))


def test_tau_id_loss_label_smoothing():
    logits = np.array([[2.0, 0.0], [0.0, 1.0]], "float32")
    y = np.array([0, 1])
    lse = [math.log(math.exp(2) + 1), math.log(1 + math.e)]
    logp = [[2 - lse[0], -lse[0]], [-lse[1], 1 - lse[1]]]
    t = [[0.95, 0.05], [0.05, 0.95]]  # (1 - 0.1) onehot + 0.1 / 2
    want = np.mean([-sum(t[i][k] * logp[i][k] for k in range(2)) for i in range(2)])
    assert float(TauIDLoss()(y, logits)) == pytest.approx(want, rel=1e-5)
    # one-hot targets give the same
    assert float(TauIDLoss()(np.eye(2)[y], logits)) == pytest.approx(want, rel=1e-5)


def test_charge_loss_masks_non_taus_and_weights():
    y = np.array([1.0, 0.0, -1.0, -1.0], "float32")
    logits = np.array([[2.0], [-1.0], [5.0], [-7.0]], "float32")
    b0, b1 = bce(1, 2.0), bce(0, -1.0)
    assert float(ChargeLoss()(y, logits)) == pytest.approx((b0 + b1) / 2, rel=1e-5)
    sw = np.array([2.0, 1.0, 5.0, 5.0], "float32")
    got = float(ChargeLoss()(y, logits, sample_weight=sw))
    assert got == pytest.approx((2 * b0 + b1) / 2, rel=1e-5)
    # per-sample values are rescaled by B / n_taus = 2
    np.testing.assert_allclose(ops.convert_to_numpy(charge_loss(y, logits)), [2 * b0, 2 * b1, 0, 0])


def test_decay_mode_loss_masks_non_taus():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 6)).astype("float32")
    y = np.array([0, 3, -1])
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = -(logp[0, 0] + logp[1, 3]) / 2
    assert float(DecayModeLoss()(y, logits)) == pytest.approx(want, rel=1e-5)
    assert decay_mode_loss(y, logits).shape == (3,)


def kin_target(d, is_tau=1.0):
    return np.array([*d, is_tau], "float32")


def test_kinematics_loss_formula_with_chord():
    pred = np.zeros((2, 5), "float32")
    # residuals pred - target: log pT 0.5, deta 2.0, (dsin, dcos) = (0.3, 0.4), log m 3.0
    y = np.stack(
        [kin_target([-0.5, -2.0, -0.3, -0.4, -3.0]), kin_target([np.nan, 1e3, 9, 9, 9], 0.0)]
    )
    huber_pt, huber_eta, chord, huber_m = 0.125, 1.5, 0.5, 2.5  # 0.5x^2 | |x| - 0.5 | |x| - 0.5
    want = (huber_pt + huber_eta + chord + 0.2 * huber_m) / 3.2
    assert float(KinematicsLoss()(y, pred)) == pytest.approx(want, rel=1e-5)
    want_m = (huber_pt + huber_eta + chord + 0.5 * huber_m) / 3.5
    assert float(KinematicsLoss(mass_weight=0.5)(y, pred)) == pytest.approx(want_m, rel=1e-5)
    per_sample = ops.convert_to_numpy(kinematics_loss(y, pred))
    np.testing.assert_allclose(per_sample, [2 * want, 0.0], rtol=1e-5)


@pytest.mark.parametrize(
    "loss, y, pred",
    [
        (ChargeLoss(), np.full((3,), -1.0), np.zeros((3, 1))),
        (DecayModeLoss(), np.full((3,), -1), np.zeros((3, 6))),
        (KinematicsLoss(), np.zeros((3, 6)), np.zeros((3, 5))),  # pred == target: chord at 0
    ],
)
def test_batch_without_taus_gives_zero_loss_and_zero_gradients(loss, y, pred):
    import tensorflow as tf

    pred = tf.Variable(pred.astype("float32"))
    with tf.GradientTape() as tape:
        value = loss(y.astype("float32"), pred)
    grad = tape.gradient(value, pred).numpy()
    assert float(value) == 0.0
    assert np.isfinite(grad).all() and not grad.any()


def test_kinematics_gradient_finite_when_prediction_is_exact():
    import tensorflow as tf

    y = np.stack([kin_target([0.1, 0.2, 0.3, 0.4, 0.5])] * 2)
    pred = tf.Variable(y[:, :5].copy())
    with tf.GradientTape() as tape:
        value = KinematicsLoss()(y, pred)
    assert np.isfinite(tape.gradient(value, pred).numpy()).all()


def test_task_losses_and_configs_round_trip():
    losses = task_losses(label_smoothing=0.2, delta=0.5, mass_weight=0.3)
    assert tuple(losses) == TASKS
    assert losses["tau_id"].label_smoothing == 0.2
    assert losses["kinematics"].delta == 0.5 and losses["kinematics"].mass_weight == 0.3
    assert set(TASK_WEIGHTS) == set(TASKS)
    with pytest.raises(ValueError, match="unknown ParTau task"):
        task_losses(("tau_id", "mass"))
    objects = [*losses.values(), *[m for ms in task_metrics().values() for m in ms]]
    for obj in objects:
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
        assert type(clone) is type(obj) and clone.get_config() == obj.get_config()


def test_masked_metrics():
    acc = DecayModeAccuracy()
    logits = np.eye(6, dtype="float32")[[0, 2, 3, 1]]
    acc.update_state(np.array([0, 1, 3, -1]), logits)  # 2 of 3 taus right, -1 ignored
    assert float(acc.result()) == pytest.approx(2 / 3)
    q = ChargeAccuracy()
    q.update_state(np.array([1.0, 0.0, 1.0, -1.0]), np.array([[1.0], [1.0], [2.0], [-3.0]]))
    assert float(q.result()) == pytest.approx(2 / 3)
    term = KinematicsTerm("chord")
    y = np.stack([kin_target([0, 0, 0.3, 0.4, 0]), kin_target([0, 0, 5, 5, 0], 0.0)])
    term.update_state(y, np.zeros((2, 5), "float32"))
    assert float(term.result()) == pytest.approx(0.5)
    auc = TauIDAUC()
    auc.update_state(np.array([0, 1, 0, 1]), np.array([[1, 0], [0, 1], [0, 0.5], [0, 2]], "f4"))
    assert float(auc.result()) == pytest.approx(1.0)


# ---------------------------------------------------------------- PCGradModel


def tiny_model(pcgrad_on=True, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8,), name="particles")
    h = keras.layers.Dense(16, activation="relu", name="shared")(inputs)
    outputs = {
        "tau_id": keras.layers.Dense(2, name="head_tau_id")(h),
        "charge": keras.layers.Dense(1, name="head_charge")(h),
        "decay_mode": keras.layers.Dense(6, name="head_dm")(h),
        "kinematics": keras.layers.Dense(5, name="head_kin")(h),
    }
    return PCGradModel(inputs=inputs, outputs=outputs, pcgrad=pcgrad_on, name="tiny", **kwargs)


def tiny_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    is_tau = rng.random(n) < 0.5
    x = rng.normal(size=(n, 8)).astype("float32")
    kin = np.concatenate([rng.normal(size=(n, 5)), is_tau[:, None]], axis=1).astype("float32")
    y = {
        "tau_id": is_tau.astype("int32"),
        "charge": np.where(is_tau, rng.integers(0, 2, n), -1).astype("float32"),
        "decay_mode": np.where(is_tau, rng.integers(0, 6, n), -1).astype("int32"),
        "kinematics": kin,
    }
    sw = rng.uniform(0.5, 2.0, n).astype("float32")
    return x, y, sw


def compile_tiny(model, optimizer=None):
    model.compile(
        optimizer=optimizer or make_optimizer(OneCycle(1e-2, total_steps=4)),
        loss=task_losses(),
        loss_weights=TASK_WEIGHTS,
        weighted_metrics=task_metrics(),
    )
    return model


@pytest.mark.parametrize("pcgrad_on", [True, False])
def test_fit_logs_and_save_load(pcgrad_on, tmp_path):
    x, y, sw = tiny_data()
    model = compile_tiny(tiny_model(pcgrad_on))
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(
        x, y, sample_weight=sw, batch_size=16, epochs=1, verbose=0, validation_data=(x, y)
    )
    logs = {k: v[-1] for k, v in history.history.items()}
    for key in ["loss", "val_loss", *[f"{t}_loss" for t in TASKS], "decay_mode_accuracy"]:
        assert key in logs and np.isfinite(logs[key]), (key, sorted(logs))
    for key in ["charge_accuracy", "tau_id_auc", "kinematics_chord", "kinematics_log_m"]:
        assert key in logs and f"val_{key}" in logs
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe mode, no custom_objects
    assert isinstance(loaded, PCGradModel)
    assert loaded.get_config()["pcgrad"] is pcgrad_on
    assert loaded.get_config()["protected_task"] == "kinematics"
    assert loaded.clip_norm == 1.0
    want, got = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for k in TASKS:
        np.testing.assert_allclose(got[k], want[k], atol=1e-6)
    assert isinstance(loaded.optimizer, AdamWExclude)
    assert [t[0] for t in loaded._task_losses] == list(TASKS)  # compiled back on load


def test_pcgrad_step_matches_manual_computation():
    import tensorflow as tf

    x, y, sw = tiny_data(n=16, seed=3)
    model = tiny_model(True, seed=3, clip_norm=0.5)
    lr = 0.1
    compile_tiny(model, keras.optimizers.SGD(learning_rate=lr))
    losses, weights = task_losses(), TASK_WEIGHTS
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        pred = model(x, training=True)
        task_vals = [losses[t](y[t], pred[t], sw) * weights[t] for t in TASKS]
    grads = [tape.gradient(v, variables) for v in task_vals]  # every head reaches... or None
    grads = [
        [ops.zeros(v.shape) if g is None else g for g, v in zip(gs, variables)] for gs in grads
    ]
    merged = clip_by_global_norm(pcgrad(grads, protect=TASKS.index("kinematics")), 0.5)
    want = [
        ops.convert_to_numpy(v) - lr * ops.convert_to_numpy(g) for v, g in zip(variables, merged)
    ]

    logs = model.train_on_batch(x, y, sample_weight=sw, return_dict=True)
    for v, w in zip(model.trainable_variables, want):
        np.testing.assert_allclose(ops.convert_to_numpy(v), w, rtol=1e-4, atol=1e-6)
    total = sum(float(v) for v in task_vals)
    assert logs["loss"] == pytest.approx(total, rel=1e-5)
    assert logs["kinematics_loss"] == pytest.approx(float(task_vals[-1]) / 2, rel=1e-5)

    # a batch without taus: tau-only losses 0, finite weights (zero task gradients in PCGrad)
    no_taus = {
        "tau_id": np.zeros(16, "int32"),
        "charge": np.full(16, -1.0, "float32"),
        "decay_mode": np.full(16, -1, "int32"),
        "kinematics": np.zeros((16, 6), "float32"),
    }
    logs = model.train_on_batch(x, no_taus, sample_weight=sw, return_dict=True)
    assert logs["charge_loss"] == logs["decay_mode_loss"] == logs["kinematics_loss"] == 0.0
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_pcgrad_needs_a_loss_dict_and_a_backend_with_autodiff(monkeypatch):
    model = tiny_model(True)
    with pytest.raises(ValueError, match="dict"):
        model.compile(optimizer="sgd", loss="mse")
    compile_tiny(model)
    x, y, _ = tiny_data(n=4)
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(RuntimeError, match="not numpy; train with --no-pcgrad"):
        model.fit(x, y, epochs=1, verbose=0)


# ---------------------------------------------------------------- schedule and optimiser


def test_one_cycle_matches_torch_formulas():
    max_lr, total, div, final_div = 1e-3, 100, 25.0, 1e4
    s = OneCycle(max_lr, total)
    initial, low = max_lr / div, max_lr / div / final_div
    end_up = 0.3 * total - 1  # torch phase ends: 29 and 99

    def cos_anneal(a, b, pct):
        return b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)

    checks = {
        0: initial,
        10: cos_anneal(initial, max_lr, 10 / end_up),
        29: max_lr,
        64: cos_anneal(max_lr, low, (64 - end_up) / (total - 1 - end_up)),
        99: low,
        150: low,  # past the end: stays at the final value
    }
    for step, want in checks.items():
        assert float(s(step)) == pytest.approx(want, rel=1e-5), step
    clone = OneCycle.from_config(s.get_config())
    assert clone.get_config() == s.get_config()


def test_adamw_excludes_class_token_from_weight_decay():
    token = keras.Variable(np.ones((2,), "float32"), name="class_token")
    kernel = keras.Variable(np.ones((2,), "float32"), name="kernel")
    opt = make_optimizer(0.1, weight_decay=0.5)
    assert isinstance(opt, keras.optimizers.AdamW)
    opt.apply_gradients([(np.zeros(2, "float32"), token), (np.zeros(2, "float32"), kernel)])
    np.testing.assert_allclose(ops.convert_to_numpy(token), [1.0, 1.0])
    np.testing.assert_allclose(ops.convert_to_numpy(kernel), [1 - 0.1 * 0.5] * 2, rtol=1e-6)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(clone, AdamWExclude) and clone.exclude == ("class_token",)
