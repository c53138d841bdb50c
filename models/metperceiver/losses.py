"""Regression losses of the MET models: squared or absolute error of 2-vectors, scaled.

The Perceiver regresses the seed's v (dimensionless, scale 1); DeepMET regresses MET in units
of 50 GeV like the CMS training code (met_l1.md 2.2). Per-event weights (the flattened MET
spectrum) come in as Keras sample weights.
"""

import keras
from keras import ops


def vector_loss(y_true, y_pred, *, kind="mse", scale=1.0):
    """Per-event loss (B,) of 2-vectors: mean over components of the squared / absolute error.

    Args:
        y_true, y_pred: (B, 2).
        kind: "mse" or "mae".
        scale: divides both vectors first (GeV -> units of `scale`).
    """
    d = (y_pred - y_true) / scale
    return ops.mean(d * d if kind == "mse" else ops.abs(d), axis=-1)


@keras.saving.register_keras_serializable(package="hepformers")
class VectorLoss(keras.losses.Loss):
    """`vector_loss` as a Keras loss (works with sample weights)."""

    def __init__(self, kind="mse", scale=1.0, name="vector_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if kind not in ("mse", "mae"):
            raise ValueError(f"kind must be 'mse' or 'mae', got {kind!r}")
        self.kind, self.scale = kind, scale

    def call(self, y_true, y_pred):
        return vector_loss(y_true, y_pred, kind=self.kind, scale=self.scale)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "scale": self.scale}
