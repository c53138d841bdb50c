"""Plots of `python -m evaluate.metperceiver`: residuals and resolution versus gen MET and nPU."""

import os

import numpy as np

from evaluate.metperceiver_metrics import components

LABELS = {
    "perceiver": "Perceiver",
    "deepmet": "DeepMET-style",
    "puppi": "PUPPI MET",
    "pf": "PF MET",
}


def _style():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.CMS)
    return plt


def plot_all(out, preds, gen, npu, metrics):
    plt = _style()
    fig, axes = plt.subplots(1, 2, figsize=(16, 7))
    bins = np.linspace(-150, 150, 61)
    for name, pred in preds.items():
        r = components(pred, gen)
        for ax, k, what in ((axes[0], 0, "x"), (axes[1], 2, r"\parallel")):
            ax.hist(r[:, k], bins, histtype="step", lw=2, label=f"{LABELS.get(name, name)}")
            ax.set_xlabel(rf"$\Delta p_{{T,{what}}}^{{miss}}$ (reco - gen) [GeV]")
    for ax in axes:
        ax.set_ylabel("events")
        ax.legend(fontsize=14)
    fig.savefig(os.path.join(out, "residuals.png"), dpi=80, bbox_inches="tight")
    plt.close(fig)
    for table, xlabel, fname in (
        ("vs_gen_met", r"generated $p_T^{miss}$ [GeV]", "vs_gen_met.png"),
        ("vs_npu", "pileup interactions", "vs_npu.png"),
    ):
        fig, axes = plt.subplots(1, 3, figsize=(24, 7))
        for name in preds:
            rows = metrics[name][table]
            hi = [r["hi"] if np.isfinite(r["hi"]) else r["lo"] * 1.5 for r in rows]
            x = [(r["lo"] + h) / 2 for r, h in zip(rows, hi)]
            for ax, key, ylab in (
                (axes[0], "res_x", r"resolution $p_{T,x}^{miss}$ [GeV]"),
                (axes[1], "res_perp", r"resolution $p_{T,\perp}^{miss}$ [GeV]"),
                (axes[2], "bias_para", r"bias $p_{T,\parallel}^{miss}$ [GeV]"),
            ):
                ax.plot(x, [r[key] for r in rows], "o-", label=LABELS.get(name, name))
                ax.set_xlabel(xlabel)
                ax.set_ylabel(ylab)
        axes[0].legend(fontsize=14)
        fig.savefig(os.path.join(out, fname), dpi=80, bbox_inches="tight")
        plt.close(fig)
