"""Forward and training throughput of the L-GATr presets and the plain transformer baseline.

    python -m evaluate.bench.lgatr_throughput [--presets default large] [--events 1024]

Random events (no data needed); prints events/s. Numbers depend on the machine and backend.
"""

import argparse
import time

import numpy as np


def _events(config, n, seed=0):
    rng = np.random.default_rng(seed)
    p3 = rng.normal(scale=50.0, size=(n, config.n_objects, 3))
    e = np.sqrt((p3**2).sum(-1, keepdims=True) + 25.0)
    scalars = np.zeros((n, config.n_objects, config.n_scalar), "float32")
    scalars[..., 0] = 1.0
    return {
        "fourvectors": np.concatenate([p3, e], -1).astype("float32"),
        "scalars": scalars,
        "mask": np.ones((n, config.n_objects), "float32"),
    }


def measure(builder, config, events, batch_size):
    """Returns (parameters, forward events/s, training events/s) after one warm-up pass."""
    import keras

    from models.lgatr.losses import TopReconstructionLoss

    model = builder(config)
    model.compile(optimizer="adam", loss={"tops": TopReconstructionLoss(config.momentum_scale)})
    n = len(events["mask"])
    targets = {"tops": events["fourvectors"][:, :2]}
    model.predict(events, batch_size=batch_size, verbose=0)  # warm-up / tracing
    start = time.perf_counter()
    model.predict(events, batch_size=batch_size, verbose=0)
    forward = n / (time.perf_counter() - start)
    model.fit(events, targets, batch_size=batch_size, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(events, targets, batch_size=batch_size, epochs=1, verbose=0)
    train = n / (time.perf_counter() - start)
    keras.backend.clear_session()
    return model.count_params(), forward, train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["default", "large"])
    parser.add_argument("--events", type=int, default=1024, help="events per timed pass")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)

    import keras

    from models.lgatr import PRESETS, build_model, build_plain_transformer, get_config

    for preset in args.presets:
        if preset not in PRESETS:
            parser.exit(2, f"error: unknown preset {preset!r}; choose from {sorted(PRESETS)}\n")
    print(f"backend {keras.backend.backend()}, batch {args.batch_size}, {args.events} events")
    print(f"{'model':<28}{'params':>10}{'forward ev/s':>15}{'train ev/s':>13}")
    for preset in args.presets:
        config = get_config(preset)
        events = _events(config, args.events)
        for label, builder in (("lgatr", build_model), ("plain", build_plain_transformer)):
            params, fwd, train = measure(builder, config, events, args.batch_size)
            print(f"{label + ' ' + preset:<28}{params:>10d}{fwd:>15.0f}{train:>13.0f}")


if __name__ == "__main__":
    main()
