"""CLUE (data.reco.clue): hand-made point sets and a straight per-point reference."""

import math

import numpy as np
import pytest

from data.reco.clue import clue, clue_details

TWO_PI = 2 * math.pi
PHI = (None, TWO_PI)


def _reference(points, weights, dc, rhoc, outlier_factor, periodic=None):
    """CLUE written point by point, O(N^2), as CLUEstering 1.x's serial loops.

    Same rules as data.reco.clue: flat kernel (1 for the point, 0.5 for others with d <= dc);
    j is higher than i if rho_j > rho_i or (rho_j == rho_i and j > i); the nearest-higher is
    the closest higher point with d <= dm (equal distances: the lower index); seeds numbered in
    index order; labels passed down the followers with a stack.
    """
    pts = [list(map(float, p)) for p in points]
    w = [float(v) for v in weights]
    n, dm = len(pts), outlier_factor * dc
    periods = periodic or [None] * (len(pts[0]) if n else 0)

    def dist(i, j):
        s = 0.0
        for k, p in enumerate(periods):
            dx = abs(pts[i][k] - pts[j][k])
            if p is not None:
                dx = dx % p
                dx = min(dx, p - dx)
            s += dx * dx
        return math.sqrt(s)

    rho = []
    for i in range(n):
        r = w[i]
        for j in range(n):
            if j != i and dist(i, j) <= dc:
                r += 0.5 * w[j]
        rho.append(r)
    nh, delta = [-1] * n, [math.inf] * n
    for i in range(n):
        for j in range(n):
            if j == i or not (rho[j] > rho[i] or (rho[j] == rho[i] and j > i)):
                continue
            d = dist(i, j)
            if d <= dm and d < delta[i]:  # ascending j: equal distances keep the lower index
                delta[i], nh[i] = d, j
    labels, followers, stack = [-1] * n, [[] for _ in range(n)], []
    for i in range(n):
        if rho[i] >= rhoc and delta[i] > dc:
            labels[i] = len(stack)
            stack.append(i)
        elif not (rho[i] < rhoc and delta[i] > dm):
            followers[nh[i]].append(i)
    while stack:
        i = stack.pop()
        for j in followers[i]:
            labels[j] = labels[i]
            stack.append(j)
    return np.array(labels), np.array(rho)


def _blob(rng, center, n, spread=0.02, pt=(1.0, 3.0)):
    return center + rng.normal(0, spread, (n, 2)), rng.uniform(*pt, n)


def test_two_separated_blobs_and_an_outlier():
    rng = np.random.default_rng(0)
    (x1, w1), (x2, w2) = _blob(rng, (0.0, 0.0), 15), _blob(rng, (1.5, 2.0), 12)
    x = np.concatenate([x1, x2, [[-2.0, -2.5]]])
    w = np.concatenate([w1, w2, [0.3]])  # an isolated low-weight point
    labels = clue(x, w, dc=0.1, rhoc=2.0, outlier_factor=2.0, periodic=PHI)
    assert labels.dtype == np.int64 and labels.shape == (28,)
    assert set(labels[:15]) == {0} and set(labels[15:27]) == {1}
    assert labels[27] == -1
    # the same isolated point with a high weight is a seed of its own
    w[27] = 5.0
    assert clue(x, w, dc=0.1, rhoc=2.0, outlier_factor=2.0)[27] == 2


def test_blob_across_phi_pi_wraps_only_when_periodic():
    rng = np.random.default_rng(1)
    x = np.stack([rng.normal(0.5, 0.02, 30), np.pi + rng.normal(0, 0.02, 30)], axis=1)
    x[:, 1] = np.where(x[:, 1] > np.pi, x[:, 1] - TWO_PI, x[:, 1])  # phi in (-pi, pi]
    assert (x[:, 1] > 0).any() and (x[:, 1] < 0).any()
    w = rng.uniform(1, 3, 30)
    wrapped = clue(x, w, dc=0.1, rhoc=2.0, outlier_factor=2.0, periodic=PHI)
    assert set(wrapped) == {0}
    flat = clue(x, w, dc=0.1, rhoc=2.0, outlier_factor=2.0)
    assert len(set(flat) - {-1}) == 2
    assert len(set(flat[x[:, 1] > 0])) == 1 and len(set(flat[x[:, 1] < 0])) == 1


def test_flat_kernel_example_of_the_reference():
    # met_l1.md 4.1: weights 1 and 3, rhoc 3 -> the weight-3 point is the seed, rho = 3.5
    r = clue_details([[0.0, 0.0], [0.05, 0.0]], [1.0, 3.0], dc=0.1, rhoc=3.0, outlier_factor=2.0)
    np.testing.assert_allclose(r.rho, [2.5, 3.5])  # 1 + 0.5 * 3, 3 + 0.5 * 1
    np.testing.assert_array_equal(r.is_seed, [False, True])
    np.testing.assert_array_equal(r.nearest_higher, [1, -1])
    np.testing.assert_allclose(r.delta, [0.05, np.inf])
    np.testing.assert_array_equal(r.labels, [0, 0])


def test_equal_densities_break_ties_by_index():
    r = clue_details([[0.0, 0.0], [0.05, 0.0]], [1.0, 1.0], dc=0.1, rhoc=1.0, outlier_factor=2.0)
    np.testing.assert_array_equal(r.nearest_higher, [1, -1])  # the higher index is "higher"
    np.testing.assert_array_equal(r.labels, [0, 0])


@pytest.mark.parametrize("periodic", [None, (None, 6.0), (6.0, 6.0)])
@pytest.mark.parametrize("dc, factor", [(1.0, 1.5), (1.5, 2.0)])
def test_lattice_with_equal_densities_and_distances_matches_reference(periodic, dc, factor):
    # integer coordinates: exact equal distances and, with equal weights, many equal densities
    x = np.stack(np.meshgrid(np.arange(6.0), np.arange(6.0)), -1).reshape(-1, 2)
    w = np.ones(len(x))
    w[[7, 28]] = 2.0
    ref_labels, ref_rho = _reference(x, w, dc, 3.0, factor, periodic)
    r = clue_details(x, w, dc=dc, rhoc=3.0, outlier_factor=factor, periodic=periodic)
    np.testing.assert_allclose(r.rho, ref_rho, rtol=1e-12)
    np.testing.assert_array_equal(r.labels, ref_labels)


@pytest.mark.parametrize("case", range(20))
def test_matches_per_point_reference(case):
    rng = np.random.default_rng(100 + case)
    n = int(rng.integers(1, 300))
    x = np.stack([rng.uniform(-1.5, 1.5, n), rng.uniform(-np.pi, np.pi, n)], axis=1)
    if case % 3 == 0:  # clumps on top of the uniform points
        centers = x[rng.integers(0, n, 5)]
        x[: n // 2] = centers[rng.integers(0, 5, n // 2)] + rng.normal(0, 0.05, (n // 2, 2))
        x[:, 1] = (x[:, 1] + np.pi) % TWO_PI - np.pi
    w = rng.exponential(1.0, n) if case % 4 else rng.integers(0, 4, n).astype(float)
    dc, rhoc, factor = rng.uniform(0.05, 0.4), rng.uniform(0.0, 4.0), rng.uniform(0.5, 3.0)
    periodic = [None, PHI, None, (3.0, TWO_PI)][case % 4]  # the last: a periodic-tree search
    ref_labels, ref_rho = _reference(x, w, dc, rhoc, factor, periodic)
    r = clue_details(x, w, dc=dc, rhoc=rhoc, outlier_factor=factor, periodic=periodic)
    np.testing.assert_allclose(r.rho, ref_rho, rtol=1e-12)
    np.testing.assert_array_equal(r.labels, ref_labels)


def test_deterministic_and_independent_of_phi_shift():
    rng = np.random.default_rng(7)
    x = np.stack([rng.normal(0, 1, 400), rng.uniform(-np.pi, np.pi, 400)], axis=1)
    w = rng.exponential(2.0, 400)
    kw = dict(dc=0.2, rhoc=2.0, outlier_factor=2.0, periodic=PHI)
    a = clue(x, w, **kw)
    np.testing.assert_array_equal(a, clue(x.copy(), w.copy(), **kw))
    shifted = x + [0.0, TWO_PI]  # same points, phi outside (-pi, pi]
    np.testing.assert_array_equal(a, clue(shifted, w, **kw))


def test_small_and_degenerate_inputs():
    kw = dict(dc=0.1, rhoc=1.0, outlier_factor=2.0, periodic=PHI)
    empty = clue(np.zeros((0, 2)), np.zeros(0), **kw)
    assert empty.shape == (0,) and empty.dtype == np.int64
    np.testing.assert_array_equal(clue([[0.0, 1.0]], [2.0], **kw), [0])
    np.testing.assert_array_equal(clue([[0.0, 1.0]], [0.5], **kw), [-1])
    x = np.array([[0.0, 0.0], [0.01, 0.0], [3.0, 1.0]])
    np.testing.assert_array_equal(clue(x, np.zeros(3), **kw), [-1, -1, -1])  # all weights zero
    kw["rhoc"] = 0.0
    np.testing.assert_array_equal(clue(x, np.zeros(3), **kw), [0, 0, 1])  # zero-weight seeds
    x = np.zeros((4, 2))  # identical points: each sees the others at distance 0
    r = clue_details(x, np.ones(4), dc=0.1, rhoc=1.0, outlier_factor=2.0)
    np.testing.assert_allclose(r.rho, 2.5)
    np.testing.assert_array_equal(r.labels, 0)


@pytest.mark.parametrize(
    "points, weights, kwargs",
    [
        (np.zeros(3), np.ones(3), {}),  # not (N, D)
        (np.zeros((3, 2)), np.ones(2), {}),  # weights of another length
        ([[0.0, np.nan]], [1.0], {}),
        ([[0.0, 0.0]], [np.inf], {}),
        (np.zeros((2, 2)), np.ones(2), {"dc": -0.1}),
        (np.zeros((2, 2)), np.ones(2), {"dc": 0.0}),
        (np.zeros((2, 2)), np.ones(2), {"outlier_factor": 0.0}),
        (np.zeros((2, 2)), np.ones(2), {"rhoc": np.nan}),
        (np.zeros((2, 2)), np.ones(2), {"periodic": (TWO_PI,)}),
        (np.zeros((2, 2)), np.ones(2), {"periodic": (None, -1.0)}),
    ],
)
def test_bad_inputs_raise(points, weights, kwargs):
    kw = dict(dc=0.1, rhoc=1.0, outlier_factor=2.0) | kwargs
    with pytest.raises(ValueError):
        clue(points, weights, **kw)
