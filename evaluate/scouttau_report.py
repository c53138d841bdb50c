"""Model card of ScoutTau (saved_models/scouttau/README.md) from measured outputs.

    python -m evaluate.scouttau_report --metrics saved_models/scouttau/metrics.json \
        --out saved_models/scouttau/README.md [--notes saved_models/scouttau/card_notes.md]

The tables come from metrics.json (`python -m evaluate.scouttau`) and the models'
run_config.json; hand-written notes (diagnosis, commands, what is not met) are appended.
"""

import argparse
import json
import os

from data.errors import cli
from evaluate import cards

METHODS = (("transformer", "ScoutTau transformer (CLUE)"), ("nnpuppitau", "NNPuppiTau-like"))
OTHER_RUNS = (("puppi_inputs", "ScoutTau transformer, PUPPI inputs"),
              ("pf_inputs", "ScoutTau transformer, PF inputs"))  # fmt: skip
RECO = (("clue", "CLUE (PUPPI)"), ("antikt", "anti-kT R = 0.4 (PUPPI)"),
        ("seeded_cone", "seeded cone 0.4 (PUPPI)"), ("clue_pf", "CLUE (PF)"))  # fmt: skip


def _fmt(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def _wp(wp):
    q = "none" if wp["charge_cut"] is None else f"opposite, > {wp['charge_cut']:g}"
    dz = "none" if wp["dvz_cut"] is None else f"< {wp['dvz_cut']:g} cm"
    return f"score > {wp['score_cut']:.4f}; charge {q}; dvz {dz}"


def _run(folder, stem):
    path = os.path.join(folder, stem, "run_config.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _row(name, r):
    return (
        f"| {name} | **{r['ditau_eff_at_50khz']:.3f}** | {r['rate_khz']:.1f} | "
        f"{_fmt(r.get('ditau_eff_rate_matched'))} | {r['eff_vis_pt_5_20']:.3f} | "
        f"{_fmt(r.get('auc'), '.4f')} | {_fmt(r.get('charge_misid'))} | "
        f"{_wp(r['working_point'])} |"
    )


def render(m, folder, notes=""):
    khz = m["target_khz"]
    lines = [
        "# ScoutTau: soft hadronic taus in the Level-1 scouting stream",
        "",
        "A small transformer (seed 001) identifies hadronic taus of 5-60 GeV among CLUE "
        f"clusters of Level-1 {m.get('transformer_inputs', 'puppi').upper()} candidates at 200 "
        "pileup, measures their charge, regresses "
        "their pT and flags pileup constituents. It is compared with an NNPuppiTau-like "
        "baseline (seeded cone + TauNNId-like dense network) trained on the same events. "
        f"Working points maximise the di-tau efficiency at a {khz:g} kHz zero-bias rate.",
        "",
        "## Held-out test events (seeds never used in training)",
        "",
        f"{m['signal_events']} light-scalar -> tautau events and {m['zerobias_events']} "
        f"zero-bias events; rate = passing fraction x {m['zero_bias_khz']:,.0f} kHz. "
        + (
            "Working points chosen on separate samples ("
            + ", ".join(
                f"{len(v)} files in `{os.path.dirname(v[0]) or '.'}/`"
                for v in m["tune_inputs"].values()
            )
            + ") and measured here."
            if m.get("tune_inputs")
            else "Working points chosen and measured on these events."
        ),
        "",
        f"| method | di-tau eff. at {khz:g} kHz | test rate (kHz) | eff. at exactly {khz:g} kHz "
        "(cut re-chosen on the test zero bias) | eff. vis. pT 5-20 GeV | tau AUC | "
        "charge mis-ID | working point |",
        "|---|---|---|---|---|---|---|---|",
    ]
    inputs = m.get("transformer_inputs", "puppi")
    for key, name in METHODS:
        label = f"{name}, {inputs.upper()} inputs" if key == "transformer" else name
        lines.append(_row(label, m[key]))
    for sub, name in OTHER_RUNS:
        path = os.path.join(folder, sub, "metrics.json")
        if os.path.exists(path) and not name.endswith(inputs.upper() + " inputs"):
            with open(path) as f:
                lines.append(_row(name, json.load(f)["transformer"]))
    lines += [
        "",
        f"Di-tau efficiency: events with two generated hadronic taus of visible pT > 5 GeV "
        f"and |eta| < 2.4 ({m['transformer']['ditau_denominator_events']} events) whose two "
        "matched candidates form a pair passing the working point.",
        "",
        "### Efficiency versus visible tau pT",
        "",
        "| visible pT (GeV) | taus | "
        + " | ".join(n for _, n in RECO)
        + " | "
        + " | ".join(f"{n} ID" for _, n in METHODS)
        + " |",
        "|---" * (2 + len(RECO) + len(METHODS)) + "|",
    ]
    for i, b in enumerate(m["transformer"]["eff_vs_vis_pt"]):
        cells = [_fmt(m["reco"][k]["eff_vs_vis_pt"][i]["fraction"]) for k, _ in RECO]
        cells += [_fmt(m[k]["eff_vs_vis_pt"][i]["fraction"]) for k, _ in METHODS]
        lines.append(f"| {b['lo']:g}-{b['hi']:g} | {b['n']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Reconstruction (no ID) columns: a generated tau matched within DeltaR < 0.2; ID "
        "columns: its candidate also passes the working point's score (and charge) cuts.",
        "",
        "### Clustering without ID",
        "",
        "| clustering | eff. vis. pT 5-20 GeV | fake candidates / signal event | "
        "candidates / zero-bias event |",
        "|---|---|---|---|",
    ]
    for k, name in RECO:
        r = m["reco"][k]
        lines.append(
            f"| {name} | {r['eff_vis_pt_5_20']:.3f} | {r['fakes_per_event']:.2f} | "
            f"{r['zerobias_cands_per_event']:.2f} |"
        )
    reg = m["regression"]
    lines += [
        "",
        "### pT regression and pileup flags (matched taus, transformer)",
        "",
        "| pT | median response | resolution (IQR / 1.349 / median) |",
        "|---|---|---|",
        f"| cluster pT | {reg['raw']['median_response']:.3f} | {reg['raw']['resolution']:.3f} |",
        f"| regressed | {reg['regressed']['median_response']:.3f} | "
        f"{reg['regressed']['resolution']:.3f} |",
        "",
    ]
    if "pileup_flag_auc" in reg:
        lines += [
            f"Pileup flag of the constituents: AUC {reg['pileup_flag_auc']:.3f} "
            f"({reg['pileup_fraction_of_constituents']:.1%} of the constituents are pileup).",
            "",
        ]
    lines += ["## Training", ""]
    for stem, name in (("scouttau", "transformer"), ("nnpuppitau", "NNPuppiTau-like")):
        run = _run(folder, stem)
        if run:
            lines.append(
                f"- {name}: {run['training_candidates']} training candidates "
                f"({run['training_taus']} taus) from {run['events']} events, preset "
                f"`{run['args']['preset']}`, `{' '.join(run['args']['data'] or [])}`."
            )
    lines += ["", "![efficiency](efficiency_vs_vis_pt.png)", ""]
    if notes:
        lines += [notes.strip(), ""]
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m evaluate.scouttau_report")
    p.add_argument("--metrics", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--notes", default=None)
    return p.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    metrics, notes = cards.read_inputs(args.metrics, args.notes)
    cards.write(render(metrics, os.path.dirname(args.metrics) or ".", notes), args.out)


if __name__ == "__main__":
    main()
