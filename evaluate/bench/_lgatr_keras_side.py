"""Keras side of evaluate.bench.lgatr_reference_speed: the toolkit's L-GATr on one backend.

Started by the harness as `python -m evaluate.bench._lgatr_keras_side --preset P ...` with
KERAS_BACKEND set in its environment (so before keras is imported), and driven over stdin /
stdout with the protocol of `_lgatr_side.py`. It serves one path per compile mode of its
backend: TensorFlow "xla" (`jit_compile=True`) and "graph" (`jit_compile=False`), JAX "jit",
PyTorch "eager" (Keras's default there). Training: `train_on_batch` of `build_model` compiled
with Adam and `TopReconstructionLoss`; inference: `predict_on_batch`.
"""

import argparse
import os

MODES = {"tensorflow": ("xla", "graph"), "jax": ("jit",), "torch": ("eager",)}


def set_threads(backend, threads):
    """Limit the backend's compute threads; returns what the side reports it uses."""
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        return f"intra-op {threads}, inter-op 1"
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
        return f"torch.set_num_threads({threads})"
    # JAX/XLA CPU: XLA_FLAGS must be set before jax starts (the harness sets them)
    return f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inputs", required=True, help=".npz of fourvectors, scalars, mask, tops")
    p.add_argument("--preset", required=True)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--modes", nargs="*", help="subset of the backend's compile modes")
    args = p.parse_args(argv)

    from evaluate.bench._lgatr_side import Stepper, private_stdout, serve

    answers = private_stdout()
    import keras
    import numpy as np

    from models.lgatr import build_model, get_config
    from models.lgatr.losses import TopReconstructionLoss

    backend = keras.backend.backend()
    threads = set_threads(backend, args.threads)
    config = get_config(args.preset)
    d = np.load(args.inputs)
    n = len(d["mask"]) // args.batch * args.batch
    batches = [
        (
            {k: d[k][i : i + args.batch] for k in ("fourvectors", "scalars", "mask")},
            {"tops": d["tops"][i : i + args.batch]},
        )
        for i in range(0, n, args.batch)
    ]
    paths, params = {}, None
    for mode in args.modes or MODES[backend]:
        keras.utils.set_random_seed(0)
        model = build_model(config)
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss={"tops": TopReconstructionLoss(config.momentum_scale)},
            jit_compile={"xla": True, "graph": False, "eager": False}.get(mode, "auto"),
        )
        params = model.count_params()
        paths[mode] = dict(
            train=Stepper(lambda x, y, m=model: m.train_on_batch(x, y), batches),
            infer=Stepper(lambda x, y, m=model: m.predict_on_batch(x), batches),
        )
    info = dict(
        backend=backend,
        keras=keras.__version__,
        threads=threads,
        parameters=params,
        modes=list(paths),
    )
    if backend == "tensorflow":
        info["TF_ENABLE_ONEDNN_OPTS"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (on)")
    serve(info, paths, answers)


if __name__ == "__main__":
    main()
