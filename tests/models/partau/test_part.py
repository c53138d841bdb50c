"""Tests of the generic ParT classifier (models/partau/part.py)."""

import keras
import numpy as np
import pytest

from models.partau.part import build_part, class_attention_head, part_backbone
from tests.helpers import assert_keras_round_trip

B, P, F, C = 4, 8, 5, 3
TINY = dict(
    num_particles=P,
    embed_dims=(16, 32, 16),
    pair_embed_dims=(8, 8),
    num_heads=2,
    num_layers=2,
    num_cls_layers=1,
)


def _inputs(seed=0, n_real=(3, 8, 5, 1)):
    rng = np.random.default_rng(seed)
    p3 = rng.normal(scale=20.0, size=(B, P, 3))
    m = rng.uniform(0.0, 1.5, size=(B, P, 1))
    v = np.concatenate([p3, np.sqrt((p3**2).sum(-1, keepdims=True) + m**2)], -1)
    mask = (np.arange(P)[None] < np.array(n_real)[:, None]).astype("float32")
    v[mask == 0] = 0.0
    x = rng.normal(size=(B, P, F)) * mask[..., None]
    return {"features": x.astype("float32"), "fourvectors": v.astype("float32"), "mask": mask}


def _n_trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_jetclass_reference_parameter_count():
    model = build_part(17, 10)  # embed [128, 512, 128], pair [64, 64, 64], 8 heads, 8 + 2
    assert _n_trainable(model) == 2_143_486
    assert model.output.shape == (None, 10)
    assert sorted(model.input) == ["features", "fourvectors", "mask"]


def test_fc_params_head():
    model = build_part(F, C, fc_params=[(12, 0.1), (6, 0.0)], **TINY)
    ref = build_part(F, C, **TINY)
    # two extra hidden layers: (16 * 12 + 12) + (12 * 6 + 6), last layer 6 -> C instead of 16 -> C
    extra = (16 * 12 + 12) + (12 * 6 + 6) + (6 * C + C) - (16 * C + C)
    assert _n_trainable(model) == _n_trainable(ref) + extra


def test_fit_step_and_keras_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_part(F, C, metric="theta-phi", **TINY)
    opt = keras.optimizers.AdamW(1e-3)
    opt.exclude_from_weight_decay(var_names=["class_token"])
    model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = _inputs()
    y = np.array([0, 1, 2, 1])
    before = [np.asarray(w).copy() for w in model.trainable_weights]
    hist = model.fit(x, y, batch_size=B, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    changed = [not np.allclose(a, np.asarray(w)) for a, w in zip(before, model.trainable_weights)]
    assert all(changed)  # every weight, the class token and the pair embedding included
    assert any("class_token" in w.path for w in model.trainable_weights)
    assert_keras_round_trip(model, x, tmp_path, atol=1e-5)


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_xla_fit_step_with_dropout(monkeypatch):
    import models.layers.dropout as dropout_module

    seen = []
    in_xla = dropout_module._in_xla_function
    monkeypatch.setattr(
        dropout_module, "_in_xla_function", lambda: seen.append(in_xla()) or seen[-1]
    )
    keras.utils.set_random_seed(4)
    model = build_part(F, C, dropout=0.2, **TINY)
    model.compile(
        keras.optimizers.AdamW(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    before = [np.asarray(w).copy() for w in model.trainable_weights]
    hist = model.fit(_inputs(), np.array([0, 1, 2, 1]), batch_size=B, epochs=2, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
    assert seen and all(seen)  # the blocks' dropouts took the threefry (XLA) path
    changed = [not np.allclose(a, np.asarray(w)) for a, w in zip(before, model.trainable_weights)]
    assert all(changed)


def test_padding_invariance():
    keras.utils.set_random_seed(1)
    model = build_part(F, C, **TINY)
    x = _inputs()
    rng = np.random.default_rng(3)
    x2 = {k: v.copy() for k, v in x.items()}
    pad = x["mask"] == 0
    x2["features"][pad] = 20.0 * rng.normal(size=x2["features"][pad].shape)
    x2["fourvectors"][pad] = np.abs(50.0 * rng.normal(size=x2["fourvectors"][pad].shape))
    a, b = np.asarray(model(x)), np.asarray(model(x2))
    np.testing.assert_allclose(a, b, atol=1e-5)
    x3 = dict(x2, mask=np.ones_like(x["mask"]))  # and the mask matters
    assert not np.allclose(a, np.asarray(model(x3)), atol=1e-4)


def test_variable_length_and_pieces_compose():
    keras.utils.set_random_seed(2)
    features = keras.Input((None, F), name="features")
    fourvectors = keras.Input((None, 4), name="fourvectors")
    mask = keras.Input((None,), name="mask")
    h, m = part_backbone(
        features,
        fourvectors,
        mask,
        embed_dims=(8, 16),
        pair_embed_dims=(4,),
        num_heads=2,
        num_layers=1,
        name="backbone",
    )
    # two tasks sharing the backbone, each with its own class token and class-attention stack
    heads = [class_attention_head(h, m, 2, num_heads=2, name=t) for t in ("task_a", "task_b")]
    model = keras.Model({"features": features, "fourvectors": fourvectors, "mask": mask}, heads)
    tokens = [w for w in model.weights if w.path.endswith("class_token")]
    assert len(tokens) == 2
    for n in (3, 7):
        x = {k: v[:, :n] for k, v in _inputs().items()}
        out_a, out_b = model(x)
        assert out_a.shape == (B, 16) and out_b.shape == (B, 16)
        assert not np.allclose(np.asarray(out_a), np.asarray(out_b))


@pytest.mark.parametrize("policy", ["float64", "mixed_float16"])
def test_dtype_policies(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = build_part(F, C, activation="gelu_tanh", **TINY)
        out = model(_inputs())
    finally:
        keras.config.set_dtype_policy(previous)
    expect = "float64" if policy == "float64" else "float32"  # float32 logits under mixed
    assert keras.backend.standardize_dtype(out.dtype) == expect
    assert np.isfinite(np.asarray(out)).all()
