"""Tests of the Particle Transformer layers: pair features, embeddings, attention blocks."""

import math

import keras
import numpy as np
import pytest
from scipy.special import erf

from models.layers import (
    ClassAttentionBlock,
    ClassToken,
    PairBiasAttention,
    PairEmbed,
    PairFeatures,
    ParticleAttentionBlock,
    ParticleEmbed,
    pairwise_lv_features,
)
from tests.helpers import assert_keras_round_trip, assert_layer_config_round_trip

B, P, F, E, H = 2, 6, 5, 16, 4
LOG_EPS = math.log(1e-8)


def _jets(seed=0, n_real=(4, 6)):
    """Random massive particles, zero-padded after n_real[b]."""
    rng = np.random.default_rng(seed)
    p3 = rng.normal(scale=20.0, size=(B, P, 3))
    m = rng.uniform(0.0, 2.0, size=(B, P, 1))
    v = np.concatenate([p3, np.sqrt((p3**2).sum(-1, keepdims=True) + m**2)], -1)
    mask = np.zeros((B, P), "float32")
    for b, n in enumerate(n_real):
        mask[b, :n] = 1.0
    v[mask == 0] = 0.0
    x = rng.normal(size=(B, P, F)) * mask[..., None]
    return x.astype("float32"), v.astype("float32"), mask


def _repad(x, v, mask, seed=7):
    """Same jets with garbage in the padded slots."""
    rng = np.random.default_rng(seed)
    x2, v2 = x.copy(), v.copy()
    pad = mask == 0
    x2[pad] = 30.0 * rng.normal(size=x2[pad].shape)
    p3 = 50.0 * rng.normal(size=v2[pad][:, :3].shape)
    v2[pad] = np.concatenate([p3, np.linalg.norm(p3, axis=-1, keepdims=True) + 1.0], -1)
    return x2, v2


# ---------------------------------------------------------------- pair features by hand

HAND = np.array(
    [
        [3.0, 4.0, 0.0, 5.0],  # a: massless, pT 5, y 0
        [6.0, 8.0, 0.0, 10.0],  # b: collinear with a, pT 10
        [3.0, 4.0, 12.0, 13.0],  # c: massless, pT 5, y = ln 5, theta = atan2(5, 12)
        [-3.0, -4.0, -12.0, 13.0],  # d: back to back with c
        [0.0, 0.0, 0.0, 0.0],  # padded
    ]
)


def _expected(i, j, metric):
    """[ln kT, ln z, ln dR, ln m^2] worked out by hand for the HAND pairs."""
    phi_a = math.atan2(4.0, 3.0)
    if (i, j) == (0, 1):  # collinear: dR = 0, m^2 = 0, z = 5 / 15
        return [LOG_EPS, math.log(1.0 / 3.0), LOG_EPS, LOG_EPS]
    if (i, j) == (2, 3):  # back to back: |dphi| = pi, m^2 = 26^2
        if metric == "rapidity-phi":
            d_angle = 2.0 * math.log(5.0)
        else:
            d_angle = 2.0 * math.atan2(5.0, 12.0) - math.pi
        dr = math.hypot(d_angle, math.pi)
        return [math.log(5.0 * dr), math.log(0.5), math.log(dr), math.log(676.0)]
    if (i, j) == (2, 4):  # real with padded: pT_pad = 0, angles of the pad = 0, m^2 = 0
        angle = math.log(5.0) if metric == "rapidity-phi" else math.atan2(5.0, 12.0)
        return [LOG_EPS, LOG_EPS, math.log(math.hypot(angle, phi_a)), LOG_EPS]
    if (i, j) == (4, 4):
        return [LOG_EPS] * 4
    if (i, j) == (0, 0):  # self pair: dR = 0, z = 1/2, m^2 = 4 m^2 = 0
        return [LOG_EPS, math.log(0.5), LOG_EPS, LOG_EPS]
    raise KeyError((i, j))


@pytest.mark.parametrize("metric", ["rapidity-phi", "theta-phi"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pairwise_lv_features_by_hand(metric, dtype):
    v = HAND[None].astype(dtype)
    out = pairwise_lv_features(v, metric=metric)
    assert keras.backend.standardize_dtype(out.dtype) == dtype
    out = np.asarray(out)
    assert out.shape == (1, 5, 5, 4)
    assert np.isfinite(out).all()
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out[0], np.swapaxes(out[0], 0, 1), atol=tol)  # symmetric
    for i, j in [(0, 1), (2, 3), (2, 4), (4, 4), (0, 0)]:
        np.testing.assert_allclose(out[0, i, j], _expected(i, j, metric), rtol=tol, atol=tol)


def test_pairwise_lv_features_wraps_phi():
    # phi = +-(pi - 0.1): dphi must be 0.2, not 2 pi - 0.2
    v = np.array([[[-1.0, 0.1, 0.0, 2.0], [-1.0, -0.1, 0.0, 2.0]]])
    dr = np.exp(np.asarray(pairwise_lv_features(v))[0, 0, 1, 2])
    np.testing.assert_allclose(dr, 2.0 * math.atan2(0.1, 1.0), rtol=1e-10)
    with pytest.raises(ValueError):
        pairwise_lv_features(v, metric="eta")


def test_pair_features_layer_dtypes():
    v = HAND[None].astype("float32")
    ref = np.asarray(pairwise_lv_features(v))
    np.testing.assert_allclose(np.asarray(PairFeatures()(v)), ref, rtol=1e-6)
    mixed = PairFeatures(dtype="mixed_float16")(v)  # computed in float32, not float16
    assert keras.backend.standardize_dtype(mixed.dtype) == "float32"
    np.testing.assert_allclose(np.asarray(mixed), ref, rtol=1e-6)
    f64 = PairFeatures(dtype="float64")(v)
    assert keras.backend.standardize_dtype(f64.dtype) == "float64"


# ---------------------------------------------------------------- embeddings


def test_parameter_counts_match_weaver():
    def n_trainable(layer):
        return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)

    embed = ParticleEmbed((128, 512, 128))
    embed.build((None, None, 17))
    pair = PairEmbed((64, 64, 64), num_heads=8)
    pair.build((None, None, None, 4))
    block = ParticleAttentionBlock(128, 8)
    block.build((None, None, 128))
    assert (n_trainable(embed), n_trainable(pair), n_trainable(block)) == (135364, 9568, 199688)
    assert len(pair.trainable_weights) == 18  # BN(4), then 4 x (Dense kernel+bias, BN)


def test_pair_embed_batchnorm_statistics_on_lower_triangle():
    _, v, _ = _jets()
    pairs = np.asarray(pairwise_lv_features(v))
    layer = PairEmbed((8,), num_heads=H)
    out = layer(pairs, training=True)
    assert out.shape == (B, H, P, P)
    tril = np.tril(np.ones((P, P), bool))
    mean = pairs[:, tril].reshape(-1, 4).mean(0)
    # one update from zero with torch momentum 0.1
    np.testing.assert_allclose(np.asarray(layer.input_bn.moving_mean), 0.1 * mean, rtol=1e-4)
    pre = PairEmbed((8,), num_heads=H, use_pre_activation_pair=True)
    pre.build(pairs.shape)
    assert float(np.asarray(pre(pairs)).min()) < -0.2  # no final GELU


def test_particle_embed_zeroes_padding():
    x, _, mask = _jets()
    out = np.asarray(ParticleEmbed((8, 12), activation="gelu_tanh")(x, particle_mask=mask))
    assert out.shape == (B, P, 12)
    assert np.all(out[mask == 0] == 0.0) and np.any(out[mask == 1] != 0.0)


# ---------------------------------------------------------------- attention vs a numpy reference


def _ln(x, layer):
    g, b = np.asarray(layer.gamma), np.asarray(layer.beta)
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * g + b


def _dense(x, layer):
    return x @ np.asarray(layer.kernel) + np.asarray(layer.bias)


def _reference_block(block, x, mask, bias):
    """weaver `Block.forward` (x_cls=None, eval mode) written out in numpy, batch first."""
    h, e = block.num_heads, block.embed_dim
    d = e // h
    att = block.attn
    u = _ln(x, block.pre_attn_norm)
    q, k, v = (_dense(u, lay).reshape(B, P, h, d) for lay in (att.q_proj, att.k_proj, att.v_proj))
    logits = np.einsum("bqhd,bkhd->bhqk", q / math.sqrt(d), k) + bias
    logits = np.where(mask[:, None, None, :] > 0, logits, -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    a = _dense(np.einsum("bhqk,bkhd->bqhd", w, v).reshape(B, P, e), att.out_proj)
    a = np.einsum("bphd,h->bpdh", a.reshape(B, P, h, d), np.asarray(block.c_attn))
    x = _ln(a.reshape(B, P, e), block.post_attn_norm) + x
    f = _dense(_ln(x, block.pre_fc_norm), block.fc1)
    f = 0.5 * f * (1.0 + erf(f / math.sqrt(2.0)))  # exact GELU
    f = _dense(_ln(f, block.post_fc_norm), block.fc2)
    return f + np.asarray(block.w_resid) * x


def test_particle_block_matches_weaver_reference():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, P, E))
    _, _, mask = _jets()
    bias = rng.normal(size=(B, H, P, P))
    block = ParticleAttentionBlock(E, H, dtype="float64")
    block.build(x.shape)
    block.c_attn.assign(rng.uniform(0.5, 2.0, H))  # distinct per head: checks the (d, h) order
    block.w_resid.assign(rng.uniform(0.5, 2.0, E))
    out = np.asarray(block(x, particle_mask=mask, attn_bias=bias))
    ref = _reference_block(block, x, mask, bias)
    np.testing.assert_allclose(out, ref, atol=1e-7)  # TF's float64 erfc GELU is good to ~5e-9


def test_attention_rows_without_keys_are_finite():
    x = np.random.default_rng(0).normal(size=(B, P, E)).astype("float32")
    out = PairBiasAttention(H)(x, x, x, key_mask=np.zeros((B, P), "float32"))
    assert np.isfinite(np.asarray(out)).all()


def _pipeline(dtype=None):
    keras.utils.set_random_seed(3)
    kw = {} if dtype is None else {"dtype": dtype}
    embed = ParticleEmbed((12, E), **kw)
    pair = PairFeatures(**kw)
    pair_embed = PairEmbed((8, 8), num_heads=H, **kw)
    block = ParticleAttentionBlock(E, H, **kw)
    token = ClassToken(E, **kw)
    cls_block = ClassAttentionBlock(E, H, **kw)

    def run(x, v, mask):
        h = embed(x, particle_mask=mask)
        bias = pair_embed(pair(v))
        h = block(h, particle_mask=mask, attn_bias=bias)
        return h, cls_block(h, token(h), particle_mask=mask)

    return run


def test_padding_does_not_change_real_outputs():
    x, v, mask = _jets()
    run = _pipeline()
    h1, c1 = run(x, v, mask)
    x2, v2 = _repad(x, v, mask)
    h2, c2 = run(x2, v2, mask)
    real = mask == 1
    np.testing.assert_allclose(np.asarray(h1)[real], np.asarray(h2)[real], atol=1e-5)
    np.testing.assert_allclose(np.asarray(c1), np.asarray(c2), atol=1e-5)
    _, c3 = run(x2, v2, np.ones_like(mask))  # and the mask matters
    assert not np.allclose(np.asarray(c1)[0], np.asarray(c3)[0], atol=1e-4)


@pytest.mark.parametrize("dtype", ["float64", "mixed_float16"])
def test_dtype_policies(dtype):
    x, v, mask = _jets()
    h, c = _pipeline(dtype)(x, v, mask)
    expect = "float64" if dtype == "float64" else "float16"
    for t in (h, c):
        assert keras.backend.standardize_dtype(t.dtype) == expect
        assert np.isfinite(np.asarray(t, np.float64)).all()


# ---------------------------------------------------------------- serialization


def _layers():
    return {
        "pair_features": PairFeatures(metric="theta-phi", eps=1e-6),
        "pair_embed": PairEmbed((8, 4), num_heads=2, use_pre_activation_pair=True),
        "particle_embed": ParticleEmbed((8, 4), activation="relu", normalize_input=False),
        "attention": PairBiasAttention(2, dropout=0.2),
        "block": ParticleAttentionBlock(8, 2, ffn_ratio=2, activation="gelu_tanh"),
        "cls_block": ClassAttentionBlock(8, 2, dropout=0.1),
        "class_token": ClassToken(8),
    }


@pytest.mark.parametrize("name", list(_layers()))
def test_layer_config_round_trip(name):
    assert_layer_config_round_trip(_layers()[name])


def test_all_layers_keras_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    x_in = keras.Input((P, F), name="features")
    v_in = keras.Input((P, 4), name="fourvectors")
    m_in = keras.Input((P,), name="mask")
    h = ParticleEmbed((12, E))(x_in, particle_mask=m_in)
    bias = PairEmbed((8,), num_heads=H)(PairFeatures(metric="theta-phi")(v_in))
    h = PairBiasAttention(H)(h, h, h, attn_bias=bias, key_mask=m_in)
    h = ParticleAttentionBlock(E, H)(h, particle_mask=m_in, attn_bias=bias)
    cls = ClassAttentionBlock(E, H)(h, ClassToken(E)(h), particle_mask=m_in)
    model = keras.Model({"features": x_in, "fourvectors": v_in, "mask": m_in}, [h, cls])
    x, v, mask = _jets()
    model.predict({"features": x, "fourvectors": v, "mask": mask}, verbose=0)
    names = [w.path for w in model.weights]
    assert any(n.endswith("class_token") for n in names)
    assert_keras_round_trip(
        model,
        {"features": x, "fourvectors": v, "mask": mask},
        tmp_path,
        atol=1e-5,
        fresh_process=True,
    )
