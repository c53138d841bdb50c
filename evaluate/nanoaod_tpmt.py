"""TPMT on a real NanoAOD file: the selection step by step and the predicted masses.

    python -m evaluate.nanoaod_tpmt --model saved_models/tpmt/tpmt_dropproducts.keras \
        --input tests/data/files/nanoAOD_2015_CMS_Open_Data_ttbar.root \
        --out saved_models/tpmt/nanoaod

From the default working points (data/schemas.py) to no identification at all, each step
counts the events with a selected lepton + tau_h or tau_h + tau_h pair, what the tau_h legs are
in the generator record where the file has `Tau_genPartFlav` (NanoAOD's flavour: 5 = genuine
tau_h, 1 / 2 / 15 = a prompt or tau-decay electron / muon, 3 / 4 / 22 = other leptons, 0 = a jet
or nothing), and the TPMT mass of each selected event. Writes nanoaod_tpmt.json and
nanoaod_tpmt.png.
"""

import argparse
import json
import os
import sys

import numpy as np

from data.errors import UserError, cli

# selection steps: name -> WorkingPoints fields
STEPS = {
    "default": {},
    "tau ID off": {"tau_id": "none"},
    "tau and lepton IDs off": {"tau_id": "none", "muon_id": "none", "electron_id": "none"},
    "no IDs, no lepton-tau overlap removal": {
        "tau_id": "none",
        "muon_id": "none",
        "electron_id": "none",
        "lepton_tau_dr": 0.0,
    },
}
FLAVOURS = {0: "jet / none", 1: "prompt e", 2: "prompt mu", 5: "tau_h", 15: "e / mu from tau"}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.nanoaod_tpmt", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", default="saved_models/tpmt/tpmt_dropproducts.keras")
    p.add_argument("--input", nargs="+", required=True, help="NanoAOD files")
    p.add_argument("--out", required=True, help="output folder")
    from data import schemas

    schemas.add_arguments(p)
    return p.parse_args(argv)


def tau_flavours(paths, d):
    """Tau_genPartFlav of each tau_h leg of the selected events, or None without the branch."""
    import awkward as ak

    from data import io, schemas

    if "Tau_genPartFlav" not in schemas.keys_of(paths[0]):
        return None
    flav = io.read_branches(paths, ["Tau_genPartFlav"])["Tau_genPartFlav"]
    legs = d["meta"]["legs"]
    out = []
    for s in (0, 1):
        hadronic = legs["kind"][:, s] == 1
        slot = legs["tau_slot"][:, s].astype(np.int64)
        rows = flav[d["meta"]["entry"][hadronic]]
        out += ak.to_list(rows[ak.local_index(rows) == slot[hadronic][:, None]])
    return [int(f) for sub in out for f in sub]


def run(model, paths, schema="auto", mapping=None):
    from data import ditau, schemas
    from models.tpmt.model import predict_named

    steps = {}
    for name, fields in STEPS.items():
        try:
            wp = schemas.WorkingPoints(**fields)
            d = ditau.load(paths, schema=schema, mapping=mapping, working_points=wp)
        except UserError as err:
            if "no event" not in str(err):
                raise
            steps[name] = {"events": 0, "channels": {}, "tau_flavour": {}, "m_tpmt": []}
            continue
        m = predict_named(model, d["inputs"])["m_tautau"]
        flav = tau_flavours(paths, d)
        steps[name] = {
            "events": int(len(m)),
            "entries": d["meta"]["entry"].tolist(),
            "channels": {
                c: int(np.sum(d["meta"]["channel"] == i)) for c, i in ditau.CHANNELS.items()
            },
            "tau_flavour": {
                FLAVOURS.get(f, str(f)): flav.count(f) for f in sorted(set(flav or []))
            },
            "m_tpmt": [round(float(x), 2) for x in m],
        }
    return steps


def plot(steps, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    bins = np.linspace(0, 300, 31)
    for name, step in steps.items():
        if step["events"]:
            ax.hist(
                step["m_tpmt"], bins, histtype="step", lw=1.5, label=f"{name} ({step['events']})"
            )
    ax.set_xlabel("TPMT m_tautau [GeV]")
    ax.set_ylabel("events")
    ax.set_title(title, fontsize=9)
    zero = [n for n, s in steps.items() if not s["events"]]
    if zero:
        ax.text(0.98, 0.95, "no event: " + "; ".join(zero), transform=ax.transAxes,
                ha="right", va="top", fontsize=7)  # fmt: skip
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@cli
def main(argv=None):
    args = parse_args(argv)
    from data import checks, io

    checks.writable_dir(args.out)
    checks.model_file(args.model, "TPMT")
    paths = io.expand_paths(args.input)
    n = sum(io.num_entries(p) for p in paths)
    from data import schemas
    from evaluate.tpmt import load_tpmt

    reading = schemas.reading_options(args)
    steps = run(load_tpmt(args.model), paths, reading["schema"], reading["mapping"])
    os.makedirs(args.out, exist_ok=True)
    result = {"inputs": paths, "model": args.model, "entries": n, "steps": steps}
    with open(os.path.join(args.out, "nanoaod_tpmt.json"), "w") as f:
        json.dump(result, f, indent=1)
    title = f"{os.path.basename(paths[0])}: {n} events"
    plot(steps, os.path.join(args.out, "nanoaod_tpmt.png"), title)
    for name, s in steps.items():
        print(f"{name}: {s['events']} of {n} events, channels {s['channels']}, tau_h legs "
              f"{s['tau_flavour']}, m_tpmt {s['m_tpmt']}")  # fmt: skip
    print(f"wrote nanoaod_tpmt.json and nanoaod_tpmt.png to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
