"""The L-GATr layers against the reference implementation (lgatr 2.0.0) with its weights.

`fixtures/lgatr_reference.npz` holds each lgatr layer's random weights, inputs and float64
outputs (written by `fixtures/make_lgatr_reference.py` in an environment that has lgatr; the
toolkit never imports it). Each test copies the weights into the toolkit's layer, with the
mapping written out per layer below, and compares the outputs in float64 and float32.
"""

import os

import keras
import numpy as np
import pytest

from models.layers.geometric import (
    EquiLayerNorm,
    EquiLinear,
    GatedGELU,
    GeometricBilinear,
    GeometricSelfAttention,
    GeoMLP,
    LGATrBlock,
    LGATrNetwork,
)

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "lgatr_reference.npz")
TOLERANCE = {"float64": 1e-12, "float32": 1e-6}  # on |toolkit - lgatr| / (1 + max |lgatr|)


def _case(name):
    ref = np.load(FIXTURE)
    part = {k[len(name) + 1 :]: ref[k] for k in ref.files if k.split("/")[0] == name}
    weights = {k[2:]: v for k, v in part.items() if k.startswith("w/")}
    return part, weights


def _assign(variable, value, done):
    assert variable is not None, "the toolkit layer lacks this lgatr weight"
    assert tuple(variable.shape) == value.shape, (variable.path, variable.shape, value.shape)
    variable.assign(value.astype(variable.dtype))
    done.add(id(variable))


def _load_linear(layer, w, p, done, perm_mv=None, perm_s=None):
    """lgatr EquiLinear `p` -> EquiLinear. lgatr keeps torch layouts (out, in); its bias on the
    grade-0 component is `bias` without scalar inputs, else the (out, 2) `s2mvs.bias`
    (grade 0, pseudoscalar). perm_*: lgatr's index of each output channel of the toolkit."""
    perm_mv = slice(None) if perm_mv is None else perm_mv
    perm_s = slice(None) if perm_s is None else perm_s
    _assign(layer.mv_kernel, w[p + "weight"].transpose(1, 0, 2)[:, perm_mv], done)
    if p + "bias" in w:
        _assign(layer.mv_bias, w[p + "bias"][perm_mv, 0], done)
    if p + "s2mvs.weight" in w:
        s2mv = w[p + "s2mvs.weight"].T.reshape(-1, layer.mv_channels, 2)[:, perm_mv]
        _assign(layer.s2mv_kernel, s2mv.reshape(s2mv.shape[0], -1), done)
    if p + "s2mvs.bias" in w:
        bias = w[p + "s2mvs.bias"].reshape(-1, 2)[perm_mv]
        _assign(layer.mv_bias, bias[:, 0], done)
        _assign(getattr(layer, "ps_bias", None), bias[:, 1], done)
    if p + "mvs2s.weight" in w:
        _assign(layer.mv2s_kernel, w[p + "mvs2s.weight"].T[:, perm_s], done)
    if p + "mvs2s.bias" in w:
        _assign(layer.s_bias, w[p + "mvs2s.bias"][perm_s], done)
    if p + "s2s.weight" in w:
        _assign(layer.s2s_kernel, w[p + "s2s.weight"].T[:, perm_s], done)


def _load_norm(layer, w, p, done):
    """lgatr EquiLayerNorm: gains `weight_mv` (C, 5) and `weight_s` (S,), if affine."""
    if p + "weight_mv" in w:
        _assign(layer.mv_gain, w[p + "weight_mv"], done)
        _assign(layer.s_gain, w[p + "weight_s"], done)


def _qkv_perm(heads, hidden):
    """The fused q/k/v projection orders its outputs (qkv, head, channel); lgatr (qkv,
    channel, head)."""
    qkv, head, channel = np.meshgrid(range(3), range(heads), range(hidden), indexing="ij")
    return ((qkv * hidden + channel) * heads + head).ravel()


def _load_attention(layer, w, p, done):
    h, hm, hs = layer.num_heads, layer._hidden_mv, layer._hidden_s
    qkv = p + "qkv_module.in_linear."
    _load_linear(layer.qkv, w, qkv, done, _qkv_perm(h, hm), _qkv_perm(h, hs))
    _load_linear(layer.out, w, p + "out_linear.", done)  # heads concatenated alike


def _load_bilinear(layer, w, p, done):
    _load_linear(layer.left, w, p + "linear_left.", done)
    _load_linear(layer.right, w, p + "linear_right.", done)
    _load_linear(layer.out, w, p + "linear_out.", done)
    _load_norm(layer.norm, w, p + "norm.", done)  # lgatr: no gains


def _load_mlp(layer, w, p, done):
    _load_bilinear(layer.bilinear, w, p + "layers.0.", done)  # layers.1: the gated GELU
    _load_linear(layer.out, w, p + "layers.2.", done)


def _load_block(layer, w, p, done):
    _load_norm(layer.norm1, w, p + "norm1.", done)
    _load_attention(layer.attention, w, p + "attention.", done)
    _load_norm(layer.norm2, w, p + "norm2.", done)
    _load_mlp(layer.mlp, w, p + "mlp.", done)


def _load_network(layer, w, p, done):
    _load_linear(layer.linear_in, w, p + "linear_in.", done)
    for i, block in enumerate(layer.blocks):
        _load_block(block, w, p + f"blocks.{i}.", done)
    _load_linear(layer.linear_out, w, p + "linear_out.", done)


CASES = {  # fixture case -> (toolkit layer, weight loader)
    "linear": (lambda d: EquiLinear(4, 5, dtype=d), _load_linear),
    "linear_no_scalars": (lambda d: EquiLinear(4, 2, dtype=d), _load_linear),
    "norm": (lambda d: EquiLayerNorm(dtype=d), _load_norm),
    "gelu": (lambda d: GatedGELU(dtype=d), None),
    "bilinear": (lambda d: GeometricBilinear(4, 5, hidden_mv_channels=4, dtype=d), _load_bilinear),
    "mlp": (lambda d: GeoMLP(mlp_ratio=2, dtype=d), _load_mlp),
    "attention": (lambda d: GeometricSelfAttention(num_heads=2, dtype=d), _load_attention),
    "attention_masked": (lambda d: GeometricSelfAttention(num_heads=2, dtype=d), _load_attention),
    "block": (lambda d: LGATrBlock(num_heads=2, mlp_ratio=2, dtype=d), _load_block),
    "network": (
        lambda d: LGATrNetwork(2, 4, 8, 2, 1, num_heads=2, mlp_ratio=2, dtype=d),
        _load_network,
    ),
}


def reference_error(name, dtype):
    """max |toolkit - lgatr| over the outputs of case `name`, and max |lgatr|."""
    make_layer, load = CASES[name]
    part, weights = _case(name)
    layer = make_layer(dtype)
    mv, s = (
        keras.ops.convert_to_tensor(part[k], dtype) if k in part else None
        for k in ("in/mv", "in/s")
    )
    args = [mv, s]
    kwargs = (
        {"token_mask": keras.ops.convert_to_tensor(part["in/mask"])} if "in/mask" in part else {}
    )
    layer(*args, **kwargs)  # builds
    done = set()
    if load is not None:
        load(layer, weights, "", done)
    assert done == {id(v) for v in layer.weights}, "toolkit weights without an lgatr value"
    out = layer(*args, **kwargs)
    err, scale = 0.0, 0.0
    for got, key in zip(out, ("out/mv", "out/s")):
        assert (got is None) == (key not in part), key
        if got is not None:
            assert keras.backend.standardize_dtype(got.dtype) == dtype
            got = np.asarray(keras.ops.convert_to_numpy(got), np.float64)
            err = max(err, float(np.abs(got - part[key]).max()))
            scale = max(scale, float(np.abs(part[key]).max()))
    return err, scale


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_lgatr(name, dtype):
    if dtype == "float64" and keras.backend.backend() != "tensorflow":
        pytest.skip("Keras promotes float64 to float32 on JAX and torch")
    err, scale = reference_error(name, dtype)
    tol = TOLERANCE[dtype] * (1.0 + scale)
    assert err <= tol, f"{name} {dtype}: {err:.2e} (scale {scale:.1f})"


@pytest.mark.parametrize("scheme", ["default", "small", "almost_unit_scalar", "default_no_scalars"])
def test_initialisation_matches_lgatr(scheme):
    """The (min, max) of each freshly initialised weight of a wide EquiLinear is lgatr's, within
    5% of the range (the sampling spread of the extremes of >= 128 uniform values is ~1%)."""
    ref = np.load(FIXTURE)
    ranges = {k.split("/")[-1]: ref[k] for k in ref.files if k.startswith(f"init_{scheme}/")}
    keras.utils.set_random_seed(0)
    in_s = 0 if scheme.endswith("no_scalars") else 32
    layer = EquiLinear(128, 128, init=scheme.replace("_no_scalars", ""))
    layer.build((None, 32, 16), (None, in_s) if in_s else None)
    ps_bias = [] if layer.ps_bias is None else [layer.ps_bias]
    pairs = {  # lgatr parameter -> toolkit values, as (samples, columns)
        "weight": [layer.mv_kernel],
        "s2mvs.weight": [layer.s2mv_kernel],
        "s2mvs.bias": [layer.mv_bias] + ps_bias,
        "bias": [layer.mv_bias],
        "mvs2s.weight": [layer.mv2s_kernel],
        "mvs2s.bias": [layer.s_bias],
        "s2s.weight": [layer.s2s_kernel],
    }
    seen = set()
    for name, want in ranges.items():
        variables = pairs[name]
        seen.update(id(v) for v in variables)
        values = [np.asarray(keras.ops.convert_to_numpy(v)) for v in variables]
        values = np.stack(values, -1).reshape(-1, want.shape[-1] if want.ndim == 2 else 1)
        got = np.stack([values.min(0), values.max(0)]).reshape(want.shape)
        np.testing.assert_allclose(got, want, atol=0.05 * (want.max() - want.min()), err_msg=name)
    assert seen == {id(v) for v in layer.weights}
