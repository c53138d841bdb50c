"""Lorentz-equivariant geometric algebra (Cl(1,3)) primitives and layers (L-GATr).

Importing this package registers its layers with Keras serialization.
"""

from models.layers.geometric import algebra, ops
from models.layers.geometric.attention import GeometricSelfAttention
from models.layers.geometric.bilinear import GeometricBilinear, GeoMLP
from models.layers.geometric.block import LGATrBlock, LGATrNetwork
from models.layers.geometric.linear import EquiLinear
from models.layers.geometric.norm import EquiLayerNorm, GatedGELU

__all__ = [
    "EquiLayerNorm",
    "EquiLinear",
    "GatedGELU",
    "GeoMLP",
    "GeometricBilinear",
    "GeometricSelfAttention",
    "LGATrBlock",
    "LGATrNetwork",
    "algebra",
    "ops",
]
