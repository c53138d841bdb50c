"""Check the scale-out engines on this machine (a CI step, a few minutes on 2 cores).

    python -m evaluate.scaleout_check [--keep DIR]

1. Distributed search: `python -m tuning.cluster` runs a TPMT search as keras-tuner's chief and
   two workers (separate processes on loopback) and checks that every trial ran exactly once.
2. Distributed training through the fit CLI: two processes of
   `KERAS_BACKEND=jax python -m models.tpmt.fit --distribution data-parallel --num-processes 2`
   on loopback (gloo), each streaming its own shard of the chunks; both must end with
   identical weights.
3. The same engine against one process: two processes that each feed half of fixed global
   batches end with the weights of one process that trains on the whole global batches
   (relative difference below 1e-5).

Needs the JAX backend installed (`pip install -e ".[backends]"`). Prints PASS / FAIL per check;
exit status 0 when all pass, 1 otherwise.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

TOLERANCE = 1e-5


def _generate(path, events, seed):
    from data.generate.__main__ import run as generate_run

    generate_run("flat", events, seed, path, progress=False)


def check_search(work):
    from tuning import cluster

    out = os.path.join(work, "search")
    search = ["--data", os.path.join(work, "flat.root"), "--max-trials", "4", "--epochs", "1"]
    search += ["--chunk-events", "100", "--no-mirror", "--out", out]
    code = subprocess.call(
        [sys.executable, "-m", "tuning.cluster", "--model", "tpmt", "--workers", "2"]
        + ["--timeout", "400", "--", *search]
    )
    ok = code == 0 and cluster.check(out, 2)[0]
    return ok, "chief + 2 workers: every trial ran exactly once" if ok else f"exit {code}"


def check_fit(work):
    from tuning.cluster import free_port

    out = os.path.join(work, "fit")
    port = free_port()
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "models.tpmt.fit", "--data", os.path.join(work, "flat.root")]
    cmd += ["--epochs", "2", "--batch-size", "32", "--chunk-events", "100", "--quiet"]
    cmd += ["--distribution", "data-parallel", "--job-addresses", f"127.0.0.1:{port}"]
    cmd += ["--num-processes", "2", "--out", out]
    procs = [
        subprocess.Popen([*cmd, "--process-id", str(k)], env=env, stdout=subprocess.DEVNULL)
        for k in (0, 1)
    ]
    codes = [p.wait(timeout=400) for p in procs]
    if any(codes):
        return False, f"the fit processes exited {codes}"
    import numpy as np

    from models import training

    a, b = (
        training.load_trained(os.path.join(out, *sub, "tpmt.keras")).get_weights()
        for sub in ((), ("process-1",))
    )
    same = all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    return same, "2-process fit: both processes end with identical weights" if same else (
        "2-process fit: the processes' weights differ"
    )


def check_equivalence(work):
    from evaluate.bench.scaleout import max_weight_difference, run_processes

    data = os.path.join(work, "flat.root")
    common = dict(global_batch=64, steps=6, warmup=2, pin=False, weights_dir=work)
    run_processes(data, 2, **common)
    run_processes(data, 1, **common)
    diff = max_weight_difference(os.path.join(work, "n1_p0.npz"), os.path.join(work, "n2_p0.npz"))
    ok = diff < TOLERANCE
    return ok, f"2 processes vs 1 on the same global batches: relative weight difference {diff:.1e}"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m evaluate.scaleout_check", description=__doc__)
    p.add_argument("--keep", default=None, help="work folder to keep (default: a temporary one)")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or tmp
        os.makedirs(work, exist_ok=True)
        _generate(os.path.join(work, "flat.root"), 400, 20261202)
        results = []
        for name, check in (
            ("search", check_search),
            ("fit", check_fit),
            ("equivalence", check_equivalence),
        ):
            t0 = time.monotonic()
            ok, line = check(work)
            took = time.monotonic() - t0
            print(f"{'PASS' if ok else 'FAIL'} {name}: {line} ({took:.0f} s)", flush=True)
            results.append(ok)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
