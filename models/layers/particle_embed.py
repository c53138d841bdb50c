"""Particle and pair embeddings of the Particle Transformer (weaver-core `Embed`, `PairEmbed`).

Norm settings follow PyTorch (BatchNorm momentum 0.1 -> Keras momentum 0.9, epsilon 1e-5;
LayerNorm epsilon 1e-5) and Dense layers use PyTorch's default `nn.Linear` / `nn.Conv1d`
initialisation, so a freshly built model starts from the same distribution as the original.
"""

import math

import keras
from keras import ops

ACTIVATIONS = ("gelu", "gelu_tanh", "relu")
BN_MOMENTUM = 0.9  # torch momentum 0.1
NORM_EPSILON = 1e-5  # torch default for BatchNorm and LayerNorm


def check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def activate(x, activation):
    """ "gelu" = exact erf GELU (torch nn.GELU()), "gelu_tanh" = tanh approximation, "relu"."""
    if activation == "relu":
        return ops.relu(x)
    return ops.gelu(x, approximate=activation == "gelu_tanh")


def torch_linear(units, fan_in, zero_bias=False, **kwargs):
    """A Dense initialised like torch `nn.Linear`: weight and bias U(+-1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    bias = "zeros" if zero_bias else keras.initializers.RandomUniform(-bound, bound)
    kernel = keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")
    return keras.layers.Dense(units, kernel_initializer=kernel, bias_initializer=bias, **kwargs)


def batch_norm(**kwargs):
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=NORM_EPSILON, **kwargs)


def layer_norm(**kwargs):
    return keras.layers.LayerNormalization(epsilon=NORM_EPSILON, **kwargs)


@keras.saving.register_keras_serializable(package="hepformers")
class ParticleEmbed(keras.layers.Layer):
    """Per-particle embedding: BatchNorm over features, then per width LayerNorm -> Dense -> act.

    As in weaver, the BatchNorm statistics include padded particles; the output is zeroed at
    padded particles.

    Args:
        dims: output widths of the successive Dense layers; the last is the embedding width.
        activation: "gelu" (exact), "gelu_tanh" or "relu".
        normalize_input: apply the input BatchNorm.

    Call args:
        features: (B, P, F).
        particle_mask: (B, P), 1 = real particle, or None.

    Returns:
        (B, P, dims[-1]).
    """

    def __init__(self, dims=(128, 512, 128), activation="gelu", normalize_input=True, **kwargs):
        super().__init__(**kwargs)
        check_activation(activation)
        self.dims = tuple(dims)
        self.activation = activation
        self.normalize_input = normalize_input

    def build(self, features_shape):
        policy = self.dtype_policy
        shape = tuple(features_shape)
        self.input_bn = None
        if self.normalize_input:
            self.input_bn = batch_norm(dtype=policy, name="input_bn")
            self.input_bn.build(shape)
        self.norms, self.denses = [], []
        for i, dim in enumerate(self.dims):
            norm = layer_norm(dtype=policy, name=f"norm_{i}")
            dense = torch_linear(dim, shape[-1], dtype=policy, name=f"dense_{i}")
            norm.build(shape)
            dense.build(shape)
            self.norms.append(norm)
            self.denses.append(dense)
            shape = shape[:-1] + (dim,)

    def call(self, features, particle_mask=None, training=None):
        x = features
        if self.input_bn is not None:
            x = self.input_bn(x, training=training)
        for norm, dense in zip(self.norms, self.denses):
            x = activate(dense(norm(x)), self.activation)
        if particle_mask is not None:
            x = x * ops.cast(particle_mask, x.dtype)[..., None]
        return x

    def compute_output_shape(self, features_shape):
        return tuple(features_shape[:-1]) + (self.dims[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            dims=list(self.dims),
            activation=self.activation,
            normalize_input=self.normalize_input,
        )
        return config


@keras.saving.register_keras_serializable(package="hepformers")
class PairEmbed(keras.layers.Layer):
    """Pair features -> per-head additive attention bias (weaver `PairEmbed`, mode "sum").

    BatchNorm on the inputs, then for each width in (*dims, num_heads): Dense (weaver's
    Conv1d k=1) -> BatchNorm -> activation; `use_pre_activation_pair=True` drops the last
    activation. BatchNorm statistics are taken, as in weaver, over the lower triangle
    (i >= j, diagonal included) of every pair matrix, padded particles included.

    Args:
        dims: hidden widths.
        num_heads: output channels, one attention bias per head.
        activation: "gelu" (exact), "gelu_tanh" or "relu".
        use_pre_activation_pair: drop the final activation.
        normalize_input: apply the input BatchNorm.

    Call args:
        pair_features: (B, P, P, C), e.g. from `PairFeatures`.

    Returns:
        (B, num_heads, P, P).
    """

    def __init__(
        self,
        dims=(64, 64, 64),
        num_heads=8,
        activation="gelu",
        use_pre_activation_pair=False,
        normalize_input=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_activation(activation)
        self.dims = tuple(dims)
        self.num_heads = num_heads
        self.activation = activation
        self.use_pre_activation_pair = use_pre_activation_pair
        self.normalize_input = normalize_input

    def build(self, pair_features_shape):
        policy = self.dtype_policy
        shape = tuple(pair_features_shape)
        self.input_bn = None
        if self.normalize_input:
            self.input_bn = batch_norm(dtype=policy, name="input_bn")
            self.input_bn.build(shape)
        self.denses, self.norms = [], []
        for i, dim in enumerate(self.dims + (self.num_heads,)):
            dense = torch_linear(dim, shape[-1], dtype=policy, name=f"dense_{i}")
            dense.build(shape)
            shape = shape[:-1] + (dim,)
            norm = batch_norm(dtype=policy, name=f"bn_{i}")
            norm.build(shape)
            self.denses.append(dense)
            self.norms.append(norm)

    def call(self, pair_features, training=None):
        x = pair_features
        p = ops.shape(x)[1]
        idx = ops.arange(p)
        tril = ops.expand_dims(idx[:, None] >= idx[None, :], 0)  # (1, P, P) BN statistics
        if self.input_bn is not None:
            x = self.input_bn(x, training=training, mask=tril)
        last = len(self.denses) - 1
        for i, (dense, norm) in enumerate(zip(self.denses, self.norms)):
            x = norm(dense(x), training=training, mask=tril)
            if i < last or not self.use_pre_activation_pair:
                x = activate(x, self.activation)
        return ops.transpose(x, (0, 3, 1, 2))  # (B, H, P, P)

    def compute_output_shape(self, pair_features_shape):
        b, p = pair_features_shape[0], pair_features_shape[1]
        return (b, self.num_heads, p, p)

    def get_config(self):
        config = super().get_config()
        config.update(
            dims=list(self.dims),
            num_heads=self.num_heads,
            activation=self.activation,
            use_pre_activation_pair=self.use_pre_activation_pair,
            normalize_input=self.normalize_input,
        )
        return config
