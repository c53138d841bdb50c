"""Losses of the L-GATr top reconstruction.

`TopReconstructionLoss` ("mse"): MSE on the scaled top / antitop four-momenta + an m_tt term.
Each component regresses to its conditional mean, so E and |p| averaged separately give tops
far above 172.5 GeV (the first trained models sat at 242 GeV).

`PhysicalTopLoss` ("physical", for on-shell outputs, `layers.OnShellTops`): squared errors in
the quantities the tops are judged on, log pT, rapidity y, the transverse momentum vector
relative to the true pT, and log m_tt. Every term is invariant under rotations about and boosts
along the beam axis, so the loss keeps the symmetry the spurions leave, and it is scale-free (no
momentum unit). The azimuth enters through the transverse vector, not as 2 (1 - cos dphi): that
term has no gradient at dphi = pi, and trainings locked into top and antitop swapped (cos dphi
-0.43 on average after two epochs, 2.86 for the term) and stayed there.
"""

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


def _pt_y(p):
    """(pT, y, px, py) of (B, K, 4) four-vectors; smooth near pT = 0 and for m^2 <= 0."""
    px, py, pz, e = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    pt2 = px**2 + py**2
    pt = ops.sqrt(pt2 + 1.0)  # +1 GeV^2: a finite log and gradient for pT -> 0
    m2 = ops.maximum(e**2 - pt2 - pz**2, 1.0)
    y = ops.arcsinh(pz / ops.sqrt(pt2 + m2))  # = 0.5 ln((E + pz) / (E - pz)), stable
    return pt, y, px, py


def physical_terms(y_true, y_pred):
    """Per-event terms of `physical_top_loss`, each averaged over top and antitop.

    Args:
        y_true: (B, 2, 4) top, antitop (px, py, pz, E) in GeV.
        y_pred: (B, 2, 4) same.

    Returns:
        dict of (B,) tensors: log_pt, rapidity, transverse (|pT_pred - pT_true|^2 / pT_true^2
        of the transverse vectors) and log_mtt.
    """
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    pt_t, y_t, px_t, py_t = _pt_y(y_true)
    pt_p, y_p, px_p, py_p = _pt_y(y_pred)
    transverse = (ops.square(px_p - px_t) + ops.square(py_p - py_t)) / ops.square(pt_t)
    mtt_t = ops.maximum(_pair_mass(y_true), 1.0)
    mtt_p = ops.maximum(_pair_mass(y_pred), 1.0)
    return {
        "log_pt": ops.mean(ops.square(ops.log(pt_p) - ops.log(pt_t)), axis=1),
        "rapidity": ops.mean(ops.square(y_p - y_t), axis=1),
        "transverse": ops.mean(transverse, axis=1),
        "log_mtt": ops.square(ops.log(mtt_p) - ops.log(mtt_t)),
    }


def physical_top_loss(y_true, y_pred, *, mass_weight=0.0):
    """log_pt + rapidity + transverse + mass_weight * log_mtt of `physical_terms`, per event."""
    t = physical_terms(y_true, y_pred)
    loss = t["log_pt"] + t["rapidity"] + t["transverse"]
    if mass_weight:
        loss = loss + mass_weight * t["log_mtt"]
    return loss


@keras.saving.register_keras_serializable(package="hepformers")
class PhysicalTopLoss(keras.losses.Loss):
    """`physical_top_loss` as a Keras loss; log its terms with `physical_term_metrics()`.

    Args:
        mass_weight: weight of the log m_tt term.
        name: loss name.
        reduction: Keras reduction.
    """

    def __init__(self, mass_weight=0.0, name="physical_top_loss", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)
        self.mass_weight = mass_weight

    def call(self, y_true, y_pred):
        return physical_top_loss(y_true, y_pred, mass_weight=self.mass_weight)

    def get_config(self):
        return {"mass_weight": self.mass_weight, "name": self.name, "reduction": self.reduction}


def _term_metric(term, name):
    """A registered (serializable) metric function returning one `physical_terms` term."""

    def fn(y_true, y_pred):
        return physical_terms(y_true, y_pred)[term]

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"The {term} term of `physical_terms` (B,)."
    return keras.saving.register_keras_serializable(package="hepformers", name=name)(fn)


top_log_pt = _term_metric("log_pt", "top_log_pt")
top_rapidity = _term_metric("rapidity", "top_rapidity")
top_transverse = _term_metric("transverse", "top_transverse")
ttbar_log_mass = _term_metric("log_mtt", "ttbar_log_mass")


def physical_term_metrics():
    """Metrics logging each `physical_terms` term, for `model.compile(metrics=...)`."""
    return [
        keras.metrics.MeanMetricWrapper(fn, name=fn.__name__)
        for fn in (top_log_pt, top_rapidity, top_transverse, ttbar_log_mass)
    ]


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
