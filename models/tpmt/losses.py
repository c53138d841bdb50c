"""TPMT loss (seed 000): lambda_tau * MAE(pT of both taus) + lambda_m * MAE(m_tautau)."""

import keras
from keras import ops


def tau_pt_mae(y_true, y_pred):
    """Per-event MAE of the two tau pT (GeV). y: (B, 3) = (pT1, pT2, m)."""
    return ops.mean(ops.abs(y_true[:, :2] - y_pred[:, :2]), axis=-1)


def mass_mae(y_true, y_pred):
    """Per-event absolute error of m_tautau (GeV)."""
    return ops.abs(y_true[:, 2] - y_pred[:, 2])


def tpmt_loss(y_true, y_pred, lambda_tau=1.0, lambda_m=1e-2):
    """Per-event TPMT loss."""
    return lambda_tau * tau_pt_mae(y_true, y_pred) + lambda_m * mass_mae(y_true, y_pred)


@keras.saving.register_keras_serializable(package="hepformers")
class TPMTLoss(keras.losses.Loss):
    """The two-term TPMT loss; log its terms with `TauPtMAE` and `MassMAE` metrics."""

    def __init__(
        self,
        lambda_tau=1.0,
        lambda_m=1e-2,
        name="tpmt_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.lambda_tau = lambda_tau
        self.lambda_m = lambda_m

    def call(self, y_true, y_pred):
        return tpmt_loss(y_true, y_pred, self.lambda_tau, self.lambda_m)

    def get_config(self):
        return {**super().get_config(), "lambda_tau": self.lambda_tau, "lambda_m": self.lambda_m}


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
