"""The shared fit harness helpers."""

import numpy as np
import pytest

from models import training


def test_flat_weights_flatten_a_rising_spectrum():
    rng = np.random.default_rng(0)
    m = np.sqrt(rng.uniform(30**2, 300**2, 20000))  # density rising linearly with m
    edges = np.arange(30, 310, 10)
    w = training.flat_weights(m, edges)
    np.testing.assert_allclose(w.mean(), 1.0, rtol=1e-6)
    weighted, _ = np.histogram(m, edges, weights=w)
    assert weighted.std() / weighted.mean() < 0.02
    raw, _ = np.histogram(m, edges)
    assert raw.std() / raw.mean() > 0.3


def test_flat_weights_are_capped():
    m = np.concatenate([np.full(1, 35.0), np.full(10000, 250.0)])
    w = training.flat_weights(m, np.array([30.0, 40.0, 300.0]), max_weight=5.0)
    assert w.max() < 20.0  # uncapped, the lone event would weigh ~5000


def test_split_indices_partition_and_seed():
    a, b = training.split_indices(100, (0.8, 0.2), seed=3)
    assert len(a) == 80 and len(b) == 20
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(100))
    a2, _ = training.split_indices(100, (0.8, 0.2), seed=3)
    np.testing.assert_array_equal(a, a2)


def test_masked_stats_ignore_padding():
    x = np.array([[[1.0], [3.0], [100.0]]])
    mean, var = training.masked_stats(x, np.array([[True, True, False]]))
    assert mean == [2.0] and var == [1.0]


def test_time_budget_stops_and_keeps_the_best_epoch():
    import keras

    training.set_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x.sum(1, keepdims=True)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    budget = training.TimeBudget(0.0)
    hist = model.fit(x, y, validation_data=(x, y), epochs=5, verbose=0, callbacks=[budget])
    assert len(hist.history["loss"]) == 1  # the budget ended after the first epoch
    assert budget.best == hist.history["val_loss"][0]
    assert training.TimeBudget(**budget.get_config()).get_config() == budget.get_config()


def test_a_fine_tune_that_only_gets_worse_keeps_its_starting_weights(tmp_path, capsys):
    import keras

    from models.tpmt.config import get_config

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    config = get_config("cpu", epochs=2, batch_size=64)
    for rate, kept in ((5.0, True), (1e-2, False)):  # a rate that diverges, one that learns
        training.set_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.layers[0].set_weights([np.array([[1.0], [-2.0], [0.4]], "float32"), np.zeros(1)])
        model.compile(optimizer=keras.optimizers.SGD(rate), loss="mse")
        start = [w.copy() for w in model.get_weights()]
        out = str(tmp_path / f"run{rate}")
        training.fit(model, (x, y), (x, y), config, model_name="t", out_dir=out, run_config={},
                     log_root=str(tmp_path / "runs"), verbose=0, keep_start=True)  # fmt: skip
        same = all(np.array_equal(a, b) for a, b in zip(start, model.get_weights()))
        assert same == kept
        assert ("keeping the starting weights" in capsys.readouterr().out) == kept


def test_apply_hyperparameters_of_a_search_onto_a_config(tmp_path):
    import json

    from data.errors import UserError
    from models.partau.config import get_config as partau_config
    from models.tpmt.config import get_config

    path = tmp_path / "best_trials.json"
    best = [{"rank": 1, "hyperparameters": {"d_model": 32, "lambda_m": 0.02}}]
    path.write_text(json.dumps({"best": best}))
    config = training.apply_hyperparameters(get_config("cpu"), path)
    assert (config.d_model, config.lambda_m) == (32, 0.02)
    assert config.num_heads == get_config("cpu").num_heads  # untouched fields stay
    # tuple fields are searched as "a,b,c" strings
    path.write_text(json.dumps({"best": [{"hyperparameters": {"embed_dims": "32,64,32"}}]}))
    assert training.apply_hyperparameters(partau_config("cpu"), path).embed_dims == (32, 64, 32)
    path.write_text(json.dumps({"best": [{"hyperparameters": {"no_such_field": 1}}]}))
    with pytest.raises(UserError, match="no_such_field are not TPMTConfig fields"):
        training.apply_hyperparameters(get_config("cpu"), path)
    path.write_text("[]")
    with pytest.raises(UserError, match="not a search's best_trials.json"):
        training.apply_hyperparameters(get_config("cpu"), path)
