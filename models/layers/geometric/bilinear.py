"""Geometric bilinear layer and the geometric MLP of L-GATr blocks."""

import keras

from models.layers.geometric import ops as gops
from models.layers.geometric.linear import EquiLinear
from models.layers.geometric.norm import EquiLayerNorm, GatedGELU


@keras.saving.register_keras_serializable(package="hepformers")
class GeometricBilinear(keras.layers.Layer):
    """Channel-wise geometric product of two equivariant projections, then a linear map.

    gp = EquiLinear_L(x, s) * EquiLinear_R(x, s) (geometric product per hidden channel),
    out = EquiLayerNorm(EquiLinear_out(gp, s)), the norm without gains. The right projection is
    initialised close to the unit scalar, so gp starts close to the left projection. Matches
    lgatr's `GeometricBilinear`.

    Args:
        mv_channels: output multivector channels.
        s_channels: output scalar channels.
        hidden_mv_channels: channels of the two factors of the product.
        legacy: the layer as saved before it matched lgatr: gains in the output norm and no
            pseudoscalar biases (configs without the key load this way).

    Call args:
        multivectors: (..., C_in, 16).
        scalars: (..., S_in) or None.

    Returns:
        (multivectors (..., mv_channels, 16), scalars (..., s_channels) or None).
    """

    def __init__(self, mv_channels, s_channels, hidden_mv_channels, legacy=False, **kwargs):
        super().__init__(**kwargs)
        self.mv_channels = mv_channels
        self.s_channels = s_channels
        self.hidden_mv_channels = hidden_mv_channels
        self.legacy = legacy

    @classmethod
    def from_config(cls, config):
        # Configs saved before the lgatr-faithful layers rebuild the legacy layer.
        return super().from_config({"legacy": True, **config})

    def build(self, multivectors_shape, scalars_shape=None):
        h = self.hidden_mv_channels
        kw = dict(pseudoscalar_bias=not self.legacy, dtype=self.dtype_policy)
        self.left = EquiLinear(h, 0, name="left", **kw)
        self.right = EquiLinear(h, 0, init="almost_unit_scalar", name="right", **kw)
        self.out = EquiLinear(self.mv_channels, self.s_channels, name="out", **kw)
        # lgatr's norm here has no gains
        self.norm = EquiLayerNorm(elementwise_affine=self.legacy, name="norm", dtype=kw["dtype"])
        self.left.build(multivectors_shape, scalars_shape)
        self.right.build(multivectors_shape, scalars_shape)
        hidden_shape = tuple(multivectors_shape[:-2]) + (h, 16)
        self.out.build(hidden_shape, scalars_shape)
        out_s_shape = None
        if self.s_channels:
            out_s_shape = tuple(multivectors_shape[:-2]) + (self.s_channels,)
        self.norm.build(tuple(multivectors_shape[:-2]) + (self.mv_channels, 16), out_s_shape)

    def call(self, multivectors, scalars=None):
        left, _ = self.left(multivectors, scalars)
        right, _ = self.right(multivectors, scalars)
        gp = gops.geometric_product(left, right)  # (..., h, 16)
        return self.norm(*self.out(gp, scalars))

    def compute_output_spec(self, multivectors, scalars=None):
        return self.out.compute_output_spec(multivectors, scalars)

    def get_config(self):
        config = super().get_config()
        config.update(
            mv_channels=self.mv_channels,
            s_channels=self.s_channels,
            hidden_mv_channels=self.hidden_mv_channels,
            legacy=self.legacy,
        )
        return config


@keras.saving.register_keras_serializable(package="hepformers")
class GeoMLP(keras.layers.Layer):
    """GeometricBilinear (C -> r C), gated GELU, EquiLinear (r C -> C); channels preserved.

    Matches lgatr's `GeoMLP` (two layers, the tanh GELU).

    Args:
        mlp_ratio: width factor r of the hidden layer (multivector and scalar channels).
        legacy: the layer as saved before it matched lgatr (see `GeometricBilinear`; configs
            without the key load this way).

    Call args:
        multivectors: (..., C, 16).
        scalars: (..., S).

    Returns:
        (multivectors (..., C, 16), scalars (..., S)).
    """

    def __init__(self, mlp_ratio=4, legacy=False, **kwargs):
        super().__init__(**kwargs)
        self.mlp_ratio = mlp_ratio
        self.legacy = legacy

    @classmethod
    def from_config(cls, config):
        # Configs saved before the lgatr-faithful layers rebuild the legacy layer.
        return super().from_config({"legacy": True, **config})

    def build(self, multivectors_shape, scalars_shape):
        c, s = multivectors_shape[-2], scalars_shape[-1]
        hc, hs = self.mlp_ratio * c, self.mlp_ratio * s
        lead = tuple(multivectors_shape[:-2])
        policy, legacy = self.dtype_policy, self.legacy
        self.bilinear = GeometricBilinear(hc, hs, hc, legacy=legacy, name="bilinear", dtype=policy)
        self.activation = GatedGELU(name="activation", dtype=policy)
        self.out = EquiLinear(c, s, pseudoscalar_bias=not legacy, name="out", dtype=policy)
        self.bilinear.build(multivectors_shape, scalars_shape)
        self.out.build(lead + (hc, 16), lead + (hs,))

    def call(self, multivectors, scalars):
        h_mv, h_s = self.bilinear(multivectors, scalars)
        h_mv, h_s = self.activation(h_mv, h_s)
        return self.out(h_mv, h_s)

    def compute_output_spec(self, multivectors, scalars):
        mv = keras.KerasTensor(multivectors.shape, dtype=self.compute_dtype)
        return mv, keras.KerasTensor(scalars.shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(mlp_ratio=self.mlp_ratio, legacy=self.legacy)
        return config
