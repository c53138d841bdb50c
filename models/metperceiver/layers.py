"""Layers of the MET models: candidate features, charged/neutral embedding, MET sums.

Candidates arrive as the loader's raw features (data/metperceiver.py): px, py, eta, IsRecoPU,
charged flag, then optional extras (PUPPI weight, type flags). Models rebuild MET from them
inside the graph, so a saved model takes candidates and returns MET in GeV.
"""

import keras
from keras import ops

PT_SCALE = 20.0  # GeV; px / 20 and py / 20 are O(1) for the candidates that matter
ETA_SCALE = 2.5
CHARGED = 4  # index of the charged flag in the raw candidate features


def _register(cls):
    return keras.saving.register_keras_serializable(package="hepformers")(cls)


@_register
class CandidateFeatures(keras.layers.Layer):
    """Raw candidates (B, N, F) -> engineered features (B, N, F + 3).

    [px/20, py/20, cos phi, sin phi, log pT, eta/2.5, raw features 3...]: the seed's px, py,
    eta (and IsRecoPU) plus the direction and log pT that a network otherwise has to learn.
    """

    def call(self, cands):
        px, py = cands[..., 0], cands[..., 1]
        pt = ops.sqrt(px * px + py * py + 1e-12)
        head = ops.stack(
            [
                px / PT_SCALE,
                py / PT_SCALE,
                px / pt,
                py / pt,
                ops.log(pt + 1e-6),
                cands[..., 2] / ETA_SCALE,
            ],
            axis=-1,
        )
        return ops.concatenate([head, cands[..., 3:]], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 3)


@_register
class ChargedNeutralEmbedding(keras.layers.Layer):
    """Charged and neutral candidates embedded by their own first layer, then a shared one:
    gelu(W_c f or W_n f) -> Dense(dim) -> (B, N, dim), 0 for padded candidates.

    Args:
        dim: output width.
    Call args:
        features: (B, N, F) from `CandidateFeatures`.
        charged: (B, N) 1 for charged candidates.
        mask: (B, N) True for real candidates.
    """

    def __init__(self, dim, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim

    def build(self, features_shape, charged_shape=None, mask_shape=None):
        self.charged_in = keras.layers.Dense(self.dim, name="charged_in")
        self.neutral_in = keras.layers.Dense(self.dim, name="neutral_in")
        self.shared = keras.layers.Dense(self.dim, name="shared")
        self.charged_in.build(features_shape)
        self.neutral_in.build(features_shape)
        self.shared.build((*features_shape[:-1], self.dim))

    def call(self, features, charged, mask):
        c = ops.cast(charged, features.dtype)[..., None]
        m = ops.cast(mask, features.dtype)[..., None]
        h = c * self.charged_in(features) + (1.0 - c) * self.neutral_in(features)
        return self.shared(ops.gelu(h, approximate=True)) * m

    def compute_output_shape(self, features_shape, charged_shape=None, mask_shape=None):
        return (*features_shape[:-1], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


@_register
class LatentDecoder(keras.layers.Layer):
    """Perceiver IO decoder: every candidate queries the latents, and an MLP of its embedding and
    that context gives one weight per candidate (the DeepMET-style output of DeepMETEOR).

    Args:
        dim: width of the embeddings and latents.
        num_heads: attention heads.
    Call args:
        x: (B, N, dim) candidate embeddings; latents: (B, k, dim).
    Returns:
        (B, N) weights (linear, starting near 1).
    """

    def __init__(self, dim, num_heads=1, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads = dim, num_heads

    def build(self, x_shape, latents_shape=None):
        hd = self.dim // self.num_heads
        self.attention = keras.layers.MultiHeadAttention(self.num_heads, hd, name="attention")
        self.attention.build(x_shape, latents_shape)
        self.hidden = keras.layers.Dense(self.dim, name="hidden")
        self.hidden.build((*x_shape[:-1], 2 * self.dim))
        self.out = keras.layers.Dense(
            1, name="out", kernel_initializer="zeros", bias_initializer="ones"
        )
        self.out.build((*x_shape[:-1], self.dim))

    def call(self, x, latents):
        ctx = self.attention(x, latents)
        h = ops.gelu(self.hidden(ops.concatenate([x, ctx], axis=-1)), approximate=True)
        return self.out(h)[..., 0]

    def compute_output_shape(self, x_shape, latents_shape=None):
        return tuple(x_shape[:-1])

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads}


@_register
class MissingET(keras.layers.Layer):
    """MET 2-vector -sum_i w_i (px_i, py_i) over real candidates (w = 1 without weights).

    Call args:
        cands: (B, N, F) raw candidates (px, py first).
        mask: (B, N) True for real candidates.
        weights: optional (B, N) or (B, N, 1) per-candidate weights.
    Returns:
        (B, 2) in GeV.
    """

    def call(self, cands, mask, weights=None):
        w = ops.cast(mask, cands.dtype)
        if weights is not None:
            w = w * ops.reshape(weights, ops.shape(w))
        return -ops.stack([ops.sum(w * cands[..., 0], 1), ops.sum(w * cands[..., 1], 1)], axis=-1)

    def compute_output_shape(self, cands_shape, mask_shape=None, weights_shape=None):
        return (cands_shape[0], 2)


@_register
class RebuildMet(keras.layers.Layer):
    """MET from the seed's target: MET = MET_reco + v |MET_reco| (B, 2)."""

    def call(self, met_reco, v):
        norm = ops.sqrt(ops.sum(met_reco * met_reco, axis=-1, keepdims=True) + 1e-6)
        return met_reco + v * norm

    def compute_output_shape(self, met_reco_shape, v_shape=None):
        return met_reco_shape


@_register
class MetToV(keras.layers.Layer):
    """The seed's target from a MET: v = (MET - MET_reco) / |MET_reco| (B, 2)."""

    def call(self, met_reco, met):
        norm = ops.sqrt(ops.sum(met_reco * met_reco, axis=-1, keepdims=True) + 1e-6)
        return (met - met_reco) / norm

    def compute_output_shape(self, met_reco_shape, met_shape=None):
        return met_reco_shape
