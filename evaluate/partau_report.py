"""Model card of ParTau (saved_models/partau/README.md) from `evaluate.partau` outputs.

    python -m evaluate.partau_report --metrics saved_models/partau/metrics.json \
        --out saved_models/partau/README.md [--notes saved_models/partau/card_notes.md]

Every number in the tables is read from metrics.json and the run_config.json of each model;
hand-written notes (diagnosis, what is not met) are appended from --notes.
"""

import argparse
import json
import os

from data.errors import UserError, cli
from data.partau import DECAY_MODES

COLUMNS = (
    ("auc", "AUC", "{:.4f}"),
    ("fake_rate_at_eff60", "fake rate @ 60% tau eff.", "{:.2e}"),
    ("fake_rate_at_eff80", "fake rate @ 80%", "{:.2e}"),
    ("dm_accuracy", "decay-mode accuracy", "{:.3f}"),
    ("charge_misid", "charge mis-ID", "{:.2e}"),
    ("pt_resolution", "pT resolution", "{:.4f}"),
    ("pt_response_median", "pT response", "{:.4f}"),
    ("eta_resolution", "eta resolution", "{:.2e}"),
    ("phi_resolution", "phi resolution (rad)", "{:.2e}"),
)


def _cell(row, key, fmt):
    value = row.get(key)
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "n/a"
    return fmt.format(value)


def render(metrics, folder, notes=""):
    methods = [m for m in metrics["models"]] + ["hps", "reco_jet", "jet_charge"]
    lines = ["# ParTau: Particle Transformer for hadronic taus at FCC-ee", ""]
    lines += [
        "MultiParTau and SingleParTau (seed 002, ML-Tau model card) on the toolkit's own FCC-ee "
        "Z-pole jets (`python -m data.generate fcctau`), compared with the HPS-like baseline "
        "(`evaluate/baselines/hps.py`), the reconstructed jet and the jet charge Q_kappa "
        "(kappa = 1).",
        "",
        "## Test jets (fresh seeds, never used in training)",
        "",
        "Inputs: " + ", ".join(f"`{p}`" for p in metrics["inputs"]),
        "",
        f"- tau jets: {metrics['jets']['tau']} (per decay-mode class "
        + ", ".join(f"{n} {c}" for n, c in zip(DECAY_MODES, metrics["jets"]["tau_per_class"]))
        + f"); quark/gluon jets: {metrics['jets']['background']}; jets of leptonic taus "
        f"excluded: {metrics['jets']['leptonic_tau_excluded']}",
        "",
        "| method | " + " | ".join(c[1] for c in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for m in methods:
        row = metrics[m]
        lines.append(f"| {m} | " + " | ".join(_cell(row, k, f) for k, _, f in COLUMNS) + " |")
    lines += [
        "",
        "Fake rate: quark/gluon-jet efficiency at the score threshold that keeps 60% (80%) of "
        "the tau jets, unweighted test jets. Resolutions: (P84 - P16) / 2 of pT_reco / "
        "pT_gen,vis and of the eta, phi differences, on true tau jets. Charge mis-ID and "
        "decay-mode accuracy on all true tau jets (a method without a prediction counts as "
        "wrong: HPS fails decay-mode finding on some taus).",
        "",
        "Decay-mode F1 per class (" + ", ".join(DECAY_MODES) + "):",
        "",
    ]
    for m in methods:
        f1 = metrics[m].get("dm_f1")
        if f1:
            lines.append(f"- {m}: " + ", ".join("n/a" if v != v else f"{v:.3f}" for v in f1))
    lines += ["", "Plots: `roc.png`, `pt_response.png`, `dm_confusion_<method>.png`.", ""]
    lines += ["## Training", ""]
    for name, path in metrics["models"].items():
        run = os.path.join(folder, os.path.splitext(os.path.basename(path))[0], "run_config.json")
        if not os.path.exists(run):
            continue
        with open(run) as f:
            rc = json.load(f)
        c = rc["config"]
        pcgrad = c["pcgrad"] and c["variant"] == "multi"
        lines.append(
            f"- **{name}** (`{path}`): preset `{rc['args']['preset']}`, embed {c['embed_dims']}, "
            f"pair embed {c['pair_embed_dims']}, {c['num_heads']} heads, {c['num_layers']}+"
            f"{c['num_cls_layers']} layers, batch {c['batch_size']}, peak lr "
            f"{c['learning_rate']}, {c['schedule']}, PCGrad {pcgrad}"
            f"; {rc['training_jets']} training jets ({rc['training_tau_jets']} tau, per class "
            f"{rc['training_per_class']}), {rc['validation_jets']} validation jets."
        )
    lines += ["", notes.strip(), ""]
    return "\n".join(lines)


@cli
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m evaluate.partau_report")
    p.add_argument("--metrics", default="saved_models/partau/metrics.json")
    p.add_argument("--out", default="saved_models/partau/README.md")
    p.add_argument("--notes", default=None)
    args = p.parse_args(argv)
    if not os.path.exists(args.metrics):
        raise UserError(f"no such file: {args.metrics}")
    with open(args.metrics) as f:
        metrics = json.load(f)
    notes = open(args.notes).read() if args.notes and os.path.exists(args.notes) else ""
    with open(args.out, "w") as f:
        f.write(render(metrics, os.path.dirname(args.metrics), notes))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
