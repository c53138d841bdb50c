"""Lorentz-equivariant geometric algebra (Cl(1,3)) primitives and layers (L-GATr).

The layers reproduce the reference implementation, lgatr 2.0.0 (heidelberg-hepml, PyTorch,
SO+(1,3) basis): with its weights copied in, every layer and the whole network agree with it
to 2e-15 in float64 and to 3e-7 of the largest output in float32 on TensorFlow
(tests/models/layers/test_lgatr_reference.py; Keras computes float64 only on TensorFlow), and
EquiLinear initialises like lgatr. Layers saved before they matched lgatr (no `legacy` or
`pseudoscalar_bias` in their configs, e.g. saved_models/lgatr/lgatr.keras) load as they were:
no pseudoscalar biases, gains in the GeometricBilinear output norm and scalar queries, keys
and values not normalised (an O(1) change of the attention output).

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
