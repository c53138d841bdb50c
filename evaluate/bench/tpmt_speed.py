"""Benchmark: TPMT batched inference against FastMTT and the collinear mass, same events.

    python -m evaluate.bench.tpmt_speed --model saved_models/tpmt/tpmt.keras --input h125.root

Prints events/s of each method on this machine and the TPMT / FastMTT speed ratio.
"""

import argparse
import os
import time

from data.errors import cli


def _best_rate(fn, n, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


@cli
def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.bench.tpmt_speed", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", default="saved_models/tpmt/tpmt.keras")
    p.add_argument("--input", required=True)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--max-events", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    from data.ditau import load
    from evaluate.baselines.collinear import collinear_mass
    from evaluate.baselines.fastmtt import fastmtt
    from evaluate.tpmt import load_tpmt
    from models import training
    from models.tpmt.model import INPUT_NAMES

    model = load_tpmt(args.model)
    d = load(args.input)
    n = min(args.max_events, len(d["meta"]["channel"]))
    idx = slice(0, n)
    x = {k: d["inputs"][k][idx] for k in INPUT_NAMES}
    legs = training.take(d["meta"]["legs"], idx)
    leg = [
        {
            "pt": legs["pt"][:, i],
            "eta": legs["eta"][:, i],
            "phi": legs["phi"][:, i],
            "mass": legs["mass"][:, i],
            "kind": legs["kind"][:, i],
            "decay_mode": legs["decayMode"][:, i],
        }
        for i in (0, 1)
    ]
    mx, my, cov = d["meta"]["met_x"][idx], d["meta"]["met_y"][idx], d["meta"]["met_cov"][idx]
    model.predict(x, batch_size=args.batch_size, verbose=0)  # warm-up: graph tracing
    rates = {
        "tpmt": _best_rate(
            lambda: model.predict(x, batch_size=args.batch_size, verbose=0), n, args.repeats
        ),
        "fastmtt": _best_rate(lambda: fastmtt(leg[0], leg[1], mx, my, cov), n, args.repeats),
        "collinear": _best_rate(lambda: collinear_mass(leg[0], leg[1], mx, my), n, args.repeats),
    }
    print(
        f"{n} events from {args.input}, {os.cpu_count()} CPU cores, "
        f"TPMT batch {args.batch_size}, best of {args.repeats}"
    )
    for k, v in rates.items():
        print(f"{k:>10}: {v:12,.0f} events/s")
    print(f"TPMT / FastMTT speed ratio: {rates['tpmt'] / rates['fastmtt']:.1f}x (goal: >= 100x)")


if __name__ == "__main__":
    main()
