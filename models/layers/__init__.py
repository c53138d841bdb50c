"""Layers shared by two or more models.

`geometric/`: Lorentz-equivariant geometric algebra (L-GATr). `pair_features`,
`particle_embed`, `particle_attention`: the Particle Transformer (ParT) pieces. Importing this
package registers their layers with Keras serialization.
"""

from models.layers.pair_features import PairFeatures, pairwise_lv_features
from models.layers.particle_attention import (
    ClassAttentionBlock,
    ClassToken,
    PairBiasAttention,
    ParticleAttentionBlock,
)
from models.layers.particle_embed import PairEmbed, ParticleEmbed

__all__ = [
    "ClassAttentionBlock",
    "ClassToken",
    "PairBiasAttention",
    "PairEmbed",
    "PairFeatures",
    "ParticleAttentionBlock",
    "ParticleEmbed",
    "pairwise_lv_features",
]
