"""Plots and the model card of the L-GATr evaluation."""

import json
import os

import numpy as np

LABELS = {"lgatr": "L-GATr", "plain": "Plain transformer", "analytic": "Analytic (ellipse)"}
COLORS = {"true": "k", "lgatr": "C0", "plain": "C1", "analytic": "C2"}
QUANTITY_LABELS = {
    "top_pt": ("top $p_T$", "(pred - true) / true"),
    "top_y": ("top rapidity $y$", "pred - true (absolute)"),
    "top_phi": ("top azimuth $\\phi$", "pred - true (absolute, rad)"),
    "m_tt": ("$m_{t\\bar{t}}$", "(pred - true) / true"),
    "pt_tt": ("$p_T(t\\bar{t})$", "(pred - true) / true"),
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    mplhep.style.use("CMS")
    return plt


def _methods(obs):
    return [m for m in LABELS if m in obs]


def _hist_compare(plt, obs, key, bins, xlabel, path, true_label="Generated", relative=None):
    fig, ax = plt.subplots(figsize=(9, 7))
    t = obs["true"][key].ravel()
    if relative is None:
        ax.hist(t, bins, histtype="stepfilled", color="0.85", label=true_label, density=True)
    for m in _methods(obs):
        p = obs[m][key].ravel()
        if relative == "rel":
            with np.errstate(divide="ignore", invalid="ignore"):
                p = (p - t) / t
        elif relative == "abs":
            p = p - t
        p = p[np.isfinite(p) & (p >= bins[0]) & (p <= bins[-1])]
        if len(p):
            ax.hist(p, bins, histtype="step", lw=2, color=COLORS[m], label=LABELS[m], density=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Normalised events / bin")
    ax.legend(fontsize=14)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def plots(obs, out):
    """Distributions and residuals of the reconstructed observables; returns the file names."""
    plt = _plt()
    specs = [
        ("m_tt.png", "m_tt", np.linspace(300, 1300, 51), r"$m_{t\bar{t}}$ [GeV]", None),
        ("top_pt.png", "top_pt", np.linspace(0, 500, 51), r"top / antitop $p_T$ [GeV]", None),
        (
            "top_pt_residual.png",
            "top_pt",
            np.linspace(-1, 1, 51),
            r"top $p_T$: $(p_T^{pred} - p_T^{true}) / p_T^{true}$",
            "rel",
        ),
        (
            "top_y_residual.png",
            "top_y",
            np.linspace(-1.5, 1.5, 61),
            r"top rapidity: $y^{pred} - y^{true}$",
            "abs",
        ),
        (
            "m_tt_residual.png",
            "m_tt",
            np.linspace(-0.6, 0.6, 61),
            r"$(m_{t\bar{t}}^{pred} - m_{t\bar{t}}^{true}) / m_{t\bar{t}}^{true}$",
            "rel",
        ),
        ("pt_tt.png", "pt_tt", np.linspace(0, 300, 51), r"$p_T(t\bar{t})$ [GeV]", None),
    ]
    for name, key, bins, xlabel, relative in specs:
        _hist_compare(plt, obs, key, bins, xlabel, os.path.join(out, name), relative=relative)
    fig, axes = plt.subplots(1, len(_methods(obs)), figsize=(7 * len(_methods(obs)), 6.5))
    axes = np.atleast_1d(axes)
    t = obs["true"]["m_tt"]
    edges = np.linspace(300, 1300, 41)
    for m, ax in zip(_methods(obs), axes):
        p = obs[m]["m_tt"]
        ok = np.isfinite(p)
        ax.hist2d(t[ok], p[ok], bins=[edges, edges], cmin=1)
        ax.plot(edges[[0, -1]], edges[[0, -1]], "w--", lw=1)
        ax.set_xlabel(r"$m_{t\bar{t}}^{true}$ [GeV]")
        ax.set_ylabel(rf"$m_{{t\bar{{t}}}}$ {LABELS[m]} [GeV]")
    fig.savefig(os.path.join(out, "m_tt_pred_vs_true.png"), dpi=80, bbox_inches="tight")
    plt.close(fig)
    return [s[0] for s in specs] + ["m_tt_pred_vs_true.png"]


def training_summaries(models):
    """`train_summary.json` written by `models.lgatr.fit` next to each model, where present."""
    out = {}
    for name, path in models.items():
        folder = os.path.join(os.path.dirname(path), os.path.splitext(os.path.basename(path))[0])
        summary = os.path.join(folder, "train_summary.json")
        if os.path.exists(summary):
            with open(summary) as f:
                out[name] = json.load(f)
            run_config = os.path.join(folder, "run_config.json")
            if "files" not in out[name] and os.path.exists(run_config):
                with open(run_config) as f:
                    out[name]["files"] = json.load(f).get("files", [])
    return out


def calibrations(models):
    """`<model>_calibration.json` written by `models.lgatr.calibrate` next to each model."""
    out = {}
    for name, path in models.items():
        card = os.path.splitext(path)[0] + "_calibration.json"
        if os.path.exists(card):
            with open(card) as f:
                out[name] = json.load(f)
    return out


def _calibration_lines(res):
    lines = []
    for m, c in res.get("calibration", {}).items():
        ratios = c["knots_ratio"]
        how = (
            f"pT x {ratios[0]:.4f} (one factor: median pT_true / pT_pred)"
            if len(set(ratios)) == 1
            else f"pT x r(pT), {len(ratios)} knots, r = {min(ratios):.3f}-{max(ratios):.3f}"
        )
        lines.append(
            f"- {LABELS[m]}: {how} on {c['events']} calibration events "
            f"(`{c['command']}`; y, phi and the mass kept)"
        )
    if lines:
        lines = ["", "Top pT response calibration (`models.lgatr.calibrate`):", "", *lines]
    return lines


def _fmt(x, digits=3):
    return "n/a" if x is None or not np.isfinite(x) else f"{x:+.{digits}f}"


def _table(block, methods, kind):
    a, b = ("rb", "res") if kind == "seed" else ("median", "res_quantile")
    lines = [
        "| quantity | " + " | ".join(LABELS[m] for m in methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for q, (label, how) in QUANTITY_LABELS.items():
        cells = [
            f"{_fmt(block[m][q][kind][a])} / {_fmt(block[m][q][kind][b]).lstrip('+')}"
            for m in methods
        ]
        lines.append(f"| {label}, {how} | " + " | ".join(cells) + " |")
    return lines


def _generation_command(path):
    """`python -m data.generate` command of a sample named like fit.py's cached samples, or of
    a shard whose generation manifest (OUT.manifest.json next to OUT_0000.root) is there."""
    import re

    shard = re.match(r"(.*)_\d{4}\.root$", path)
    manifest = shard and shard.group(1) + ".manifest.json"
    if manifest and os.path.exists(manifest):
        with open(manifest) as f:
            m = json.load(f)
        return (
            f"python -m data.generate {m['sample']} --events {m['events']} --seed {m['seed']} "
            f"--workers 2 --shard-size {m['shard_size']} --out {shard.group(1)}.root"
        )
    match = re.search(r"ttbar_dilepton\w*_seed(\d+)_(\d+)\.root$", path)
    if not match:
        return None
    seed, n = match.groups()
    return (
        f"python -m data.generate ttbar-dilepton --events {n} --seed {seed} --workers 2 "
        f"--out {path}"
    )


def _reproduce(res, cmd):
    files = [*res["inputs"]]
    cals = res.get("calibration", {})
    for s in [*res["training"].values(), *cals.values()]:
        files += [f for f in s.get("files", s.get("input", [])) if f not in files]
    lines = ["## Reproduce", "", "```"]
    for f in files:
        gen = _generation_command(f) or f"# {f}: user-provided file"
        if gen not in lines:  # the shards of one request share their command
            lines.append(gen)
    lines += [s["command"].strip() for s in res["training"].values()]
    for m, c in cals.items():  # the fit wrote the network where the calibrated file goes
        if c["model"] != res["models"][m]:
            lines.append(f"mv {res['models'][m]} {c['model']}")
        lines.append(c["command"])
    lines += [
        cmd,
        "```",
        "",
        "Generated files depend on (seed, workers); `models.lgatr.fit` generates its "
        "default sample with min(4, CPU count) workers.",
        "",
    ]
    return lines


def model_card(res, args, plot_files, path):
    """Markdown model card with every figure and the command that measured it."""
    cmd = f"python -m evaluate.lgatr --model {args.model}"
    if args.plain:
        cmd += f" --plain {args.plain}"
    cmd += f" --input {' '.join(args.input)} --out {args.out}"
    if args.rule != "min_mtt" or args.try_swap:
        cmd += f" --rule {args.rule}" + " --try-swap" * args.try_swap
    methods = [m for m in LABELS if m in res["all"]]
    an = res["analytic"]
    lines = [
        "# L-GATr dilepton ttbar reconstruction",
        "",
        "Top and antitop four-momenta from two leptons, the two b candidates, MET and up to "
        "7 jets, by the Lorentz-equivariant L-GATr, a plain transformer of the same size "
        "and the analytic neutrino solution (BDH ellipse method, "
        f"`{an['rule']}` rule among real solutions, closest approach otherwise).",
        "",
        f"Measured by `{cmd}` on {res['n_events']} events the models never saw.",
        "",
        "## Training",
        "",
    ]
    if res["training"]:
        lines += [
            "| model | parameters | command | train / val events | epochs | time |",
            "|---|---|---|---|---|---|",
        ]
        for m, s in res["training"].items():
            lines.append(
                f"| {LABELS[m]} | {s['parameters']:,} | `{s['command'].strip()}` | "
                f"{s['train_events']} / {s['val_events']} | {s['epochs_run']} | "
                f"{s['train_seconds'] / 60:.1f} min on {s['cpu_count']} CPU cores |"
            )
    else:
        lines.append("No train_summary.json next to the models.")
    lines += _calibration_lines(res)
    lines += [
        "",
        "## Relative bias and resolution (all events)",
        "",
        "RB / Res as defined in the L-GATr talk (seed 004): d = (pred - true) / true, "
        "RB = mean(d), Res = sqrt(mean(d^2) - RB^2). Top quantities pool top and antitop; "
        "for the rapidity d = pred - true.",
        "",
    ]
    lines += _table(res["all"], methods, "seed")
    lines += ["", "Robust version: median(d) / (P84 - P16) / 2.", ""]
    lines += _table(res["all"], methods, "robust")
    lines += [
        "",
        "Reconstructed top / antitop mass, median [P16, P84] (generated: 172.5 GeV): "
        + ", ".join(
            f"{LABELS[m]} {q[1]:.1f} [{q[0]:.1f}, {q[2]:.1f}] GeV"
            for m in methods
            for q in [res["all"][m]["top_mass_quantiles"]]
        )
        + ".",
        "",
    ]
    onshell = [m for m in methods if np.ptp(res["all"][m]["top_mass_quantiles"]) < 0.1]
    lines += [
        "On shell by construction: " + ", ".join(LABELS[m] for m in onshell) + " (the networks "
        "through `OnShellTops`, the predicted three-momentum with E = sqrt(p^2 + m_t^2); the "
        "analytic solution through its top and W mass constraints).",
        "",
    ] if onshell else [
        "The networks regress (px, py, pz, E) with an MSE: the top mass is not constrained, "
        "and a too-large top mass raises m_tt (`models.lgatr.fit --output onshell` puts the "
        "tops on their mass shell).",
        "",
    ]  # fmt: skip
    n_sol = round(an["solution_efficiency"] * res["n_events"])
    lines += [
        "",
        f"## Events with a real analytic solution ({n_sol} events)",
        "",
        "Seed RB / Res:",
        "",
    ]
    lines += _table(res["analytic_solved"], methods, "seed")
    lines += ["", "Robust median / (P84 - P16) / 2:", ""]
    lines += _table(res["analytic_solved"], methods, "robust")
    lines += [
        "",
        "## Analytic solution",
        "",
        f"- real-solution efficiency: {an['solution_efficiency']:.3f}",
        f"- closest-approach fallback rate: {an['fallback_rate']:.3f}",
        f"- no output at all (collinear b and lepton): {an['failed_rate']:.4f}",
        f"- mean number of real solutions when solved: {an['mean_real_solutions_when_solved']:.2f}",
        f"- b candidates truth-matched (TTbar_bPairing = 0): {an['b_truth_matched_fraction']:.3f}",
        "",
        "## Speed (this machine, whole evaluation sample, after a warm-up batch)",
        "",
        "| method | events/s |",
        "|---|---|",
    ]
    for m, v in res["events_per_second"].items():
        lines.append(f"| {LABELS.get(m, m)} | {v:,.0f} |")
    lines += ["", "Plots: " + ", ".join(f"`{p}`" for p in plot_files) + ".", ""]
    notes = os.path.join(os.path.dirname(path), "card_notes.md")
    if os.path.exists(notes):  # hand-written sections (studies, diagnosis) kept across reruns
        lines += [open(notes).read().rstrip(), ""]
    lines += _reproduce(res, cmd)
    with open(path, "w") as f:
        f.write("\n".join(lines))
