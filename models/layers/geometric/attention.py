"""Multivector multi-head self-attention with the Lorentz-invariant inner product."""

import math

import keras
from keras import ops

from models.layers.geometric import algebra
from models.layers.geometric import ops as gops
from models.layers.geometric.linear import EquiLinear

_IP_FACTORS = algebra.INNER_PRODUCT_FACTORS.astype("float32")


@keras.saving.register_keras_serializable(package="hepformers")
class GeometricSelfAttention(keras.layers.Layer):
    """Self-attention over tokens carrying multivector and scalar channels.

    Per head: logits = (sum_c <q_c, k_c> + q_s . k_s) / sqrt(16 hidden_mv + hidden_s), where
    <.,.> is the invariant inner product; multivector queries, keys and values are normalised
    with the equivariant layer norm and scalar ones with a layer norm (neither with gains);
    padded keys are removed from the softmax. The output projection is an EquiLinear back to
    the input channel counts, initialised small. Matches lgatr's `SelfAttention` (QKVModule,
    native scaled dot-product attention, token_mask as a boolean `attn_mask` (B, 1, 1, N)) up
    to the order of the outputs of the fused q/k/v projection: (qkv, head, channel) here,
    (qkv, channel, head) in lgatr, a permutation of its weights. Padded queries are computed
    like real ones. The softmax runs in float32, or float64 under a float64 policy.

    Args:
        num_heads: number of heads.
        attn_ratio: hidden width per head = max(attn_ratio * C // num_heads, 1) multivector
            and max(attn_ratio * S // num_heads, 4) scalar channels.
        legacy: the layer as saved before it matched lgatr: scalar queries, keys and values
            not normalised and no pseudoscalar bias in the output projection (configs
            without the key load this way).

    Call args:
        multivectors: (B, N, C, 16).
        scalars: (B, N, S).
        token_mask: (B, N) bool or 0/1, True = real token; None = all real.

    Returns:
        (multivectors (B, N, C, 16), scalars (B, N, S)).
    """

    def __init__(self, num_heads, attn_ratio=1, legacy=False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.attn_ratio = attn_ratio
        self.legacy = legacy

    @classmethod
    def from_config(cls, config):
        # Configs saved before the lgatr-faithful layers rebuild the legacy layer.
        return super().from_config({"legacy": True, **config})

    def build(self, multivectors_shape, scalars_shape):
        c, s = multivectors_shape[-2], scalars_shape[-1]
        h = self.num_heads
        self._hidden_mv = max(self.attn_ratio * c // h, 1)
        self._hidden_s = max(self.attn_ratio * s // h, 4)
        policy = self.dtype_policy
        self.qkv = EquiLinear(
            3 * h * self._hidden_mv,
            3 * h * self._hidden_s,
            use_bias=False,
            name="qkv",
            dtype=policy,
        )
        self.out = EquiLinear(
            c, s, init="small", pseudoscalar_bias=not self.legacy, name="out", dtype=policy
        )
        lead = tuple(multivectors_shape[:-2])
        self.qkv.build(multivectors_shape, scalars_shape)
        self.out.build(lead + (h * self._hidden_mv, 16), lead + (h * self._hidden_s,))

    def call(self, multivectors, scalars, token_mask=None):
        qkv_mv, qkv_s = self.qkv(multivectors, scalars)
        return self.out(*self.attend(qkv_mv, qkv_s, token_mask))

    def attend(self, qkv_mv, qkv_s, token_mask=None):
        """The attention between the q/k/v and output projections.

        Args:
            qkv_mv: (B, N, 3 H hidden_mv, 16) output of the q/k/v projection.
            qkv_s: (B, N, 3 H hidden_s).
            token_mask: (B, N) or None.

        Returns:
            (multivectors (B, N, H hidden_mv, 16), scalars (B, N, H hidden_s)).
        """
        h, hm, hs = self.num_heads, self._hidden_mv, self._hidden_s
        b, n = ops.shape(qkv_mv)[0], ops.shape(qkv_mv)[1]
        qkv_mv = ops.reshape(qkv_mv, (b, n, 3, h, hm, 16))
        qkv_mv = gops.equi_layer_norm(qkv_mv)  # normalise q, k, v per head over channels
        qkv_s = ops.reshape(qkv_s, (b, n, 3, h, hs))
        if not self.legacy:  # lgatr's QKVModule layer-normalises the scalar q, k, v per head
            qkv_s = gops.scalar_layer_norm(qkv_s)
        factors = ops.convert_to_tensor(_IP_FACTORS, dtype=qkv_mv.dtype)

        def flat(i, sign=None):
            mv = qkv_mv[:, :, i] if sign is None else qkv_mv[:, :, i] * sign
            return ops.concatenate([ops.reshape(mv, (b, n, h, hm * 16)), qkv_s[:, :, i]], -1)

        q, k, v = flat(0, factors), flat(1), flat(2)  # (B, N, H, 16 hm + hs)
        logits = ops.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(16 * hm + hs)
        if token_mask is not None:
            keep = ops.cast(token_mask, "bool")[:, None, None, :]
            logits = ops.where(keep, logits, ops.convert_to_tensor(-1e9, logits.dtype))
        weights = ops.softmax(ops.cast(logits, gops.precise_dtype(logits.dtype)), axis=-1)
        weights = ops.cast(weights, v.dtype)
        if token_mask is not None:  # exact zeros for padded keys
            weights = weights * ops.cast(keep, v.dtype)
        att = ops.einsum("bhqk,bkhd->bqhd", weights, v)
        att_mv = ops.reshape(att[..., : hm * 16], (b, n, h * hm, 16))
        att_s = ops.reshape(att[..., hm * 16 :], (b, n, h * hs))
        return att_mv, att_s

    def compute_output_spec(self, multivectors, scalars, token_mask=None):
        mv = keras.KerasTensor(multivectors.shape, dtype=self.compute_dtype)
        return mv, keras.KerasTensor(scalars.shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, attn_ratio=self.attn_ratio, legacy=self.legacy)
        return config
