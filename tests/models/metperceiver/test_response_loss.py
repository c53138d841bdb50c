"""DeepMET's response term `dev` on hand-computed batches, and in `VectorLoss`."""

import numpy as np
import pytest
from keras import ops

from models.metperceiver.losses import VectorLoss, response_deviation, vector_loss

GEN = np.array([[30.0, 0.0], [80.0, 0.0], [0.0, 150.0]], "float32")
PRED = np.array([[20.0, 0.0], [100.0, 5.0], [0.0, 150.0]], "float32")  # u = -10, +20, 0


def _value(x):
    return float(ops.convert_to_numpy(x))


def test_dev_by_hand():
    # bins < 50, 50-100, > 100 GeV hold one event each: (10 + 20 + 0) / (30 + 80 + 150)
    assert _value(response_deviation(GEN, PRED)) == pytest.approx(30 / 260, rel=1e-6)
    # weights scale each event's residual and its |g|
    w = np.array([2.0, 1.0, 1.0], "float32")
    assert _value(response_deviation(GEN, PRED, sample_weight=w)) == pytest.approx(40 / 290)
    # one bin: the residuals balance
    assert _value(response_deviation(GEN, PRED, edges=(200.0,))) == pytest.approx(10 / 260)


def test_only_the_parallel_residual_counts():
    gen = np.array([[60.0, 0.0], [60.0, 0.0]], "float32")
    across = np.array([[60.0, 30.0], [60.0, -45.0]], "float32")
    assert _value(response_deviation(gen, across)) == pytest.approx(0.0, abs=1e-7)
    balanced = np.array([[70.0, 0.0], [50.0, 0.0]], "float32")  # +10 and -10 in one bin
    assert _value(response_deviation(gen, balanced)) == pytest.approx(0.0, abs=1e-7)


def test_vector_loss_adds_the_weighted_term_and_round_trips():
    plain = _value(VectorLoss("mse", 50.0)(GEN, PRED))
    assert plain == pytest.approx(_value(ops.mean(vector_loss(GEN, PRED, scale=50.0))))
    loss = VectorLoss("mse", 50.0, response_weight=10.0, response_edges=(50.0, 100.0))
    assert _value(loss(GEN, PRED)) == pytest.approx(plain + 10 * 30 / 260, rel=1e-6)
    again = VectorLoss.from_config(loss.get_config())
    assert again.response_weight == 10.0 and again.response_edges == (50.0, 100.0)
    # a saved loss of before the term had no such keys: it stays without it
    old = loss.get_config()
    del old["response_weight"], old["response_edges"]
    assert VectorLoss.from_config(old).response_weight == 0.0
