"""Model card of the MET Perceiver (saved_models/metperceiver/README.md) from measured outputs.

    python -m evaluate.metperceiver_report --metrics saved_models/metperceiver/metrics.json \
        --out saved_models/metperceiver/README.md [--notes saved_models/metperceiver/card_notes.md]

The tables are read from metrics.json (`python -m evaluate.metperceiver`), the models'
run_config.json, the scaling benchmark's JSON and the generation benchmark's JSON when present;
hand-written notes (diagnosis, what is not met) are appended from --notes.
"""

import argparse
import json
import os

from data.errors import cli
from evaluate import cards

METHODS = (("perceiver", "MET Perceiver"), ("deepmet", "DeepMET-style"), ("puppi", "PUPPI MET"),
           ("pf", "PF MET"))  # fmt: skip
KEYS = ("bias_x", "res_x", "bias_y", "res_y", "bias_para", "res_para", "bias_perp", "res_perp")


# the fit options a model card repeats in a model's command (when the run set them)
FIT_FLAGS = ("epochs", "target", "learning_rate", "response_weight", "hs_weight", "init_from")


def _table(rows, keys, label):
    out = [f"| {label} | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    out += [f"| {name} | " + " | ".join(f"{r[k]:.2f}" for k in keys) + " |" for name, r in rows]
    return out


def _binned(metrics, table, key, label):
    methods = [(m, n) for m, n in METHODS if m in metrics]
    bins = metrics[methods[0][0]][table]
    out = [f"| {label} | events | " + " | ".join(n for _, n in methods) + " |"]
    out.append("|---" * (len(methods) + 2) + "|")
    for i, b in enumerate(bins):
        hi = "inf" if b["hi"] == float("inf") else f"{b['hi']:g}"
        cells = [f"{metrics[m][table][i][key]:.1f}" for m, _ in methods]
        out.append(f"| {b['lo']:g}-{hi} | {b['events']} | " + " | ".join(cells) + " |")
    return out


def _equal_response(metrics):
    """The methods' figures after dividing each MET by its mean response (a diagnostic)."""
    rows = [(n, metrics[m]["response_corrected"]) for m, n in METHODS
            if m in metrics and "response_corrected" in metrics[m]]  # fmt: skip
    if not rows:
        return []
    keys = ("response", "bias_x", "res_x", "res_y", "bias_para", "res_para", "res_perp")
    return [
        "### At equal response (diagnostic)",
        "",
        "Each method's MET divided by its mean response R = <MET . u_gen> / <|MET_gen|> over these "
        "events, so that none is biased along the generated MET overall: the resolutions then "
        "compare at the same scale, as recoil resolutions are quoted divided by the response. "
        "R is measured with the generated MET, so this is not a method anyone can run.",
        "",
        *_table(rows, keys, "method"),
        "",
    ]


def _run_config(folder, stem):
    path = os.path.join(folder, stem, "run_config.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def render(metrics, folder, notes=""):
    lines = ["# MET Perceiver: missing transverse momentum at 200 pileup", ""]
    lines += [
        "A Perceiver (seed 003) regresses the missing transverse momentum of dileptonic ttbar "
        "events at 14 TeV with 200 pileup from all ~9k particle-flow candidates of the event, "
        "compared with PF MET, PUPPI MET and a DeepMET-style per-candidate weight network "
        "trained on the same events.",
        "",
        "## Held-out test events (seeds never used in training)",
        "",
        f"{metrics['events']} events, mean pileup {metrics['mean_npu']:.1f}, from "
        + ", ".join(f"`{p}`" for p in metrics["inputs"][:2])
        + (" ..." if len(metrics["inputs"]) > 2 else "")
        + ". Residual Delta O = O_reco - O_gen; bias = mean, resolution = (P84 - P16) / 2, in GeV; "
        "para / perp are the components along / across the generated MET.",
        "",
    ]
    rows = [(n, metrics[m]) for m, n in METHODS if m in metrics]
    lines += _table(rows, KEYS, "method") + [""]
    deepmet = metrics["models"].get("deepmet")
    command = (
        f"python -m evaluate.metperceiver --model {metrics['models']['perceiver']}"
        + (f" --deepmet {deepmet}" if deepmet else "")
        + f" --input {' '.join(metrics.get('input_args', metrics['inputs']))}"
        + " --out saved_models/metperceiver"
    )
    lines += ["Command:", "", "```", command, "```", ""]
    lines += _equal_response(metrics)
    lines += ["### Resolution of MET x versus generated MET (GeV)", ""]
    lines += _binned(metrics, "vs_gen_met", "res_x", "gen MET [GeV]") + [""]
    lines += ["### Resolution of MET x versus pileup interactions (GeV)", ""]
    lines += _binned(metrics, "vs_npu", "res_x", "nPU") + [""]
    lines += ["### Bias along the generated MET versus generated MET (GeV)", ""]
    lines += _binned(metrics, "vs_gen_met", "bias_para", "gen MET [GeV]") + [""]
    lines += ["Plots: `residuals.png`, `vs_gen_met.png`, `vs_npu.png`.", ""]
    lines += ["## Trained models", ""]
    for stem, name in (("metperceiver", "MET Perceiver"), ("deepmet", "DeepMET-style")):
        rc = _run_config(folder, stem)
        if rc is None:
            continue
        c = rc["config"]
        arch = (
            f"dim {c['dim']}, {c['num_latents']} latents, {c['num_blocks']} latent blocks, "
            f"{c['decoder']} decoder"
            if c["variant"] == "perceiver"
            else f"per-candidate MLP {c['deepmet_units']}"
        )
        # the response term applies to a loss on MET (DeepMET; the Perceiver with target met)
        met_loss = c["variant"] == "deepmet" or c["target"] == "met"
        terms = "".join(
            f" + {c[key]:g} x {what}"
            for key, what in (("response_weight", "response term"), ("hs_weight", "truth term"))
            if c.get(key) and (key == "hs_weight" or met_loss)
        )
        lines.append(
            f"- **{name}** (`{stem}.keras`): {arch}; loss {c['loss']}{terms}, weighting "
            f"{c['weighting']}, batch {c['batch_size']}, lr {c['learning_rate']}; "
            f"{rc['training_events']} training events, {rc['validation_events']} validation "
            f"(`python -m models.metperceiver.fit --variant {c['variant']} --data "
            f"{' '.join(rc['args']['data'] or [])}"
            + (f" --max-minutes {rc['args']['max_minutes']:g}" if rc["args"]["max_minutes"] else "")
            + "".join(
                f" --{flag.replace('_', '-')} {rc['args'][flag]}"
                for flag in FIT_FLAGS
                if rc["args"].get(flag) is not None
            )
            + f" --out {folder} --overwrite`)."
        )
    lines.append("")
    scaling = os.path.join(folder, "scaling", "metperceiver_scaling.json")
    if os.path.exists(scaling):
        with open(scaling) as f:
            sc = json.load(f)
        s = sc["settings"]
        lines += [
            "## Scaling: one forward + backward pass versus the number of candidates",
            "",
            f"Batch {s['batch']}, width {s['dim']}, {s['latents']} latents, {s['blocks']} blocks, "
            f"{s['heads']} heads, memory limit {s['memory_limit_gb']:g} GB "
            "(`python -m evaluate.bench.metperceiver_scaling`, plot `scaling/`):",
            "",
            "| N | Perceiver ms | Perceiver peak MB | plain encoder ms | plain peak MB |",
            "|---|---|---|---|---|",
        ]
        by = {(r["kind"], r["n"]): r for r in sc["results"]}
        for n in sorted({r["n"] for r in sc["results"]}):
            p, q = by.get(("perceiver", n), {}), by.get(("plain", n), {})

            def cell(r, k):
                return f"{r[k]:,.0f}" if r.get("status") == "ok" else r.get("status", "-")

            lines.append(
                f"| {n:,} | {cell(p, 'ms_per_step')} | {cell(p, 'peak_mb')} | "
                f"{cell(q, 'ms_per_step')} | {cell(q, 'peak_mb')} |"
            )
        lines.append("")
    gen = os.path.join(folder, "generation_speed.json")
    if os.path.exists(gen):
        with open(gen) as f:
            g = json.load(f)
        one = g["one_core"]
        shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in one["shares"].items())
        lines += [
            "## Generation speed (`python -m evaluate.bench.pileup_generation --events "
            f"{one['events']} --workers 2 --json saved_models/metperceiver/generation_speed.json`)",
            "",
            f"One core: {one['events_per_s_one_core']:.1f} PU{one['mu']:g} events/s "
            f"({one['candidates_per_event']:.0f} candidates per event); time shares: {shares}.",
        ]
        if g.get("cli"):
            c = g["cli"]
            lines.append(
                f"CLI on {c['workers']} cores: {c['events_per_s']:.1f} events/s "
                f"({c['events']} events in {c['wall_s']:.0f} s, start-up included)."
            )
        lines.append("")
    if notes:
        lines += [notes.strip(), ""]
    return "\n".join(lines)


@cli
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m evaluate.metperceiver_report")
    p.add_argument("--metrics", default="saved_models/metperceiver/metrics.json")
    p.add_argument("--out", default="saved_models/metperceiver/README.md")
    p.add_argument("--notes", default=None, help="markdown appended to the card")
    args = p.parse_args(argv)
    metrics, notes = cards.read_inputs(args.metrics, args.notes)
    cards.write(render(metrics, os.path.dirname(os.path.abspath(args.out)), notes), args.out)


if __name__ == "__main__":
    main()
