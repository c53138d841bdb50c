"""Benchmark: training-step time and peak memory of a Perceiver vs a plain encoder, versus N.

    python -m evaluate.bench.metperceiver_scaling
    python -m evaluate.bench.metperceiver_scaling --sizes 500,2000 --batch 4 --out /tmp/scaling

One training step (forward + backward + Adam update on an MSE loss of a 2-vector, i.e. MET
px, py) on toy events of N candidates with 5 features (each event has between N/2 and N real
candidates, the rest padded). Two models of the same width `dim`, both
Dense(5 -> dim) -> ... -> mean-pool -> Dense(2):
  perceiver: LatentCrossAttention(latents, dim, 1 head) + `blocks` LatentSelfAttentionBlocks
      on the latents (O(latents N));
  plain: `blocks` LatentSelfAttentionBlocks of masked self-attention over all N (O(N^2)).
Each (model, N) runs in its own process (KERAS_BACKEND=tensorflow, `--threads` threads, XLA
on as in the fit harness (`--no-jit`: off), an address-space limit of `--memory-limit-gb`, a
wall-clock limit of `--timeout` s; a kind that timed out is not run at larger N): ms/step is
the median of `--repeats` steps after `--warmup` steps (the first traces and compiles), peak
MB is the child's VmHWM (peak resident memory, TensorFlow's ~0.6 GB included). A child that
runs out of memory is reported as OOM, one that runs too long as timeout. The table is printed
and written with a plot to `--out` (metperceiver_scaling.json, .png). Times depend on the
machine and on what else runs on it.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np

from data.errors import UserError, cli

KINDS = ("perceiver", "plain")
NUM_FEATURES = 5
_OOM = re.compile(r"ResourceExhausted|bad_alloc|MemoryError|Cannot allocate|out of memory|OOM")


def toy_batch(batch, n, seed=0):
    """Toy events: features (B, N, 5) float32, zero-padded; mask (B, N) bool; target (B, 2)."""
    rng = np.random.default_rng(seed)
    n_real = rng.integers(max(1, n // 2), n + 1, size=batch)
    mask = np.arange(n)[None] < n_real[:, None]
    features = (rng.normal(size=(batch, n, NUM_FEATURES)) * mask[..., None]).astype("float32")
    return {"features": features, "mask": mask}, rng.normal(size=(batch, 2)).astype("float32")


def build_model(kind, n, dim=32, latents=128, blocks=4, heads=4):
    """The `perceiver` or `plain` model on inputs {"features": (B, N, 5), "mask": (B, N)}."""
    import keras

    from models.layers import LatentCrossAttention, LatentSelfAttentionBlock

    features = keras.Input((n, NUM_FEATURES), name="features")
    mask = keras.Input((n,), dtype="bool", name="mask")
    x = keras.layers.Dense(dim, name="embed")(features)  # (B, N, dim)
    if kind == "perceiver":
        x = LatentCrossAttention(latents, dim, num_heads=1, name="cross")(x, mask=mask)
        for i in range(blocks):
            x = LatentSelfAttentionBlock(dim, heads, name=f"latent_{i}")(x)  # (B, k, dim)
        x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    elif kind == "plain":
        for i in range(blocks):
            x = LatentSelfAttentionBlock(dim, heads, name=f"block_{i}")(x, mask=mask)
        x = keras.layers.GlobalAveragePooling1D(name="pool")(x, mask=mask)  # real only
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return keras.Model({"features": features, "mask": mask}, keras.layers.Dense(2)(x), name=kind)


def _status_mb(field):
    """A `Vm*` field of /proc/self/status in MB (None where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def measure_step(
    kind,
    n,
    batch=4,
    dim=32,
    latents=128,
    blocks=4,
    heads=4,
    repeats=3,
    warmup=1,
    jit_compile=True,
    seed=0,
):
    """Times `repeats` training steps of one model after `warmup` steps, in this process.

    Returns:
        dict(kind, n, status="ok", ms_per_step (median), step_ms, first_step_ms, params,
        base_mb (resident MB before the model), peak_mb (VmHWM after the steps), vm_peak_mb).
    """
    import keras

    keras.utils.set_random_seed(seed)
    x, y = toy_batch(batch, n, seed)
    base_mb = _status_mb("VmRSS")
    model = build_model(kind, n, dim, latents, blocks, heads)
    model.compile(optimizer="adam", loss="mse", jit_compile=jit_compile)
    start = time.perf_counter()
    for _ in range(warmup):
        model.train_on_batch(x, y)
    first = (time.perf_counter() - start) * 1e3
    steps = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss = model.train_on_batch(x, y)
        steps.append((time.perf_counter() - start) * 1e3)
    if not np.isfinite(loss):
        raise FloatingPointError(f"{kind} N={n}: loss {loss}")
    return dict(
        kind=kind,
        n=n,
        status="ok",
        ms_per_step=statistics.median(steps),
        step_ms=steps,
        first_step_ms=first,
        params=model.count_params(),
        base_mb=base_mb,
        peak_mb=_status_mb("VmHWM"),
        vm_peak_mb=_status_mb("VmPeak"),
    )


def _child(spec):
    """Child process: limit memory and threads, measure, print one `RESULT {json}` line."""
    import resource

    limit = int(spec.pop("memory_limit_gb") * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    threads = spec.pop("threads")
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        result = measure_step(**spec)
    except Exception as err:  # an OOM shows as one of several exception types
        text = f"{type(err).__name__}: {err}"
        if not (isinstance(err, MemoryError) or _OOM.search(text)):
            raise
        short = [line for line in text.splitlines() if _OOM.search(line)][-1:] or [text]
        result = dict(kind=spec["kind"], n=spec["n"], status="OOM", error=short[0][:300])
    print("RESULT " + json.dumps(result), flush=True)


def run_child(spec, memory_limit_gb=12.0, timeout_s=600.0, threads=2):
    """Runs `measure_step(**spec)` in a fresh process; status "ok", "OOM", "timeout" or "error"."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        env[var] = str(threads)
    payload = json.dumps(dict(spec, memory_limit_gb=memory_limit_gb, threads=threads))
    cmd = [sys.executable, "-m", "evaluate.bench.metperceiver_scaling", "--child", payload]
    base = dict(kind=spec["kind"], n=spec["n"])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=root
        )
    except subprocess.TimeoutExpired:
        return dict(base, status="timeout")
    return classify(proc.returncode, proc.stdout, proc.stderr, base)


def classify(returncode, stdout, stderr, base):
    """The result of a finished child from its exit status and output."""
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = stderr.strip().splitlines()[-1:] or [f"exit status {returncode}"]
    # SIGKILL: the kernel's OOM killer; SIGABRT with bad_alloc: a failed allocation in C++
    if returncode == -9 or _OOM.search(stderr):
        return dict(base, status="OOM", error=tail[0][:300])
    return dict(base, status="error", error=tail[0][:300])


def fit_growth(ns, ms):
    """Least squares t = a + b N (a, b, R^2) and the log-log slope of t against N."""
    ns, ms = np.asarray(ns, float), np.asarray(ms, float)
    if len(ns) < 2:
        return None
    b, a = np.polyfit(ns, ms, 1)
    resid = ms - (a + b * ns)
    r2 = 1.0 - (resid**2).sum() / max(((ms - ms.mean()) ** 2).sum(), 1e-30)
    slope = float(np.polyfit(np.log(ns), np.log(ms), 1)[0])
    return dict(intercept_ms=float(a), ms_per_candidate=float(b), r2=float(r2), loglog=slope)


def table_rows(results, sizes):
    """One row per N: the two results and plain / perceiver time (None unless both ran)."""
    by_key = {(r["kind"], r["n"]): r for r in results}
    rows = []
    for n in sizes:
        p, q = by_key.get(("perceiver", n)), by_key.get(("plain", n))
        ok = p and q and p["status"] == q["status"] == "ok"
        rows.append(
            dict(
                n=n, perceiver=p, plain=q, ratio=q["ms_per_step"] / p["ms_per_step"] if ok else None
            )
        )
    return rows


def _cells(r):
    if r is None:
        return ["-", "-"]
    if r["status"] != "ok":
        return [r["status"], "-"]
    return [f"{r['ms_per_step']:,.1f}", f"{r['peak_mb']:,.0f}"]


def format_table(rows):
    head = ["N", "perceiver ms/step", "peak MB", "plain ms/step", "peak MB", "plain/perceiver"]
    lines = [head]
    for row in rows:
        ratio = f"{row['ratio']:.1f}x" if row["ratio"] is not None else "-"
        lines.append([f"{row['n']:,}", *_cells(row["perceiver"]), *_cells(row["plain"]), ratio])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines]
    return "\n".join([out[0], "-" * len(out[0]), *out[1:]])


def verdict(rows, memory_limit_gb):
    """Lines: does the Perceiver grow linearly; at the largest N, is the plain encoder OOM or
    >= 10x slower."""
    ok = [
        (r["n"], r["perceiver"]["ms_per_step"])
        for r in rows
        if r["perceiver"] and r["perceiver"]["status"] == "ok"
    ]
    fit = fit_growth(*zip(*ok)) if len(ok) >= 2 else None
    if fit is None:
        lines = ["Perceiver: fewer than two sizes ran, no fit"]
    else:
        linear = fit["r2"] >= 0.95 and fit["loglog"] <= 1.2
        lines = [
            f"Perceiver: {'grows linearly' if linear else 'does NOT grow linearly'} in N: "
            f"t = {fit['intercept_ms']:.1f} ms + {fit['ms_per_candidate'] * 1e3:.2f} ms per "
            f"1000 candidates (R^2 = {fit['r2']:.3f}), log-log slope {fit['loglog']:.2f}"
        ]
    last = rows[-1]
    plain, ratio = last["plain"], last["ratio"]
    if plain and plain["status"] == "OOM":
        what = f"ran out of memory (limit {memory_limit_gb:g} GB)"
    elif ratio is not None:
        what = f"was {ratio:.1f}x slower ({'>=' if ratio >= 10 else '<'} 10x)"
    else:
        what = f"gave {plain['status'] if plain else 'no result'}"
    lines.append(f"At N = {last['n']:,} the plain encoder {what}")
    return lines, fit


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    mplhep.style.use("CMS")
    fig, axes = plt.subplots(1, 2, figsize=(16, 7))
    for kind, marker in zip(KINDS, "os"):
        pts = [(r["n"], r[kind]) for r in rows if r[kind] and r[kind]["status"] == "ok"]
        if pts:
            n = [p[0] for p in pts]
            axes[0].plot(n, [p[1]["ms_per_step"] for p in pts], marker=marker, label=kind)
            axes[1].plot(n, [p[1]["peak_mb"] for p in pts], marker=marker, label=kind)
    for ax, label in zip(axes, ("time per training step [ms]", "peak resident memory [MB]")):
        ax.set(xscale="log", yscale="log", xlabel="candidates per event N", ylabel=label)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _sizes(text):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise UserError(f"--sizes must be positive integers, got {text!r}")
    return sorted(set(sizes))


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,1000,2000,5000,10000", help="values of N")
    for name, default in (
        ("batch", 4),
        ("dim", 32),
        ("latents", 128),
        ("blocks", 4),
        ("heads", 4),
        ("repeats", 3),
        ("warmup", 1),
        ("threads", 2),
    ):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--memory-limit-gb", type=float, default=12.0)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per child")
    parser.add_argument(
        "--no-jit", action="store_true", help="train without XLA (jit_compile=False)"
    )
    parser.add_argument("--out", default=os.path.join("saved_models", "metperceiver", "scaling"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(json.loads(args.child))
    sizes = _sizes(args.sizes)
    for name in ("batch", "dim", "latents", "blocks", "heads", "repeats", "threads"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.dim % args.heads:
        raise UserError(f"--dim {args.dim} is not divisible by --heads {args.heads}")
    if args.memory_limit_gb <= 0 or args.timeout <= 0:
        raise UserError("--memory-limit-gb and --timeout must be positive")
    from tqdm import tqdm

    model_args = {
        k: getattr(args, k)
        for k in ("batch", "dim", "latents", "blocks", "heads", "repeats", "warmup")
    }
    model_args["jit_compile"] = not args.no_jit
    results, timed_out = [], set()
    bar = tqdm([(n, k) for n in sizes for k in KINDS], desc="children", file=sys.stderr)
    for n, kind in bar:
        bar.set_postfix_str(f"{kind} N={n}")
        if kind in timed_out:  # a larger N would only run into the time limit again
            results.append(dict(kind=kind, n=n, status="timeout", skipped=True))
            continue
        r = run_child(
            dict(kind=kind, n=n, **model_args), args.memory_limit_gb, args.timeout, args.threads
        )
        if r["status"] == "timeout":
            timed_out.add(kind)
        results.append(r)
        done = f"{r['ms_per_step']:.1f} ms/step" if r["status"] == "ok" else r["status"]
        tqdm.write(f"{kind:>9} N={n:>6}: {done}", file=sys.stderr)
    rows = table_rows(results, sizes)
    lines, fit = verdict(rows, args.memory_limit_gb)
    print(
        f"batch {args.batch}, dim {args.dim}, latents {args.latents}, blocks {args.blocks}, "
        f"heads {args.heads}, {args.threads} threads, XLA {'off' if args.no_jit else 'on'}, "
        f"median of {args.repeats} steps"
    )
    print(format_table(rows))
    print("\n".join(lines))
    os.makedirs(args.out, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k != "child"}
    with open(os.path.join(args.out, "metperceiver_scaling.json"), "w") as f:
        json.dump(
            dict(settings=settings, results=results, rows=rows, perceiver_fit=fit, verdict=lines),
            f,
            indent=1,
        )
    plot(rows, os.path.join(args.out, "metperceiver_scaling.png"))
    print(f"wrote {args.out}/metperceiver_scaling.json and .png")


if __name__ == "__main__":
    main()
