"""Pairwise Lorentz-vector features of the Particle Transformer (ParT), dense over all pairs.

Formulas, clamps and feature order follow weaver-core's `pairwise_lv_fts` (4 outputs) and the
`theta-phi` metric of ML-Tau's copy. Unlike weaver, every (i, j) pair is computed (no lower
triangle + mirror; the four features are cheap), once per batch; `PairEmbed` then embeds only
the lower triangle i >= j and mirrors it, as weaver does.
"""

import math

import keras
from keras import ops

METRICS = ("rapidity-phi", "theta-phi")


def _angles(fourvectors, metric):
    """Per-particle pT, angle (rapidity or polar angle) and phi, each (B, P)."""
    px, py, pz, energy = (fourvectors[..., k] for k in range(4))
    pt = ops.sqrt(px * px + py * py)  # weaver: eps=None, no clamp here
    if metric == "rapidity-phi":
        tiny = ops.convert_to_tensor(1e-20, fourvectors.dtype)
        angle = 0.5 * ops.log(1.0 + 2.0 * pz / ops.maximum(energy - pz, tiny))
    else:  # theta-phi: polar angle
        angle = ops.arctan2(pt, pz)
    phi = ops.arctan2(py, px)
    return pt, angle, phi


def pairwise_lv_features(fourvectors, metric="rapidity-phi", eps=1e-8):
    """ParT pair features [ln kT, ln z, ln dR, ln m^2] for all particle pairs.

    With y the rapidity 0.5 ln(1 + 2 pz / max(E - pz, 1e-20)) (or the polar angle theta for
    `metric="theta-phi"`), dphi wrapped to [-pi, pi) and dR = sqrt(dy^2 + dphi^2) (0 for i = j):
    ln dR = ln max(dR, eps); ln kT = ln max(min(pTi, pTj) dR, eps);
    ln z = ln max(min(pTi, pTj) / max(pTi + pTj, eps), eps);
    ln m^2 = ln max(E_ij^2 - |p_ij|^2, eps) of the pair sum. Padded (all-zero) particles get
    pT = y = phi = 0 and finite features, as in weaver. No gradient flows through the
    features (weaver computes them under `no_grad`).

    Args:
        fourvectors: (B, P, 4) as (px, py, pz, E), float32 or float64.
        metric: "rapidity-phi" (ParT) or "theta-phi" (ML-Tau MultiParTau).
        eps: clamp of the logarithms' arguments.

    Returns:
        (B, P, P, 4) features of the pair (i, j) at [:, i, j], in the input dtype.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    fourvectors = ops.convert_to_tensor(fourvectors)
    dtype = fourvectors.dtype
    eps_t = ops.convert_to_tensor(eps, dtype)
    pt, angle, phi = _angles(fourvectors, metric)
    pti, ptj = pt[:, :, None], pt[:, None, :]  # (B, P, 1), (B, 1, P)
    d_angle = angle[:, :, None] - angle[:, None, :]
    pi = ops.convert_to_tensor(math.pi, dtype)  # typed: a Python float becomes float32
    d_phi = ops.mod(phi[:, :, None] - phi[:, None, :] + pi, 2.0 * pi) - pi
    delta = ops.sqrt(d_angle * d_angle + d_phi * d_phi)  # (B, P, P)
    # a particle's distance to itself is 0 exactly: a TensorFlow graph may compute the two
    # broadcast copies of y and phi with differently fused float ops, and ln max(noise, eps)
    # on the diagonal would then depend on the runtime (graph, XLA, ONNX Runtime)
    idx = ops.arange(ops.shape(delta)[1])
    delta = ops.where(idx[:, None] == idx[None, :], ops.zeros_like(delta), delta)
    ptmin = ops.minimum(pti, ptj)
    ln_delta = ops.log(ops.maximum(delta, eps_t))
    ln_kt = ops.log(ops.maximum(ptmin * delta, eps_t))
    ln_z = ops.log(ops.maximum(ptmin / ops.maximum(pti + ptj, eps_t), eps_t))
    pair = fourvectors[:, :, None, :] + fourvectors[:, None, :, :]  # (B, P, P, 4)
    m2 = pair[..., 3] ** 2 - (pair[..., 0] ** 2 + pair[..., 1] ** 2 + pair[..., 2] ** 2)
    ln_m2 = ops.log(ops.maximum(m2, eps_t))
    out = ops.stack([ln_kt, ln_z, ln_delta, ln_m2], axis=-1)
    return ops.stop_gradient(out)


@keras.saving.register_keras_serializable(package="hepformers")
class PairFeatures(keras.layers.Layer):
    """Layer form of `pairwise_lv_features` for functional models.

    The features are computed in the layer's variable dtype (float32 under a mixed policy,
    float64 under a float64 policy), never in float16: the clamps (1e-20, eps) underflow there.

    Args:
        metric: "rapidity-phi" or "theta-phi".
        eps: clamp of the logarithms' arguments.

    Call args:
        fourvectors: (B, P, 4) as (px, py, pz, E).

    Returns:
        (B, P, P, 4) [ln kT, ln z, ln dR, ln m^2].
    """

    def __init__(self, metric="rapidity-phi", eps=1e-8, **kwargs):
        super().__init__(**kwargs)
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        self.metric = metric
        self.eps = eps

    @property
    def input_dtype(self):
        return self.variable_dtype

    def call(self, fourvectors):
        fourvectors = ops.cast(fourvectors, self.variable_dtype)
        return pairwise_lv_features(fourvectors, metric=self.metric, eps=self.eps)

    def compute_output_shape(self, input_shape):
        b, p = input_shape[0], input_shape[1]
        return (b, p, p, 4)

    def compute_output_spec(self, fourvectors):
        shape = self.compute_output_shape(fourvectors.shape)
        return keras.KerasTensor(shape, dtype=self.variable_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(metric=self.metric, eps=self.eps)
        return config
