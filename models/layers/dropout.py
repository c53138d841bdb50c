"""Dropout that stays cheap under XLA on the TensorFlow backend.

`keras.layers.Dropout` draws its mask with `tf.nn.experimental.stateless_dropout` and TF's
default ("auto_select", Philox) generator; compiled by XLA for the CPU that generator cost
about 0.5 s of a 2.95 s ParT training step (batch 512); the same op with
`rng_alg="threefry"` draws its masks several times faster. Threefry has TF kernels only under
XLA, so it is used while a `tf.function(jit_compile=True)` (a jit-compiled Keras train step)
is traced; everywhere else, and on the other backends, the layer calls
`keras.random.dropout`. The semantics are those of
`keras.layers.Dropout`: at training time each element is zeroed with probability `rate` and
the survivors are scaled by 1 / (1 - rate); at inference the input passes through.

The layer has no weights (its SeedGenerator state is not saved, as for Keras' Dropout), so it
can replace `keras.layers.Dropout` inside a layer without changing the saved-weights layout.
"""

import keras

# The TensorFlow-only pieces (an XLA-context test and threefry stateless dropout) live outside
# the layers package, in models/tf_random.py; the layer itself stays backend-neutral otherwise.
from models.tf_random import in_xla_function as _in_xla_function  # noqa: E402
from models.tf_random import threefry_dropout as _tf_threefry_dropout  # noqa: E402


@keras.saving.register_keras_serializable(package="hepformers")
class FastDropout(keras.layers.Layer):
    """`keras.layers.Dropout` with a threefry mask on TensorFlow (fast under XLA on CPU).

    Args:
        rate: fraction of the inputs to drop, in [0, 1).
        seed: int seed of the layer's SeedGenerator, or None (drawn from Keras' global seed).

    Call args:
        inputs: any tensor.
        training: drop only when True.

    Returns:
        a tensor of the input's shape and dtype.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = seed
        if rate > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if keras.backend.backend() == "tensorflow" and _in_xla_function():
            return _tf_threefry_dropout(inputs, self.rate, self.seed_generator.next())
        return keras.random.dropout(inputs, self.rate, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs, training=False):
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config
