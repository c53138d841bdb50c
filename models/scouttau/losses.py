"""ScoutTau losses: cross-entropy and MAE terms, each masked to where it applies.

Targets carry their own mask: the charge target is 1 (tau+), 0 (tau-) or -1 (not a tau: no
loss); the pT target is (B, 2) = (log(visible pT / candidate pT), valid); the pileup target
is (B, N) with 1 (pileup), 0 (hard scatter) or -1 (padding).
"""

import keras
from keras import ops


def masked_bce(y_true, logits):
    """Binary cross-entropy from logits averaged over entries with y_true >= 0 (per event)."""
    y = ops.reshape(ops.cast(y_true, logits.dtype), ops.shape(logits))
    valid = ops.cast(y >= 0, logits.dtype)
    yc = ops.clip(y, 0.0, 1.0)
    bce = ops.relu(logits) - logits * yc + ops.log1p(ops.exp(-ops.abs(logits)))
    axes = tuple(range(1, len(logits.shape)))
    return ops.sum(bce * valid, axis=axes) / ops.maximum(ops.sum(valid, axis=axes), 1.0)


def masked_mae(y_true, pred):
    """|r - r_true| where y_true[:, 1] (valid) is 1, else 0 (per event)."""
    y = ops.cast(y_true, pred.dtype)
    return ops.abs(pred[:, 0] - y[:, 0]) * y[:, 1]


@keras.saving.register_keras_serializable(package="hepformers")
class MaskedBinaryCrossentropy(keras.losses.Loss):
    def __init__(self, name="masked_bce", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return masked_bce(y_true, y_pred)


@keras.saving.register_keras_serializable(package="hepformers")
class MaskedMAE(keras.losses.Loss):
    def __init__(self, name="masked_mae", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return masked_mae(y_true, y_pred)
