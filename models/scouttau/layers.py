"""ScoutTau layers: the masked mean over constituents."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hepformers")
class MaskedMean(keras.layers.Layer):
    """Mean over the real constituents: (B, N, D), mask (B, N) -> (B, D); 0 if none is real."""

    def call(self, x, mask):
        m = ops.cast(mask, x.dtype)[..., None]
        return ops.sum(x * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)

    def compute_output_shape(self, x_shape, mask_shape=None):
        return (x_shape[0], x_shape[-1])
