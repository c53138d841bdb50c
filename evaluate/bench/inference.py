"""Inference throughput of every shipped model: Keras on each backend, and ONNX Runtime.

    python -m evaluate.bench.inference [--backends tensorflow jax torch] [--onnx] [--seconds 3]

Each backend runs in its own process (KERAS_BACKEND is read once, at `import keras`); a
backend that is not installed is reported as such. Inputs are `evaluate.export.example_inputs`
(random features, padded masks) at the batch size of each model's evaluation; a warm-up batch
(compilation) is not timed, then batches run for `--seconds` and events (jets, candidates) per
second are printed. ONNX Runtime runs the file that `evaluate.export` writes, with its default
CPU threads. Prints a markdown table; `--json` writes the figures too.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MODELS = {  # name: (shipped file, batch size, what one row is)
    "TPMT": ("saved_models/tpmt/tpmt.keras", 1024, "events"),
    "L-GATr": ("saved_models/lgatr/lgatr.keras", 1024, "events"),
    "ParTau (multi)": ("saved_models/partau/partau_multi.keras", 1024, "jets"),
    "MET Perceiver": ("saved_models/metperceiver/metperceiver.keras", 32, "events"),
    "ScoutTau (PF)": ("saved_models/scouttau/scouttau_pf.keras", 1024, "candidates"),
}


def _rate(run, inputs, seconds):
    run(inputs)  # warm-up: tracing / compilation
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        run(inputs)
        n += 1
    return n * len(next(iter(inputs.values()))) / (time.perf_counter() - t0)


def measure_keras(seconds):
    """{model: rows/s} on this process's backend (the worker side)."""
    from evaluate.export import _model_inputs, example_inputs
    from models.training import load_trained

    out = {}
    for name, (path, batch, _) in MODELS.items():
        model = load_trained(path)
        inputs = example_inputs(model, batch=batch)
        out[name] = _rate(
            lambda x, m=model: m.predict_on_batch(_model_inputs(m, x)), inputs, seconds
        )
    return out


def measure_onnx(seconds):
    import onnxruntime as ort

    from evaluate.export import example_inputs, to_onnx
    from models.training import load_trained

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, batch, _) in MODELS.items():
            model = load_trained(path)
            onnx_path = os.path.join(tmp, "m.onnx")
            to_onnx(model, onnx_path)
            sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
            names = {i.name for i in sess.get_inputs()}
            inputs = {k: v for k, v in example_inputs(model, batch=batch).items() if k in names}
            out[name] = _rate(lambda x, s=sess: s.run(None, x), inputs, seconds)
    return out


def _worker(backend, seconds, onnx):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = (
        "import json, sys; from evaluate.bench import inference as b; "
        f"print('RESULT', json.dumps(b.{'measure_onnx' if onnx else 'measure_keras'}({seconds})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    if "ModuleNotFoundError" in last:
        return {"error": f"{backend} not installed"}
    return {"error": last[:160]}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m evaluate.bench.inference", description=__doc__)
    p.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    p.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per model")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    columns = {f"Keras {b}": _worker(b, args.seconds, False) for b in args.backends}
    if not args.no_onnx:
        columns["ONNX Runtime"] = _worker("tensorflow", args.seconds, True)
    print("| model (batch) | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, (_, batch, unit) in MODELS.items():
        cells = [
            f"{c[name]:,.0f}" if name in c else c.get("error", "n/a")[:40] for c in columns.values()
        ]
        print(f"| {name} ({batch}), {unit}/s | " + " | ".join(cells) + " |")
    print(f"CPU cores: {os.cpu_count()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(columns, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
