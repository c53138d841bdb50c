"""Plots of `python -m evaluate.scouttau`: efficiency versus visible tau pT and the WP scan."""

import os

import numpy as np

from evaluate.metperceiver_plots import _style

LABELS = {"transformer": "ScoutTau transformer (CLUE)", "nnpuppitau": "NNPuppiTau-like",
          "clue": "CLUE (PUPPI)", "antikt": "anti-$k_T$ R=0.4 (PUPPI)",
          "seeded_cone": "seeded cone (PUPPI)", "clue_pf": "CLUE (PF)"}  # fmt: skip


def _curve(ax, rows, label):
    x = [(r["lo"] + r["hi"]) / 2 for r in rows]
    xerr = [(r["hi"] - r["lo"]) / 2 for r in rows]
    y = np.array([r["fraction"] for r in rows])
    n = np.array([max(r["n"], 1) for r in rows])
    ax.errorbar(x, y, xerr=xerr, yerr=np.sqrt(y * (1 - y) / n), fmt="o", label=label)


def plot_all(metrics, out):
    plt = _style()
    fig, axes = plt.subplots(1, 2, figsize=(16, 7))
    for name in ("clue", "antikt", "seeded_cone", "clue_pf"):
        _curve(axes[0], metrics["reco"][name]["eff_vs_vis_pt"], LABELS[name])
    axes[0].set_title("reconstruction (no ID)", fontsize=18)
    for name in ("transformer", "nnpuppitau"):
        _curve(axes[1], metrics[name]["eff_vs_vis_pt"], LABELS[name])
    axes[1].set_title(f"ID at the di-tau {metrics['target_khz']:g} kHz WP", fontsize=18)
    for ax in axes:
        ax.set_xlabel(r"visible $\tau_h$ $p_T$ [GeV]")
        ax.set_ylabel("efficiency")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=14)
    fig.savefig(os.path.join(out, "efficiency_vs_vis_pt.png"), dpi=80, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, 7))
    for name in ("transformer", "nnpuppitau"):
        grid = metrics[name]["grid"]
        ax.plot(range(len(grid)), [g["efficiency"] for g in grid], "o-", label=LABELS[name])
    ax.set_xlabel("working point (charge cut x $\\Delta v_z$ cut)")
    ax.set_ylabel(f"di-tau efficiency at {metrics['target_khz']:g} kHz (WP sample)")
    ax.legend(fontsize=14)
    fig.savefig(os.path.join(out, "wp_scan.png"), dpi=80, bbox_inches="tight")
    plt.close(fig)
