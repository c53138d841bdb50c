"""Attention with additive pair bias and the ParT / CaiT blocks (weaver-core `Block`).

Tensors are batch-first and channels-last, (B, P, E); masks are (B, P) with 1 = real particle.
"""

import math

import keras
from keras import ops

from models.layers.dropout import FastDropout
from models.layers.layer_norm import apply_layer_norm
from models.layers.particle_embed import activate, check_activation, layer_norm, torch_linear

_MASKED_LOGIT = -1e9  # finite, so rows with no valid key give zeros instead of NaN


def _softmax_dtype(dtype):
    return "float64" if keras.backend.standardize_dtype(dtype) == "float64" else "float32"


@keras.saving.register_keras_serializable(package="hepformers")
class PairBiasAttention(keras.layers.Layer):
    """Multi-head attention like torch `nn.MultiheadAttention`, with an additive logit bias.

    logits = (q / sqrt(d)) k^T + attn_bias, padded keys removed; softmax in float32 (float64
    under a float64 policy); dropout on the attention weights; output projection. Q, K, V and
    output projections carry biases; Q/K/V use torch's xavier-uniform init of the packed
    in-projection and zero biases. Keys and values must have the query's width E.

    Args:
        num_heads: heads; E must be divisible by it.
        dropout: dropout rate on the attention weights.

    Call args:
        query: (B, Pq, E).
        key: (B, Pk, E); None: the query (self-attention).
        value: (B, Pk, E); None: the key. Projections of the same tensor (self-attention:
            Q, K, V; class attention: K, V) run as one matmul with the kernels concatenated.
        attn_bias: (B, H, Pq, Pk) float bias added to the scaled logits, or None.
        key_mask: (B, Pk), 1 = real key, or None. Rows without any real key give zeros.
        heads_last: give the output channels in weaver's (d, h) order (channel d * H + h is
            the out-projection's channel h * D + d); the permutation is applied to the
            out-projection's kernel columns, the saved weights keep torch's order.

    Returns:
        (B, Pq, E).
    """

    def __init__(self, num_heads, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.dropout = dropout

    def build(self, query_shape):
        e = query_shape[-1]
        if e % self.num_heads:
            raise ValueError(f"width {e} is not divisible by num_heads={self.num_heads}")
        policy = self.dtype_policy
        # torch packs Q, K, V into one (3E, E) matrix with xavier_uniform: U(+-sqrt(6 / 4E))
        in_init = keras.initializers.VarianceScaling(0.5, "fan_avg", "uniform")
        self.q_proj, self.k_proj, self.v_proj = (
            keras.layers.Dense(e, kernel_initializer=in_init, dtype=policy, name=n)
            for n in ("q_proj", "k_proj", "v_proj")
        )
        self.out_proj = torch_linear(e, e, zero_bias=True, dtype=policy, name="out_proj")
        self.attn_dropout = FastDropout(self.dropout, dtype=policy, name="attn_dropout")
        shape = (None, None, e)
        for layer in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            layer.build(shape)

    def _project(self, query, key, value):
        """[q, k, v]; inputs that are one tensor share one matmul (kernels concatenated)."""
        denses = (self.q_proj, self.k_proj, self.v_proj)
        groups = {}  # id(input) -> (input, indices into q, k, v)
        for i, x in enumerate((query, key, value)):
            groups.setdefault(id(x), (x, []))[1].append(i)
        out = [None] * 3
        for x, idx in groups.values():
            if len(idx) == 1:
                out[idx[0]] = denses[idx[0]](x)
                continue
            kernel = ops.concatenate([ops.cast(denses[i].kernel, x.dtype) for i in idx], axis=1)
            bias = ops.concatenate([ops.cast(denses[i].bias, x.dtype) for i in idx], axis=0)
            y = ops.split(ops.add(ops.matmul(x, kernel), bias), len(idx), axis=-1)
            for i, y_i in zip(idx, y):
                out[i] = y_i
        return out

    def call(
        self,
        query,
        key=None,
        value=None,
        attn_bias=None,
        key_mask=None,
        training=None,
        heads_last=False,
    ):
        key = query if key is None else key
        value = key if value is None else value
        h = self.num_heads
        b, pq, e = ops.shape(query)[0], ops.shape(query)[1], ops.shape(query)[2]
        pk = ops.shape(key)[1]
        d = query.shape[-1] // h
        q, k, v = self._project(query, key, value)
        q = ops.reshape(q, (b, pq, h, d)) * (1.0 / math.sqrt(d))
        k = ops.reshape(k, (b, pk, h, d))
        v = ops.reshape(v, (b, pk, h, d))
        logits = ops.einsum("bqhd,bkhd->bhqk", q, k)
        sdt = _softmax_dtype(logits.dtype)
        logits = ops.cast(logits, sdt)
        if attn_bias is not None:
            logits = logits + ops.cast(attn_bias, sdt)
        if key_mask is not None:
            keep = ops.cast(key_mask, "bool")[:, None, None, :]  # (B, 1, 1, Pk)
            logits = ops.where(keep, logits, ops.convert_to_tensor(_MASKED_LOGIT, sdt))
        weights = ops.softmax(logits, axis=-1)
        if key_mask is not None:
            weights = weights * ops.cast(keep, sdt)
        weights = self.attn_dropout(ops.cast(weights, v.dtype), training=training)
        out = ops.reshape(ops.einsum("bhqk,bkhd->bqhd", weights, v), (b, pq, e))
        if not heads_last:
            return self.out_proj(out)
        # output channel d * H + h is out_proj's channel h * D + d: permute its columns (by a
        # transpose, not a gather, so that the variables' gradients stay dense)
        kernel = ops.cast(self.out_proj.kernel, out.dtype)
        kernel = ops.reshape(ops.transpose(ops.reshape(kernel, (-1, h, d)), (0, 2, 1)), (-1, h * d))
        bias = ops.cast(self.out_proj.bias, out.dtype)
        bias = ops.reshape(ops.transpose(ops.reshape(bias, (h, d))), (-1,))
        return ops.add(ops.matmul(out, kernel), bias)  # a BiasAdd, as in Dense

    def compute_output_shape(self, query_shape, *args, **kwargs):
        return tuple(query_shape)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, dropout=self.dropout)
        return config


class _NormFormerBlock(keras.layers.Layer):
    """Shared parts of the ParT particle block and class-attention block (not registered)."""

    def __init__(
        self,
        embed_dim,
        num_heads,
        ffn_ratio=4,
        dropout=0.1,
        attn_dropout=0.1,
        activation_dropout=0.1,
        activation="gelu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_activation(activation)
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.ffn_ratio = ffn_ratio
        self.dropout = dropout
        self.attn_dropout = attn_dropout
        self.activation_dropout = activation_dropout
        self.activation = activation

    def build(self, x_shape):
        e, h = self.embed_dim, self.num_heads
        if x_shape[-1] != e:
            raise ValueError(f"input width {x_shape[-1]} != embed_dim {e}")
        ffn = e * self.ffn_ratio
        policy = self.dtype_policy
        shape, ffn_shape = (None, None, e), (None, None, ffn)
        self.pre_attn_norm = layer_norm(dtype=policy, name="pre_attn_norm")
        self.attn = PairBiasAttention(h, self.attn_dropout, dtype=policy, name="attn")
        self.post_attn_norm = layer_norm(dtype=policy, name="post_attn_norm")
        self.pre_fc_norm = layer_norm(dtype=policy, name="pre_fc_norm")
        self.fc1 = torch_linear(ffn, e, dtype=policy, name="fc1")
        self.post_fc_norm = layer_norm(dtype=policy, name="post_fc_norm")
        self.fc2 = torch_linear(e, ffn, dtype=policy, name="fc2")
        self.drop = FastDropout(self.dropout, dtype=policy, name="dropout")
        self.act_drop = FastDropout(self.activation_dropout, dtype=policy, name="act_dropout")
        for layer in (self.pre_attn_norm, self.attn, self.post_attn_norm, self.pre_fc_norm):
            layer.build(shape)
        self.fc1.build(shape)
        self.post_fc_norm.build(ffn_shape)
        self.fc2.build(ffn_shape)
        self.c_attn = self.add_weight(name="c_attn", shape=(h,), initializer="ones")
        self.w_resid = self.add_weight(name="w_resid", shape=(e,), initializer="ones")

    def _finish(self, x, residual, training):
        """Per-head scale, post-attention norm, residual, then the NormFormer FFN."""
        # x comes in weaver's (d, h) channel order (attention with heads_last=True): channel
        # d * H + h is scaled by c_attn[h]
        x = x * ops.tile(ops.cast(self.c_attn, x.dtype), (self.embed_dim // self.num_heads,))
        x = self.drop(apply_layer_norm(self.post_attn_norm, x), training=training) + residual
        residual = x
        x = activate(self.fc1(apply_layer_norm(self.pre_fc_norm, x)), self.activation)
        x = apply_layer_norm(self.post_fc_norm, self.act_drop(x, training=training))
        x = self.drop(self.fc2(x), training=training)
        return x + ops.cast(self.w_resid, x.dtype) * residual

    def get_config(self):
        config = super().get_config()
        config.update(
            embed_dim=self.embed_dim,
            num_heads=self.num_heads,
            ffn_ratio=self.ffn_ratio,
            dropout=self.dropout,
            attn_dropout=self.attn_dropout,
            activation_dropout=self.activation_dropout,
            activation=self.activation,
        )
        return config


@keras.saving.register_keras_serializable(package="hepformers")
class ParticleAttentionBlock(_NormFormerBlock):
    """ParT particle block (pre-LN, NormFormer scalings), weaver `Block` with `x_cls=None`.

    x = x + Drop(LN(c_attn * MHA(LN(x), bias))); x = w_resid * x + Drop(fc2(LN(Drop(act(fc1(
    LN(x))))))), with fc1: E -> ffn_ratio E.

    Args:
        embed_dim: width E.
        num_heads: heads H.
        ffn_ratio: FFN expansion.
        dropout: dropout after attention and after fc2.
        attn_dropout: dropout on attention weights.
        activation_dropout: dropout after the FFN activation.
        activation: "gelu" (exact, as the original), "gelu_tanh" (ONNX-friendly) or "relu".

    Call args:
        x: (B, P, E).
        particle_mask: (B, P), 1 = real, or None.
        attn_bias: (B, H, P, P) additive bias from `PairEmbed`, or None.

    Returns:
        (B, P, E).
    """

    def call(self, x, particle_mask=None, attn_bias=None, training=None):
        u = apply_layer_norm(self.pre_attn_norm, x)
        u = self.attn(
            u, attn_bias=attn_bias, key_mask=particle_mask, training=training, heads_last=True
        )
        return self._finish(u, x, training)

    def compute_output_shape(self, x_shape, *args, **kwargs):
        return tuple(x_shape)


@keras.saving.register_keras_serializable(package="hepformers")
class ClassAttentionBlock(_NormFormerBlock):
    """CaiT class-attention block: the class token attends to LN(concat(cls, particles)).

    The query is the raw (not normalised) class token, the residual is the class token, the
    class token is always a valid key; no pair bias. Otherwise identical to
    `ParticleAttentionBlock`; dropouts default to 0 as in weaver's `cls_block_params`.

    Call args:
        x: (B, P, E) particle embeddings.
        class_token: (B, 1, E).
        particle_mask: (B, P), 1 = real, or None.

    Returns:
        (B, 1, E) updated class token.
    """

    def __init__(
        self,
        embed_dim,
        num_heads,
        ffn_ratio=4,
        dropout=0.0,
        attn_dropout=0.0,
        activation_dropout=0.0,
        activation="gelu",
        **kwargs,
    ):
        super().__init__(
            embed_dim,
            num_heads,
            ffn_ratio=ffn_ratio,
            dropout=dropout,
            attn_dropout=attn_dropout,
            activation_dropout=activation_dropout,
            activation=activation,
            **kwargs,
        )

    def call(self, x, class_token, particle_mask=None, training=None):
        u = apply_layer_norm(
            self.pre_attn_norm, ops.concatenate([class_token, x], axis=1)
        )  # (B, 1 + P, E)
        key_mask = None
        if particle_mask is not None:
            m = ops.cast(particle_mask, "bool")
            key_mask = ops.concatenate([ops.ones_like(m[:, :1]), m], axis=1)
        u = self.attn(class_token, u, key_mask=key_mask, training=training, heads_last=True)
        return self._finish(u, class_token, training)

    def compute_output_shape(self, x_shape, class_token_shape, *args, **kwargs):
        return tuple(class_token_shape)
