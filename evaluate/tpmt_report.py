"""Plots and the model card of the TPMT evaluation."""

import os

import numpy as np

LABELS = {"tpmt": "TPMT", "fastmtt": "FastMTT", "collinear": "Collinear", "vis": "Visible"}
COLORS = {"tpmt": "tab:blue", "fastmtt": "tab:orange", "collinear": "tab:green", "vis": "tab:gray"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    mplhep.style.use("CMS")
    return plt


def plots(p, res, out):
    """m_tautau of H and Z (TPMT vs FastMTT), pT predicted vs target, response vs true mass."""
    plt = _plt()
    h, z = p["process"] == 1, p["process"] == 2
    if h.any() or z.any():
        fig, ax = plt.subplots(figsize=(9, 7))
        bins = np.linspace(0, 300, 61)
        for sel, name, style in ((h, "H(125)", "-"), (z, "Z", "--")):
            for m in ("tpmt", "fastmtt"):
                if sel.any() and np.isfinite(p[f"m_{m}"][sel]).any():
                    ax.hist(
                        p[f"m_{m}"][sel],
                        bins,
                        histtype="step",
                        density=True,
                        linestyle=style,
                        color=COLORS[m],
                        label=f"{name} {LABELS[m]}",
                    )
        ax.set_xlabel(r"$m_{\tau\tau}$ [GeV]")
        ax.set_ylabel("Normalised events / 5 GeV")
        ax.legend(fontsize=14)
        fig.savefig(os.path.join(out, "mass_h_vs_z.png"), dpi=80, bbox_inches="tight")
        plt.close(fig)
    genuine = p["process"] != 3
    fig, axes = plt.subplots(1, 2, figsize=(14, 6.5))
    for i, ax in zip((1, 2), axes):
        t = p[f"tau{i}_pt_true"][genuine]
        ax.hist2d(t, p[f"tau{i}_pt_pred"][genuine], bins=[np.linspace(0, 200, 41)] * 2, cmin=1)
        ax.plot([0, 200], [0, 200], "w--", lw=1)
        ax.set_xlabel(rf"$p_T^{{target}}(\tau_{i})$ [GeV]")
        ax.set_ylabel(rf"$p_T^{{TPMT}}(\tau_{i})$ [GeV]")
    fig.subplots_adjust(wspace=0.35)
    fig.savefig(os.path.join(out, "pt_pred_vs_target.png"), dpi=80, bbox_inches="tight")
    plt.close(fig)
    if res.get("flat_response"):
        fig, ax = plt.subplots(figsize=(9, 7))
        for m, rows in res["flat_response"].items():
            x = [(r["lo"] + r["hi"]) / 2 for r in rows]
            ax.plot(x, [r["median"] for r in rows], "o-", color=COLORS[m], label=LABELS[m])
        ax.axhspan(0.95, 1.05, color="grey", alpha=0.2, label=r"$\pm$5%")
        ax.set_xlabel(r"$m_{\tau\tau}^{true}$ [GeV]")
        ax.set_ylabel(r"median $m_{\tau\tau}/m_{\tau\tau}^{true}$")
        ax.legend(fontsize=14)
        fig.savefig(os.path.join(out, "response_vs_true_mass.png"), dpi=80, bbox_inches="tight")
        plt.close(fig)
    if res.get("flat_coverage"):
        fig, ax = plt.subplots(figsize=(9, 7))
        rows = [r for r in res["flat_coverage"] if r["n"] > 0]
        x = [(r["lo"] + r["hi"]) / 2 for r in rows]
        ax.plot(x, [r["coverage_68"] for r in rows], "o-", color=COLORS["tpmt"], label="TPMT")
        ax.axhspan(0.65, 0.71, color="grey", alpha=0.2, label=r"68% $\pm$ 3%")
        ax.set_ylim(0, 1)
        ax.set_xlabel(r"$m_{\tau\tau}^{true}$ [GeV]")
        ax.set_ylabel(r"fraction with $m^{true}$ in $[q_{16}, q_{84}]$")
        ax.legend(fontsize=14)
        fig.savefig(os.path.join(out, "coverage_vs_true_mass.png"), dpi=80, bbox_inches="tight")
        plt.close(fig)
    if res.get("hypothesis_scan"):  # parametric TPMT: median mass vs the hypothesised mass
        fig, ax = plt.subplots(figsize=(9, 7))
        for name, rows in res["hypothesis_scan"].items():
            x = [r["hypothesis"] for r in rows]
            ax.plot(x, [r["median_m"] for r in rows], "o-", label=name)
        ax.set_xlabel("hypothesised mass [GeV]")
        ax.set_ylabel(r"median TPMT $m_{\tau\tau}$ [GeV]")
        ax.legend(fontsize=14)
        fig.savefig(os.path.join(out, "hypothesis_scan.png"), dpi=80, bbox_inches="tight")
        plt.close(fig)


def _fmt(x, digits=3):
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _option_flags(args):
    """The evaluation options that change the figures, as CLI flags (defaults left out)."""
    flags = ""
    if getattr(args, "channel", "all") != "all":
        flags += f" --channel {args.channel}"
    if getattr(args, "no_fastmtt", False):
        flags += " --no-fastmtt"
    if getattr(args, "hypothesis", "nominal") != "nominal":
        flags += f" --hypothesis {args.hypothesis}"
    if getattr(args, "scan", None):
        flags += " --scan " + " ".join(f"{v:g}" for v in args.scan)
    return flags


def model_card(res, args, path):
    """Markdown model card with every figure and the command that measured it."""
    products = res.get("products", True)
    cmd = (
        f"python -m evaluate.tpmt --model {args.model} --input {' '.join(args.input)} "
        f"--out {args.out}" + ("" if products else " --no-products") + _option_flags(args)
    )
    lines = [
        "# TPMT evaluation" + ("" if products else " without decay-product tokens"),
        "",
        f"Measured by `{cmd}` on {res['n_events']} events the model never saw.",
        "",
        "## m_tautau response per process and channel",
        "",
        "median m/m_true and resolution (P84 - P16) / (2 median); Gaussian core sigma of "
        "m/m_true in brackets.",
        "",
        "| sample | " + " | ".join(LABELS[m] for m in LABELS) + " |",
        "|---|" + "---|" * len(LABELS),
    ]
    for key, row in res["per_process_channel"].items():
        cells = [
            f"{_fmt(row[m]['median'])} / {_fmt(row[m]['resolution'])} "
            f"({_fmt(row[m]['core']['sigma'])})"
            for m in LABELS
        ]
        lines.append(f"| {key} (n={row['tpmt']['n']}) | " + " | ".join(cells) + " |")
    lines += _uncertainty_section(res)
    if res["separation"]:
        lines += [
            "",
            "## H(125) vs Z separation",
            "",
            "Fraction of Z events inside the shortest mass window that keeps 90% of H "
            "(lower is better)."
            + (
                " Parametric model at each process's own nominal hypothesis (H 125, Z 91.19 "
                "GeV): the window is told the answer, so this is no search figure; evaluate "
                "both processes at one `--hypothesis` for that."
                if res.get("hypothesis") == "nominal"
                else ""
            ),
            "",
            "| channel | " + " | ".join(LABELS.values()) + " |",
            "|---|" + "---|" * len(LABELS),
        ]
        for ch, row in res["separation"].items():
            lines.append(
                f"| {ch} | "
                + " | ".join(
                    f"{_fmt(row[m]['background_fraction'])} [{row[m]['window'][0]:.0f}, "
                    f"{row[m]['window'][1]:.0f}]"
                    for m in LABELS
                )
                + " |"
            )
    for key, title, coverage in (
        ("flat_response", "flat sample", res.get("flat_coverage")),
        ("flatz_response", "flat vector-boson sample, Z -> tautau", None),
    ):
        if res.get(key):
            lines += _response_table(res[key], title, coverage)
    lines += ["", "## Tau pT (genuine taus)", "", "| | TPMT | reco (visible) |", "|---|---|---|"]
    for i in (1, 2):
        r = res[f"tau{i}_pt"]
        lines.append(
            f"| tau{i} median / resolution | {_fmt(r['tpmt']['median'])} / "
            f"{_fmt(r['tpmt']['resolution'])} | {_fmt(r['reco']['median'])} / "
            f"{_fmt(r['reco']['resolution'])} |"
        )
    lines += _training_section(_run_folder(args.model))
    lines += [
        "",
        "## Speed (this machine, whole evaluation sample)",
        "",
        "| method | events/s |",
        "|---|---|",
    ]
    for m, v in res["events_per_second"].items():
        lines.append(f"| {LABELS.get(m, m)} | {v:,.0f} |")
    lines += [
        "",
        "Plots: `mass_h_vs_z.png`, `pt_pred_vs_target.png`, `response_vs_true_mass.png`"
        + (", `coverage_vs_true_mass.png`." if res.get("flat_coverage") else "."),
        "",
    ]
    # hand-written notes next to the card (training sample, goals, history) survive re-evaluation
    notes = os.path.join(os.path.dirname(os.path.abspath(path)), "card_notes.md")
    if os.path.exists(notes):
        with open(notes) as f:
            lines += ["", f.read().strip(), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def _response_table(rows, title, coverage=None):
    """Median m/m_true per true-mass bin, one column per method (+ the TPMT coverage)."""
    lines = [
        "",
        f"## Response versus true mass ({title})",
        "",
        "| m_true [GeV] | "
        + " | ".join(LABELS.values())
        + " |"
        + (" TPMT 68% coverage |" if coverage else ""),
        "|---|" + "---|" * len(LABELS) + ("---|" if coverage else ""),
    ]
    for i, r in enumerate(rows["tpmt"]):
        lines.append(
            f"| {r['lo']:.0f}-{r['hi']:.0f} (n={r['n']}) | "
            + " | ".join(_fmt(rows[m][i]["median"]) for m in LABELS)
            + " |"
            + (f" {_fmt(coverage[i]['coverage_68'])} |" if coverage else "")
        )
    return lines


def _uncertainty_section(res):
    """The TPMT per-event 68% interval: coverage per process and channel."""
    rows = {k: r["tpmt"] for k, r in res["per_process_channel"].items()}
    fm = {k: r.get("fastmtt", {}) for k, r in res["per_process_channel"].items()}
    lines = ["", "## Per-event uncertainty (TPMT 68% interval)", ""]
    if not any("coverage_68" in r for r in rows.values()):
        return lines + [
            "This model has no quantile head (3 output columns): no per-event interval. "
            "Models trained with it predict m_tautau_q16 and m_tautau_q84.",
        ]
    lines += [
        "Coverage: fraction of events with m_true inside [q16, q84] (goal 0.68 +- 0.03). "
        "Half-width: median (q84 - q16) / (2 m_true), next to the resolution of m/m_true. "
        "FastMTT's own interval: the 16% and 84% quantiles of its likelihood scan.",
        "",
        "| sample | TPMT coverage | TPMT half-width | TPMT resolution | FastMTT coverage "
        "| FastMTT half-width |",
        "|---|---|---|---|---|---|",
    ]
    for key, r in rows.items():
        lines.append(
            f"| {key} (n={r['n']}) | {_fmt(r.get('coverage_68'))} | "
            f"{_fmt(r.get('half_width'))} | {_fmt(r['resolution'])} | "
            f"{_fmt(fm[key].get('coverage_68'))} | {_fmt(fm[key].get('half_width'))} |"
        )
    return lines


def _run_folder(model_path):
    """Where the fit harness left the model's run_config.json and history.csv: next to the
    default `tpmt.keras`, in a folder named after any other model (`tpmt_resonant_sm/`)."""
    model_path = os.path.abspath(model_path)
    own = model_path[: -len(".keras")] if model_path.endswith(".keras") else model_path
    if os.path.exists(os.path.join(own, "run_config.json")):
        return own
    return os.path.dirname(model_path)


def _training_section(model_dir):
    """How the model was trained, from the fit harness's run_config.json and history.csv."""
    import csv
    import json

    cfg_path = os.path.join(model_dir, "run_config.json")
    if not os.path.exists(cfg_path):
        return []
    with open(cfg_path) as f:
        run = json.load(f)
    files = run["files"]
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    lines = ["", "## Training", "", f"Files ({len(files)}): {shown}."]
    if "training_events" in run:
        lines += [
            "",
            f"{run['training_events']} training events, {run['validation_events']} validation "
            "events (a seeded 20% of every chunk held out).",
        ]
    lines += ["", "Config: " + ", ".join(f"{k}={v}" for k, v in run["config"].items()) + "."]
    hist_path = os.path.join(model_dir, "history.csv")
    if os.path.exists(hist_path):
        with open(hist_path) as f:
            rows = list(csv.DictReader(f))
        if rows:
            best = min(rows, key=lambda r: float(r["val_loss"]))
            lines += [
                "",
                f"{len(rows)} epochs; best val_loss {float(best['val_loss']):.3f} at "
                f"epoch {int(best['epoch']) + 1} (tau pT MAE "
                f"{float(best['val_tau_pt_mae']):.2f} GeV, m_tautau MAE "
                f"{float(best['val_m_tautau_mae']):.2f} GeV on validation events).",
            ]
    return lines
