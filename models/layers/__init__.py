"""Layers shared by two or more models.

`geometric/`: Lorentz-equivariant geometric algebra (L-GATr). `pair_features`, `pair_embed`,
`particle_embed`, `particle_attention`, `dropout`, `layer_norm`: the Particle Transformer (ParT)
pieces. `latent_attention`: the Perceiver's latent cross-attention and latent self-attention.
Importing this package registers their layers with Keras serialization.
"""

from models.layers.dropout import FastDropout
from models.layers.latent_attention import LatentCrossAttention, LatentSelfAttentionBlock
from models.layers.pair_embed import PairEmbed
from models.layers.pair_features import PairFeatures, pairwise_lv_features
from models.layers.particle_attention import (
    ClassAttentionBlock,
    PairBiasAttention,
    ParticleAttentionBlock,
)
from models.layers.particle_embed import ClassToken, ParticleEmbed

__all__ = [
    "ClassAttentionBlock",
    "ClassToken",
    "FastDropout",
    "LatentCrossAttention",
    "LatentSelfAttentionBlock",
    "PairBiasAttention",
    "PairEmbed",
    "PairFeatures",
    "ParticleAttentionBlock",
    "ParticleEmbed",
    "pairwise_lv_features",
]
