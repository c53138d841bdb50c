"""Benchmark: TPMT inference paths against FastMTT, same events, same process, interleaved.

    python -m evaluate.bench.tpmt_speed --input cache/ditau/h125_seed201_3000.root
    python -m evaluate.bench.tpmt_speed --input FILE.root --json tpmt_speed.json
    python -m evaluate.bench.tpmt_speed --preset-table          # untrained presets, toy inputs

Forward paths, each from numpy arrays to a numpy (N, C) output: `model.predict`; `model.predict`
of a copy compiled with `jit_compile=True` (XLA); `model(x, training=False)` under a
`tf.function`, with and without XLA; ONNX Runtime on a tf2onnx export (`onnx_export`) with
`--threads` and with 1 intra-op thread. The forward events are the file's events tiled to
`--forward-events`; the loader (ROOT -> arrays, `data.ditau.load`) is timed separately, and
end-to-end events/s = 1 / (1 / loader rate + 1 / forward rate). FastMTT
(`evaluate.baselines.fastmtt`, vectorised numpy) runs on the file's events, in the same loop.
Every measurement is repeated `--repeats` times in rotating order; the table shows the best and
the median, and cpu/wall (process CPU seconds over wall seconds: about the thread count when
the cores are free, lower when other processes hold them). Each path's outputs are checked
against `model.predict` (max relative difference, last column). `--preset-table` times the
fast paths for every preset of models/tpmt/config.py (untrained).

The CLI turns TensorFlow's oneDNN rewrites off (data.errors.cli) so that reruns give the same
numbers; `TF_ENABLE_ONEDNN_OPTS=1 python -m evaluate.bench.tpmt_speed ...` times them on (the
header says which).

The published FastMTT reference is a quoted figure, not measured here: the public numpy port
WiktorMat/FastMTT ran at about 230 events/s on this machine (issue 14; it cannot be downloaded
in this environment). Goals: TPMT >= 100 x that (23k events/s) and >= 10 x the toolkit's FastMTT.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

from data.errors import UserError, cli

REFERENCE_RATE = 230.0  # events/s, WiktorMat/FastMTT (numpy port) on this machine; quoted
GOAL_VS_REFERENCE, GOAL_VS_TOOLKIT = 100.0, 10.0
LEG_KEYS = ("pt", "eta", "phi", "mass", "kind", "decay_mode")


def onnx_export(model, opset=17):
    """Export a TPMT keras.Model to ONNX; returns the serialized model (bytes).

    The concrete function is frozen first: `tf2onnx.convert.from_function` and keras'
    `model.export(format="onnx")` leave the `Normalization` constants as extra graph inputs
    (tf2onnx 1.17, keras 3.15), so their ONNX files need feeds nobody has (and
    `tf2onnx.convert.from_keras` feeds the dict inputs in the wrong order). Inputs keep the
    model's names (INPUT_NAMES); the output is `tpmt` (B, C) with C = 3 or 5 columns.
    """
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    from models.tpmt.model import INPUT_NAMES

    tf.get_logger().setLevel("ERROR")  # tf2onnx's freezing calls deprecated TF1 helpers
    spec = [
        tf.TensorSpec((None, *model.input[k].shape[1:]), model.input[k].dtype, name=k)
        for k in INPUT_NAMES
    ]
    fn = tf.function(lambda *a: model(dict(zip(INPUT_NAMES, a)), training=False))
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function(*spec))
    inputs, outputs = [t.name for t in frozen.inputs], [t.name for t in frozen.outputs]
    proto, _ = tf2onnx.convert.from_graph_def(
        frozen.graph.as_graph_def(), input_names=inputs, output_names=outputs, opset=opset
    )
    rename = {f"{k}:0": k for k in INPUT_NAMES} | {outputs[0]: "tpmt"}
    g = proto.graph
    for v in (*g.input, *g.output):
        v.name = rename.get(v.name, v.name)
    for node in g.node:
        node.input[:] = [rename.get(s, s) for s in node.input]
        node.output[:] = [rename.get(s, s) for s in node.output]
    return proto.SerializeToString()


def onnx_session(onnx_model, threads=2):
    """ONNX Runtime CPU session with `threads` intra-op threads, sequential execution."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(onnx_model, so, providers=["CPUExecutionProvider"])


def _batches(x, batch_size, pad=False):
    """Yield (dict of batch arrays, real rows); with pad, the last batch is padded to full size."""
    n = len(x["legs"])
    for i in range(0, n, batch_size):
        b = {k: v[i : i + batch_size] for k, v in x.items()}
        m = len(b["legs"])
        if pad and m < batch_size:  # one shape for XLA: no recompilation for the last batch
            b = {k: np.concatenate([v, np.repeat(v[-1:], batch_size - m, 0)]) for k, v in b.items()}
        yield b, m


def onnx_predict(session, x, batch_size):
    """Run an `onnx_session` over a dict of input arrays in batches: (N, C) float32."""
    return np.concatenate([session.run(None, b)[0][:m] for b, m in _batches(x, batch_size)])


def ort_path(threads):
    """Name of the ONNX Runtime path with `threads` intra-op threads."""
    return f"onnxruntime, {threads} thread{'s' if threads > 1 else ''}"


def forward_paths(model, threads=2):
    """name -> fn(x, batch_size) -> (N, C) numpy: every forward path of `model`.

    ONNX Runtime runs with `threads` and with 1 intra-op thread: when other processes hold the
    cores, a second thread that waits for a core makes each batch slower, not faster.
    """
    import keras
    import tensorflow as tf

    xla_copy = keras.models.clone_model(model)
    xla_copy.set_weights(model.get_weights())
    xla_copy.compile(jit_compile=True)
    graph = tf.function(lambda x: model(x, training=False))
    xla = tf.function(lambda x: model(x, training=False), jit_compile=True)
    onnx_model = onnx_export(model)
    paths = {
        "keras predict": lambda x, bs: model.predict(x, batch_size=bs, verbose=0),
        "keras predict, jit_compile": lambda x, bs: xla_copy.predict(x, batch_size=bs, verbose=0),
        "tf.function": lambda x, bs: np.concatenate(
            [graph(b).numpy()[:m] for b, m in _batches(x, bs)]
        ),
        "tf.function, XLA": lambda x, bs: np.concatenate(
            [xla(b).numpy()[:m] for b, m in _batches(x, bs, pad=True)]
        ),
    }
    for t in sorted({threads, 1}, reverse=True):
        session = onnx_session(onnx_model, t)
        paths[ort_path(t)] = lambda x, bs, s=session: onnx_predict(s, x, bs)
    return paths


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def measure(jobs, repeats, desc="timing"):
    """Time each job (name -> (events, fn)) `repeats` times, interleaved in rotating order.

    Returns:
        name -> dict rate (events/s of the fastest run), median_rate, cpu_wall (of the fastest).
    """
    from tqdm import tqdm

    names, runs = list(jobs), {k: [] for k in jobs}
    with tqdm(total=repeats * len(names), desc=desc, file=sys.stderr, leave=False) as bar:
        for r in range(repeats):
            for k in names[r % len(names) :] + names[: r % len(names)]:
                runs[k].append(_timed(jobs[k][1]))
                bar.update()
    out = {}
    for k, ts in runs.items():
        wall, cpu = min(ts)
        n = jobs[k][0]
        out[k] = dict(
            rate=n / wall, median_rate=n / statistics.median(t[0] for t in ts), cpu_wall=cpu / wall
        )
    return out


def _tile(x, n):
    reps = -(-n // len(x["legs"]))
    return {k: np.ascontiguousarray(np.concatenate([v] * reps)[:n]) for k, v in x.items()}


def toy_inputs(config, n, seed=0):
    """Random inputs with the shapes of `config` (for speed only): ~half the slots padded.

    Legs are in the loader's rotated frame (phi of leg 1 = 0), leg 2 at |dphi| in (pi/2, pi):
    roughly back to back, as in di-tau events.
    """
    rng = np.random.default_rng(seed)
    c = config
    legs = rng.normal(size=(n, 2, c.n_leg_features)).astype("float32")
    legs[..., 0] = np.log(rng.uniform(20, 100, (n, 2)))  # log pT_reco
    dphi = rng.choice([-1, 1], n) * rng.uniform(np.pi / 2, np.pi, n)
    kin = np.stack(
        [
            rng.normal(0, 1.5, (n, 2)),
            np.stack([np.zeros(n), dphi], -1),
            rng.uniform(0, 1.5, (n, 2)),
        ],
        -1,
    )
    return dict(
        legs=legs,
        products=rng.normal(size=(n, c.n_products, c.n_product_features)).astype("float32"),
        product_mask=rng.random((n, c.n_products)) < 0.5,
        jets=rng.normal(size=(n, c.n_jets, c.n_jet_features)).astype("float32"),
        jet_mask=rng.random((n, c.n_jets)) < 0.5,
        met=rng.normal(size=(n, c.n_met_features)).astype("float32"),
        leg_kinematics=kin.astype("float32"),
    )


def _ratios(rate, toolkit_rate):
    return dict(vs_toolkit_fastmtt=rate / toolkit_rate, vs_reference=rate / REFERENCE_RATE)


def run_paths(args, model, x, reference, n_forward, extra_jobs=None, configs=None, desc="timing"):
    """Warm up, check and time `configs` [(path, batch size)] of `model` on `x` tiled to n_forward.

    Returns (rows, extra): one dict per config with rate, median_rate, cpu_wall and
    max_rel_diff (to `reference`, the outputs of `model.predict` on the first len(reference)
    events), and the timings of `extra_jobs`.
    """
    paths = forward_paths(model, args.threads)
    configs = configs or [(p, b) for p in paths for b in args.batch_sizes]
    n_ref, xf = min(len(reference), n_forward), _tile(x, n_forward)
    reference = reference[:n_ref]
    head = {k: v[:n_ref] for k, v in xf.items()}
    jobs, diffs = dict(extra_jobs or {}), {}
    for p, b in configs:
        paths[p](xf, b)  # warm-up: tracing, XLA compilation, ORT allocations
        y = paths[p](head, b)
        diffs[(p, b)] = float(np.max(np.abs(y - reference) / np.maximum(np.abs(reference), 1e-6)))
        jobs[(p, b)] = (len(xf["legs"]), lambda p=p, b=b: paths[p](xf, b))
    timing = measure(jobs, args.repeats, desc)
    rows = [
        dict(path=p, batch_size=b, max_rel_diff=diffs[(p, b)], **timing[(p, b)]) for p, b in configs
    ]
    return rows, {k: timing[k] for k in (extra_jobs or {})}


def main_table(args):
    from data.ditau import load
    from evaluate.baselines.collinear import collinear_mass
    from evaluate.baselines.fastmtt import fastmtt
    from evaluate.tpmt import load_tpmt
    from models.tpmt.model import INPUT_NAMES

    model = load_tpmt(args.model)
    from data import schemas

    reading = schemas.reading_options(args)
    d = load(args.input, **reading)  # warm-up of the loader (imports, file cache)
    n = min(args.max_events, len(d["meta"]["channel"]))
    x = {k: d["inputs"][k][:n] for k in INPUT_NAMES}
    legs = d["meta"]["legs"]
    leg = [
        {
            k: legs[s][:n, i]
            for k, s in zip(LEG_KEYS, ("pt", "eta", "phi", "mass", "kind", "decayMode"))
        }
        for i in (0, 1)
    ]
    met = [d["meta"][k][:n] for k in ("met_x", "met_y", "met_cov")]
    n_file = len(d["meta"]["channel"])
    extra = {
        "loader": (n_file, lambda: load(args.input, **reading)),
        "fastmtt": (n, lambda: fastmtt(leg[0], leg[1], *met)),
        "collinear": (n, lambda: collinear_mass(leg[0], leg[1], *met[:2])),
    }
    reference = model.predict(x, batch_size=1024, verbose=0)
    rows, base = run_paths(args, model, x, reference, args.forward_events, extra)
    toolkit, loader = base["fastmtt"]["rate"], base["loader"]["rate"]
    for r in rows:
        r["end_to_end_rate"] = 1.0 / (1.0 / loader + 1.0 / r["rate"])
        r.update(_ratios(r["rate"], toolkit))
    for k in ("fastmtt", "collinear"):
        base[k]["end_to_end_rate"] = 1.0 / (1.0 / loader + 1.0 / base[k]["rate"])
    best = max(rows, key=lambda r: r["rate"])
    keras_best = max((r for r in rows if r["path"] == "keras predict"), key=lambda r: r["rate"])
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1"
    print(
        f"{n} events from {args.input} (tiled to {args.forward_events} for the forward pass), "
        f"model {args.model} ({model.output_shape[-1]} outputs); {os.cpu_count()} CPU cores, "
        f"{args.threads} threads, oneDNN {'on' if onednn else 'off'}, load average "
        f"{os.getloadavg()[0]:.2f}; best of {args.repeats}, interleaved"
    )
    _print_rows(rows, best)
    notes = {
        "loader": f"ROOT -> arrays ({n_file} events)",
        "fastmtt": "toolkit FastMTT, vectorised numpy",
        "collinear": "collinear mass",
    }
    for k, v in base.items():
        e2e = f"{v['end_to_end_rate']:>10,.0f}" if "end_to_end_rate" in v else f"{'':>10}"
        print(
            f"{k:>28} {'':>6} {v['rate']:>10,.0f} {v['median_rate']:>10,.0f} "
            f"{v['cpu_wall']:>5.2f} {e2e}  {notes[k]}"
        )
    print(f"{'WiktorMat/FastMTT':>28} {'':>6} {REFERENCE_RATE:>10,.0f}  quoted, not measured here")
    e2e = best["end_to_end_rate"]
    print(
        f"best: {best['path']}, batch {best['batch_size']}: {best['rate']:,.0f} events/s forward, "
        f"{best['rate'] / keras_best['rate']:.1f}x the best keras predict (batch "
        f"{keras_best['batch_size']}); {e2e:,.0f} events/s with loading"
    )
    goals = {}
    for k, goal, rate, ref in (
        ("vs_reference", GOAL_VS_REFERENCE, REFERENCE_RATE, "WiktorMat/FastMTT, quoted"),
        ("vs_toolkit_fastmtt", GOAL_VS_TOOLKIT, toolkit, "toolkit FastMTT"),
    ):
        fwd, with_load = best["rate"] / rate, e2e / rate
        goals[k] = dict(forward=fwd >= goal, with_loading=with_load >= goal)
        print(
            f"goal >= {goal:.0f}x {rate:,.0f} events/s ({ref}) = {goal * rate:,.0f} events/s: "
            f"forward {'MET' if fwd >= goal else 'NOT MET'} ({fwd:.1f}x), with loading "
            f"{'MET' if with_load >= goal else 'NOT MET'} ({with_load:.1f}x)"
        )
    return x, dict(
        input=args.input,
        events=n,
        forward_events=args.forward_events,
        onednn=onednn,
        model=args.model,
        outputs=int(model.output_shape[-1]),
        paths=rows,
        baselines=base,
        reference_rate=REFERENCE_RATE,
        best=dict(path=best["path"], batch_size=best["batch_size"]),
        goals_met=goals,
    )


def _print_rows(rows, best, label="path"):
    print(
        f"{label:>28} {'batch':>6} {'events/s':>10} {'median':>10} {'cpu/':>5} {'e2e ev/s':>10} "
        f"{'xFastMTT':>9} {'x230/s':>7} {'max rel':>8}"
    )
    print(f"{'':>28} {'':>6} {'(best)':>10} {'':>10} {'wall':>5} {'(+load)':>10} {'toolkit':>9}")
    for r in rows:
        print(
            f"{r['path']:>28} {r['batch_size']:>6} {r['rate']:>10,.0f} {r['median_rate']:>10,.0f} "
            f"{r['cpu_wall']:>5.2f} {r.get('end_to_end_rate', float('nan')):>10,.0f} "
            f"{r.get('vs_toolkit_fastmtt', float('nan')):>9.1f} {r['vs_reference']:>7.0f} "
            f"{r['max_rel_diff']:>8.1e}{'  <- best' if r is best else ''}"
        )


def preset_table(args, x=None, toolkit_rate=None):
    """Forward events/s of every preset of models/tpmt/config.py (untrained), best path each."""
    import keras

    from evaluate.baselines.fastmtt import fastmtt
    from evaluate.bench.fastmtt_speed import toy_events
    from models.tpmt.config import PRESETS, get_config
    from models.tpmt.model import build_model

    if toolkit_rate is None:  # no file: FastMTT on the toy events of evaluate.bench.fastmtt_speed
        l1, l2, met, cov = toy_events(2000, seed=0)
        toolkit_rate = measure(
            {"fastmtt": (2000, lambda: fastmtt(l1, l2, met[:, 0], met[:, 1], cov))},
            args.repeats,
            "fastmtt",
        )["fastmtt"]["rate"]
    # per preset: keras predict (the baseline) and the fast paths of the main table
    configs = [("keras predict", 1024)] + [
        (p, b)
        for p in ("tf.function, XLA", *dict.fromkeys((ort_path(args.threads), ort_path(1))))
        for b in (256, 1024)
    ]
    out = []
    for name in PRESETS:
        config = get_config(name)
        keras.utils.set_random_seed(0)
        model = build_model(config)
        xi = x if x is not None else toy_inputs(config, 4096)
        reference = model.predict(xi, batch_size=1024, verbose=0)
        rows, _ = run_paths(
            args, model, xi, reference, args.preset_events, configs=configs, desc=name
        )
        for r in rows:
            r.update(_ratios(r["rate"], toolkit_rate))
        best = max(rows, key=lambda r: r["rate"])
        out.append(dict(preset=name, parameters=int(model.count_params()), paths=rows, best=best))
    print(
        f"\npresets (untrained, {'file' if x is not None else 'toy'} inputs tiled to "
        f"{args.preset_events}), toolkit FastMTT {toolkit_rate:,.0f} events/s, best of "
        f"{args.repeats}"
    )
    print(
        f"{'preset':>8} {'params':>9} {'best path':>28} {'batch':>6} {'events/s':>10} "
        f"{'cpu/wall':>8} {'xFastMTT':>9} {'x230/s':>7} {'keras predict':>14}"
    )
    for p in out:
        b, base = p["best"], p["paths"][0]
        print(
            f"{p['preset']:>8} {p['parameters']:>9,} {b['path']:>28} {b['batch_size']:>6} "
            f"{b['rate']:>10,.0f} {b['cpu_wall']:>8.2f} {b['vs_toolkit_fastmtt']:>9.1f} "
            f"{b['vs_reference']:>7.0f} {base['rate']:>14,.0f}"
        )
    return dict(toolkit_fastmtt_rate=toolkit_rate, presets=out)


@cli
def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.bench.tpmt_speed",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[1:]),
    )
    p.add_argument("--model", default="saved_models/tpmt/tpmt.keras")
    p.add_argument("--input", help="di-tau ROOT file: the events of the main table")
    p.add_argument("--max-events", type=int, default=4000, help="file events used (default 4000)")
    p.add_argument(
        "--forward-events",
        type=int,
        default=32768,
        help="events per forward pass timing, the file's events tiled (default 32768)",
    )
    p.add_argument(
        "--batch-sizes",
        type=lambda s: [int(v) for v in s.split(",")],
        default=[256, 1024, 4096, 32768],
        help="comma-separated batch sizes (default 256,1024,4096,32768)",
    )
    p.add_argument(
        "--preset-events",
        type=int,
        default=8192,
        help="events per forward pass timing in the preset table (default 8192)",
    )
    p.add_argument("--threads", type=int, default=2, help="TF and ONNX Runtime intra-op threads")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per path (default 3)")
    p.add_argument(
        "--preset-table",
        action="store_true",
        help="also time every TPMT preset (untrained; toy inputs unless --input)",
    )
    p.add_argument("--json", metavar="OUT", help="write the numbers to this JSON file")
    from data import schemas

    schemas.add_arguments(p, working_points=True)
    args = p.parse_args(argv)
    if args.input is None and not args.preset_table:
        raise UserError("give --input FILE.root (main table) and/or --preset-table")
    if args.input is not None and not os.path.exists(args.input):
        raise UserError(f"no such input file: {args.input}")
    sizes = (args.max_events, args.forward_events, args.preset_events, args.threads, args.repeats)
    if min(*sizes, *args.batch_sizes) < 1:
        raise UserError("event counts, --batch-sizes, --threads and --repeats must be >= 1")

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    result = dict(
        cpu_count=os.cpu_count(), threads=args.threads, repeats=args.repeats, load_average=None
    )
    x = toolkit = None
    if args.input is not None:
        x, result["main"] = main_table(args)
        toolkit = result["main"]["baselines"]["fastmtt"]["rate"]
    if args.preset_table:
        result["preset_table"] = preset_table(args, x, toolkit)
    result["load_average"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=float)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
