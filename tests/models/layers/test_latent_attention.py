"""Tests of the Perceiver layers: latent cross-attention and latent self-attention."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.layers import LatentCrossAttention, LatentSelfAttentionBlock
from tests.helpers import assert_keras_round_trip, assert_layer_config_round_trip

B, N, D, K = 3, 12, 16, 6
N_REAL = (5, 12, 0)  # the last event has no real candidate


def _events(seed=0, n=N, n_real=N_REAL):
    """Random embedded candidates, garbage (not zeros) in the padded slots."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, n, D)).astype("float32")
    mask = np.arange(n)[None] < np.asarray(n_real)[:, None]
    x[~mask] = 30.0 * rng.normal(size=x[~mask].shape)
    return x, mask


def _cross(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    layer = LatentCrossAttention(K, D, **kwargs)
    layer.build((None, None, D))
    return layer


def _block(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    layer = LatentSelfAttentionBlock(D, **kwargs)
    layer.build((None, None, D))
    return layer


@pytest.mark.parametrize("heads", [1, 4])
def test_cross_attention_shapes(heads):
    x, mask = _events()
    layer = _cross(num_heads=heads)
    y = np.asarray(layer(x, mask=mask))
    assert y.shape == (B, K, D) and np.isfinite(y).all()
    assert layer.compute_output_shape((None, 500, D)) == (None, K, D)
    assert tuple(layer.latents.shape) == (K, D)
    # 0/1 float masks are the same as boolean ones
    np.testing.assert_allclose(layer(x, mask=mask.astype("float32")), y, atol=1e-6)


def test_self_attention_block_shapes():
    x, mask = _events()
    block = _block()
    assert np.asarray(block(x[:, :K])).shape == (B, K, D)
    assert np.asarray(block(x, mask=mask)).shape == (B, N, D)
    assert block.compute_output_shape((None, K, D)) == (None, K, D)


def test_latents_are_truncated_normal():
    keras.utils.set_random_seed(1)
    layer = LatentCrossAttention(512, 64)
    layer.build((None, None, 64))
    w = layer.latents.numpy()
    assert np.abs(w).max() <= 2 * 0.02 + 1e-7  # truncated at two standard deviations
    assert 0.01 < w.std() < 0.02


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        LatentCrossAttention(4, 10, num_heads=3)
    with pytest.raises(ValueError, match="divisible"):
        LatentSelfAttentionBlock(10, num_heads=4)
    with pytest.raises(ValueError, match="input width"):
        LatentCrossAttention(4, 8).build((None, None, 7))


def test_config_round_trip():
    assert_layer_config_round_trip(
        LatentCrossAttention(8, 16, num_heads=2, mlp_ratio=3, dropout=0.1, name="cross")
    )
    assert_layer_config_round_trip(LatentSelfAttentionBlock(16, 2, 4, 0.2, name="latent"))
    config = LatentCrossAttention(8, 16).get_config()
    assert {"num_latents", "dim", "num_heads", "mlp_ratio", "dropout"} <= set(config)


def test_keras_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    x_in = keras.Input((None, D), name="x")
    m_in = keras.Input((None,), dtype="bool", name="mask")
    z = LatentCrossAttention(K, D, num_heads=2, dropout=0.1)(x_in, mask=m_in)
    z = LatentSelfAttentionBlock(D, num_heads=4, dropout=0.1)(z)
    model = keras.Model({"x": x_in, "mask": m_in}, z)
    x, mask = _events()
    loaded = assert_keras_round_trip(model, {"x": x, "mask": mask}, tmp_path, atol=1e-6)
    assert [type(layer).__name__ for layer in loaded.layers[-2:]] == [
        "LatentCrossAttention",
        "LatentSelfAttentionBlock",
    ]


def test_padding_invariance():
    """Extra padded candidates with garbage values, and other garbage in the old padding."""
    x, mask = _events(seed=0)
    x2, mask2 = _events(seed=5, n=N + 9)  # new garbage everywhere
    x2[:, :N][mask] = x[mask]  # the same real candidates
    mask2[:, N:] = False
    np.testing.assert_array_equal(mask2[:, :N], mask)
    layer = _cross(num_heads=2)
    np.testing.assert_allclose(layer(x2, mask=mask2), layer(x, mask=mask), atol=1e-5)
    block = _block()
    y, y2 = np.asarray(block(x, mask=mask)), np.asarray(block(x2, mask=mask2))
    np.testing.assert_allclose(y2[:, :N][mask], y[mask], atol=1e-5)  # real rows only


def test_permutation_invariance():
    x, mask = _events()
    perm = np.random.default_rng(3).permutation(N)
    layer = _cross(num_heads=2)
    np.testing.assert_allclose(
        layer(x[:, perm], mask=mask[:, perm]), layer(x, mask=mask), atol=1e-5
    )


def test_all_padded_event_is_finite_and_ignores_garbage():
    x, mask = _events()
    layer = _cross()
    y = np.asarray(layer(x, mask=mask))
    assert np.isfinite(y).all()
    # event 2 has no real candidate: its output depends on the latents only
    x_other, _ = _events(seed=9)
    np.testing.assert_allclose(np.asarray(layer(x_other, mask=mask))[2], y[2], atol=1e-6)
    z = layer.latents.numpy()
    expected = np.asarray(layer._mlp(keras.ops.convert_to_tensor(z[None]), False))[0]
    np.testing.assert_allclose(y[2], expected, atol=1e-6)  # attention output 0


def test_gradients_reach_the_latents():
    x, mask = _events()
    layer = _cross(num_heads=2)
    block = _block()
    for m in (mask, np.zeros_like(mask)):  # also for a batch without real candidates
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(block(layer(x, mask=m))))
        grads = tape.gradient(loss, layer.trainable_weights)
        by_name = {w.path: g for w, g in zip(layer.trainable_weights, grads)}
        g = np.asarray(by_name[layer.latents.path])
        assert np.isfinite(g).all() and np.abs(g).sum() > 0
        assert all(np.isfinite(np.asarray(g)).all() for g in grads if g is not None)
