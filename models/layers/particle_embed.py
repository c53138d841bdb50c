"""ParT particle embedding (weaver-core `Embed`), class token and shared layer helpers.

Norm settings follow PyTorch (BatchNorm momentum 0.1 -> Keras momentum 0.9, epsilon 1e-5;
LayerNorm epsilon 1e-5) and Dense layers use PyTorch's default `nn.Linear` / `nn.Conv1d`
initialisation, so a freshly built model starts from the same distribution as the original.
"""

import math

import keras
from keras import ops

from models.layers.layer_norm import apply_layer_norm

ACTIVATIONS = ("gelu", "gelu_tanh", "relu")
BN_MOMENTUM = 0.9  # torch momentum 0.1
NORM_EPSILON = 1e-5  # torch default for BatchNorm and LayerNorm


def check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def gelu_exact(x):
    """Exact GELU in torch's form, 0.5 x (1 + erf(x / sqrt(2))).

    The same function as `ops.gelu(x, approximate=False)`, which TensorFlow writes with erfc:
    XLA on the CPU evaluates erfc piecewise in several passes over the tensor, erf as one
    polynomial, and the ParT training step ran about 5% faster with this form. In float32 it
    is within 1.2e-6 (absolute) of the float64 GELU, as torch's `nn.GELU()` is (TF's erfc
    form: 4e-7); the relative error grows in the far negative tail, as torch's does.
    """
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))


def activate(x, activation):
    """ "gelu" = exact erf GELU (torch nn.GELU()), "gelu_tanh" = tanh approximation, "relu"."""
    if activation == "relu":
        return ops.relu(x)
    if activation == "gelu":
        return gelu_exact(x)
    return ops.gelu(x, approximate=True)


def torch_linear(units, fan_in, zero_bias=False, **kwargs):
    """A Dense initialised like torch `nn.Linear`: weight and bias U(+-1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    bias = "zeros" if zero_bias else keras.initializers.RandomUniform(-bound, bound)
    kernel = keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")
    return keras.layers.Dense(units, kernel_initializer=kernel, bias_initializer=bias, **kwargs)


def batch_norm(**kwargs):
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=NORM_EPSILON, **kwargs)


def layer_norm(**kwargs):
    """A Keras LayerNormalization over the last axis; call it with `apply_layer_norm`."""
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
            x = activate(dense(apply_layer_norm(norm, x)), self.activation)
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


@keras.saving.register_keras_serializable(package="hepformers", name="ParTClassToken")
class ClassToken(keras.layers.Layer):
    """Trainable class token (1, 1, E), initialised N(0, 0.02), broadcast to the batch.

    Its variable is named "class_token" so an optimizer can exclude it from weight decay:
    `opt.exclude_from_weight_decay(var_names=["class_token"])`. Registered as
    "hepformers>ParTClassToken" (the L-GATr baseline owns "hepformers>ClassToken").

    Args:
        embed_dim: width E.

    Call args:
        x: (B, P, E') any tensor with the batch size as first dimension.

    Returns:
        (B, 1, E).
    """

    def __init__(self, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = embed_dim

    def build(self, x_shape):
        # timm trunc_normal_(std=0.02) cuts at +-2 (absolute), i.e. at 100 sigma: a plain normal
        init = keras.initializers.RandomNormal(stddev=0.02)
        self.class_token = self.add_weight(
            name="class_token", shape=(1, 1, self.embed_dim), initializer=init
        )

    def call(self, x):
        b = ops.shape(x)[0]
        token = ops.cast(self.class_token, self.compute_dtype)
        return ops.broadcast_to(token, (b, 1, self.embed_dim))

    def compute_output_shape(self, x_shape):
        return (x_shape[0], 1, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(embed_dim=self.embed_dim)
        return config
