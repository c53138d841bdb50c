"""MET Perceiver (seed 003): candidates -> latent array -> v = (MET_gen - MET_reco) / |MET_reco|.

Charged (px, py, eta, IsRecoPU) and neutral (px, py, eta) candidates get their own embedding;
a trainable latent array of k vectors cross-attends all N candidates once (O(kN), so ~10k
candidates fit), latent self-attention blocks follow (O(k^2)), the latents are averaged and an
MLP gives the 2-vector v. MET_reco, the particle-flow MET of the input candidates, and the
corrected MET are rebuilt inside the graph: the model returns {"v": (B, 2), "met": (B, 2) GeV}.
"""

import keras

from data.metperceiver import DEEPMET_FEATURES, PERCEIVER_FEATURES
from models.layers.latent_attention import LatentCrossAttention, LatentSelfAttentionBlock
from models.metperceiver.layers import (
    CHARGED,
    CandidateFeatures,
    ChargedNeutralEmbedding,
    LatentDecoder,
    MetToV,
    MissingET,
    RebuildMet,
)


def features_of(config):
    """Candidate features the variant reads (data.metperceiver feature names; always a prefix
    of `DEEPMET_FEATURES`, which the evaluation relies on)."""
    if config.variant != "perceiver":
        return DEEPMET_FEATURES
    return (*PERCEIVER_FEATURES, "puppiWeight") if config.puppi_input else PERCEIVER_FEATURES


def _inputs(config):
    n_feat = len(features_of(config))
    cands = keras.Input((config.max_cands, n_feat), name="cands")
    mask = keras.Input((config.max_cands,), dtype="bool", name="mask")
    return cands, mask


def build_perceiver(config):
    cands, mask = _inputs(config)
    feats = CandidateFeatures(name="features")(cands)
    x = ChargedNeutralEmbedding(config.dim, name="embed")(feats, cands[..., CHARGED], mask)
    lat = LatentCrossAttention(
        config.num_latents,
        config.dim,
        num_heads=config.cross_heads,
        mlp_ratio=config.mlp_ratio,
        dropout=config.dropout,
        name="cross_attention",
    )(x, mask=mask)  # (B, k, dim)
    for i in range(config.num_blocks):
        lat = LatentSelfAttentionBlock(
            config.dim,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            dropout=config.dropout,
            name=f"latent_block_{i}",
        )(lat)
    met_reco = MissingET(name="met_reco")(cands, mask)
    if config.decoder == "weights":  # per-candidate weights, MET = -sum w p
        w = LatentDecoder(config.dim, config.cross_heads, name="decoder")(x, lat)
        met = MissingET(name="met")(cands, mask, w)
        v = MetToV(name="v")(met_reco, met)
        if config.hs_weight:  # the weights are a training output of the truth term
            outputs = {"v": v, "met": met, "weights": keras.layers.Identity(name="weights")(w)}
            return keras.Model({"cands": cands, "mask": mask}, outputs, name="met_perceiver")
    else:  # the latents' average -> v
        pooled = keras.layers.GlobalAveragePooling1D(name="pool")(lat)  # (B, dim)
        h = keras.layers.Dense(config.dim, activation="gelu", name="head_1")(pooled)
        v = keras.layers.Dense(2, name="v", kernel_initializer="zeros")(h)  # starts at MET_reco
        met = RebuildMet(name="met")(met_reco, v)
    return keras.Model({"cands": cands, "mask": mask}, {"v": v, "met": met}, name="met_perceiver")


def without_weights(model):
    """The model with its outputs v and met only (the saved form of a model trained with
    `hs_weight`, whose per-candidate `weights` output serves the training loss)."""
    if "weights" not in model.output:
        return model
    outputs = {k: model.output[k] for k in ("v", "met")}
    return keras.Model(model.input, outputs, name=model.name)


def build_deepmet(config):
    """DeepMET-style baseline: a per-candidate MLP (tanh, BatchNorm) gives one weight per
    candidate and MET = -sum w (px, py) (met_l1.md 2.2)."""
    cands, mask = _inputs(config)
    h = CandidateFeatures(name="features")(cands)
    for i, units in enumerate(config.deepmet_units):
        h = keras.layers.Dense(units, activation="tanh", name=f"dense_{i}")(h)
        h = keras.layers.BatchNormalization(momentum=0.95, name=f"norm_{i}")(h, mask=mask)
    w = keras.layers.Dense(
        1,
        name="weight",
        kernel_initializer=keras.initializers.VarianceScaling(0.02),
        bias_initializer=keras.initializers.Constant(0.5),
    )(h)
    met = MissingET(name="met")(cands, mask, w)
    return keras.Model({"cands": cands, "mask": mask}, {"met": met}, name="deepmet")


def build_model(config):
    """The variant's keras.Model (see the module doc and `build_deepmet`)."""
    return build_perceiver(config) if config.variant == "perceiver" else build_deepmet(config)
