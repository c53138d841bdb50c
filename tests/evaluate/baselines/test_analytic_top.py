"""Tests for the analytic dilepton ttbar solution on exact, hand-built toy kinematics."""

import numpy as np
import pytest

from evaluate.baselines.analytic_top import (
    dilepton_candidates,
    solution_efficiency,
    solve_dilepton,
)
from evaluate.baselines.nu_ellipse import ellipse_points, neutrino_ellipse
from evaluate.bench.analytic_top_speed import M_B, M_L, M_TOP, M_W, toy_events


def _mass(p):
    return np.sqrt(np.maximum(p[..., 3] ** 2 - np.sum(p[..., :3] ** 2, -1), 0))


def _rel(a, b):
    return np.linalg.norm(a - b, axis=-1) / np.linalg.norm(b, axis=-1)


def _solve(ev, met=None, **kw):
    met = ev["met"] if met is None else met
    args = (ev["l_t"], ev["l_tbar"], ev["b_t"], ev["b_tbar"], met[:, 0], met[:, 1])
    return solve_dilepton(*args, m_top=M_TOP, m_w=M_W, **kw)


@pytest.fixture(scope="module")
def events():
    return toy_events(2000, seed=1)


def test_toy_events_are_exact(events):
    for t in ("t", "tbar"):
        np.testing.assert_allclose(_mass(events[t]), M_TOP, rtol=1e-9)
        w = events[f"l_{t}"] + events[f"nu_{t}"]
        np.testing.assert_allclose(_mass(w), M_W, rtol=1e-9)
        np.testing.assert_allclose(_mass(events[f"b_{t}"]), M_B, rtol=1e-6)
        np.testing.assert_allclose(_mass(events[f"l_{t}"]), M_L, rtol=1e-3)
        np.testing.assert_allclose(_mass(events[f"nu_{t}"]), 0.0, atol=1e-5)
        np.testing.assert_allclose(w + events[f"b_{t}"], events[t], rtol=1e-9, atol=1e-9)


def test_ellipse_contains_true_neutrino(events):
    h, z2 = neutrino_ellipse(events["b_t"], events["l_t"], M_TOP, M_W)
    assert np.all(z2 > 0)
    e = np.linalg.solve(h, events["nu_t"][:, :3, None])[..., 0]  # nu = h (cos t, sin t, 1)
    np.testing.assert_allclose(e[:, 2], 1.0, atol=1e-6)
    np.testing.assert_allclose(np.hypot(e[:, 0], e[:, 1]), 1.0, atol=1e-6)


def test_ellipse_points_satisfy_mass_constraints(events):
    h, _ = neutrino_ellipse(events["b_tbar"], events["l_tbar"], M_TOP, M_W)
    t = np.random.default_rng(2).uniform(0, 2 * np.pi, (len(h), 5))
    nu = ellipse_points(h, t)
    nu4 = np.concatenate([nu, np.linalg.norm(nu, axis=-1, keepdims=True)], axis=-1)
    w = events["l_tbar"][:, None] + nu4
    np.testing.assert_allclose(_mass(w), M_W, rtol=1e-8)
    np.testing.assert_allclose(_mass(w + events["b_tbar"][:, None]), M_TOP, rtol=1e-8)


def test_true_solution_among_candidates(events):
    cand = dilepton_candidates(
        events["l_t"], events["l_tbar"], events["b_t"], events["b_tbar"], events["met"], M_TOP, M_W
    )
    assert np.all(np.any(cand["real"], axis=1)) and not np.any(cand["fallback"])
    err = np.maximum(
        _rel(cand["nu"], events["nu_t"][:, None, :3]),
        _rel(cand["nubar"], events["nu_tbar"][:, None, :3]),
    )
    best = np.min(np.where(cand["real"], err, np.inf), axis=1)
    assert np.quantile(best, 0.99) < 1e-6
    assert np.all(best < 1e-3)


def test_exact_events_solved_and_rule_fraction(events):
    res = _solve(events)
    assert solution_efficiency(res) == 1.0
    assert not np.any(res["fallback"]) and np.all(res["n_solutions"] >= 1)
    assert np.all(res["n_solutions"] <= 4) and np.all(res["n_solutions"] % 2 == 0)
    for key in ("top", "antitop"):
        np.testing.assert_allclose(_mass(res[key]), M_TOP, rtol=1e-6)
    right = (_rel(res["top"], events["t"]) < 1e-3) & (_rel(res["antitop"], events["tbar"]) < 1e-3)
    print(f"min_mtt picks the true solution in {right.mean():.3f} of exact events")
    assert right.mean() > 0.5
    right_single = right[res["n_solutions"] == 2]  # two real roots: the rule is a coin with bias
    assert right_single.mean() > 0.5
    res_e = _solve(events, rule="min_nu_energy")
    right_e = _rel(res_e["top"], events["t"]) < 1e-3
    print(f"min_nu_energy picks the true solution in {right_e.mean():.3f} of exact events")
    assert np.all(res_e["has_solution"])


def test_smeared_met_fallback(events):
    rng = np.random.default_rng(3)
    met = events["met"] + rng.normal(0.0, 25.0, events["met"].shape)
    res = _solve(events, met=met)
    eff = solution_efficiency(res)
    print(f"solution efficiency with 25 GeV MET smearing: {eff:.3f}")
    assert 0.05 < np.mean(res["fallback"]) < 0.95
    assert np.all(res["fallback"] == ~res["has_solution"])
    fb = res["fallback"]
    assert np.all(res["chi2"][fb] > 0) and np.all(res["chi2"][~fb] == 0)
    for key in ("top", "antitop", "nu", "nubar"):
        assert np.all(np.isfinite(res[key]))
    for key in ("top", "antitop"):
        np.testing.assert_allclose(_mass(res[key][fb]), M_TOP, rtol=1e-6)
    np.testing.assert_allclose(_mass(res["nu"][fb] + events["l_t"][fb]), M_W, rtol=1e-6)
    # The fallback gets closer to MET than the smearing moved it.
    moved = np.sum((met - events["met"]) ** 2, axis=1)
    assert np.all(res["chi2"][fb] <= moved[fb] * (1 + 1e-6))


def test_swapped_b_assignment(events):
    swapped_ev = dict(events, b_t=events["b_tbar"], b_tbar=events["b_t"])
    plain = _solve(swapped_ev)  # wrong pairing, no swap: the truth is lost
    assert np.mean(_rel(plain["top"], events["t"]) < 1e-3) < 0.05
    res = _solve(swapped_ev, try_swap=True)
    ref = _solve(events, try_swap=True)
    assert solution_efficiency(res) == 1.0
    np.testing.assert_array_equal(res["swapped"], ~ref["swapped"])
    np.testing.assert_allclose(res["top"], ref["top"], rtol=1e-9, atol=1e-9)
    right = _rel(res["top"], events["t"]) < 1e-3
    assert np.all(res["swapped"][right])
    print(f"try_swap on swapped inputs recovers the truth in {right.mean():.3f} of events")
    assert right.mean() > 0.4


def test_no_ellipse_and_collinear_events(events):
    # b energy scaled by 2: no neutrino meets both masses in part of the events (Z^2 < 0)
    _, z2 = neutrino_ellipse(2 * events["b_t"], events["l_t"], M_TOP, M_W)
    assert 0 < np.mean(z2 < 0) < 1
    res = _solve(dict(events, b_t=2 * events["b_t"]))
    no = z2 < 0
    assert np.all(res["fallback"][no]) and not np.any(res["has_solution"][no])
    assert np.all(np.isfinite(res["top"])) and np.all(np.isfinite(res["chi2"]))
    # b collinear with l+: the ellipse is undefined, outputs NaN with both flags False
    ev = {k: v[:3].copy() for k, v in events.items()}
    ev["b_t"][0, :3] = ev["l_t"][0, :3] * 2.0
    ev["b_t"][0, 3] = np.hypot(np.linalg.norm(ev["b_t"][0, :3]), M_B)
    res = _solve(ev)
    assert np.all(np.isnan(res["top"][0])) and np.all(np.isfinite(res["top"][1:]))
    assert not res["has_solution"][0] and not res["fallback"][0]


def test_empty_input():
    z = np.zeros((0, 4))
    res = solve_dilepton(z, z, z, z, np.zeros(0), np.zeros(0), try_swap=True)
    assert res["top"].shape == (0, 4) and res["has_solution"].shape == (0,)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"b": np.zeros((5, 3))}, "shape"),
        ({"lep_pos": np.full((5, 4), np.nan)}, "non-finite"),
        ({"bbar": np.ones((4, 4))}, "number of events"),
        ({"met_x": np.zeros(4)}, "met_x"),
        ({"met_y": np.array([np.inf, 0, 0, 0, 0])}, "non-finite"),
        ({"m_top": 50.0}, "m_top"),
        ({"rule": "closest"}, "rule"),
        ({"lep_neg": np.tile([0.0, 0.0, 0.0, 10.0], (5, 1))}, r"\|p\| > 0"),
    ],
)
def test_bad_input_raises(events, change, match):
    kw = {
        "lep_pos": events["l_t"][:5],
        "lep_neg": events["l_tbar"][:5],
        "b": events["b_t"][:5],
        "bbar": events["b_tbar"][:5],
        "met_x": events["met"][:5, 0],
        "met_y": events["met"][:5, 1],
    }
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        solve_dilepton(**kw)
