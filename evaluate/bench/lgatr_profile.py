"""Where an L-GATr training step spends its time: per layer kind, on the current Keras backend.

    KERAS_BACKEND=tensorflow python -m evaluate.bench.lgatr_profile --preset large --jit 1
    KERAS_BACKEND=jax python -m evaluate.bench.lgatr_profile --preset default

Each component of an LGATrBlock runs alone as a small Keras model at the shapes it has inside
the preset's network (batch x tokens rows), trained by `train_on_batch` (forward, backward and
Adam update, mean squared output) like the whole model; the table shows its median step in ms,
how many times one training step of the model runs it, and that count times its step as a share
of the whole model's step. Components: the EquiLinear maps of a block (attention q/k/v and
output, bilinear left/right/output, MLP output), the channel-wise geometric product of the
bilinear, the attention core (GeometricSelfAttention minus its two EquiLinear maps: inner
products, norms of q/k/v, softmax), the equivariant layer norms, and the gated GELU. The sum of
the shares is not exactly 100%: standalone layers lose the fusion (XLA) and gain per-call
overhead. The plain transformer of the same preset is timed for comparison.
"""

import argparse
import statistics
import time
import warnings

import numpy as np


def _layers():
    import keras

    from models.layers.geometric import ops as gops

    class GeometricProduct(keras.layers.Layer):  # the bilinear's product, for timing only
        def call(self, x, y):
            return gops.geometric_product(x, y)

    class AttentionCore(keras.layers.Layer):  # GeometricSelfAttention without qkv / out maps
        def __init__(self, attention, **kwargs):
            super().__init__(**kwargs)
            self.att = attention

        def call(self, mv, s):
            return self.att.attend(mv, s)

    class Scale(keras.layers.Layer):  # one trainable number, so weightless layers train
        def build(self, shape):
            self.scale = self.add_weight(shape=(), initializer="ones")

        def call(self, x):
            return x * self.scale

    class Wrap(keras.layers.Layer):  # a layer's non-None outputs, as a list
        def __init__(self, inner, **kwargs):
            super().__init__(**kwargs)
            self.inner = inner

        def build(self, *shapes):  # the inner layer builds on its first call
            pass

        def call(self, *args):
            return [o for o in keras.tree.flatten(self.inner(*args)) if o is not None]

    return GeometricProduct, AttentionCore, Scale, Wrap


def components(config, rows):
    """[(name, count per model step, build() -> (keras.Model, inputs list))]."""
    import keras

    from models.layers.geometric import EquiLayerNorm, EquiLinear, GatedGELU
    from models.layers.geometric.attention import GeometricSelfAttention

    gp_layer, core_layer, scale, wrap = _layers()
    c, s, h = config.hidden_mv_channels, config.hidden_s_channels, config.num_heads
    hm = max(config.attn_ratio * c // h, 1)
    hs = max(config.attn_ratio * s // h, 4)
    r = config.mlp_ratio
    nb = config.num_blocks
    rng = np.random.default_rng(0)

    def data(*shapes):
        return [rng.normal(size=(rows,) + sh).astype("float32") for sh in shapes]

    def model_of(layer_fn, shapes):
        ins = [keras.Input(sh) for sh in shapes]
        outs = wrap(layer_fn)(*[scale()(i) for i in ins])
        return keras.Model(ins, outs), data(*shapes)

    def linear(cin, sin, cout, sout, **kw):
        shapes = [(cin, 16)] + ([(sin,)] if sin else [])
        return lambda: model_of(EquiLinear(cout, sout, **kw), shapes)

    def core():
        att = GeometricSelfAttention(h, config.attn_ratio)
        att.build((None, config.n_objects + 3, c, 16), (None, config.n_objects + 3, s))
        t = config.n_objects + 3
        # rows = batch x tokens: this one sees (batch, tokens, ...)
        shapes = [(t, 3 * h * hm, 16), (t, 3 * h * hs)]
        ins = [keras.Input(sh) for sh in shapes]
        outs = core_layer(att)(*[scale()(i) for i in ins])
        b = rows // t
        return keras.Model(ins, list(outs)), [
            rng.normal(size=(b,) + sh).astype("float32") for sh in shapes
        ]

    def norm(**kw):
        return lambda: model_of(EquiLayerNorm(**kw), [(c, 16), (s,)])

    return [
        ("EquiLinear attention q/k/v", nb, linear(c, s, 3 * h * hm, 3 * h * hs, use_bias=False)),
        ("attention core", nb, core),
        ("EquiLinear attention out", nb, linear(h * hm, h * hs, c, s)),
        ("EquiLinear bilinear left+right", 2 * nb, linear(c, s, r * c, 0)),
        ("geometric product", nb, lambda: model_of(gp_layer(), [(r * c, 16), (r * c, 16)])),
        ("EquiLinear bilinear out", nb, linear(r * c, s, r * c, r * s)),
        ("EquiLayerNorm (block, bilinear)", 3 * nb, norm()),
        ("gated GELU", nb, lambda: model_of(GatedGELU(), [(r * c, 16), (r * s,)])),
        ("EquiLinear MLP out", nb, linear(r * c, r * s, c, s)),
    ]


def time_steps(model, inputs, jit, steps, warmup=2):
    """Median seconds of `train_on_batch` (Adam, mean squared outputs)."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse", jit_compile=jit)
    outputs = model(inputs)
    if isinstance(outputs, (list, tuple)):
        targets = [np.zeros(tuple(o.shape), "float32") for o in outputs]
    else:
        targets = np.zeros(tuple(outputs.shape), "float32")
    for _ in range(warmup):
        model.train_on_batch(inputs, targets)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        model.train_on_batch(inputs, targets)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_full(builder, config, batch, jit, steps):
    import keras

    from evaluate.bench.lgatr_throughput import _events
    from models.lgatr.losses import TopReconstructionLoss

    keras.utils.set_random_seed(0)
    model = builder(config)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss={"tops": TopReconstructionLoss(config.momentum_scale)},
        jit_compile=jit,
    )
    ev = _events(config, batch)
    y = {"tops": ev["fourvectors"][:, :2]}
    for _ in range(2):
        model.train_on_batch(ev, y)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        model.train_on_batch(ev, y)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--jit", default="auto", help="jit_compile: 1, 0 or auto")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    # the attention core runs without its layer's q/k/v and output maps: no gradients there
    warnings.filterwarnings("ignore", message="Gradients do not exist")
    jit = {"1": True, "0": False}.get(args.jit, "auto")

    import keras

    from evaluate.bench._lgatr_keras_side import set_threads
    from models.lgatr import build_model, build_plain_transformer, get_config

    set_threads(keras.backend.backend(), args.threads)
    config = get_config(args.preset)
    rows = args.batch_size * (config.n_objects + 3)
    full = time_full(build_model, config, args.batch_size, jit, args.steps)
    plain = time_full(build_plain_transformer, config, args.batch_size, jit, args.steps)
    print(
        f"backend {keras.backend.backend()}, jit_compile={jit}, preset {args.preset}, batch "
        f"{args.batch_size} ({rows} token rows)"
    )
    print(f"{'L-GATr model':<34}{1e3 * full:>9.1f}{1:>8d}{100:>7.0f}%")
    print(f"{'plain transformer':<34}{1e3 * plain:>9.1f}{1:>8d}{100 * plain / full:>7.0f}%")
    print(f"{'component':<34}{'ms/step':>9}{'x/model':>8}{'share':>8}", flush=True)
    total = 0.0
    for name, count, build in components(config, rows):
        model, inputs = build()
        t = time_steps(model, inputs, jit, args.steps)
        total += count * t
        print(f"{name:<34}{1e3 * t:>9.1f}{count:>8d}{100 * count * t / full:>7.0f}%", flush=True)
        keras.backend.clear_session()
    print(f"{'sum of components':<34}{1e3 * total:>9.1f}{'':>8}{100 * total / full:>7.0f}%")


if __name__ == "__main__":
    main()
