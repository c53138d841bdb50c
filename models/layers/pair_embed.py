"""Pair embedding of the Particle Transformer (weaver-core `PairEmbed`).

Norm settings and initialisation as in `particle_embed` (PyTorch defaults).
"""

import functools

import keras
import numpy as np
from keras import ops

from models.layers.particle_embed import activate, batch_norm, check_activation, torch_linear


@functools.cache
def tril_indices(p):
    """Fixed gather indices of the lower triangle (i >= j) of a P x P matrix.

    Returns:
        take: (T,) int32 flat indices i * P + j of the T = P (P + 1) / 2 pairs i >= j
            (row-major, as `numpy.tril_indices`).
        mirror: (P * P,) int32: position in `take` of pair (max(i, j), min(i, j)) for every
            flat (i, j), so `values[..., mirror]` rebuilds the symmetric P x P matrix.
    """
    i, j = np.tril_indices(p)
    pos = np.empty((p, p), np.int32)
    pos[i, j] = pos[j, i] = np.arange(len(i), dtype=np.int32)
    return (i * p + j).astype(np.int32), pos.reshape(-1)


@keras.saving.register_keras_serializable(package="hepformers")
class PairEmbed(keras.layers.Layer):
    """Pair features -> per-head additive attention bias (weaver `PairEmbed`, mode "sum").

    BatchNorm on the inputs, then for each width in (*dims, num_heads): Dense (weaver's
    Conv1d k=1) -> BatchNorm -> activation; `use_pre_activation_pair=True` drops the last
    activation. BatchNorm statistics are taken, as in weaver, over the lower triangle
    (i >= j, diagonal included) of every pair matrix, padded particles included. With a
    static P only those P (P + 1) / 2 pairs are embedded (fixed gathers in and out, as weaver);
    the input is assumed symmetric in (i, j), as the pair features are. With a dynamic P all
    P^2 pairs are embedded (same result, BN statistics masked to the lower triangle).

    Args:
        dims: hidden widths.
        num_heads: output channels, one attention bias per head.
        activation: "gelu" (exact), "gelu_tanh" or "relu".
        use_pre_activation_pair: drop the final activation.
        normalize_input: apply the input BatchNorm.

    Call args:
        pair_features: (B, P, P, C), e.g. from `PairFeatures`.

    Returns:
        (B, num_heads, P, P).
    """

    def __init__(
        self,
        dims=(64, 64, 64),
        num_heads=8,
        activation="gelu",
        use_pre_activation_pair=False,
        normalize_input=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_activation(activation)
        self.dims = tuple(dims)
        self.num_heads = num_heads
        self.activation = activation
        self.use_pre_activation_pair = use_pre_activation_pair
        self.normalize_input = normalize_input

    def build(self, pair_features_shape):
        policy = self.dtype_policy
        shape = (None, None, pair_features_shape[-1])  # the MLP sees rank-3 (pairs, C last)
        self.input_bn = None
        if self.normalize_input:
            self.input_bn = batch_norm(dtype=policy, name="input_bn")
            self.input_bn.build(shape)
        self.denses, self.norms = [], []
        for i, dim in enumerate(self.dims + (self.num_heads,)):
            dense = torch_linear(dim, shape[-1], dtype=policy, name=f"dense_{i}")
            dense.build(shape)
            shape = shape[:-1] + (dim,)
            norm = batch_norm(dtype=policy, name=f"bn_{i}")
            norm.build(shape)
            self.denses.append(dense)
            self.norms.append(norm)

    def _mlp(self, x, training, mask=None):
        if self.input_bn is not None:
            x = self.input_bn(x, training=training, mask=mask)
        last = len(self.denses) - 1
        for i, (dense, norm) in enumerate(zip(self.denses, self.norms)):
            x = norm(dense(x), training=training, mask=mask)
            if i < last or not self.use_pre_activation_pair:
                x = activate(x, self.activation)
        return x

    def call(self, pair_features, training=None):
        p = pair_features.shape[1]
        if p is None:
            return self.call_all_pairs(pair_features, training=training)
        # static P: embed the P (P + 1) / 2 pairs i >= j only and mirror them, as weaver does
        # (the features are symmetric); the BN statistics are the same as `call_all_pairs`'.
        # Pair-major layout, so both gathers (and the mirror's gradient) act on axis 0.
        take, mirror = tril_indices(p)
        b, c = ops.shape(pair_features)[0], pair_features.shape[-1]
        x = ops.reshape(ops.transpose(pair_features, (1, 2, 0, 3)), (p * p, b, c))
        x = self._mlp(ops.take(x, take, axis=0), training)  # (T, B, H)
        x = ops.reshape(ops.take(x, mirror, axis=0), (p, p, b, self.num_heads))
        return ops.transpose(x, (2, 3, 0, 1))  # (B, H, P, P)

    def call_all_pairs(self, pair_features, training=None):
        """Embed all P^2 pairs, BN statistics masked to the lower triangle (dynamic P)."""
        b, p, c = ops.shape(pair_features)[0], ops.shape(pair_features)[1], pair_features.shape[-1]
        idx = ops.arange(p)
        tril = ops.reshape(idx[:, None] >= idx[None, :], (1, p * p))
        x = self._mlp(ops.reshape(pair_features, (b, p * p, c)), training, mask=tril)
        return ops.reshape(ops.transpose(x, (0, 2, 1)), (b, self.num_heads, p, p))

    def compute_output_shape(self, pair_features_shape):
        b, p = pair_features_shape[0], pair_features_shape[1]
        return (b, self.num_heads, p, p)

    def get_config(self):
        config = super().get_config()
        config.update(
            dims=list(self.dims),
            num_heads=self.num_heads,
            activation=self.activation,
            use_pre_activation_pair=self.use_pre_activation_pair,
            normalize_input=self.normalize_input,
        )
        return config
