"""The TPMT hypermodel maps hp.* onto the model config and builds trainable models."""

import keras_tuner
import numpy as np
import pytest

from models.tpmt.config import get_config
from tests.models.tpmt.test_tpmt import random_inputs
from tuning.tpmt import TPMTHyperModel


def test_hypermodel_maps_hyperparameters_onto_config():
    hm = TPMTHyperModel(get_config("cpu"))
    hp = keras_tuner.HyperParameters()
    hp.Fixed("d_model", 32)
    hp.Fixed("num_blocks", 1)
    model = hm.build(hp)
    config = hm.config(hp)
    assert (config.d_model, config.num_blocks) == (32, 1)
    assert model.get_layer("legs_projection").units == 32
    assert len([layer for layer in model.layers if layer.name.startswith("encoder_")]) == 1


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_random_search_runs_a_trial(tmp_path):
    x = random_inputs(n=32)
    y = np.abs(np.random.default_rng(0).normal(50, 10, (32, 3))).astype("float32")
    tuner = keras_tuner.RandomSearch(
        TPMTHyperModel(get_config("cpu")),
        objective="val_loss",
        max_trials=1,
        seed=1,
        directory=str(tmp_path),
        project_name="t",
    )
    tuner.search(x, y, validation_data=(x, y), epochs=1, batch_size=16, verbose=0)
    assert len(tuner.oracle.trials) == 1
    assert np.isfinite(tuner.oracle.get_best_trials(1)[0].score)
