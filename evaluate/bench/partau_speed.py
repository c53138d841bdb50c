"""Benchmark: the Keras ParT of models/partau against weaver-core's PyTorch ParticleTransformer.

    python -m evaluate.bench.partau_speed
    python -m evaluate.bench.partau_speed --steps 20 --warmup 3 --json partau_speed.json
    python -m evaluate.bench.partau_speed --torch-compile        # also time torch.compile
    python -m evaluate.bench.partau_speed --torch-flush-denormal # also PyTorch with FTZ
    python -m evaluate.bench.partau_speed --keras-gelu-tanh      # also Keras with tanh GELU

Both sides run the ML-Tau seed configuration (CONFIG: 17 features, 20 candidates, embed_dims
[256, 512, 256], pair_embed_dims [64, 64, 64], 8 heads, 2 particle + 2 class-attention blocks,
GELU, 2 classes, no hidden head layers, use_pre_activation_pair=False) on the same random jets
(`toy_jets`: 5-20 real candidates per jet, padding at the end with zero features and zero
four-vectors), with the same optimizer (AdamW, lr 1e-3, weight decay 0.01) and the same number
of threads. Each training step and each inference batch is timed on its own; warm-up steps
(tracing, XLA compilation) are excluded. The timed steps of every path are split into
`--rounds` interleaved rounds (rotating order), so that both sides see the same load on a shared
machine; the table shows jets/s of the median step, the step's seconds and cpu/wall (process
CPU time over wall time: about the thread count on free cores, lower when other processes hold
them).

Keras (this process): `build_part` compiled with `jit_compile=True` (XLA) and with
`jit_compile=False`, trained with `train_on_batch`, inferred with `predict_on_batch`; plus
`model(x, training=False)` under `tf.function(jit_compile=True)`; `--keras-gelu-tanh` adds the
XLA model with the tanh-approximated GELU (a different function from weaver's exact GELU, so
it is shown for information and left out of the ratios). PyTorch: a subprocess in the
benchmark environment (evaluate/bench/_weaver_side.py, which imports torch and weaver only,
driven over a pipe): eager training steps (AdamW + CrossEntropyLoss) and eager inference under
`torch.no_grad()`, the main numbers; `--torch-compile` adds `torch.compile` (about 1.5 min of
compilation on 2 cores), and `--torch-flush-denormal` PyTorch eager with
`torch.set_flush_denormal(True)` (TensorFlow flushes denormal floats to zero in its threads by
default, PyTorch does not; it made no measurable difference here). Each PyTorch variant runs in
a process of its own, with OMP_WAIT_POLICY=PASSIVE unless the caller sets it (`torch_env`:
PyTorch's spinning OpenMP threads were 5-20x slower while other processes held the cores).
weaver's own defaults stay on (trim=True, pair embedding of the real pairs only): that is how
its users run it. Ratios: Keras XLA training over PyTorch eager training, the best Keras
inference path over PyTorch eager inference (and the same over the flush-denormal variant when
it ran).

The benchmark environment is never a dependency of the toolkit:

    python3 -m venv cache/bench-venv
    cache/bench-venv/bin/pip install torch==2.13.0 weaver-core==0.5.3

The CLI turns TensorFlow's oneDNN rewrites off (data.errors.cli);
`TF_ENABLE_ONEDNN_OPTS=1 python -m evaluate.bench.partau_speed` times them on (the header says
which).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from data.errors import UserError, cli

DEFAULT_TORCH_PYTHON = os.path.join("cache", "bench-venv", "bin", "python")
TORCH_SIDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_weaver_side.py")
CREATE_ENV = (
    "python3 -m venv cache/bench-venv && "
    "cache/bench-venv/bin/pip install torch==2.13.0 weaver-core==0.5.3"
)

KERAS_XLA = "Keras, jit_compile=True (XLA)"
KERAS_GRAPH = "Keras, jit_compile=False"
KERAS_CALL = "Keras, tf.function(jit_compile) call"
KERAS_TANH = "Keras, XLA, gelu_tanh (not weaver's)"
TORCH_EAGER = "PyTorch eager"
TORCH_COMPILE = "PyTorch torch.compile"
TORCH_FTZ = "PyTorch eager, flush denormals"

# The ML-Tau seed preset (SingleParTau-like: one class token, 2 + 2 blocks, E = 256).
CONFIG = dict(
    num_features=17,
    num_particles=20,
    num_classes=2,
    embed_dims=(256, 512, 256),
    pair_embed_dims=(64, 64, 64),
    num_heads=8,
    num_layers=2,
    num_cls_layers=2,
    fc_params=(),
    activation="gelu",
    use_pre_activation_pair=False,
    metric="rapidity-phi",
    learning_rate=1e-3,
    weight_decay=0.01,
)


def toy_jets(n, num_particles=20, num_features=17, min_real=5, max_real=None, seed=0):
    """Random jets with realistic padding (for speed only).

    Each jet has between `min_real` and `max_real` (default: all) real candidates, in the first
    slots; the padded slots have zero features, zero four-vectors and mask 0, as ML-Tau's
    loader gives them. Candidates are massless or pions around a jet axis (|eta| < 2,
    constituent pT exponential with mean 3 GeV), features standard normal.

    Returns:
        dict of float32 arrays features (n, P, F), fourvectors (n, P, 4) as (px, py, pz, E),
        mask (n, P) in {0, 1}, and int32 labels (n,) in {0, 1}.
    """
    max_real = num_particles if max_real is None else max_real
    if not 1 <= min_real <= max_real <= num_particles:
        raise ValueError(f"need 1 <= min_real <= max_real <= {num_particles}")
    rng = np.random.default_rng(seed)
    n_real = rng.integers(min_real, max_real + 1, n)
    mask = np.arange(num_particles)[None, :] < n_real[:, None]  # (n, P)
    shape = (n, num_particles)
    pt = -np.sort(-rng.exponential(3.0, shape), axis=1) + 0.1  # pT-ordered, GeV
    eta = rng.uniform(-2, 2, (n, 1)) + rng.normal(0, 0.1, shape)
    phi = rng.uniform(-np.pi, np.pi, (n, 1)) + rng.normal(0, 0.1, shape)
    mass = np.where(rng.random(shape) < 0.6, 0.1396, 0.0)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    fourvectors = np.stack([px, py, pz, energy], -1) * mask[..., None]
    features = rng.normal(size=(*shape, num_features)) * mask[..., None]
    return dict(
        features=features.astype("float32"),
        fourvectors=fourvectors.astype("float32"),
        mask=mask.astype("float32"),
        labels=rng.integers(0, 2, n).astype("int32"),
    )


def summarize(timing, batch):
    """jets/s of the median step (and of the mean), cpu/wall, from a list of step timings."""
    wall, cpu = timing["step_s"], timing.get("cpu_s")
    med = statistics.median(wall)
    out = dict(
        rate=batch / med,
        mean_rate=batch * len(wall) / sum(wall),
        median_step_s=med,
        steps=len(wall),
        first_step_s=timing.get("first_step_s"),
    )
    if cpu:
        out["cpu_wall"] = sum(cpu) / sum(wall)
    return out


def format_table(rows, reference=TORCH_EAGER):
    """The results table: one line per side/path, with ratios to the `reference` row.

    rows: list of dicts with side (str), train and infer (summaries from `summarize`, or None).
    Ratios are this row's jets/s over the reference's (>1: faster than the reference).
    """
    ref = next((r for r in rows if r["side"] == reference), None)

    def num(summary, key, fmt):
        return "-" if summary is None or summary.get(key) is None else format(summary[key], fmt)

    def ratio(r, k):
        if ref is None or r.get(k) is None or ref.get(k) is None:
            return "-"
        return f"{r[k]['rate'] / ref[k]['rate']:.2f}x"

    header = (
        f"{'side':<36} {'train jets/s':>12} {'x torch':>8} {'step s':>7} {'cpu/wall':>8} "
        f"{'infer jets/s':>12} {'x torch':>8} {'batch s':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        t, i = r.get("train"), r.get("infer")
        lines.append(
            f"{r['side']:<36} {num(t, 'rate', ',.0f'):>12} {ratio(r, 'train'):>8} "
            f"{num(t, 'median_step_s', '.3f'):>7} {num(t, 'cpu_wall', '.2f'):>8} "
            f"{num(i, 'rate', ',.0f'):>12} {ratio(r, 'infer'):>8} "
            f"{num(i, 'median_step_s', '.3f'):>7}"
        )
    return "\n".join(lines)


def parameter_line(keras_params, torch_res):
    """One line comparing the parameter counts (trainable, and BatchNorm statistics)."""
    kp, tp = keras_params["parameters"], torch_res["parameters"]
    kb, tb = keras_params["non_trainable"], torch_res["bn_statistics"]
    same = "equal" if kp == tp else f"DIFFER: Keras - PyTorch = {kp - tp:+,}"
    stats = "equal" if kb == tb else f"DIFFER: {kb - tb:+,}"
    return (
        f"trainable parameters: Keras {kp:,}, PyTorch {tp:,} ({same}); BatchNorm statistics: "
        f"Keras {kb:,}, PyTorch {tb:,} ({stats})"
    )


def keras_over_torch(rows, reference=TORCH_EAGER):
    """{"train": Keras XLA / reference, "infer": best Keras path / reference} (jets/s ratios).

    A ratio is left out when a row it needs is missing; {} without the reference row. The
    gelu_tanh row (KERAS_TANH) computes another function and is never a "Keras path" here.
    """
    by_side = {r["side"]: r for r in rows}
    ref = by_side.get(reference)
    if ref is None:
        return {}
    out = {}
    xla = by_side.get(KERAS_XLA, {}).get("train")
    if xla and ref.get("train"):
        out["train"] = xla["rate"] / ref["train"]["rate"]
    keras_infer = [
        r["infer"]["rate"]
        for r in rows
        if r["side"].startswith("Keras") and r["side"] != KERAS_TANH and r["infer"]
    ]
    if keras_infer and ref.get("infer"):
        out["infer"] = max(keras_infer) / ref["infer"]["rate"]
    return out


def ratio_line(ratios, reference=TORCH_EAGER):
    """'Keras/PyTorch: training 1.23x (...), inference ...' for the `keras_over_torch` ratios."""

    def fmt(k):
        return f"{ratios[k]:.2f}x" if k in ratios else "-"

    return (
        f"Keras/{reference}: training {fmt('train')} (Keras XLA), inference {fmt('infer')} "
        "(best Keras path)"
    )


def check_torch_python(path, timeout=120):
    """Raise UserError (one line, exit 2) unless `path` is a python with torch and weaver."""
    hint = f"create the PyTorch benchmark environment with: {CREATE_ENV}"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise UserError(f"no benchmark python at {path}; {hint}")
    probe = "import torch, weaver.nn.model.ParticleTransformer"
    try:
        res = subprocess.run(
            [path, "-I", "-c", probe], capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise UserError(f"{path} does not run ({type(err).__name__}); {hint}") from None
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["?"])[-1]
        raise UserError(f"{path} cannot import torch and weaver ({last}); {hint}")


class TorchSide:
    """evaluate/bench/_weaver_side.py in the benchmark env, driven over its stdin / stdout."""

    def __init__(self, args, inputs_path, log_path, model="eager", flush_denormal=False):
        config = {k: list(v) if isinstance(v, tuple) else v for k, v in CONFIG.items()}
        cmd = [args.torch_python, "-I", TORCH_SIDE, "--inputs", inputs_path]
        cmd += ["--config", json.dumps(config), "--batch", str(args.batch)]
        cmd += ["--threads", str(args.threads), "--model", model]
        cmd += ["--flush-denormal"] if flush_denormal else []
        self.log = open(log_path, "w+")  # its stderr, for the error message
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=torch_env(),
        )
        try:
            self.info = self._read()
        except RuntimeError:
            self.log.close()
            raise

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.log.seek(0)
            tail = "\n".join(self.log.read().strip().splitlines()[-15:])
            raise RuntimeError(f"the PyTorch side stopped (exit {code}):\n{tail}")
        return json.loads(line)

    def ask(self, op, name, n):
        self.proc.stdin.write(f"{op} {name} {n}\n")
        self.proc.stdin.flush()
        res = self._read()
        if "error" in res:
            raise PathError(res["error"])
        return res

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def torch_env(environ=None):
    """The PyTorch side's environment: OMP_WAIT_POLICY=PASSIVE unless the caller set one.

    PyTorch's OpenMP threads spin at every barrier by default; while other processes held the
    cores, that made its 2-thread steps 5-20x slower than 1 thread (0.24 s vs 4-5 s per
    training step of 64 jets), a property of the shared machine, not of the model. PASSIVE
    threads sleep instead: 2-thread steps then ran at the 1-thread speed or better.
    """
    env = dict(os.environ if environ is None else environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


class PathError(Exception):
    """One timed path failed (e.g. torch.compile): it is dropped and reported."""


class TorchStepper:
    """A Stepper-like view of one path ("eager" or "compile") and kind of the PyTorch side."""

    def __init__(self, side, name, kind):
        self.side, self.name, self.kind = side, name, kind

    def warm(self, n):
        return self.side.ask(f"warmup-{self.kind}", self.name, n)["first_step_s"]

    def run(self, n):
        return self.side.ask(self.kind, self.name, n)


def _batches(jets, batch):
    """(x dict, labels) batches of `batch` jets; an incomplete last batch is dropped."""
    n = len(jets["labels"]) // batch * batch
    xs = [
        {k: jets[k][i : i + batch] for k in ("features", "fourvectors", "mask")}
        for i in range(0, n, batch)
    ]
    ys = [jets["labels"][i : i + batch] for i in range(0, n, batch)]
    return list(zip(xs, ys))


def build_keras(jit_compile, activation=None):
    """The toolkit's ParT at CONFIG, compiled for training (AdamW + sparse CE on logits).

    activation: overrides CONFIG's (e.g. "gelu_tanh" for the extra row).
    """
    import keras

    from models.partau.part import build_part

    keras.utils.set_random_seed(0)
    c = CONFIG
    model = build_part(
        num_features=c["num_features"],
        num_classes=c["num_classes"],
        embed_dims=c["embed_dims"],
        pair_embed_dims=c["pair_embed_dims"],
        num_heads=c["num_heads"],
        num_layers=c["num_layers"],
        num_cls_layers=c["num_cls_layers"],
        fc_params=c["fc_params"],
        activation=activation or c["activation"],
        use_pre_activation_pair=c["use_pre_activation_pair"],
        metric=c["metric"],
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=c["learning_rate"], weight_decay=c["weight_decay"]
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def keras_paths(batches, gelu_tanh=False):
    """{(side, "train" | "infer"): Stepper} of the Keras model, and its parameter counts.

    Training: `train_on_batch` of the model compiled with and without XLA. Inference:
    `predict_on_batch` of both, and `model(x, training=False)` under
    `tf.function(jit_compile=True)` on tensors, as a deployment would call it. gelu_tanh:
    also the XLA model with activation "gelu_tanh" (KERAS_TANH).
    """
    import tensorflow as tf

    from evaluate.bench._weaver_side import Stepper

    paths, params = {}, None
    for name, jit in ((KERAS_XLA, True), (KERAS_GRAPH, False)):
        model = build_keras(jit)
        if params is None:
            params = dict(
                parameters=int(sum(np.prod(w.shape) for w in model.trainable_weights)),
                non_trainable=int(sum(np.prod(w.shape) for w in model.non_trainable_weights)),
            )
        paths[(name, "train")] = Stepper(lambda x, y, m=model: m.train_on_batch(x, y), batches)
        paths[(name, "infer")] = Stepper(lambda x, y, m=model: m.predict_on_batch(x), batches)
        if jit:
            fn = tf.function(lambda x, m=model: m(x, training=False), jit_compile=True)
            tensors = [({k: tf.constant(v) for k, v in x.items()}, y) for x, y in batches]
            paths[(KERAS_CALL, "infer")] = Stepper(lambda x, y, f=fn: f(x).numpy(), tensors)
    if gelu_tanh:
        model = build_keras(True, activation="gelu_tanh")
        paths[(KERAS_TANH, "train")] = Stepper(
            lambda x, y, m=model: m.train_on_batch(x, y), batches
        )
        paths[(KERAS_TANH, "infer")] = Stepper(lambda x, y, m=model: m.predict_on_batch(x), batches)
    return paths, params


def round_sizes(steps, rounds):
    """Split `steps` timed steps into at most `rounds` rounds, as evenly as possible."""
    rounds = max(1, min(rounds, steps))
    return [steps // rounds + (i < steps % rounds) for i in range(rounds)]


def measure(paths, warmup, steps, rounds):
    """Warm every path up, then time them in interleaved rounds (rotating order).

    Returns (timings {path: dict(first_step_s, step_s, cpu_s)}, errors {path: message}).
    A path that fails (PathError) is dropped and its error kept.
    """
    timings, errors = {}, {}
    for key, stepper in paths.items():
        _progress(f"warm-up: {key[0]}, {key[1]}")
        try:
            timings[key] = dict(first_step_s=stepper.warm(warmup), step_s=[], cpu_s=[])
        except PathError as err:
            errors[key] = str(err)
    sizes = round_sizes(steps, rounds)
    for r, n in enumerate(sizes):
        _progress(f"round {r + 1}/{len(sizes)}: {n} step(s) per path")
        keys = [k for k in timings if k not in errors]
        for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
            try:
                res = paths[key].run(n)
            except PathError as err:
                errors[key] = str(err)
                continue
            timings[key]["step_s"] += res["step_s"]
            timings[key]["cpu_s"] += res["cpu_s"]
    return {k: v for k, v in timings.items() if k not in errors}, errors


def _progress(msg):
    print(f"[partau_speed] {msg}", file=sys.stderr, flush=True)


def _versions():
    import keras
    import tensorflow as tf

    return dict(keras=keras.__version__, tensorflow=tf.__version__)


def table_rows(timings, batch):
    """One row per side, in the order the sides first appear, from the `measure` timings."""
    rows = {}
    for (side, kind), t in timings.items():
        rows.setdefault(side, dict(side=side, train=None, infer=None))[kind] = summarize(t, batch)
    return list(rows.values())


@cli
def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.bench.partau_speed",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[1:]),
    )
    p.add_argument(
        "--torch-python",
        default=DEFAULT_TORCH_PYTHON,
        help=f"benchmark env python with torch + weaver-core (default {DEFAULT_TORCH_PYTHON})",
    )
    p.add_argument("--batch", type=int, default=512, help="jets per batch (default 512)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per path (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds the steps are split into"
    )
    p.add_argument("--threads", type=int, default=2, help="compute threads, both sides")
    p.add_argument("--batches", type=int, default=4, help="distinct batches, cycled (default 4)")
    p.add_argument("--torch-compile", action="store_true", help="also time torch.compile")
    p.add_argument(
        "--torch-flush-denormal",
        action="store_true",
        help="also time PyTorch eager with torch.set_flush_denormal(True), as TF flushes them",
    )
    p.add_argument(
        "--keras-gelu-tanh",
        action="store_true",
        help="also time the Keras XLA model with the tanh GELU (for information, no ratio)",
    )
    p.add_argument("--json", metavar="OUT", help="write the numbers to this JSON file")
    args = p.parse_args(argv)
    sizes = (args.batch, args.steps, args.warmup, args.rounds, args.threads, args.batches)
    if min(sizes) < 1:
        raise UserError("--batch, --steps, --warmup, --rounds, --threads, --batches must be >= 1")
    check_torch_python(args.torch_python)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)  # torch eager: one op at a time

    c = CONFIG
    jets = toy_jets(args.batch * args.batches, c["num_particles"], c["num_features"], seed=0)
    loads = {"start": os.getloadavg()[0]}
    sides = [(TORCH_EAGER, "eager", False)]
    sides += [(TORCH_FTZ, "eager", True)] if args.torch_flush_denormal else []
    sides += [(TORCH_COMPILE, "compile", False)] if args.torch_compile else []
    torch = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "jets.npz")
        np.savez(path, **jets)
        try:
            paths, keras_params = keras_paths(_batches(jets, args.batch), args.keras_gelu_tanh)
            for name, model, ftz in sides:  # one process each: no shared state between them
                _progress(f"starting the PyTorch side: {name}")
                log = os.path.join(tmp, f"torch_{len(torch)}.log")
                torch[name] = TorchSide(args, path, log, model, ftz)
                for kind in ("train", "infer"):
                    paths[(name, kind)] = TorchStepper(torch[name], model, kind)
            timings, errors = measure(paths, args.warmup, args.steps, args.rounds)
        finally:
            for side in torch.values():
                side.close()
    loads["end"] = os.getloadavg()[0]
    rows = table_rows(timings, args.batch)
    info = torch[TORCH_EAGER].info
    versions = _versions() | dict(torch=info["torch"], weaver_core=info["weaver"])
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1"
    print(
        f"ParT, ML-Tau seed config: {c['num_features']} features, {c['num_particles']} "
        f"candidates (5-20 real), batch {args.batch}, embed {list(c['embed_dims'])}, pair "
        f"{list(c['pair_embed_dims'])}, {c['num_heads']} heads, {c['num_layers']}+"
        f"{c['num_cls_layers']} blocks, AdamW"
    )
    print(
        f"keras {versions['keras']}, tensorflow {versions['tensorflow']} (oneDNN "
        f"{'on' if onednn else 'off'}); torch {versions['torch']}, weaver-core "
        f"{versions['weaver_core']} (OMP_WAIT_POLICY={torch_env()['OMP_WAIT_POLICY']}); "
        f"{args.threads} threads on {os.cpu_count()} cores, load "
        f"average {loads['start']:.2f} -> {loads['end']:.2f}; median step of {args.steps} per "
        f"path in {len(round_sizes(args.steps, args.rounds))} interleaved rounds, after "
        f"{args.warmup} warm-up"
    )
    print(format_table(rows))
    for (side, kind), msg in errors.items():
        print(f"{side}, {kind}: failed: {msg}")
    print(parameter_line(keras_params, info))
    ratios = {}
    for reference in (TORCH_EAGER, TORCH_FTZ):
        r = keras_over_torch(rows, reference)
        if r:
            ratios[reference] = r
            print(ratio_line(r, reference))
    if args.json:
        result = dict(
            config=CONFIG,
            batch=args.batch,
            steps=args.steps,
            warmup=args.warmup,
            rounds=args.rounds,
            threads=args.threads,
            cpu_count=os.cpu_count(),
            onednn=onednn,
            versions=versions,
            torch_omp_wait_policy=torch_env()["OMP_WAIT_POLICY"],
            load_average=loads,
            parameters=dict(
                keras=keras_params,
                torch=info["parameters"],
                torch_bn_statistics=info["bn_statistics"],
            ),
            rows=rows,
            errors={f"{s}, {k}": m for (s, k), m in errors.items()},
            ratios_keras_over_torch=ratios,  # by PyTorch reference row
            raw={f"{s}, {k}": t for (s, k), t in timings.items()},
        )
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=float)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
