"""Perceiver layers: cross-attention from a trainable latent array, and latent self-attention.

A Perceiver (Jaegle et al., arXiv:2103.03206) reads N inputs through k learned latents, so the
cost grows as O(k N) instead of the O(N^2) of self-attention over the inputs. Tensors are
batch-first and channels-last; masks are explicit (B, N) inputs, True / 1 = real candidate.
Padded candidates are removed from the keys before the softmax (and zeroed before the
projections), so their values, even garbage, never change the outputs.
"""

import math

import keras
from keras import ops

from models.layers.activations import gelu_tanh
from models.layers.dropout import FastDropout
from models.layers.layer_norm import apply_layer_norm
from models.layers.particle_embed import layer_norm

_MASKED_LOGIT = -1e9  # finite: an event without real keys gives zeros, not NaN


def _check_heads(dim, num_heads):
    if dim % num_heads:
        raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")


def _attend(q, k, v, key_mask, logits_equation, drop, training):
    """Multi-head scaled dot-product attention, softmax over the keys in float32 (or float64).

    Args:
        q: queries, (B, Lq, H, D) or, broadcast over the batch, (Lq, H, D).
        k: keys (B, Lk, H, D).
        v: values (B, Lk, H, D).
        key_mask: (B, Lk) bool, True = real key, or None.
        logits_equation: einsum from (q, k) to logits (B, H, Lq, Lk).
        drop: dropout layer on the attention weights.
        training: Keras training flag.

    Returns:
        (B, Lq, H, D); rows whose keys are all masked give zeros.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    logits = ops.einsum(logits_equation, q * ops.cast(scale, q.dtype), k)  # (B, H, Lq, Lk)
    sdt = "float64" if keras.backend.standardize_dtype(logits.dtype) == "float64" else "float32"
    logits = ops.cast(logits, sdt)
    if key_mask is not None:
        keep = key_mask[:, None, None, :]  # (B, 1, 1, Lk)
        logits = ops.where(keep, logits, ops.convert_to_tensor(_MASKED_LOGIT, sdt))
    weights = ops.softmax(logits, axis=-1)
    if key_mask is not None:
        weights = weights * ops.cast(keep, sdt)  # all-masked rows: uniform -> zeros
    weights = drop(ops.cast(weights, v.dtype), training=training)
    return ops.einsum("bhqk,bkhd->bqhd", weights, v)


def _dense(units, policy, name, activation=None):
    return keras.layers.Dense(units, activation=activation, dtype=policy, name=name)


class _PreNormBlock(keras.layers.Layer):
    """Shared parts of the latent blocks (not registered): dropouts and the pre-norm MLP."""

    def _build_mlp(self, dim, mlp_ratio, dropout):
        """Makes attention / residual dropouts and the MLP dim -> mlp_ratio dim -> dim."""
        policy, hidden = self.dtype_policy, int(mlp_ratio * dim)
        self.attn_drop = FastDropout(dropout, dtype=policy, name="attn_dropout")
        self.drop = FastDropout(dropout, dtype=policy, name="dropout")
        self.mlp_norm = layer_norm(dtype=policy, name="mlp_norm")
        self.fc1 = _dense(hidden, policy, "fc1", activation=gelu_tanh)
        self.fc2 = _dense(dim, policy, "fc2")
        self.mlp_norm.build((None, None, dim))
        self.fc1.build((None, None, dim))
        self.fc2.build((None, None, hidden))

    def _mlp(self, x, training):
        """x + Drop(MLP(LN(x)))."""
        y = self.fc2(self.fc1(apply_layer_norm(self.mlp_norm, x)))
        return x + self.drop(y, training=training)

    def compute_mask(self, inputs, previous_mask=None):
        """None: the explicit `mask` argument is consumed, outputs carry no Keras mask."""
        return None


@keras.saving.register_keras_serializable(package="hepformers")
class LatentCrossAttention(_PreNormBlock):
    """Perceiver encoder: a trainable latent array cross-attends to N (masked) inputs.

    z = latents (k, dim), truncated-normal init (stddev 0.02), shared by every event;
    z = z + Drop(Wo MHA(Q = LN(z), K = V = LN(x), padded keys removed)); then
    z = z + Drop(MLP(LN(z))) with MLP dim -> mlp_ratio dim -> dim and a tanh GELU (ONNX
    friendly). The latents are broadcast over the batch, never tiled; the largest tensors are
    the (B, H, k, N) attention logits, so memory and time grow as O(k N). An event without
    real candidates gets attention output 0, i.e. the latents themselves pass to the MLP.

    Args:
        num_latents: k, the number of latents.
        dim: width of the inputs and of the latents.
        num_heads: attention heads (the Perceiver uses 1 for cross-attention); divides dim.
        mlp_ratio: hidden width of the MLP in units of dim.
        dropout: dropout rate on the attention weights and on both residual branches.

    Call args:
        inputs: (B, N, dim) embedded candidates.
        mask: (B, N) bool or 0/1, True / 1 = real candidate; None: all real.
        training: Keras training flag (dropout).

    Returns:
        (B, num_latents, dim).
    """

    def __init__(self, num_latents, dim, num_heads=1, mlp_ratio=2, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        _check_heads(dim, num_heads)
        self.num_latents = num_latents
        self.dim = dim
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.dropout = dropout

    def build(self, input_shape):
        dim, policy = self.dim, self.dtype_policy
        if input_shape[-1] != dim:
            raise ValueError(f"input width {input_shape[-1]} != dim {dim}")
        self.latents = self.add_weight(
            name="latents",
            shape=(self.num_latents, dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )
        self.input_norm = layer_norm(dtype=policy, name="input_norm")
        self.latent_norm = layer_norm(dtype=policy, name="latent_norm")
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            _dense(dim, policy, n) for n in ("q_proj", "k_proj", "v_proj", "out_proj")
        )
        for layer in (self.input_norm, self.k_proj, self.v_proj, self.out_proj):
            layer.build((None, None, dim))
        for layer in (self.latent_norm, self.q_proj):
            layer.build((None, dim))
        self._build_mlp(dim, self.mlp_ratio, self.dropout)

    def call(self, inputs, mask=None, training=None):
        h, d = self.num_heads, self.dim // self.num_heads
        b, n = ops.shape(inputs)[0], ops.shape(inputs)[1]
        key_mask = None
        if mask is not None:
            key_mask = ops.cast(mask, "bool")  # (B, N)
            inputs = ops.where(key_mask[..., None], inputs, ops.zeros_like(inputs))
        z = ops.cast(self.latents, self.compute_dtype)  # (k, dim)
        x = apply_layer_norm(self.input_norm, inputs)  # (B, N, dim)
        q = ops.reshape(self.q_proj(apply_layer_norm(self.latent_norm, z)), (-1, h, d))  # (k,H,D)
        k = ops.reshape(self.k_proj(x), (b, n, h, d))  # (B, N, H, D)
        v = ops.reshape(self.v_proj(x), (b, n, h, d))
        out = _attend(q, k, v, key_mask, "qhd,bkhd->bhqk", self.attn_drop, training)
        out = self.out_proj(ops.reshape(out, (b, self.num_latents, self.dim)))  # (B, k, dim)
        z = z + self.drop(out, training=training)  # latents broadcast over B
        return self._mlp(z, training)

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return (input_shape[0], self.num_latents, self.dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_latents=self.num_latents,
            dim=self.dim,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            dropout=self.dropout,
        )
        return config


@keras.saving.register_keras_serializable(package="hepformers")
class LatentSelfAttentionBlock(_PreNormBlock):
    """Pre-norm transformer block: x = x + Drop(MHA(LN(x))); x = x + Drop(MLP(LN(x))).

    Used on the Perceiver latents (B, k, dim), where no mask is needed; with a key mask it is
    also a plain masked self-attention block over N candidates (O(N^2) memory and time).
    Q, K and V come from one fused Dense; the MLP is dim -> mlp_ratio dim -> dim, tanh GELU.

    Args:
        dim: width.
        num_heads: attention heads; divides dim.
        mlp_ratio: hidden width of the MLP in units of dim.
        dropout: dropout rate on the attention weights and on both residual branches.

    Call args:
        inputs: (B, L, dim).
        mask: (B, L) bool or 0/1, True / 1 = real (a key mask; padded rows give unused
            outputs), or None.
        training: Keras training flag (dropout).

    Returns:
        (B, L, dim).
    """

    def __init__(self, dim, num_heads=4, mlp_ratio=2, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        _check_heads(dim, num_heads)
        self.dim = dim
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.dropout = dropout

    def build(self, input_shape):
        dim, policy = self.dim, self.dtype_policy
        if input_shape[-1] != dim:
            raise ValueError(f"input width {input_shape[-1]} != dim {dim}")
        self.attn_norm = layer_norm(dtype=policy, name="attn_norm")
        self.qkv_proj = _dense(3 * dim, policy, "qkv_proj")
        self.out_proj = _dense(dim, policy, "out_proj")
        for layer in (self.attn_norm, self.qkv_proj, self.out_proj):
            layer.build((None, None, dim))
        self._build_mlp(dim, self.mlp_ratio, self.dropout)

    def call(self, inputs, mask=None, training=None):
        h, d = self.num_heads, self.dim // self.num_heads
        b, n = ops.shape(inputs)[0], ops.shape(inputs)[1]
        key_mask = None if mask is None else ops.cast(mask, "bool")
        qkv = self.qkv_proj(apply_layer_norm(self.attn_norm, inputs))
        q, k, v = (ops.reshape(t, (b, n, h, d)) for t in ops.split(qkv, 3, axis=-1))
        out = _attend(q, k, v, key_mask, "bqhd,bkhd->bhqk", self.attn_drop, training)
        out = self.out_proj(ops.reshape(out, (b, n, self.dim)))
        x = inputs + self.drop(out, training=training)
        return self._mlp(x, training)

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            dim=self.dim,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            dropout=self.dropout,
        )
        return config
