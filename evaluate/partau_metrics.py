"""Figures of merit of hadronic-tau reconstruction (ParTau and the HPS-like baseline).

Pure numpy on per-jet arrays, so models and baselines are measured by the same code.
"""

import numpy as np

from evaluate.metrics import quantile_resolution

N_CLASSES = 6


def fake_rate_at_efficiency(scores, is_tau, efficiency=0.6):
    """Background-jet efficiency at `efficiency` tau efficiency, on the ROC curve.

    The ROC curve has one point per distinct score (ties, such as the many isolated HPS taus
    with the same score, form one step) and is interpolated linearly between points, the
    standard convention (a threshold inside a tie block accepts a random part of it). NaN when
    the point lies in the floor of the lowest score (jets failing decay-mode finding).
    """
    from sklearn.metrics import roc_curve

    scores, is_tau = np.asarray(scores, float), np.asarray(is_tau, bool)
    if is_tau.all() or not is_tau.any():
        return float("nan")
    fpr, tpr, thresholds = roc_curve(is_tau, scores)
    above_floor = thresholds > scores.min()
    if not above_floor.any() or tpr[above_floor].max() < efficiency:
        return float("nan")
    return float(np.interp(efficiency, tpr, fpr))


def confusion(true, pred, n_classes=N_CLASSES):
    """(n_classes, n_classes) counts, rows = true class, columns = predicted; pred -1 = none."""
    m = np.zeros((n_classes, n_classes + 1), np.int64)
    np.add.at(m, (true, np.where(pred < 0, n_classes, pred)), 1)
    return m[:, :n_classes], m[:, n_classes]


def f1_per_class(true, pred, n_classes=N_CLASSES):
    """F1 of each decay-mode class (NaN for a class with neither truth nor prediction)."""
    out = []
    for c in range(n_classes):
        tp = np.sum((true == c) & (pred == c))
        fp = np.sum((true != c) & (pred == c))
        fn = np.sum((true == c) & (pred != c))
        out.append(float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else float("nan"))
    return out


def tau_metrics(
    *, is_tau, score=None, dm_true=None, dm_pred=None, q_true=None, q_pred=None, p4=None, gen=None
):
    """The metrics.json block of one method; tasks it does not do are left out.

    Args:
        is_tau: (N,) bool truth of all test jets.
        score: (N,) identification score (high = tau).
        dm_true, dm_pred: (N,) decay-mode classes (-1 = no prediction), used on true taus.
        q_true, q_pred: (N,) charges +1/-1 (0 = no prediction), used on true taus.
        p4: dict pt, eta, phi (N,) predicted visible-tau kinematics; gen: the same for truth.
    """
    out = {}
    tau = np.asarray(is_tau, bool)
    if score is not None:
        from sklearn.metrics import roc_auc_score  # tie-aware (HPS failures share one score)

        out["auc"] = float(roc_auc_score(tau, np.asarray(score, float)))
        out["fake_rate_at_eff60"] = fake_rate_at_efficiency(score, tau, 0.6)
        out["fake_rate_at_eff80"] = fake_rate_at_efficiency(score, tau, 0.8)
    if dm_pred is not None:
        t, p = np.asarray(dm_true)[tau], np.asarray(dm_pred)[tau]
        out["dm_accuracy"] = float(np.mean(t == p))
        out["dm_f1"] = f1_per_class(t, p)
        matrix, none = confusion(t, p)
        out["dm_confusion"] = matrix.tolist()
        out["dm_no_prediction"] = none.tolist()
    if q_pred is not None:
        t, p = np.asarray(q_true)[tau], np.asarray(q_pred)[tau]
        out["charge_misid"] = float(np.mean(t != p))
        has = p != 0
        out["charge_misid_when_predicted"] = float(np.mean(t[has] != p[has])) if has.any() else None
    if p4 is not None:
        pt_ratio = p4["pt"][tau] / gen["pt"][tau]
        out["pt_resolution"] = float(quantile_resolution(pt_ratio))
        out["pt_response_median"] = float(np.median(pt_ratio))
        out["eta_resolution"] = float(quantile_resolution(p4["eta"][tau] - gen["eta"][tau]))
        dphi = np.angle(np.exp(1j * (p4["phi"][tau] - gen["phi"][tau])))
        out["phi_resolution"] = float(quantile_resolution(dphi))
    return out


def kinematics_from_regression(kin, jet):
    """Visible-tau (pt, eta, phi, mass) from the 5 regressed corrections and the reco jet."""
    phi = jet["phi"] + np.arctan2(kin[:, 2], kin[:, 3])
    return dict(
        pt=jet["pt"] * np.exp(kin[:, 0]),
        eta=jet["eta"] + kin[:, 1],
        phi=np.angle(np.exp(1j * phi)),
        mass=jet["mass"] * np.exp(kin[:, 4]),
    )
