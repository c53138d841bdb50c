"""ScoutTau rates and working points on hand-made samples."""

import numpy as np
import pytest

from evaluate import scouttau_metrics as sm


def test_rate_conversion_by_hand():
    # 3 of 1000 zero-bias events pass: 3e-3 x 31,039 kHz = 93.117 kHz
    assert sm.rate_khz(3, 1000) == pytest.approx(93.117)
    assert sm.rate_khz(0, 10) == 0.0
    assert sm.rate_khz(10, 10) == pytest.approx(31039.0)
    with pytest.raises(ValueError):
        sm.rate_khz(1, 0)


def test_pairs_are_within_events_with_opposite_charge_confidence():
    # event 0: three candidates, event 1: one, event 2: two (listed out of order)
    event = [2, 0, 0, 1, 0, 2]
    score = [0.9, 0.8, 0.3, 0.99, 0.6, 0.7]
    charge = [0.5, 0.9, -0.4, 1.0, 0.2, -0.8]
    vz = [1.0, 0.0, 0.25, 5.0, -0.1, 1.3]
    p = sm.pairs(event, score, charge, vz)
    got = sorted(zip(p["event"], p["score"], p["charge_conf"], np.round(p["dvz"], 6)))
    want = sorted(
        [
            (0, 0.3, 0.4, 0.25),  # 1-2: opposite, min |q| 0.4
            (0, 0.6, -1.0, 0.1),  # 1-4: same sign
            (0, 0.3, 0.2, 0.35),  # 2-4: opposite, min |q| 0.2
            (2, 0.7, 0.5, 0.3),  # 0-5
        ]
    )
    assert len(got) == 4
    for g, w in zip(got, want):
        assert g[0] == w[0]
        np.testing.assert_allclose(g[1:], w[1:], atol=1e-12)


def test_score_cut_keeps_the_rate_at_or_below_target():
    # 31,039 kHz x k / n <= 50 kHz: with n = 3104 events, k = 5 may pass
    rng = np.random.default_rng(0)
    emax = rng.random(3104)
    cut = sm.score_cut_for_rate(emax, 50.0)
    assert (emax > cut).sum() == 5
    assert sm.rate_khz((emax > cut).sum(), len(emax)) <= 50.0
    # ties at the cut do not let more events through
    emax = np.array([0.9, 0.9, 0.9, 0.5] + [-np.inf] * 3100)
    cut = sm.score_cut_for_rate(emax, 50.0)
    assert (emax > cut).sum() <= 5
    # a loose target lets everything with a pair pass, nothing without
    cut = sm.score_cut_for_rate(np.array([0.2, -np.inf]), 1e9)
    assert cut == -np.inf


def test_grid_search_prefers_the_cut_that_removes_background():
    # zero bias: 1000 events, each with one same-sign high-score pair, which only the charge
    # requirement removes; signal: 10 events, opposite-sign pairs of score 0.5
    zb = {"event": np.arange(1000), "score": np.full(1000, 0.95),
          "charge_conf": np.full(1000, -1.0), "dvz": np.zeros(1000)}  # fmt: skip
    sig = {"event": np.arange(10), "score": np.full(10, 0.5),
           "charge_conf": np.full(10, 0.9), "dvz": np.full(10, 0.05)}  # fmt: skip
    best = sm.grid_search(zb, 1000, sig, 10, target_khz=50.0)
    assert best["charge_cut"] is not None and best["efficiency"] == 1.0
    assert best["rate_khz"] == 0.0
    # without a charge requirement the score cut must kill the zero bias: no signal left
    no_q = [g for g in best["grid"] if g["charge_cut"] is None]
    assert all(g["efficiency"] == 0.0 for g in no_q)
    # a fixed WP on other samples
    wp = {k: best[k] for k in ("score_cut", "charge_cut", "dvz_cut")}
    again = sm.apply_wp(wp, zb, 1000, sig, 20)
    assert again["efficiency"] == 0.5 and again["rate_khz"] == 0.0


def test_signal_pairs_need_two_accepted_hadronic_taus_both_matched():
    # event 0: two taus matched to candidates 0, 1; event 1: one tau only; event 2: two
    # taus, one unmatched; event 3: one tau below 5 GeV
    taus = {
        "event": np.array([0, 0, 1, 2, 2, 3, 3]),
        "pt": np.array([10.0, 20.0, 15.0, 8.0, 9.0, 4.0, 30.0]),
        "eta": np.zeros(7),
        "matched": np.array([0, 1, 2, 3, -1, 4, 5]),
    }
    event = np.array([0, 0, 1, 2, 3, 3])
    score, charge, vz = (
        np.array([0.8, 0.6, 0.9, 0.9, 0.9, 0.9]),
        np.array([1, -1, 1, 1, 1, -1]),
        np.zeros(6),
    )
    p, n = sm.signal_pairs(taus, event, score, charge, vz, 4)
    assert n == 2  # events 0 and 2
    np.testing.assert_array_equal(p["event"], [0])
    np.testing.assert_allclose(p["score"], [0.6])
    assert sm.ditau_efficiency(p, n, 0.5, 0.0, 0.2) == 0.5
    assert sm.ditau_efficiency(p, n, 0.7, 0.0, 0.2) == 0.0  # fmt: skip


def test_single_tau_efficiency_per_bin():
    taus = {"pt": np.array([6.0, 12.0, 18.0, 25.0]), "eta": np.zeros(4),
            "matched": np.array([0, -1, 1, 2])}  # fmt: skip
    score, charge = np.array([0.9, 0.2, 0.95]), np.array([0.9, 0.9, 0.1])
    wp = {"score_cut": 0.5, "charge_cut": None, "dvz_cut": 1.0}
    rows = sm.single_tau_efficiency(taus, score, charge, wp, (5.0, 20.0, 40.0))
    assert [r["n"] for r in rows] == [3, 1]
    np.testing.assert_allclose([r["fraction"] for r in rows], [1 / 3, 1.0])
    wp["charge_cut"] = 0.5  # the 25 GeV tau's charge confidence is 0.1
    rows = sm.single_tau_efficiency(taus, score, charge, wp, (5.0, 20.0, 40.0))
    np.testing.assert_allclose([r["fraction"] for r in rows], [1 / 3, 0.0])


def test_score_floor_bounds_the_cut():
    # only 2 of 10,000 events have a pair at all: any cut passes the rate, the floor holds
    emax = np.full(10_000, -np.inf)
    emax[:2] = [0.7, 0.3]
    assert sm.score_cut_for_rate(emax, 50.0) == -np.inf
    assert sm.score_cut_for_rate(emax, 50.0, floor=0.5) == 0.5
