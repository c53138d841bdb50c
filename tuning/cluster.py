"""Run a search as keras-tuner's chief and N workers on this machine, and check it.

    python -m tuning.cluster --model tpmt --workers 2 -- --data flat.root --max-trials 8 \\
        --out tuning_runs/tpmt_cluster

Everything after `--` is the search command's own arguments (`python -m tuning.<model> ...`).
The chief (KERASTUNER_TUNER_ID=chief) serves keras-tuner's oracle on 127.0.0.1:PORT; each worker
(KERASTUNER_TUNER_ID=tuner<k>) asks it for trials and runs them; all share `--out`. On several
machines run the same search command on each with those three environment variables set by
hand (tuning/search.py). Each process's output goes to OUT/cluster/<id>.log.

When the processes are done this checks, from OUT/trials_run.tsv and the chief's oracle, that
every trial was run exactly once and completed, and prints which worker ran which. Exit status
0 when the check passes, 1 when it fails, 2 for bad arguments.
"""

import argparse
import collections
import os
import socket
import subprocess
import sys
import time

from data.errors import UserError, cli

MODELS = ("tpmt", "partau", "lgatr", "metperceiver", "scouttau")


def parse_args(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    search_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(prog="python -m tuning.cluster", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--port", type=int, default=0, help="the oracle's port (default: a free one)")
    p.add_argument(
        "--timeout", type=float, default=3600, help="seconds before every process is stopped"
    )
    p.add_argument(
        "--pin-cores",
        action="store_true",
        help="pin worker k to CPU core k mod the core count (taskset), one core per worker",
    )
    args = p.parse_args(own)
    args.search_args = search_args
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--out", default=f"tuning_runs/{args.model}")
    args.out = out.parse_known_args(search_args)[0].out
    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    if not search_args:
        raise UserError("give the search's own arguments after --, e.g. -- --data FILE.root")
    return args


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port, proc, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.5)
    return False


def launch(args):
    """Start the chief, wait for its oracle, start the workers; return {id: Popen}."""
    port = args.port or free_port()
    logs = os.path.join(args.out, "cluster")
    os.makedirs(logs, exist_ok=True)
    cmd = [sys.executable, "-m", f"tuning.{args.model}", *args.search_args]
    procs = {}

    def start(tuner_id, core=None):
        env = dict(
            os.environ,
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=str(port),
        )
        full = cmd if core is None else ["taskset", "-c", str(core), *cmd]
        log = open(os.path.join(logs, f"{tuner_id}.log"), "w")
        procs[tuner_id] = subprocess.Popen(full, env=env, stdout=log, stderr=subprocess.STDOUT)

    start("chief")
    if not _wait_for_port(port, procs["chief"], timeout=min(args.timeout, 600)):
        stop(procs)
        raise UserError(f"the chief did not serve its oracle on port {port}: see {logs}/chief.log")
    cores = os.cpu_count() or 1
    for k in range(args.workers):
        start(f"tuner{k}", core=k % cores if args.pin_cores else None)
    return procs


def stop(procs):
    for p in procs.values():
        if p.poll() is None:
            p.kill()


def wait(procs, timeout):
    end = time.monotonic() + timeout
    while any(p.poll() is None for p in procs.values()):
        if time.monotonic() > end:
            stop(procs)
            return False
        time.sleep(1)
    return True


def check(out, workers):
    """(ok, lines): every trial of the chief's oracle run exactly once, and completed."""
    import json

    path = os.path.join(out, "trials_run.tsv")
    if not os.path.exists(path):
        return False, [f"no {path}: no trial ran"]
    runs = [line.split("\t") for line in open(path).read().splitlines() if line]
    ran = collections.Counter(r[0] for r in runs)
    by_worker = collections.defaultdict(list)
    for trial_id, tuner_id, _ in runs:
        by_worker[tuner_id].append(trial_id)
    summary = json.load(open(os.path.join(out, "best_trials.json")))
    completed = summary["trials_completed"]
    lines = [f"{w}: trials {', '.join(sorted(t))}" for w, t in sorted(by_worker.items())]
    ok = True
    twice = sorted(t for t, n in ran.items() if n > 1)
    if twice:
        ok = False
        lines.append(f"FAIL: trials run more than once: {twice}")
    failed = sorted(r[0] for r in runs if r[2] != "COMPLETED")
    if failed:
        ok = False
        lines.append(f"FAIL: trials that did not complete: {failed}")
    if len(ran) != completed:
        ok = False
        lines.append(f"FAIL: {len(ran)} trials run but the oracle has {completed} completed")
    if "chief" in by_worker:
        ok = False
        lines.append("FAIL: the chief ran trials")
    idle = [f"tuner{k}" for k in range(workers) if f"tuner{k}" not in by_worker]
    if idle:
        lines.append(f"note: workers without a trial: {idle}")
    lines.append(
        f"{'PASS' if ok else 'FAIL'}: {len(ran)} trials, each run "
        f"{'exactly once' if not twice else 'not once'}, by {len(by_worker)} workers"
    )
    return ok, lines


@cli
def main(argv=None):
    args = parse_args(argv)
    if os.path.exists(os.path.join(args.out, "trials_run.tsv")):
        # a resumed search appends: the check covers the whole search
        print(f"resuming the search in {args.out}", file=sys.stderr)
    t0 = time.monotonic()
    procs = launch(args)
    print(f"chief and {args.workers} workers started; logs in {args.out}/cluster", flush=True)
    finished = wait(procs, args.timeout)
    codes = {k: p.returncode for k, p in procs.items()}
    print(f"done in {time.monotonic() - t0:.0f} s; exit codes {codes}")
    if not finished or any(codes.values()):
        print(f"FAIL: a process failed or timed out: see {args.out}/cluster/*.log")
        return 1
    ok, lines = check(args.out, args.workers)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
