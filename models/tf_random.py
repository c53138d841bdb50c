"""TensorFlow-only random helpers for `models.layers.dropout.FastDropout`.

Kept out of `models/layers/` so that the layers import no backend: FastDropout calls these only
when the backend is TensorFlow and a jit-compiled step is being traced (see its docstring);
everywhere else it uses `keras.random.dropout`.
"""


def in_xla_function():
    """True while tracing a `tf.function(jit_compile=True)` (e.g. a jit-compiled Keras step).

    TF's threefry kernels exist only in XLA; TF has no public test for the XLA context, so
    this uses its internal one and answers False if that is gone.
    """
    try:
        import tensorflow as tf
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover
        return False
    try:
        return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))
    except Exception:  # pragma: no cover - internal API changed
        return False


def threefry_dropout(x, rate, seed):
    import tensorflow as tf

    # the SeedGenerator state is int64 on TF; XLA wants int32 seeds (as keras' _cast_seed)
    if seed.dtype != tf.int32:
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    return tf.nn.experimental.stateless_dropout(x, rate=rate, seed=seed, rng_alg="threefry")
