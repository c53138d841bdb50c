"""L-GATr transformer block and network."""

import keras
from keras import ops

from models.layers.geometric.attention import GeometricSelfAttention
from models.layers.geometric.bilinear import GeoMLP
from models.layers.geometric.linear import EquiLinear
from models.layers.geometric.norm import EquiLayerNorm


@keras.saving.register_keras_serializable(package="hepformers")
class LGATrBlock(keras.layers.Layer):
    """Pre-norm block: x = x + Attn(LN(x)); x = x + GeoMLP(LN(x)), on (mv, s) pairs.

    The norms have gains. Matches lgatr's `LGATrBlock` (token_mask as lgatr's boolean
    `attn_mask` of shape (B, 1, 1, N)).

    Args:
        num_heads: attention heads.
        attn_ratio: attention width factor (see `GeometricSelfAttention`).
        mlp_ratio: GeoMLP width factor.
        legacy: the block as saved before it matched lgatr (see `GeometricSelfAttention` and
            `GeometricBilinear`; configs without the key load this way).

    Call args:
        multivectors: (B, N, C, 16).
        scalars: (B, N, S).
        token_mask: (B, N), True/1 = real token, or None.

    Returns:
        (multivectors (B, N, C, 16), scalars (B, N, S)).
    """

    def __init__(self, num_heads, attn_ratio=1, mlp_ratio=4, legacy=False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.attn_ratio = attn_ratio
        self.mlp_ratio = mlp_ratio
        self.legacy = legacy

    @classmethod
    def from_config(cls, config):
        # Configs saved before the lgatr-faithful layers rebuild the legacy block.
        return super().from_config({"legacy": True, **config})

    def build(self, multivectors_shape, scalars_shape):
        kw = dict(legacy=self.legacy, dtype=self.dtype_policy)
        self.norm1 = EquiLayerNorm(name="norm1", dtype=kw["dtype"])
        self.attention = GeometricSelfAttention(
            self.num_heads, self.attn_ratio, name="attention", **kw
        )
        self.norm2 = EquiLayerNorm(name="norm2", dtype=kw["dtype"])
        self.mlp = GeoMLP(self.mlp_ratio, name="mlp", **kw)
        for layer in (self.norm1, self.attention, self.norm2, self.mlp):
            layer.build(multivectors_shape, scalars_shape)

    def call(self, multivectors, scalars, token_mask=None):
        h_mv, h_s = self.norm1(multivectors, scalars)
        h_mv, h_s = self.attention(h_mv, h_s, token_mask=token_mask)
        multivectors, scalars = multivectors + h_mv, scalars + h_s
        h_mv, h_s = self.mlp(*self.norm2(multivectors, scalars))
        return multivectors + h_mv, scalars + h_s

    def compute_output_spec(self, multivectors, scalars, token_mask=None):
        mv = keras.KerasTensor(multivectors.shape, dtype=self.compute_dtype)
        return mv, keras.KerasTensor(scalars.shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            attn_ratio=self.attn_ratio,
            mlp_ratio=self.mlp_ratio,
            legacy=self.legacy,
        )
        return config


@keras.saving.register_keras_serializable(package="hepformers")
class LGATrNetwork(keras.layers.Layer):
    """L-GATr: EquiLinear (in -> hidden), `num_blocks` LGATrBlocks, EquiLinear (hidden -> out).

    Equivariant under proper orthochronous Lorentz transformations of the input multivectors
    (scalars are invariants); break the symmetry with spurion tokens or channels. Matches
    lgatr's `LGATr` (token_mask as lgatr's boolean `attn_mask` of shape (B, 1, 1, N)).

    Args:
        num_blocks: number of blocks.
        hidden_mv_channels: multivector channels inside the blocks.
        hidden_s_channels: scalar channels inside the blocks.
        out_mv_channels: output multivector channels.
        out_s_channels: output scalar channels (0: an empty (B, N, 0) scalar output).
        num_heads: attention heads.
        attn_ratio: attention width factor.
        mlp_ratio: GeoMLP width factor.
        legacy: the network as saved before it matched lgatr (see `LGATrBlock`; configs
            without the key load this way; the shipped models are not legacy).

    Call args:
        multivectors: (B, N, C_in, 16).
        scalars: (B, N, S_in).
        token_mask: (B, N), True/1 = real token, or None.

    Returns:
        (multivectors (B, N, out_mv_channels, 16), scalars (B, N, out_s_channels)).
    """

    def __init__(
        self,
        num_blocks,
        hidden_mv_channels,
        hidden_s_channels,
        out_mv_channels,
        out_s_channels=1,
        num_heads=8,
        attn_ratio=1,
        mlp_ratio=4,
        legacy=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_blocks = num_blocks
        self.hidden_mv_channels = hidden_mv_channels
        self.hidden_s_channels = hidden_s_channels
        self.out_mv_channels = out_mv_channels
        self.out_s_channels = out_s_channels
        self.num_heads = num_heads
        self.attn_ratio = attn_ratio
        self.mlp_ratio = mlp_ratio
        self.legacy = legacy

    @classmethod
    def from_config(cls, config):
        # Configs saved before the lgatr-faithful layers rebuild the legacy network.
        return super().from_config({"legacy": True, **config})

    def build(self, multivectors_shape, scalars_shape):
        lead = tuple(multivectors_shape[:-2])
        hidden = (lead + (self.hidden_mv_channels, 16), lead + (self.hidden_s_channels,))
        policy = self.dtype_policy
        lin = dict(pseudoscalar_bias=not self.legacy, dtype=policy)
        self.linear_in = EquiLinear(
            self.hidden_mv_channels, self.hidden_s_channels, name="in", **lin
        )
        self.linear_in.build(multivectors_shape, scalars_shape)
        self.blocks = []
        for i in range(self.num_blocks):
            block = LGATrBlock(
                self.num_heads,
                self.attn_ratio,
                self.mlp_ratio,
                legacy=self.legacy,
                name=f"block{i}",
                dtype=policy,
            )
            block.build(*hidden)
            self.blocks.append(block)
        self.linear_out = EquiLinear(self.out_mv_channels, self.out_s_channels, name="out", **lin)
        self.linear_out.build(*hidden)

    def call(self, multivectors, scalars, token_mask=None):
        mv, s = self.linear_in(multivectors, scalars)
        for block in self.blocks:
            mv, s = block(mv, s, token_mask=token_mask)
        mv, s = self.linear_out(mv, s)
        if s is None:  # out_s_channels == 0: an empty tensor keeps functional graphs valid
            s = ops.zeros(tuple(ops.shape(mv)[:-2]) + (0,), dtype=mv.dtype)
        return mv, s

    def compute_output_spec(self, multivectors, scalars, token_mask=None):
        lead = tuple(multivectors.shape[:-2])
        mv = keras.KerasTensor(lead + (self.out_mv_channels, 16), dtype=self.compute_dtype)
        return mv, keras.KerasTensor(lead + (self.out_s_channels,), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_blocks=self.num_blocks,
            hidden_mv_channels=self.hidden_mv_channels,
            hidden_s_channels=self.hidden_s_channels,
            out_mv_channels=self.out_mv_channels,
            out_s_channels=self.out_s_channels,
            num_heads=self.num_heads,
            attn_ratio=self.attn_ratio,
            mlp_ratio=self.mlp_ratio,
            legacy=self.legacy,
        )
        return config
