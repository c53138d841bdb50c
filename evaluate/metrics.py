"""Figures of merit shared by the evaluations: response, resolution, core fits, separation.

Resolution follows the seeds: (P84 - P16) / 2, and relative to the median for responses.
"""

import numpy as np


def quantile_resolution(x):
    """(P84 - P16) / 2 of finite values."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan")
    q16, q84 = np.percentile(x, [15.865, 84.135])
    return float((q84 - q16) / 2)


def response(pred, true):
    """Median of pred/true and relative resolution (P84 - P16) / (2 median), finite entries.

    Returns:
        dict with median, resolution, mean, n (events used), n_invalid (non-finite pred).
    """
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    ok = np.isfinite(pred) & np.isfinite(true) & (true > 0)
    r = pred[ok] / true[ok]
    if len(r) == 0:
        return {
            "median": float("nan"),
            "resolution": float("nan"),
            "mean": float("nan"),
            "n": 0,
            "n_invalid": int((~ok).sum()),
        }
    med = float(np.median(r))
    return {
        "median": med,
        "resolution": quantile_resolution(r) / med,
        "mean": float(r.mean()),
        "n": len(r),
        "n_invalid": int((~ok).sum()),
    }


def relative_bias_resolution(pred, true):
    """Robust RB = median((pred - true) / true), Res = (P84 - P16) / 2 of the same.

    Seed 004 defines RB and Res as the mean and RMS of d; `evaluate.lgatr` reports both.
    """
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    ok = np.isfinite(pred) & np.isfinite(true) & (np.abs(true) > 0)
    d = (pred[ok] - true[ok]) / np.abs(true[ok])
    return {
        "rb": float(np.median(d)) if len(d) else float("nan"),
        "res": quantile_resolution(d),
        "n": len(d),
    }


def gaussian_core(x, n_sigma=1.5, iterations=5):
    """Gaussian core of a distribution: iterated fit within +-n_sigma of the peak.

    Returns:
        dict mu, sigma (maximum-likelihood Gaussian of the truncated sample, corrected for the
        truncation with scipy's truncnorm fit).
    """
    from scipy import stats

    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if len(x) < 20:
        return {"mu": float("nan"), "sigma": float("nan")}
    mu, sigma = np.median(x), quantile_resolution(x)
    for _ in range(iterations):
        sel = x[np.abs(x - mu) < n_sigma * sigma]
        if len(sel) < 20 or sigma <= 0:
            break
        a, b = -n_sigma, n_sigma
        _, _, mu_new, sigma_new = stats.truncnorm.fit(sel, a, b, loc=mu, scale=sigma)
        mu, sigma = mu_new, sigma_new
    return {"mu": float(mu), "sigma": float(sigma)}


def shortest_window(x, efficiency=0.9):
    """The shortest interval [lo, hi] that contains `efficiency` of x; (nan, nan) without a
    finite value (a method that was not run, e.g. `--no-fastmtt`)."""
    x = np.sort(np.asarray(x, float)[np.isfinite(x)])
    if not len(x):
        return float("nan"), float("nan")
    k = max(int(np.ceil(efficiency * len(x))), 1)
    widths = x[k - 1 :] - x[: len(x) - k + 1]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + k - 1])


def window_separation(signal, background, efficiency=0.9):
    """Fraction of background inside the shortest window keeping `efficiency` of signal."""
    lo, hi = shortest_window(signal, efficiency)
    b = np.asarray(background, float)
    inside = np.isfinite(b) & (b >= lo) & (b <= hi)
    return {
        "window": [lo, hi],
        "background_fraction": float(inside.mean()) if len(b) and np.isfinite(lo) else float("nan"),
    }


def binned_response(pred, true, edges):
    """Median response and relative resolution in bins of the true value."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (true >= lo) & (true < hi)
        r = response(pred[sel], true[sel]) if sel.sum() >= 5 else None
        rows.append(
            {
                "lo": float(lo),
                "hi": float(hi),
                "n": int(sel.sum()),
                "median": r["median"] if r else float("nan"),
                "resolution": r["resolution"] if r else float("nan"),
            }
        )
    return rows


def roc_curve(scores, labels):
    """Signal efficiency and background efficiency for thresholds over sorted scores."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    order = np.argsort(-scores)
    is_signal = labels[order]
    tpr = np.cumsum(is_signal) / max(is_signal.sum(), 1)
    fpr = np.cumsum(~is_signal) / max((~is_signal).sum(), 1)
    return fpr, tpr


def auc(scores, labels):
    fpr, tpr = roc_curve(scores, labels)
    return float(np.trapezoid(np.concatenate([[0], tpr]), np.concatenate([[0], fpr])))
