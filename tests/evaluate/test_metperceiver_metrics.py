"""MET figures of merit (evaluate/metperceiver_metrics.py) on hand-made residuals."""

import numpy as np

from evaluate.baselines.puppi_met import pf_met, puppi_met
from evaluate.metperceiver_metrics import components, evaluate, response, summary


def test_components_parallel_perpendicular():
    gen = np.array([[10.0, 0.0], [0.0, 20.0]])
    pred = gen + np.array([[2.0, 3.0], [2.0, 3.0]])
    r = components(pred, gen)
    np.testing.assert_allclose(r[:, 0], [2, 2])
    np.testing.assert_allclose(r[:, 2], [2, 3])  # along the gen direction
    np.testing.assert_allclose(r[:, 3], [3, -2])  # 90 degrees further


def test_summary_bias_and_resolution():
    rng = np.random.default_rng(0)
    gen = rng.normal(0, 50, (20000, 2))
    pred = gen + np.array([1.5, 0.0]) + rng.normal(0, 10, (20000, 2))
    s = summary(pred, gen)
    assert abs(s["bias_x"] - 1.5) < 0.3 and abs(s["bias_y"]) < 0.3
    assert abs(s["res_x"] - 10) < 0.4 and abs(s["res_perp"] - 10) < 0.4


def test_binned_tables():
    rng = np.random.default_rng(1)
    gen = rng.normal(0, 60, (5000, 2))
    m = evaluate({"a": gen + 1.0}, gen, rng.poisson(200, 5000))
    assert m["a"]["events"] == 5000
    assert sum(r["events"] for r in m["a"]["vs_npu"]) <= 5000
    assert all(abs(r["bias_x"] - 1.0) < 1e-9 for r in m["a"]["vs_gen_met"])


def test_pf_and_puppi_met_sums():
    px, py = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, -1.0])
    np.testing.assert_allclose(pf_met(px, py, [2, 1]), [[-3.0, -1.0], [-3.0, 1.0]])
    np.testing.assert_allclose(
        puppi_met(px, py, [1.0, 0.0, 0.5], [2, 1]), [[-1.0, 0.0], [-1.5, 0.5]]
    )


def test_response_correction_undoes_a_global_scale():
    rng = np.random.default_rng(2)
    gen = rng.normal(0, 50, (20000, 2))
    noisy = gen + rng.normal(0, 10, (20000, 2))
    assert abs(response(0.8 * gen, gen) - 0.8) < 1e-12
    m = evaluate({"short": 0.8 * noisy, "full": noisy}, gen, np.full(20000, 200))
    short, full = m["short"]["response_corrected"], m["full"]["response_corrected"]
    assert m["short"]["bias_para"] < -5  # shrunk along the generated MET
    assert abs(short["bias_para"]) < 0.3 and abs(short["response"] - 0.8) < 0.01
    assert abs(short["res_x"] - full["res_x"]) < 0.05  # same resolution once the scale is undone
