"""Tests of the ParT speed-ups: they compute what the plain Keras / dense versions compute."""

import math
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import erf

import models.layers.dropout as dropout_module
from models.layers import (
    FastDropout,
    PairBiasAttention,
    PairEmbed,
    ParticleAttentionBlock,
    ParticleEmbed,
    pairwise_lv_features,
)
from models.layers.layer_norm import apply_layer_norm
from models.layers.pair_embed import tril_indices
from models.layers.particle_embed import gelu_exact
from tests.helpers import assert_layer_config_round_trip

B, P, E, H = 3, 7, 16, 4


def _fourvectors(seed=0, n_real=(4, 7, 2)):
    rng = np.random.default_rng(seed)
    p3 = rng.normal(scale=20.0, size=(B, P, 3))
    m = rng.uniform(0.0, 2.0, size=(B, P, 1))
    v = np.concatenate([p3, np.sqrt((p3**2).sum(-1, keepdims=True) + m**2)], -1)
    mask = (np.arange(P)[None] < np.array(n_real)[:, None]).astype("float32")
    v[mask == 0] = 0.0
    return v, mask


# ---------------------------------------------------------------- pair embedding


def test_tril_indices():
    take, mirror = tril_indices(4)
    i, j = np.divmod(take, 4)
    assert len(take) == 10 and np.all(i >= j)
    m = np.arange(16.0).reshape(4, 4)
    sym = np.where(np.tril(np.ones((4, 4), bool)), m, m.T)
    np.testing.assert_array_equal(m.reshape(-1)[take][mirror].reshape(4, 4), sym)


@pytest.mark.parametrize("training", [True, False])
def test_pair_embed_lower_triangle_matches_all_pairs(training):
    v, _ = _fourvectors()
    pairs = np.asarray(pairwise_lv_features(v.astype("float64")))
    lower = np.tril(np.ones((P, P), bool))[None, :, :, None]
    pairs = np.where(lower, pairs, np.swapaxes(pairs, 1, 2))  # exactly symmetric
    keras.utils.set_random_seed(0)
    tri = PairEmbed((8, 6), num_heads=H, dtype="float64")
    dense = PairEmbed((8, 6), num_heads=H, dtype="float64")
    tri.build(pairs.shape)
    dense.build(pairs.shape)
    dense.set_weights(tri.get_weights())
    a = np.asarray(tri(pairs, training=training))  # static P: lower triangle + mirror
    b = np.asarray(dense.call_all_pairs(pairs, training=training))
    assert a.shape == (B, H, P, P)
    # Keras' masked BN moments divide by (count + 1e-7): ~1e-9 relative here
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-7)
    np.testing.assert_array_equal(a, np.swapaxes(a, 2, 3))
    # same BN statistics (lower triangle, padded particles included)
    for wa, wb in zip(tri.non_trainable_weights, dense.non_trainable_weights):
        np.testing.assert_allclose(np.asarray(wa), np.asarray(wb), rtol=1e-7, atol=1e-12)


def test_pair_embed_dynamic_length_takes_all_pairs():
    v, _ = _fourvectors()
    pairs = np.asarray(pairwise_lv_features(v)).astype("float32")
    layer = PairEmbed((8,), num_heads=H)
    layer.build(pairs.shape)
    spec = tf.TensorSpec((None, None, None, 4), "float32")
    dynamic = tf.function(lambda x: layer(x), input_signature=[spec])
    np.testing.assert_allclose(dynamic(pairs).numpy(), np.asarray(layer(pairs)), atol=1e-5)


# ---------------------------------------------------------------- dropout


def test_fast_dropout_inference_and_config():
    layer = FastDropout(0.3, seed=1)
    x = np.ones((4, 5), "float32")
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    assert layer.weights == []  # nothing saved: it can replace keras Dropout in a layer
    assert_layer_config_round_trip(layer)
    with pytest.raises(ValueError):
        FastDropout(1.0)


@pytest.mark.parametrize("jit", [False, True])
def test_fast_dropout_statistics(jit, monkeypatch):
    seen = []
    in_xla = dropout_module._in_xla_function
    monkeypatch.setattr(
        dropout_module, "_in_xla_function", lambda: seen.append(in_xla()) or seen[-1]
    )
    layer = FastDropout(0.25, seed=3)
    fn = tf.function(lambda x: layer(x, training=True), jit_compile=jit)
    x = tf.ones((200, 500))
    y1, y2 = fn(x).numpy(), fn(x).numpy()
    assert seen == [jit]  # threefry (XLA-only kernels) exactly when compiled by XLA
    for y in (y1, y2):
        assert abs((y == 0).mean() - 0.25) < 0.005
        np.testing.assert_allclose(y[y != 0], 1.0 / 0.75, rtol=1e-6)
    assert (y1 != y2).any()  # a fresh mask per call


# ---------------------------------------------------------------- layer norm and GELU


@pytest.mark.parametrize(
    "dtype, shape, tol",
    [("float64", (3, 5, 17), 1e-12), ("float32", (4, 6, 256), 2e-5), ("float64", (8, 32), 1e-12)],
)
@pytest.mark.parametrize("jit", [False, True])
def test_apply_layer_norm_matches_keras(dtype, shape, tol, jit):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape) * 3.0 + 1.0, dtype)
    up = tf.constant(rng.normal(size=shape), dtype)
    layer = keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype)
    layer.build(shape)
    layer.gamma.assign(rng.uniform(0.5, 2.0, shape[-1]))
    layer.beta.assign(rng.normal(size=shape[-1]))

    def run(fast):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = apply_layer_norm(layer, x) if fast else layer(x)
            loss = tf.reduce_sum(y * up)
        return [y, *tape.gradient(loss, [x, layer.gamma, layer.beta])]

    fast = tf.function(lambda: run(True), jit_compile=True)() if jit else run(True)
    for a, b in zip(fast, run(False)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def test_apply_layer_norm_falls_back_to_the_layer():
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype("float32")
    layer = keras.layers.LayerNormalization(axis=1)
    layer.build(x.shape)
    np.testing.assert_array_equal(np.asarray(apply_layer_norm(layer, x)), np.asarray(layer(x)))


def test_gelu_exact():
    x = np.linspace(-8.0, 8.0, 4001)
    ref = 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    np.testing.assert_allclose(np.asarray(gelu_exact(x)), ref, rtol=1e-14, atol=1e-14)
    x32 = x.astype("float32")
    tf_gelu = np.asarray(keras.ops.gelu(x32, approximate=False))
    np.testing.assert_allclose(np.asarray(gelu_exact(x32)), tf_gelu, atol=2e-6)


# ---------------------------------------------------------------- attention


def test_packed_projections_and_head_order():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, P, E))
    bias = rng.normal(size=(B, H, P, P))
    _, mask = _fourvectors()
    layer = PairBiasAttention(H, dtype="float64")
    layer.build(x.shape)
    for d in (layer.q_proj, layer.k_proj, layer.v_proj):
        d.bias.assign(rng.normal(size=E))  # torch starts them at 0: check them too
    packed = np.asarray(layer(x, attn_bias=bias, key_mask=mask))  # one (E, 3E) matmul
    separate = np.asarray(layer(x, x + 0.0, x + 0.0, attn_bias=bias, key_mask=mask))
    np.testing.assert_allclose(packed, separate, rtol=1e-12, atol=1e-12)
    dh = np.asarray(layer(x, attn_bias=bias, key_mask=mask, heads_last=True))
    d = E // H
    hd_as_dh = packed.reshape(B, P, H, d).transpose(0, 1, 3, 2).reshape(B, P, E)
    np.testing.assert_allclose(dh, hd_as_dh, rtol=1e-12, atol=1e-12)
    cls = x[:, :1]  # class attention: K and V packed, Q apart
    a = np.asarray(layer(cls, x, key_mask=mask))
    np.testing.assert_allclose(a, np.asarray(layer(cls, x, x + 0.0, key_mask=mask)), atol=1e-12)
    y = x[:, ::-1] + 1.0  # value is the query, the key another tensor: Q and V packed
    a = np.asarray(layer(x, y, x, attn_bias=bias))
    np.testing.assert_allclose(a, np.asarray(layer(x, y, x + 0.0, attn_bias=bias)), atol=1e-12)


# ---------------------------------------------------------------- saved-weights layout


def test_saved_weights_layout(tmp_path):
    """The sublayers keep the keys of models saved before the speed-ups: plain Keras
    LayerNormalization in ParticleEmbed's list (keyed by class name), weightless dropouts."""
    x_in = keras.Input((P, 5))
    h = ParticleEmbed((8, E))(x_in)
    h = ParticleAttentionBlock(E, H)(h)
    path = str(tmp_path / "m.keras")
    keras.Model(x_in, h).save(path)
    with zipfile.ZipFile(path) as z:
        z.extract("model.weights.h5", str(tmp_path))
    names = []
    with h5py.File(str(tmp_path / "model.weights.h5")) as f:
        f.visit(names.append)
    assert "layers/particle_embed/norms/layer_normalization_1/vars/1" in names
    block = "layers/particle_attention_block"
    for drop in ("drop", "act_drop", "attn/attn_dropout"):  # keyed by attribute name
        assert f"{block}/{drop}/vars" in names
        assert not [n for n in names if n.startswith(f"{block}/{drop}/vars/")]
    assert f"{block}/pre_attn_norm/vars/0" in names


def test_variable_gradients_are_dense():
    """No gather reads a variable: PCGrad (and other code) multiplies gradients as tensors."""
    v, mask = _fourvectors()
    x = np.random.default_rng(3).normal(size=(B, P, E)).astype("float32")
    pairs = np.asarray(pairwise_lv_features(v)).astype("float32")
    embed, block = PairEmbed((8,), num_heads=H), ParticleAttentionBlock(E, H)
    with tf.GradientTape() as tape:
        out = block(x, particle_mask=mask, attn_bias=embed(pairs, training=True), training=True)
        loss = tf.reduce_sum(out**2)
    weights = embed.trainable_weights + block.trainable_weights
    grads = tape.gradient(loss, weights)
    assert all(isinstance(g, tf.Tensor) for g in grads), [
        w.path for w, g in zip(weights, grads) if not isinstance(g, tf.Tensor)
    ]
