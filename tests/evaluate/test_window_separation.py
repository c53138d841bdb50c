"""Shortest mass window and the background inside it (evaluate/metrics.py)."""

import numpy as np

from evaluate import metrics


def test_shortest_window_hand_computed():
    x = [1.0, 2.0, 2.1, 2.2, 2.3, 9.0]  # 4 of 6: the tight cluster 2.0-2.3
    assert metrics.shortest_window(x, efficiency=4 / 6) == (2.0, 2.3)


def test_window_separation_counts_background_inside():
    sep = metrics.window_separation([1.0, 2.0, 3.0], [0.5, 1.5, 2.5, 3.5], efficiency=1.0)
    assert sep["window"] == [1.0, 3.0] and sep["background_fraction"] == 0.5


def test_method_not_run_gives_nan_not_an_error():
    nan = np.full(30, np.nan)  # e.g. FastMTT under --no-fastmtt
    lo, hi = metrics.shortest_window(nan)
    assert np.isnan(lo) and np.isnan(hi)
    assert np.isnan(metrics.window_separation(nan, np.ones(30))["background_fraction"])
