"""CLUE density-based clustering of weighted points (Rovere et al., arXiv:2001.09761).

Vectorised numpy with a `scipy.spatial.cKDTree` for the neighbour search, with the semantics of
CLUEstering 1.x (`Clustering.h`) and its default flat kernel:

1. Density: rho_i = w_i + 0.5 * sum of w_j over the other points j with d_ij <= dc.
2. Nearest-higher: among the points j that are "higher" than i, i.e. rho_j > rho_i, or
   rho_j == rho_i and j > i (CLUEstering's tie rule), and lie within dm = outlier_factor * dc
   (d_ij <= dm), the closest one (equal distances: the lower index); delta_i is its distance,
   inf when there is none.
3. Seed: rho_i >= rhoc and delta_i > dc. Outlier: rho_i < rhoc and delta_i > dm. Any other point
   follows its nearest-higher.
4. Labels pass from the seeds down the follower trees (pointer jumping); seeds are numbered
   0..K-1 in index order, as CLUEstering does. Outliers, and followers whose chain ends at an
   outlier, get -1.

CLUEstering 1.x standardises every coordinate before clustering; this function does not, so `dc`
is in the units of `points` (for eta, phi: a Delta R). Distances on a periodic coordinate use the
minimum image: |x_i - x_j| mod p, or p minus that when it is shorter. Arithmetic is float64
(CLUEstering: float32), and CLUEstering breaks equal nearest-higher distances by its tile order,
so labels can differ from it only for points at (nearly) equal distances or densities.
"""

from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree


class ClueResult(NamedTuple):
    """Everything `clue_details` computes; each field has shape (N,)."""

    labels: np.ndarray  # int64 cluster index, -1 for outliers
    rho: np.ndarray  # float64 local density
    delta: np.ndarray  # float64 distance to the nearest-higher, inf if none within dm
    nearest_higher: np.ndarray  # int64 index of the nearest-higher, -1 if none
    is_seed: np.ndarray  # bool


def _check(points, weights, dc, rhoc, outlier_factor, periodic):
    x = np.asarray(points, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"points must have shape (N, D) with D >= 1, got {x.shape}")
    if w.shape != (len(x),):
        raise ValueError(f"weights must have shape ({len(x)},) like points, got {w.shape}")
    if not (np.isfinite(x).all() and np.isfinite(w).all()):
        raise ValueError("points and weights must be finite (found NaN or inf)")
    for name, value in (("dc", dc), ("outlier_factor", outlier_factor)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value}")
    if not np.isfinite(rhoc):
        raise ValueError(f"rhoc must be finite, got {rhoc}")
    periods = np.zeros(x.shape[1])  # 0 = not periodic, the cKDTree convention
    if periodic is not None:
        if len(periodic) != x.shape[1]:
            raise ValueError(f"periodic needs one entry per coordinate ({x.shape[1]})")
        for k, p in enumerate(periodic):
            if p is not None:
                if not (np.isfinite(p) and p > 0):
                    raise ValueError(f"period of coordinate {k} must be positive, got {p}")
                periods[k] = p
    return x, w, periods


def _candidate_pairs(x, periods, r):
    """Index arrays (a, b): every unordered pair of points within distance r, each once.

    One periodic coordinate (with r < period / 3) is handled by copying the points within r of
    its upper edge one period down and searching a plain tree, which is about twice as fast as
    a periodic `cKDTree`; other cases use `cKDTree(boxsize=...)`.
    """
    n, xt = len(x), x.copy()
    wrap = np.flatnonzero(periods > 0)
    for k in wrap:  # shift into [0, period), as the periodic tree needs
        xt[:, k] = np.mod(xt[:, k], periods[k])
        xt[xt[:, k] >= periods[k], k] = 0.0
    fast = dict(leafsize=16, balanced_tree=False, compact_nodes=False)
    if len(wrap) == 1 and 3 * r < periods[wrap[0]]:
        k, p = wrap[0], periods[wrap[0]]
        ghost = np.flatnonzero(xt[:, k] >= p - r)
        copies = xt[ghost]
        copies[:, k] -= p
        pairs = cKDTree(np.concatenate([xt, copies]), **fast).query_pairs(r, output_type="ndarray")
        pairs = pairs[pairs[:, 0] < n]  # a pair of copies repeats a pair of originals
        return pairs[:, 0].astype(np.int64), np.concatenate([np.arange(n), ghost])[pairs[:, 1]]
    tree = cKDTree(xt, boxsize=periods) if len(wrap) else cKDTree(xt, **fast)
    pairs = tree.query_pairs(r, output_type="ndarray").astype(np.int64)
    return pairs[:, 0], pairs[:, 1]


def _pair_distances(x, a, b, periods):
    """Euclidean distances of the pairs (a, b), minimum image on periodic coordinates."""
    s = np.zeros(len(a))
    for k, p in enumerate(periods):
        dk = np.abs(x[a, k] - x[b, k])
        if p > 0:
            dk = np.mod(dk, p)
            dk = np.minimum(dk, p - dk)
        s += dk * dk
    return np.sqrt(s)


def clue_details(points, weights, *, dc, rhoc, outlier_factor, periodic=None):
    """CLUE with its intermediate quantities (see the module docstring for the rules).

    Args:
        points: (N, D) coordinates, e.g. (eta, phi).
        weights: (N,) point weights, e.g. pT in GeV.
        dc: density radius (> 0), in the units of `points`.
        rhoc: minimum density of a seed; points below it with no nearest-higher within dm
            are outliers.
        outlier_factor: dm / dc (> 0), the follower search radius in units of dc.
        periodic: None, or one entry per coordinate: None (not periodic) or the period,
            e.g. `(None, 2 * np.pi)` for (eta, phi).
    Returns:
        ClueResult of (N,) arrays: labels, rho, delta, nearest_higher, is_seed.
    Raises:
        ValueError: wrong shapes, non-finite values, non-positive dc, outlier_factor or period.
    """
    x, w, periods = _check(points, weights, dc, rhoc, outlier_factor, periodic)
    n, dm = len(x), outlier_factor * dc
    if n == 0:
        e = np.zeros(0, np.int64)
        return ClueResult(e, np.zeros(0), np.zeros(0), e, np.zeros(0, bool))
    # the tree only proposes pairs (a hair beyond the radius); the distances below decide
    a, b = _candidate_pairs(x, periods, max(dc, dm) * (1 + 1e-9) + 1e-12)
    d = _pair_distances(x, a, b, periods)
    # 1. density, flat kernel: full weight of the point itself, half of each neighbour
    near = d <= dc
    an, bn = a[near], b[near]
    rho = w + 0.5 * (np.bincount(an, w[bn], minlength=n) + np.bincount(bn, w[an], minlength=n))
    # 2. nearest-higher within dm: "higher" is a strict order, so each pair gives one candidate
    keep = d <= dm
    a, b, d = a[keep], b[keep], d[keep]
    up = (rho[b] > rho[a]) | ((rho[b] == rho[a]) & (b > a))
    src, dst = np.where(up, a, b), np.where(up, b, a)
    order = np.argsort(d)
    if np.any(d[order][1:] == d[order][:-1]):  # equal distances: the lower index first
        order = np.lexsort((dst, d))
    first = np.full(n, len(order))  # rank of each point's nearest higher
    np.minimum.at(first, src[order], np.arange(len(order)))
    has = first < len(order)
    nh = np.full(n, -1, np.int64)
    delta = np.full(n, np.inf)
    nh[has], delta[has] = dst[order[first[has]]], d[order[first[has]]]
    # 3. classification
    is_seed = (rho >= rhoc) & (delta > dc)
    is_outlier = (rho < rhoc) & (delta > dm)
    follower = ~is_seed & ~is_outlier
    # 4. propagation: the "higher" order is strict, so the follower graph is a forest
    parent = np.where(follower, nh, np.arange(n))
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            break
        parent = grand
    seed_label = np.full(n, -1, np.int64)
    seed_label[is_seed] = np.arange(np.count_nonzero(is_seed))
    return ClueResult(seed_label[parent], rho, delta, nh, is_seed)


def clue(points, weights, *, dc, rhoc, outlier_factor, periodic=None):
    """Cluster weighted points with CLUE (flat kernel, CLUEstering 1.x semantics).

    Args:
        points: (N, D) coordinates, e.g. (eta, phi) of particle candidates.
        weights: (N,) weights, e.g. pT in GeV.
        dc: density radius (> 0), in the units of `points`.
        rhoc: minimum density of a seed (GeV for pT weights).
        outlier_factor: dm / dc (> 0); dm is the follower search radius.
        periodic: None, or per coordinate None or a period, e.g. `(None, 2 * np.pi)`.
    Returns:
        (N,) int64 cluster labels 0..K-1 (seeds numbered in index order), -1 for outliers.
    Raises:
        ValueError: wrong shapes, non-finite values, non-positive dc, outlier_factor or period.
    """
    return clue_details(
        points, weights, dc=dc, rhoc=rhoc, outlier_factor=outlier_factor, periodic=periodic
    ).labels
