"""ParTau figures of merit on hand-computed cases."""

import numpy as np
import pytest

from evaluate import partau_metrics as pm


def test_fake_rate_interpolates_ties():
    # 10 taus: 6 at score 1 (a tie block), 4 at 0.5; 10 background: 2 at 1, 8 at 0.1
    scores = np.array([1.0] * 6 + [0.5] * 4 + [1.0] * 2 + [0.1] * 8)
    is_tau = np.array([True] * 10 + [False] * 10)
    # the tie block reaches 60% tau efficiency exactly with 20% background
    assert pm.fake_rate_at_efficiency(scores, is_tau, 0.6) == pytest.approx(0.2)
    # halfway through the tie block: half of it
    assert pm.fake_rate_at_efficiency(scores, is_tau, 0.3) == pytest.approx(0.1)
    # 80%: between (0.6, 0.2) and (1.0, 0.2): still 0.2
    assert pm.fake_rate_at_efficiency(scores, is_tau, 0.8) == pytest.approx(0.2)


def test_fake_rate_floor_is_nan():
    # half of the taus fail (score 0 = floor): 60% efficiency is not reachable above the floor
    scores = np.array([1.0] * 5 + [0.0] * 5 + [0.0] * 10)
    is_tau = np.array([True] * 10 + [False] * 10)
    assert np.isnan(pm.fake_rate_at_efficiency(scores, is_tau, 0.6))


def test_tau_metrics_hand_case():
    is_tau = np.array([1, 1, 1, 1, 0, 0], bool)
    out = pm.tau_metrics(
        is_tau=is_tau,
        score=np.array([0.9, 0.8, 0.7, 0.2, 0.3, 0.1]),
        dm_true=np.array([0, 1, 1, 3, -1, -1]),
        dm_pred=np.array([0, 1, 2, -1, 0, 0]),
        q_true=np.array([1, -1, 1, -1, 0, 0]),
        q_pred=np.array([1, -1, -1, 0, 1, 1]),
        p4=dict(pt=np.array([10.0, 20, 30, 40, 1, 1]), eta=np.zeros(6), phi=np.zeros(6)),
        gen=dict(pt=np.array([10.0, 20, 30, 40, 1, 1]), eta=np.zeros(6), phi=np.zeros(6)),
    )
    assert out["auc"] == pytest.approx(7 / 8)  # one of 8 tau/background pairs misordered
    assert out["dm_accuracy"] == pytest.approx(0.5)
    assert out["dm_no_prediction"][3] == 1
    assert out["charge_misid"] == pytest.approx(0.5)  # one wrong, one missing
    assert out["charge_misid_when_predicted"] == pytest.approx(1 / 3)
    assert out["pt_resolution"] == pytest.approx(0.0)
    assert out["dm_f1"][0] == pytest.approx(1.0)


def test_kinematics_from_regression():
    jet = dict(pt=np.array([20.0]), eta=np.array([0.5]), phi=np.array([3.0]), mass=np.array([1.0]))
    kin = np.array([[np.log(1.1), 0.01, np.sin(0.3), np.cos(0.3), np.log(0.5)]])
    p4 = pm.kinematics_from_regression(kin, jet)
    assert p4["pt"][0] == pytest.approx(22.0)
    assert p4["eta"][0] == pytest.approx(0.51)
    assert p4["phi"][0] == pytest.approx(3.3 - 2 * np.pi)  # wrapped
    assert p4["mass"][0] == pytest.approx(0.5)
