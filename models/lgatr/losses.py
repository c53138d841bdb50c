"""Loss of the L-GATr top reconstruction: MSE on scaled top / antitop four-momenta + m_tt term."""

import keras
from keras import ops


def _pair_mass(p):
    """Signed, smooth invariant mass of the sum of two four-vectors (B, 2, 4) -> (B,) GeV.

    m2 / sqrt(|m2| + 1 GeV^2): equal to sqrt(m2) for m2 >> 1 GeV^2, with a finite gradient
    through m2 = 0 and a restoring one for space-like predictions (a clamped sqrt has an
    exploding gradient near zero, which stalled trainings with the m_tt term).
    """
    tt = ops.sum(p, axis=1)
    m2 = tt[..., 3] ** 2 - ops.sum(tt[..., :3] ** 2, axis=-1)
    return m2 / ops.sqrt(ops.abs(m2) + 1.0)


@keras.saving.register_keras_serializable(package="hepformers")
def top_momentum_mse(y_true, y_pred, momentum_scale=100.0):
    """MSE of the top and antitop four-momenta in units of `momentum_scale`.

    Args:
        y_true: (B, 2, 4) top, antitop (px, py, pz, E) in GeV.
        y_pred: (B, 2, 4) same.
        momentum_scale: GeV.

    Returns:
        (B,) mean over the 8 components of ((pred - true) / momentum_scale)^2.
    """
    diff = (ops.cast(y_pred, "float32") - ops.cast(y_true, "float32")) / momentum_scale
    return ops.mean(ops.square(diff), axis=(1, 2))


@keras.saving.register_keras_serializable(package="hepformers")
def ttbar_mass_mse(y_true, y_pred, momentum_scale=100.0):
    """Squared error of m_tt in units of `momentum_scale`, (B, 2, 4) x 2 -> (B,)."""
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    return ops.square((_pair_mass(y_pred) - _pair_mass(y_true)) / momentum_scale)


def top_reconstruction_loss(y_true, y_pred, *, momentum_scale=100.0, mass_weight=0.0):
    """top_momentum_mse + mass_weight * ttbar_mass_mse, per event.

    Args:
        y_true: (B, 2, 4) top, antitop (px, py, pz, E) in GeV.
        y_pred: (B, 2, 4) same.
        momentum_scale: GeV.
        mass_weight: weight of the m_tt term (0 skips it).

    Returns:
        (B,) per-event loss.
    """
    loss = top_momentum_mse(y_true, y_pred, momentum_scale)
    if mass_weight:
        loss = loss + mass_weight * ttbar_mass_mse(y_true, y_pred, momentum_scale)
    return loss


@keras.saving.register_keras_serializable(package="hepformers")
class TopReconstructionLoss(keras.losses.Loss):
    """`top_reconstruction_loss` as a Keras loss; log its terms with `loss_term_metrics()`.

    Args:
        momentum_scale: GeV.
        mass_weight: weight of the m_tt term.
        name: loss name.
        reduction: Keras reduction.
    """

    def __init__(
        self,
        momentum_scale=100.0,
        mass_weight=0.0,
        name="top_reconstruction_loss",
        reduction="sum_over_batch_size",
    ):
        super().__init__(name=name, reduction=reduction)
        self.momentum_scale = momentum_scale
        self.mass_weight = mass_weight

    def call(self, y_true, y_pred):
        return top_reconstruction_loss(
            y_true, y_pred, momentum_scale=self.momentum_scale, mass_weight=self.mass_weight
        )

    def get_config(self):
        return {
            "momentum_scale": self.momentum_scale,
            "mass_weight": self.mass_weight,
            "name": self.name,
            "reduction": self.reduction,
        }


def loss_term_metrics(momentum_scale=100.0):
    """Metrics logging each loss term, for `model.compile(metrics=...)`.

    Args:
        momentum_scale: GeV, as in the loss.

    Returns:
        [MeanMetricWrapper "top_momentum_mse", MeanMetricWrapper "ttbar_mass_mse"].
    """
    return [
        keras.metrics.MeanMetricWrapper(fn, name=fn.__name__, momentum_scale=momentum_scale)
        for fn in (top_momentum_mse, ttbar_mass_mse)
    ]
