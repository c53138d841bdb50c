"""Regression losses of the MET models: squared or absolute error of 2-vectors, scaled.

The Perceiver regresses the seed's v (dimensionless, scale 1); DeepMET regresses MET in units
of 50 GeV like the CMS training code (met_l1.md 2.2). Per-event weights (the flattened MET
spectrum) come in as Keras sample weights.

A squared-error regression returns the conditional mean of the MET vector, which is shorter than
the true vector wherever its direction is uncertain: the MET response falls below one. DeepMET's
loss therefore adds a batch term, `dev` (`response_deviation`), that balances the residual along
the generated MET above and below zero in bins of generated MET. `CandidateWeightLoss` instead
supervises each candidate's weight with its truth flag: its minimum is the probability that the
candidate is from the hard scatter, and -sum P(hs) p then estimates the hard scatter's recoil
without the shrinkage (the sum of the truth-weighted momenta is what it averages to).
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


def response_deviation(y_true, y_pred, edges=(50.0, 100.0), sample_weight=None):
    """DeepMET's `dev` term of a batch of MET 2-vectors (GeV).

    u_i = MET_pred,i . g_i / |g_i| - |g_i| is each event's residual along its generated MET g_i;
    dev = sum over bins of |g| of |sum_i w_i u_i| / sum_i w_i |g_i|: zero when, in every bin,
    the events above and below a perfect response balance. The bins are cut at `edges`; the
    default (50, 100) GeV is DeepMET's training code (loss.py: < 50, 50-100, > 100 GeV).

    Args:
        y_true, y_pred: (B, 2) generated and predicted MET (GeV).
        edges: increasing bin edges of |g| in GeV.
        sample_weight: optional (B,) event weights.
    Returns:
        a scalar (dimensionless).
    """
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    gen = ops.sqrt(ops.sum(y_true * y_true, axis=-1))
    u = ops.sum(y_pred * y_true, axis=-1) / ops.maximum(gen, 1e-6) - gen
    w = ops.ones_like(gen) if sample_weight is None else ops.cast(sample_weight, "float32")
    w = ops.reshape(w, ops.shape(gen))
    bounds = [-1.0, *edges, float("inf")]
    dev = ops.zeros((), "float32")
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        in_bin = ops.cast((gen >= lo) & (gen < hi), "float32")
        dev = dev + ops.abs(ops.sum(w * in_bin * u))
    return dev / ops.maximum(ops.sum(w * gen), 1e-6)


@keras.saving.register_keras_serializable(package="hepformers")
class VectorLoss(keras.losses.Loss):
    """`vector_loss` as a Keras loss (works with sample weights), plus
    `response_weight` * `response_deviation` (in GeV: `scale` must put the vectors in GeV
    units, so use it on MET outputs only; DeepMET: weight 10, `scale` 50 GeV)."""

    def __init__(
        self,
        kind="mse",
        scale=1.0,
        response_weight=0.0,
        response_edges=(50.0, 100.0),
        name="vector_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if kind not in ("mse", "mae"):
            raise ValueError(f"kind must be 'mse' or 'mae', got {kind!r}")
        self.kind, self.scale = kind, scale
        self.response_weight, self.response_edges = response_weight, tuple(response_edges)

    def call(self, y_true, y_pred):
        return vector_loss(y_true, y_pred, kind=self.kind, scale=self.scale)

    def __call__(self, y_true, y_pred, sample_weight=None):
        loss = super().__call__(y_true, y_pred, sample_weight)
        if not self.response_weight:
            return loss
        # a batch term: it needs the batch's weights, not one value per event
        dev = response_deviation(y_true, y_pred, self.response_edges, sample_weight)
        return loss + ops.cast(self.response_weight * dev, loss.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "scale": self.scale,
            "response_weight": self.response_weight,
            "response_edges": list(self.response_edges),
        }


@keras.saving.register_keras_serializable(package="hepformers")
class CandidateWeightLoss(keras.losses.Loss):
    """Per-event pT-weighted squared error of the candidates' weights against their truth flag.

    loss = sum_i pT_i (w_i - t_i)^2 / sum_i pT_i, with t_i = 1 for a hard-scatter candidate and
    0 for pileup; padded candidates carry pT = 0. Its minimiser per candidate is the conditional
    mean of t, the probability that the candidate is from the hard scatter; pT weighting puts
    the candidates that move MET first.

    y_true: (B, N, 2) = (t, pT in GeV); y_pred: (B, N) weights. Returns (B,).
    """

    def __init__(self, name="candidate_weight_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        flag, pt = y_true[..., 0], y_true[..., 1]
        d = ops.reshape(y_pred, ops.shape(flag)) - flag
        return ops.sum(pt * d * d, axis=-1) / ops.maximum(ops.sum(pt, axis=-1), 1e-6)
