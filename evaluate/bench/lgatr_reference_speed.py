"""Benchmark: the toolkit's L-GATr on each Keras backend against lgatr 2.0.0 (PyTorch).

    python -m evaluate.bench.lgatr_reference_speed
    python -m evaluate.bench.lgatr_reference_speed --configs small large \\
        --backends tensorflow jax torch --reference-python /work/venv-lgatr/bin/python \\
        --events 1024 --batch-size 256 --out DIR

Configurations: small = the `default` preset of models/lgatr, large = the `large` preset; both
sides run the same blocks, multivector / scalar channels, heads, attention and MLP ratios,
tokens (12 objects + global token + 2 spurion tokens = 15) and batch, on the same random events.
Keras: `build_model` of the preset (embedding, network, readout) trained with Adam and its loss
by `train_on_batch`, inferred by `predict_on_batch`; each backend in a subprocess of its own
(`_lgatr_keras_side.py`, KERAS_BACKEND set before keras is imported), TensorFlow with and
without XLA (`jit_compile`), each with oneDNN's kernels off (`TF_ENABLE_ONEDNN_OPTS=0`, what
the toolkit's CLIs set so that reruns give the same numbers) and on (TensorFlow's own default,
"+oneDNN"; `--onednn` picks). Reference: `lgatr.nets.LGATr` on the toolkit's tokens, trained
with Adam (`_lgatr_side.py`, run by --reference-python, a separate environment with torch and
lgatr that the toolkit never depends on). Warm-up steps (tracing, compilation) are excluded;
the timed steps of all paths run in interleaved rounds (rotating order) so that every side sees
the same load on a shared machine. The table shows events/s of the median step and the ratio
to lgatr (> 1: faster than lgatr).

The reference environment:

    python3 -m venv /work/venv-lgatr
    /work/venv-lgatr/bin/pip install torch==2.13.0 lgatr==2.0.0 numpy
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from data.errors import UserError, cli
from evaluate.bench.partau_speed import (
    PathError,
    TorchSide,
    TorchStepper,
    round_sizes,
    summarize,
    torch_env,
)

CONFIGS = {"small": "default", "large": "large"}  # benchmark name -> models.lgatr preset
BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_REFERENCE_PYTHON = "/work/venv-lgatr/bin/python"
HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE_SIDE = os.path.join(HERE, "_lgatr_side.py")
REPO = os.path.dirname(os.path.dirname(HERE))
REFERENCE = "lgatr (PyTorch eager)"
CREATE_ENV = "python3 -m venv VENV && VENV/bin/pip install torch==2.13.0 lgatr==2.0.0 numpy"
# --onednn -> TF_ENABLE_ONEDNN_OPTS of the TensorFlow sides: the toolkit's CLIs keep oneDNN off
# (data.errors.cli: reruns give the same numbers), TensorFlow's own default is on.
ONEDNN = {"off": ("0",), "on": ("1",), "both": ("0", "1")}


def _progress(msg):
    print(f"[lgatr_reference_speed] {msg}", file=sys.stderr, flush=True)


def side_config(config):
    """The reference network's configuration (JSON-able) at an LGATrConfig preset."""
    from models.lgatr.model import _n_extra_tokens

    return dict(
        num_blocks=config.num_blocks,
        in_mv_channels=1,  # token-mode spurions: one multivector channel per token
        out_mv_channels=2,  # global readout: top and antitop channels
        hidden_mv_channels=config.hidden_mv_channels,
        in_s_channels=config.n_scalar + 2,
        out_s_channels=0,
        hidden_s_channels=config.hidden_s_channels,
        num_heads=config.num_heads,
        attn_ratio=config.attn_ratio,
        mlp_ratio=config.mlp_ratio,
        learning_rate=config.learning_rate,
        tokens=config.n_objects + _n_extra_tokens(config),
    )


def make_inputs(config, n, seed=0):
    """Random events (evaluate.bench.lgatr_throughput) and the toolkit's tokens of them.

    Returns a dict of float32 arrays: fourvectors, scalars, mask, tops (Keras side) and mv
    (n, T, 1, 16), s (n, T, S + 2), mask of tokens `token_mask`, targets (n, 2, 4) as the
    grade-1 components (E, px, py, pz) / momentum_scale (reference side).
    """
    from keras import ops

    from evaluate.bench.lgatr_throughput import _events
    from models.lgatr.layers import TopEventEmbedding

    if config.spurion_mode != "token" or config.readout != "global":
        raise UserError("the benchmark needs spurion_mode='token' and readout='global'")
    ev = _events(config, n, seed)
    emb = TopEventEmbedding(
        momentum_scale=config.momentum_scale,
        spurions=config.spurions,
        beam_spurion=config.beam_spurion,
        spurion_mode=config.spurion_mode,
        global_token=True,
    )
    mv, s, token_mask = emb(ev["fourvectors"], ev["scalars"], object_mask=ev["mask"])
    tops = ev["fourvectors"][:, :2]
    targets = np.concatenate([tops[..., 3:], tops[..., :3]], -1) / config.momentum_scale
    return dict(
        ev,
        tops=tops,
        mv=ops.convert_to_numpy(mv).astype("float32"),
        s=ops.convert_to_numpy(s).astype("float32"),
        token_mask=ops.convert_to_numpy(token_mask).astype(bool),
        targets=targets.astype("float32"),
    )


def check_reference_python(path, timeout=120):
    """Raise UserError (one line, exit 2) unless `path` is a python with torch and lgatr."""
    hint = f"create the reference environment with: {CREATE_ENV}"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise UserError(f"no reference python at {path}; {hint}")
    try:
        res = subprocess.run(
            [path, "-I", "-c", "import torch, lgatr.nets"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise UserError(f"{path} does not run ({type(err).__name__}); {hint}") from None
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["?"])[-1]
        raise UserError(f"{path} cannot import torch and lgatr ({last}); {hint}")


class Side(TorchSide):
    """A side process (any command) spoken to with the protocol of `_lgatr_side.py`."""

    def __init__(self, cmd, log_path, env):
        self.log = open(log_path, "w+")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
            cwd=REPO,
        )
        try:
            self.info = self._read()
        except RuntimeError:
            self.close()
            raise


def start_sides(args, preset, inputs_path, tmp):
    """{label: Side} for the reference and each Keras backend; failures kept in `errors`."""
    sides, errors = {}, {}
    ref_cmd = [args.reference_python, "-I", REFERENCE_SIDE, "--inputs", inputs_path]
    ref_cmd += ["--config", json.dumps(side_config(_config(preset)))]
    ref_cmd += ["--batch", str(args.batch_size), "--threads", str(args.threads)]
    todo = [(REFERENCE, ref_cmd, torch_env())]
    for backend in args.backends:
        cmd = [args.keras_python, "-m", "evaluate.bench._lgatr_keras_side"]
        cmd += ["--inputs", inputs_path, "--preset", preset]
        cmd += ["--batch", str(args.batch_size), "--threads", str(args.threads)]
        env = torch_env() | {"KERAS_BACKEND": backend, "PYTHONPATH": REPO}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        for onednn in ONEDNN[args.onednn] if backend == "tensorflow" else ("0",):
            label = f"Keras {backend}" + ("+oneDNN" if onednn == "1" else "")
            todo.append((label, cmd, env | {"TF_ENABLE_ONEDNN_OPTS": onednn}))
    for label, cmd, env in todo:
        _progress(f"starting {label}")
        try:
            sides[label] = Side(cmd, os.path.join(tmp, f"side{len(sides)}.log"), env)
        except RuntimeError as err:
            errors[label] = str(err).splitlines()[-1][:300]
    return sides, errors


def _config(preset):
    from models.lgatr import get_config

    return get_config(preset)


def path_label(side, mode):
    return side if side == REFERENCE else f"{side}, {mode}"


def measure(paths, warmup, steps, rounds):
    """Warm every path up, then time `steps` steps of each in interleaved rounds.

    Returns (timings {(label, kind): dict(first_step_s, step_s, cpu_s)}, errors).
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


def table_rows(config_name, timings, batch):
    """Rows {config, path, train, infer, train_ratio, infer_ratio} (ratios over lgatr)."""
    rows = {}
    for (label, kind), t in timings.items():
        row = rows.setdefault(label, dict(config=config_name, path=label, train=None, infer=None))
        row[kind] = summarize(t, batch)
    ref = rows.get(REFERENCE)
    for row in rows.values():
        for kind in ("train", "infer"):
            ok = ref and ref[kind] and row[kind]
            row[f"{kind}_ratio"] = row[kind]["rate"] / ref[kind]["rate"] if ok else None
    return list(rows.values())


def format_table(rows):
    """The printed table: events/s of the median step and the ratio to lgatr."""

    def num(value, fmt):
        return "-" if value is None else format(value, fmt)

    head = f"{'config':<7}{'path':<37}{'train ev/s':>11}{'x lgatr':>9}{'infer ev/s':>12}"
    lines = [head + f"{'x lgatr':>9}"]
    for r in rows:
        lines.append(
            f"{r['config']:<7}{r['path']:<37}"
            f"{num(r['train'] and r['train']['rate'], '.0f'):>11}"
            f"{num(r['train_ratio'], '.2f'):>9}"
            f"{num(r['infer'] and r['infer']['rate'], '.0f'):>12}"
            f"{num(r['infer_ratio'], '.2f'):>9}"
        )
    return "\n".join(lines)


def write_json(path, result):
    with open(path, "w") as f:
        json.dump(result, f, indent=1, default=float)


def run_config(args, name, tmp):
    preset = CONFIGS[name]
    config = _config(preset)
    inputs = make_inputs(config, args.events)
    inputs_path = os.path.join(tmp, f"{name}.npz")
    np.savez(inputs_path, **inputs)
    sides, errors = start_sides(args, preset, inputs_path, tmp)
    try:
        paths = {}
        for label, side in sides.items():
            for mode in side.info.get("modes", ["lgatr"]):
                for kind in ("train", "infer"):
                    paths[(path_label(label, mode), kind)] = TorchStepper(side, mode, kind)
        steps = max(1, args.events // args.batch_size)
        timings, path_errors = measure(paths, args.warmup, steps, args.rounds)
    finally:
        for side in sides.values():
            side.close()
    errors |= {f"{k[0]}, {k[1]}": v for k, v in path_errors.items()}
    info = {label: side.info for label, side in sides.items()}
    return table_rows(name, timings, args.batch_size), errors, info, side_config(config)


@cli
def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.bench.lgatr_reference_speed",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[1:]),
    )
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), help="small and/or large")
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), help="Keras backends")
    p.add_argument("--reference-python", default=DEFAULT_REFERENCE_PYTHON)
    p.add_argument(
        "--keras-python", default=sys.executable, help="python of the Keras sides (default: this)"
    )
    p.add_argument("--events", type=int, default=1024, help="timed events per path")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per path")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds of timed steps")
    p.add_argument("--threads", type=int, default=2, help="compute threads of every side")
    p.add_argument(
        "--onednn",
        choices=sorted(ONEDNN),
        default="both",
        help="TensorFlow sides with oneDNN's kernels off (the toolkit's CLIs), on "
        "(TensorFlow's default, TF_ENABLE_ONEDNN_OPTS=1) or both (default)",
    )
    p.add_argument("--out", default=".", help="directory of lgatr_reference_speed.json")
    args = p.parse_args(argv)
    for name in args.configs:
        if name not in CONFIGS:
            raise UserError(f"unknown config {name!r}; choose from {sorted(CONFIGS)}")
    for backend in args.backends:
        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}; choose from {list(BACKENDS)}")
    if min(args.events, args.batch_size, args.warmup, args.rounds, args.threads) < 1:
        raise UserError("--events, --batch-size, --warmup, --rounds, --threads must be >= 1")
    if args.events < args.batch_size:
        raise UserError(f"--events {args.events} is less than one batch ({args.batch_size})")
    if not os.path.isdir(args.out):
        raise UserError(f"--out {args.out} is not a directory")
    check_reference_python(args.reference_python)

    rows, errors, infos, configs = [], {}, {}, {}
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            r, e, info, configs[name] = run_config(args, name, tmp)
            rows += r
            errors |= {f"{name}: {k}": v for k, v in e.items()}
            infos |= {f"{name}: {k}": v for k, v in info.items()}
    load_end = os.getloadavg()[0]
    for name in args.configs:
        c = configs[name]
        print(
            f"{name} ({CONFIGS[name]} preset): {c['num_blocks']} blocks, {c['hidden_mv_channels']}"
            f" mv / {c['hidden_s_channels']} s channels, {c['num_heads']} heads, attn_ratio "
            f"{c['attn_ratio']}, mlp_ratio {c['mlp_ratio']}, {c['tokens']} tokens, batch "
            f"{args.batch_size}"
        )
    for label, info in infos.items():
        print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(
        f"{os.cpu_count()} cores, load average {load_start:.2f} -> {load_end:.2f}; median step of "
        f"{max(1, args.events // args.batch_size)} per path in interleaved rounds, after "
        f"{args.warmup} warm-up"
    )
    print(format_table(rows))
    for key, msg in errors.items():
        print(f"{key}: failed: {msg}")
    out = os.path.join(args.out, "lgatr_reference_speed.json")
    write_json(
        out,
        dict(
            configs=configs,
            batch=args.batch_size,
            events=args.events,
            warmup=args.warmup,
            rounds=args.rounds,
            threads=args.threads,
            cpu_count=os.cpu_count(),
            load_average=[load_start, load_end],
            sides=infos,
            rows=rows,
            errors=errors,
        ),
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
