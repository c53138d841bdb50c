"""TPMT loss (seed 000 plus per-event quantiles).

    loss = lambda_tau * MAE(pT of both taus) + lambda_m * MAE(m_tautau)
           + lambda_q * [pinball_0.16(m_true, m_q16) + pinball_0.84(m_true, m_q84)]

with pinball_tau(y, q) = max(tau (y - q), (tau - 1) (y - q)), all in GeV. y_true is
(B, 3) = (pT1, pT2, m); y_pred is (B, 5) = (pT1, pT2, m, m_q16, m_q84). A (B, 3) y_pred (a
model without the quantile head) gets a zero quantile term.
"""

import keras
from keras import ops

QUANTILES = (0.16, 0.84)  # the 68% central interval; columns 3 and 4 of the model output


def tau_pt_mae(y_true, y_pred):
    """Per-event MAE of the two tau pT (GeV). y: (B, >=3) = (pT1, pT2, m, ...)."""
    return ops.mean(ops.abs(y_true[:, :2] - y_pred[:, :2]), axis=-1)


def mass_mae(y_true, y_pred):
    """Per-event absolute error of m_tautau (GeV)."""
    return ops.abs(y_true[:, 2] - y_pred[:, 2])


def pinball(y, q, tau):
    """Pinball (quantile) loss of the tau-quantile prediction q of y, elementwise."""
    u = y - q
    return ops.maximum(tau * u, (tau - 1.0) * u)


def _has_quantiles(y_pred):
    return y_pred.shape[-1] is not None and y_pred.shape[-1] >= 5


def mass_quantile_loss(y_true, y_pred):
    """Per-event pinball loss of the m_tautau q16 and q84 (GeV), summed; 0 for 3-column y_pred.

    Args:
        y_true: (B, 3) = (pT1, pT2, m_true).
        y_pred: (B, 5) = (pT1, pT2, m, m_q16, m_q84), or (B, 3).
    Returns:
        (B,) pinball_0.16(m_true, m_q16) + pinball_0.84(m_true, m_q84).
    """
    m = y_true[:, 2]
    if not _has_quantiles(y_pred):
        return ops.zeros_like(m)
    lo, hi = QUANTILES
    return pinball(m, y_pred[:, 3], lo) + pinball(m, y_pred[:, 4], hi)


def mass_quantile_coverage(y_true, y_pred):
    """Per-event 1 if m_true is inside [m_q16, m_q84], else 0 (goal: a mean of 0.68)."""
    m = y_true[:, 2]
    if not _has_quantiles(y_pred):
        return ops.zeros_like(m)
    inside = ops.logical_and(m >= y_pred[:, 3], m <= y_pred[:, 4])
    return ops.cast(inside, m.dtype)


def tpmt_loss(y_true, y_pred, lambda_tau=1.0, lambda_m=1e-2, lambda_q=1e-2):
    """Per-event TPMT loss (see the module docstring)."""
    loss = lambda_tau * tau_pt_mae(y_true, y_pred) + lambda_m * mass_mae(y_true, y_pred)
    if lambda_q and _has_quantiles(y_pred):
        loss = loss + lambda_q * mass_quantile_loss(y_true, y_pred)
    return loss


@keras.saving.register_keras_serializable(package="hepformers")
class TPMTLoss(keras.losses.Loss):
    """The three-term TPMT loss; log its terms with `TauPtMAE`, `MassMAE`, `MassQuantileLoss`."""

    def __init__(
        self,
        lambda_tau=1.0,
        lambda_m=1e-2,
        lambda_q=1e-2,
        name="tpmt_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.lambda_tau = lambda_tau
        self.lambda_m = lambda_m
        self.lambda_q = lambda_q

    def call(self, y_true, y_pred):
        return tpmt_loss(y_true, y_pred, self.lambda_tau, self.lambda_m, self.lambda_q)

    def get_config(self):
        return {
            **super().get_config(),
            "lambda_tau": self.lambda_tau,
            "lambda_m": self.lambda_m,
            "lambda_q": self.lambda_q,
        }


@keras.saving.register_keras_serializable(package="hepformers")
class TauPtMAE(keras.metrics.MeanMetricWrapper):
    """The tau pT term of the loss (unweighted, GeV)."""

    def __init__(self, name="tau_pt_mae", dtype=None):
        super().__init__(tau_pt_mae, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="hepformers")
class MassMAE(keras.metrics.MeanMetricWrapper):
    """The m_tautau term of the loss (unweighted, GeV)."""

    def __init__(self, name="m_tautau_mae", dtype=None):
        super().__init__(mass_mae, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="hepformers")
class MassQuantileLoss(keras.metrics.MeanMetricWrapper):
    """The m_tautau quantile term of the loss (unweighted pinball sum, GeV)."""

    def __init__(self, name="m_quantile_loss", dtype=None):
        super().__init__(mass_quantile_loss, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="hepformers")
class MassQuantileCoverage(keras.metrics.MeanMetricWrapper):
    """Fraction of events with m_true inside [m_q16, m_q84] (goal 0.68)."""

    def __init__(self, name="m_coverage_68", dtype=None):
        super().__init__(mass_quantile_coverage, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
