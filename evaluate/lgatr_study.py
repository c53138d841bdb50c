"""`python -m evaluate.lgatr_study`: learning curve and symmetry-breaking table of L-GATr runs.

Takes the output folders of several `python -m models.lgatr.fit` runs (each holds lgatr.keras or
plain.keras and <model>/train_summary.json, run_config.json), predicts the tops of the same test
events with every model and writes, into --out:

- study.json: per run its training (events, epochs, seconds, parameters, spurions) and the
  robust figures median(d), (P84 - P16) / 2 of top pT, top y, m_tt and pT(tt) (as
  `evaluate.lgatr`), plus the analytic solution's on the same events;
- learning_curve.png: top pT and m_tt resolution against training events, L-GATr and the plain
  transformer (the analytic solution as a line);
- study.md: the learning-curve table and the symmetry-breaking table (the L-GATr runs with the
  smallest training sample that differ only in their spurions).

Example:
    python -m evaluate.lgatr_study --runs runs/lc8k_lgatr runs/lc8k_plain ... \
        --input test.root --out saved_models/lgatr/study
"""

import argparse
import json
import os

import numpy as np

from data.errors import UserError, cli

SPURION_NAMES = {
    ("none", "xyplane"): "none (fully Lorentz-equivariant)",
    ("beam", "xyplane"): "x-y plane",
    ("beam", "spacelike"): "beam vector",
    ("beam_time", "spacelike"): "beam vector + time",
    ("beam_time", "xyplane"): "x-y plane + time (default)",
}
STUDY_QUANTITIES = {
    "top_pt": "top pT",
    "m_tt": "m_tt",
    "top_y": "top y (abs.)",
    "top_phi": "top phi (abs., rad)",
    "pt_tt": "pT(tt)",
}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.lgatr_study", description=__doc__.split("\n")[0]
    )
    p.add_argument("--runs", nargs="+", required=True, help="models.lgatr.fit output folders")
    p.add_argument("--input", nargs="+", required=True, help="test ROOT files with truth")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--batch-size", type=int, default=1024, help="prediction batch size")
    return p.parse_args(argv)


def read_run(folder):
    """(model path, summary dict with the run's config) of one fit output folder."""
    for kind in ("lgatr", "plain"):
        path = os.path.join(folder, f"{kind}.keras")
        summary = os.path.join(folder, kind, "train_summary.json")
        if os.path.exists(path) and os.path.exists(summary):
            info = json.load(open(summary))
            info["config"] = json.load(open(os.path.join(folder, kind, "run_config.json")))[
                "config"
            ]
            info["name"] = os.path.basename(os.path.normpath(folder))
            return path, info
    raise UserError(f"{folder} holds no lgatr.keras / plain.keras with its train_summary.json")


def robust(obs, true):
    """Robust median / half-width of the study quantities of one method."""
    from evaluate.lgatr import figures

    f = figures(obs, true)
    out = {q: f[q]["robust"] for q in STUDY_QUANTITIES}
    out["top_mass_median"] = float(np.nanmedian(obs["top_mass"]))
    return out


def spurion_label(config):
    key = (config["spurions"], config["beam_spurion"])
    if config["spurions"] == "none":
        key = ("none", "xyplane")
    return SPURION_NAMES.get(key, "/".join(key))


def learning_curve_figure(runs, analytic, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, q, label in zip(axes, ("top_pt", "m_tt"), ("top $p_T$", "$m_{t\\bar t}$")):
        for kind, style in (("lgatr", "o-"), ("plain", "s--")):
            pts = sorted(
                (r["train_events"], r["metrics"][q]["res_quantile"])
                for r in runs
                if r["model"] == kind and r["symmetry_default"]
            )
            if pts:
                x, y = zip(*pts)
                ax.plot(x, y, style, label="L-GATr" if kind == "lgatr" else "plain transformer")
        ax.axhline(analytic[q]["res_quantile"], color="gray", ls=":", label="analytic")
        ax.set_xscale("log")
        ax.set_xlabel("training events")
        ax.set_ylabel(f"{label} resolution, (P84 - P16) / 2 of (pred - true) / true")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tables(runs, analytic, n_test):
    def row(name, m):
        cells = [f"{m[q]['median']:+.3f} / {m[q]['res_quantile']:.3f}" for q in STUDY_QUANTITIES]
        return f"| {name} | " + " | ".join(cells) + " |"

    head = "| " + " | ".join(STUDY_QUANTITIES.values()) + " |"
    lines = [
        f"Robust median / (P84 - P16) / 2 of (pred - true) / true on {n_test} test events.",
        "",
        "### Learning curve",
        "",
        "| model | training events | epochs | minutes " + head,
        "|---|---|---|---" + "|---" * len(STUDY_QUANTITIES) + "|",
    ]
    curve = sorted(
        (r for r in runs if r["symmetry_default"]), key=lambda r: (r["model"], r["train_events"])
    )
    for r in curve:
        name = "L-GATr" if r["model"] == "lgatr" else "plain transformer"
        lines.append(
            row(f"{name} | {r['train_events']} | {r['epochs_run']} | {r['train_seconds'] / 60:.0f}",
                r["metrics"])
        )  # fmt: skip
    lines.append(row("analytic | - | - | -", analytic))
    small = min((r["train_events"] for r in runs if r["model"] == "lgatr"), default=None)
    sym = [r for r in runs if r["model"] == "lgatr" and r["train_events"] == small]
    if len(sym) > 1:
        lines += [
            "",
            f"### Symmetry breaking (L-GATr, {small} training events, same budget)",
            "",
            "| spurions | epochs " + head,
            "|---|---" + "|---" * len(STUDY_QUANTITIES) + "|",
        ]
        for r in sorted(sym, key=lambda r: r["metrics"]["top_pt"]["res_quantile"]):
            lines.append(row(f"{r['spurions']} | {r['epochs_run']}", r["metrics"]))
    return "\n".join(lines) + "\n"


@cli
def main(argv=None):
    args = parse_args(argv)
    from data.lgatr import load
    from evaluate.lgatr import _pooled, load_keras, observables, predict_analytic, predict_models

    found = [read_run(f) for f in args.runs]
    d = load(args.input, require_truth=True)
    if d["targets"] is None:
        raise UserError("the test files have no generator truth (GenTop_*)")
    x, true_tops = d["inputs"], d["targets"]["tops"]
    shapes = {k: tuple(v.shape[1:]) for k, v in x.items()}
    true = _pooled(observables(true_tops))
    tops, _, _ = predict_analytic(d["meta"], "min_mtt", False)
    analytic = robust(_pooled(observables(tops)), true)
    runs = []
    for path, info in found:
        model = load_keras(path, shapes)
        pred, _ = predict_models({"m": model}, x, args.batch_size)
        c = info["config"]
        runs.append(
            {
                "name": info["name"],
                "model": info["model"],
                "train_events": info["train_events"],
                "epochs_run": info["epochs_run"],
                "train_seconds": info["train_seconds"],
                "parameters": info["parameters"],
                "command": info["command"],
                "spurions": spurion_label(c) if info["model"] == "lgatr" else "-",
                "symmetry_default": info["model"] == "plain"
                or (c["spurions"], c["beam_spurion"]) == ("beam_time", "xyplane"),
                "metrics": robust(_pooled(observables(pred["m"])), true),
            }
        )
        print(f"{info['name']}: top pT res {runs[-1]['metrics']['top_pt']['res_quantile']:.3f}")
    os.makedirs(args.out, exist_ok=True)
    study = {"input": args.input, "n_events": len(true_tops), "analytic": analytic, "runs": runs}
    with open(os.path.join(args.out, "study.json"), "w") as f:
        json.dump(study, f, indent=1)
    learning_curve_figure(runs, analytic, os.path.join(args.out, "learning_curve.png"))
    with open(os.path.join(args.out, "study.md"), "w") as f:
        f.write(tables(runs, analytic, len(true_tops)))
    print(f"wrote {args.out}/study.json, study.md, learning_curve.png")


if __name__ == "__main__":
    main()
