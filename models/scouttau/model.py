"""ScoutTau transformer (seed 001): tau ID, charge, pT and pileup flags from 16 constituents.

Each constituent's features go through an MLP embedding, masked self-attention encoder layers
mix them, and four heads read the result: per constituent a pileup logit, and from the masked
mean a tau logit, a charge logit (tau+ vs tau-) and the regression r = log(visible tau pT /
candidate pT). Outputs are raw: {"tau_id": (B, 1), "charge": (B, 1), "pt": (B, 1),
"pileup": (B, N)}.
"""

import keras

from models.layers.latent_attention import LatentSelfAttentionBlock
from models.scouttau.layers import MaskedMean


def build_model(config):
    x_in = keras.Input((config.max_constituents, config.num_features), name="constituents")
    mask = keras.Input((config.max_constituents,), dtype="bool", name="mask")
    x = x_in
    for i, units in enumerate(config.embed_dims):
        last = i == len(config.embed_dims) - 1
        x = keras.layers.Dense(units, activation=None if last else "gelu", name=f"embed_{i}")(x)
    width = config.embed_dims[-1]
    for i in range(config.num_layers):
        x = LatentSelfAttentionBlock(
            width, config.num_heads, config.mlp_ratio, config.dropout, name=f"encoder_{i}"
        )(x, mask=mask)
    x = keras.layers.LayerNormalization(name="final_norm")(x)
    pileup = keras.layers.Reshape((config.max_constituents,), name="pileup")(
        keras.layers.Dense(1, name="pileup_logit")(x)
    )
    pooled = MaskedMean(name="pool")(x, mask)
    h = keras.layers.Dense(width, activation="gelu", name="head")(pooled)
    outputs = {
        "tau_id": keras.layers.Dense(1, name="tau_id")(h),
        "charge": keras.layers.Dense(1, name="charge")(h),
        "pt": keras.layers.Dense(1, name="pt")(h),
        "pileup": pileup,
    }
    return keras.Model({"constituents": x_in, "mask": mask}, outputs, name="scouttau")
