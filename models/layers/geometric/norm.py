"""Equivariant layer normalisation and the gated GELU nonlinearity."""

import keras
import numpy as np
from keras import ops

from models.layers.geometric import algebra
from models.layers.geometric import ops as gops

_GRADE_ONEHOT = np.eye(5, dtype="float32")[algebra.GRADES]  # (16, 5)


@keras.saving.register_keras_serializable(package="hepformers")
class EquiLayerNorm(keras.layers.Layer):
    """Equivariant LayerNorm of multivectors and plain LayerNorm of scalars.

    Multivectors: x / sqrt(max(mean_c sum_k |<x_c>_k|^2, epsilon)), averaged over the channel
    axis, times an optional learned gain per channel and grade. Scalars: standardised over
    the channel axis (variance epsilon 1e-5), times an optional learned gain per channel (no
    offset). Matches lgatr's `EquiLayerNorm`; norms compute in float32, or float64 under a
    float64 policy.

    Args:
        epsilon: clamp of the mean squared multivector norm.
        elementwise_affine: learn gains of shape (C, 5) for multivectors, (S,) for scalars
            (lgatr's block norms have them, its other norms do not).

    Call args:
        multivectors: (..., C, 16).
        scalars: (..., S) or None.

    Returns:
        (multivectors (..., C, 16), scalars (..., S) or None).
    """

    def __init__(self, epsilon=0.01, elementwise_affine=True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.elementwise_affine = elementwise_affine

    def build(self, multivectors_shape, scalars_shape=None):
        self.mv_gain = self.s_gain = None
        if self.elementwise_affine:
            self.mv_gain = self.add_weight(
                name="mv_gain", shape=(multivectors_shape[-2], 5), initializer="ones"
            )
            if scalars_shape is not None:
                self.s_gain = self.add_weight(
                    name="s_gain", shape=(scalars_shape[-1],), initializer="ones"
                )

    def call(self, multivectors, scalars=None):
        out_mv = gops.equi_layer_norm(multivectors, epsilon=self.epsilon)
        if self.mv_gain is not None:
            onehot = ops.convert_to_tensor(_GRADE_ONEHOT.T, dtype=out_mv.dtype)  # (5, 16)
            out_mv = out_mv * ops.matmul(ops.cast(self.mv_gain, out_mv.dtype), onehot)
        out_s = None
        if scalars is not None:
            out_s = gops.scalar_layer_norm(scalars)
            if self.s_gain is not None:
                out_s = out_s * ops.cast(self.s_gain, out_s.dtype)
        return out_mv, out_s

    def compute_output_spec(self, multivectors, scalars=None):
        mv = keras.KerasTensor(multivectors.shape, dtype=self.compute_dtype)
        s = None if scalars is None else keras.KerasTensor(scalars.shape, self.compute_dtype)
        return mv, s

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon, elementwise_affine=self.elementwise_affine)
        return config


@keras.saving.register_keras_serializable(package="hepformers")
class GatedGELU(keras.layers.Layer):
    """Gated nonlinearity GELU(<x>_0) x on multivectors and GELU(s) on scalars (tanh GELU).

    Matches lgatr's `ScalarGatedNonlinearity("gelu")`.

    Call args:
        multivectors: (..., C, 16).
        scalars: (..., S) or None.

    Returns:
        (multivectors (..., C, 16), scalars (..., S) or None).
    """

    def call(self, multivectors, scalars=None):
        return gops.gated_gelu(multivectors, scalars)

    def compute_output_spec(self, multivectors, scalars=None):
        mv = keras.KerasTensor(multivectors.shape, dtype=self.compute_dtype)
        s = None if scalars is None else keras.KerasTensor(scalars.shape, self.compute_dtype)
        return mv, s
