"""Side-by-side per-channel table of several `evaluate.tpmt` runs (their metrics.json).

    python -m evaluate.tpmt_compare --run "with products=eval/full" \
        --run "without products=eval/noprod" --out table.md

Each cell is median m/m_true / resolution (P84 - P16) / (2 median) of TPMT, for every
process/channel that all runs share; FastMTT's from the first run that has it is the last column.
"""

import argparse
import json
import os
import sys

from data.errors import UserError, cli


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.tpmt_compare", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--run", action="append", required=True, metavar="LABEL=DIR", help="an evaluate.tpmt out"
    )
    p.add_argument("--out", required=True, help="the markdown table to write")
    p.add_argument("--processes", nargs="+", default=["h125", "dy"])
    return p.parse_args(argv)


def read_runs(specs):
    runs = {}
    for spec in specs:
        label, sep, folder = spec.partition("=")
        if not sep or not label or not folder:
            raise UserError(f"--run takes LABEL=DIR, got '{spec}'")
        path = os.path.join(folder, "metrics.json")
        try:
            with open(path) as f:
                runs[label] = json.load(f)["per_process_channel"]
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"cannot read {path}: {err}") from None
    return runs


def table(runs, processes):
    labels = list(runs)
    fast = next((r for r in runs.values() if any("fastmtt" in v for v in r.values())), None)
    keys = [k for k in next(iter(runs.values())) if all(k in r for r in runs.values())]
    keys = [k for k in keys if k.split("/")[0] in processes]
    head = "| sample | " + " | ".join(labels) + (" | FastMTT |" if fast else " |")
    rows = [head, "|" + "---|" * (len(labels) + 1 + bool(fast))]

    def cell(m):
        return f"{m['median']:.3f} / {m['resolution']:.3f}"

    for k in keys:
        n = runs[labels[0]][k]["tpmt"]["n"]
        cells = [cell(runs[label][k]["tpmt"]) for label in labels]
        if fast:
            cells.append(cell(fast[k]["fastmtt"]) if "fastmtt" in fast[k] else "-")
        rows.append(f"| {k} (n={n}) | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


@cli
def main(argv=None):
    args = parse_args(argv)
    from data import checks

    checks.writable_file(args.out)
    text = table(read_runs(args.run), args.processes)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
