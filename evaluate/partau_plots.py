"""Plots of `python -m evaluate.partau`: ROC, decay-mode confusion matrices, pT response."""

import os

import numpy as np

from data.partau import DECAY_MODES


def _style():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.CMS)
    return plt


def plot_all(out, data, predictions, metrics):
    plt = _style()
    keep = data["truth"]["decay_mode_code"] != 16
    is_tau = data["targets"]["tau_id"][keep] == 1

    fig, ax = plt.subplots(figsize=(8, 7))
    for name, p in predictions.items():
        if "score" not in p:
            continue
        from sklearn.metrics import roc_curve  # tie-aware: one point per distinct score

        fpr, tpr, _ = roc_curve(is_tau, p["score"][keep])
        ok = fpr > 0
        ax.plot(tpr[ok], fpr[ok], label=f"{name} (AUC {metrics[name]['auc']:.4f})")
    ax.set_yscale("log")
    ax.set_xlabel("Tau efficiency")
    ax.set_ylabel("Quark/gluon jet efficiency (fake rate)")
    ax.axvline(0.6, color="grey", ls=":")
    ax.legend(fontsize=13)
    fig.savefig(os.path.join(out, "roc.png"), dpi=90, bbox_inches="tight")
    plt.close(fig)

    for name in predictions:
        m = metrics[name].get("dm_confusion")
        if m is None:
            continue
        m = np.asarray(m, float)
        norm = m / np.maximum(m.sum(1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(8, 7))
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(6):
            for j in range(6):
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=11)
        ax.set_xticks(range(6), DECAY_MODES, rotation=45, fontsize=12)
        ax.set_yticks(range(6), DECAY_MODES, fontsize=12)
        ax.set_xlabel("Predicted decay mode")
        ax.set_ylabel("True decay mode")
        ax.set_title(f"{name}: accuracy {metrics[name]['dm_accuracy']:.3f}", fontsize=14)
        fig.savefig(os.path.join(out, f"dm_confusion_{name}.png"), dpi=90, bbox_inches="tight")
        plt.close(fig)

    gen_pt = data["truth"]["vis_pt"][keep][is_tau]
    fig, ax = plt.subplots(figsize=(8, 7))
    bins = np.linspace(0.5, 1.5, 101)
    ratio = data["jets"]["pt"][keep][is_tau] / gen_pt
    ax.hist(ratio, bins, histtype="step", label="reco jet")
    for name, p in predictions.items():
        if "p4" in p:
            ax.hist(p["p4"]["pt"][keep][is_tau] / gen_pt, bins, histtype="step", label=name)
    ax.set_xlabel(r"$p_T^{reco} / p_T^{gen,vis}$")
    ax.set_ylabel("Tau jets")
    ax.legend(fontsize=13)
    fig.savefig(os.path.join(out, "pt_response.png"), dpi=90, bbox_inches="tight")
    plt.close(fig)
