"""Plain (not Lorentz-equivariant) transformer on the L-GATr inputs, for comparison."""

import keras
from keras import ops

from models.lgatr.config import LGATrConfig
from models.lgatr.layers import OnShellTops


@keras.saving.register_keras_serializable(package="hepformers")
class ClassToken(keras.layers.Layer):
    """Prepends a learned token and extends the mask.

    Call args:
        tokens: (B, N, D).
        mask: (B, N), 1 = real token, or None.

    Returns:
        (tokens (B, N + 1, D), token_mask (B, N + 1) bool).
    """

    def build(self, tokens_shape):
        self.token = self.add_weight(name="token", shape=(tokens_shape[-1],), initializer="zeros")

    def call(self, tokens, token_mask=None):
        b, d = ops.shape(tokens)[0], ops.shape(tokens)[-1]
        cls = ops.broadcast_to(ops.cast(self.token, tokens.dtype)[None, None], (b, 1, d))
        if token_mask is None:
            token_mask = ops.ones(ops.shape(tokens)[:2], "bool")
        token_mask = ops.concatenate([ops.ones((b, 1), "bool"), ops.cast(token_mask, "bool")], 1)
        return ops.concatenate([cls, tokens], axis=1), token_mask

    def compute_output_spec(self, tokens, token_mask=None):
        b, n, d = tokens.shape
        n = None if n is None else n + 1
        return (
            keras.KerasTensor((b, n, d), dtype=self.compute_dtype),
            keras.KerasTensor((b, n), dtype="bool"),
        )


@keras.saving.register_keras_serializable(package="hepformers")
class PlainTransformerBlock(keras.layers.Layer):
    """Pre-norm block: x + MHA(LN(x)) with padded keys masked, then x + MLP(LN(x)).

    Args:
        num_heads: attention heads.
        mlp_ratio: hidden width factor of the MLP.

    Call args:
        tokens: (B, N, D).
        token_mask: (B, N), True/1 = real token, or None.

    Returns:
        (B, N, D).
    """

    def __init__(self, num_heads, mlp_ratio=2, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio

    def build(self, tokens_shape):
        d = tokens_shape[-1]
        self.norm1 = keras.layers.LayerNormalization(name="norm1")
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, max(d // self.num_heads, 1), name="attention"
        )
        self.norm2 = keras.layers.LayerNormalization(name="norm2")
        self.hidden = keras.layers.Dense(self.mlp_ratio * d, name="hidden")
        self.out = keras.layers.Dense(d, name="out")
        self.norm1.build(tokens_shape)
        self.attention.build(tokens_shape, tokens_shape)
        self.norm2.build(tokens_shape)
        self.hidden.build(tokens_shape)
        self.out.build(tuple(tokens_shape[:-1]) + (self.mlp_ratio * d,))

    def call(self, tokens, token_mask=None):
        h = self.norm1(tokens)
        attention_mask = None
        if token_mask is not None:
            attention_mask = ops.cast(token_mask, "bool")[:, None, :]  # (B, 1, N): keys
        tokens = tokens + self.attention(h, h, attention_mask=attention_mask)
        h = ops.gelu(self.hidden(self.norm2(tokens)), approximate=True)
        return tokens + self.out(h)

    def compute_output_shape(self, tokens_shape):
        return tokens_shape

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, mlp_ratio=self.mlp_ratio)
        return config


def build_plain_transformer(config: LGATrConfig) -> keras.Model:
    """Plain transformer with the same inputs and output as `models.lgatr.model.build_model`.

    Token features are the scaled four-vector components and the scalars; a learned class
    token is read out with a dense layer. Width `config.plain_dim`, `config.num_blocks`
    blocks, `config.num_heads` heads, MLP ratio `config.mlp_ratio`.

    Inputs:
        fourvectors: (B, 12, 4) (px, py, pz, E) in GeV; scalars: (B, 12, n_scalar);
        mask: (B, 12), 1 = real object.

    Outputs:
        tops: (B, 2, 4) top and antitop (px, py, pz, E) in GeV (on shell as the L-GATr's
        with `config.output="onshell"`: the head then predicts three-momenta).
    """
    n, s = config.n_objects, config.n_scalar
    fourvectors = keras.Input((n, 4), name="fourvectors")
    scalars = keras.Input((n, s), name="scalars")
    mask = keras.Input((n,), name="mask")
    p = keras.layers.Rescaling(1.0 / config.momentum_scale, name="scale_in")(fourvectors)
    x = keras.layers.Concatenate(name="features")([p, scalars])  # (B, N, 4 + S)
    x = keras.layers.Dense(config.plain_dim, name="embed")(x)  # (B, N, D)
    x, token_mask = ClassToken(name="class_token")(x, token_mask=mask)  # (B, N + 1, D)
    for i in range(config.num_blocks):
        x = PlainTransformerBlock(config.num_heads, config.mlp_ratio, name=f"block{i}")(
            x, token_mask=token_mask
        )
    x = keras.layers.LayerNormalization(name="norm")(x)
    onshell = config.output == "onshell"
    k = 3 if onshell else 4
    x = keras.layers.Dense(2 * k, name="head")(x[:, 0])  # (B, 2 k)
    x = keras.layers.Reshape((2, k), name="reshape")(x)
    tops = keras.layers.Rescaling(config.momentum_scale, name="momenta" if onshell else "tops")(x)
    if onshell:
        tops = OnShellTops(config.top_mass, name="tops")(tops)
    return keras.Model(
        {"fourvectors": fourvectors, "scalars": scalars, "mask": mask},
        {"tops": tops},
        name="plain_transformer",
    )
