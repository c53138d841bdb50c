"""TPMT with and without tau decay-product tokens: `ProductDropout`, the `product_dropout`
config field, fine-tuning a trained model with it, and `evaluate.tpmt --no-products`."""

import json
import os

import keras
import numpy as np
import pytest

from models.tpmt.config import TPMTConfig, get_config
from models.tpmt.layers import ProductDropout
from models.tpmt.model import (
    build_model,
    compile_model,
    predict_named,
    product_dropout_rate,
    with_product_dropout,
)
from tests.helpers import assert_keras_round_trip, assert_layer_config_round_trip
from tests.models.tpmt.test_tpmt import TINY, random_inputs

DROPPING = TINY.__class__(**{**TINY.to_dict(), "product_dropout": 0.3})


def _products(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    products = rng.normal(size=(n, 10, 9)).astype("float32")
    mask = np.ones((n, 10), bool)
    mask[:, 6:] = False  # some padding, as from the loader
    return products * mask[..., None], mask


def test_product_dropout_masks_about_rate_of_events_in_training_only():
    products, mask = _products()
    layer = ProductDropout(0.3, seed=7)
    p, m = (np.asarray(t) for t in layer([products, mask], training=True))
    assert m.dtype == bool and m.shape == mask.shape and p.shape == products.shape
    dropped = ~m.any(axis=1)
    assert abs(dropped.mean() - 0.3) < 0.03  # 4000 events: 0.007 standard deviation
    assert np.all(p[dropped] == 0.0)  # dropped events: no products, zero features
    np.testing.assert_array_equal(p[~dropped], products[~dropped])  # the rest untouched
    np.testing.assert_array_equal(m[~dropped], mask[~dropped])
    # another call draws other events
    _, m2 = layer([products, mask], training=True)
    assert not np.array_equal(m, np.asarray(m2))
    for training in (False, None):  # inference: the identity
        p, m = layer([products, mask], training=training)
        np.testing.assert_array_equal(np.asarray(p), products)
        np.testing.assert_array_equal(np.asarray(m), mask)


def test_product_dropout_is_seeded():
    products, mask = _products(200)
    a = ProductDropout(0.5, seed=3)([products, mask], training=True)[1]
    b = ProductDropout(0.5, seed=3)([products, mask], training=True)[1]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_product_dropout_config_round_trip_and_rate_check():
    assert_layer_config_round_trip(ProductDropout(0.25, seed=4))
    assert ProductDropout.from_config(ProductDropout(0.25).get_config()).rate == 0.25
    for rate in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
            ProductDropout(rate)


def test_config_field_default_validation_and_round_trip():
    assert get_config("cpu").product_dropout == 0.0
    c = get_config("cpu", product_dropout=0.4)
    assert TPMTConfig(**c.to_dict()) == c and c.to_dict()["product_dropout"] == 0.4
    # a run config written before the field (no product_dropout) still builds a config
    old = {k: v for k, v in c.to_dict().items() if k != "product_dropout"}
    assert TPMTConfig(**old).product_dropout == 0.0
    for bad in (-0.5, 1.0, float("nan")):
        with pytest.raises(ValueError, match=r"product_dropout must be in \[0, 1\)"):
            get_config("cpu", product_dropout=bad)


def test_zero_product_dropout_builds_todays_graph():
    names = [layer.name for layer in build_model(TINY).layers]
    assert "product_dropout" not in names
    dropping = build_model(DROPPING)
    assert [n for n in (layer.name for layer in dropping.layers) if n not in names] == [
        "product_dropout"
    ]
    assert dropping.count_params() == build_model(TINY).count_params()  # no weights
    assert product_dropout_rate(dropping) == 0.3 and product_dropout_rate(build_model(TINY)) == 0


def test_model_with_product_dropout_trains_and_round_trips(tmp_path):
    keras.utils.set_random_seed(2)
    model = compile_model(build_model(DROPPING), DROPPING)
    x = random_inputs(32)
    y = np.abs(np.random.default_rng(1).normal(50, 10, (32, 3))).astype("float32")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # non-trivial weights
    # inference is deterministic: the dropout is off
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    loaded = assert_keras_round_trip(model, x, tmp_path, atol=1e-6)
    assert product_dropout_rate(loaded) == 0.3


@pytest.mark.parametrize("config", [TINY, DROPPING])
def test_every_product_masked_gives_finite_predictions(config):
    from evaluate.tpmt import without_products

    model = build_model(config)
    rng = np.random.default_rng(0)
    model.set_weights([w + 0.3 * rng.normal(size=w.shape) for w in model.get_weights()])
    x = without_products(random_inputs(16))
    assert not x["product_mask"].any() and not x["products"].any()
    pred = predict_named(model, x)
    assert all(np.all(np.isfinite(v)) for v in pred.values())
    y = model(x, training=True)  # and in training mode
    assert np.all(np.isfinite(np.asarray(y)))


def test_with_product_dropout_shares_weights_and_changes_only_training():
    model = build_model(TINY)
    rng = np.random.default_rng(0)
    model.set_weights([w + 0.3 * rng.normal(size=w.shape) for w in model.get_weights()])
    x = random_inputs(64)
    before = model.predict(x, verbose=0)
    assert with_product_dropout(model, 0.0) is model
    dropping = with_product_dropout(model, 0.5, seed=1)
    assert product_dropout_rate(dropping) == 0.5
    assert len(dropping.weights) == len(model.weights)
    for a, b in zip(dropping.weights, model.weights):
        assert a is b  # the same variables: the trained weights carry over
    np.testing.assert_array_equal(dropping.predict(x, verbose=0), before)
    # in training, half the events lose their products: some predictions move
    y = np.asarray(dropping(x, training=True))
    assert not np.allclose(y, np.asarray(model(x, training=False)))
    assert product_dropout_rate(with_product_dropout(dropping, 0.2)) == 0.2
    removed = with_product_dropout(dropping, 0.0)
    assert "product_dropout" not in [layer.name for layer in removed.layers]
    np.testing.assert_array_equal(removed.predict(x, verbose=0), before)


def test_shipped_model_loads_unchanged_and_takes_product_dropout():
    import models  # noqa: F401
    from tests.models.tpmt.test_fit_evaluate import ROOT

    path = os.path.join(ROOT, "saved_models", "tpmt", "tpmt.keras")
    if not os.path.exists(path):
        pytest.skip("saved_models/tpmt/tpmt.keras not trained in this checkout")
    shipped = keras.models.load_model(path, safe_mode=True)
    assert product_dropout_rate(shipped) == 0.0
    x = random_inputs(16, config=get_config("cpu"))
    before = shipped.predict(x, verbose=0)
    dropping = with_product_dropout(shipped, 0.3)
    np.testing.assert_array_equal(dropping.predict(x, verbose=0), before)


def test_model_card_title_without_products(tmp_path):
    from argparse import Namespace

    from evaluate.tpmt_report import model_card

    nan = {"median": float("nan"), "resolution": float("nan")}
    res = {
        "n_events": 0,
        "per_process_channel": {},
        "separation": {},
        "tau1_pt": {"tpmt": nan, "reco": nan},
        "tau2_pt": {"tpmt": nan, "reco": nan},
        "events_per_second": {},
    }
    args = Namespace(model=str(tmp_path / "m.keras"), input=["a.root"], out=str(tmp_path))
    for products, title in ((True, "# TPMT evaluation\n"), (False, "without decay-product")):
        model_card({**res, "products": products}, args, str(tmp_path / "README.md"))
        with open(tmp_path / "README.md") as f:
            text = f.read()
        assert text.startswith("# TPMT evaluation") and title in text.splitlines(True)[0]
        assert ("--no-products" in text) is not products


@pytest.fixture(scope="module")
def h125(tmp_path_factory):
    from data.generate.__main__ import run

    path = str(tmp_path_factory.mktemp("drop") / "h125.root")
    run("h125", 60, 12, path, progress=False)
    return path


@pytest.mark.e2e  # a whole fit CLI run: the e2e CI step
def test_fine_tune_with_product_dropout(h125, tmp_path):
    """`--init-from` loads the file's own graph: `--product-dropout` puts the layer in."""
    from models.tpmt.fit import main as fit_main

    start = str(tmp_path / "start.keras")
    build_model(TINY).save(start)
    out = str(tmp_path / "m")
    fit_main(
        ["--data", h125, "--epochs", "1", "--out", out, "--quiet", "--init-from", start]
        + ["--product-dropout", "0.5", "--no-flat-weights", "--batch-size", "16"]
    )
    # its own file and run folder: never the default flat model's
    assert not os.path.exists(os.path.join(out, "tpmt.keras"))
    saved = keras.models.load_model(os.path.join(out, "tpmt_dropproducts.keras"))
    assert product_dropout_rate(saved) == 0.5
    with open(os.path.join(out, "tpmt_dropproducts", "run_config.json")) as f:
        run = json.load(f)
    assert run["config"]["product_dropout"] == 0.5 and run["args"]["product_dropout"] == 0.5


@pytest.mark.e2e  # a whole evaluate CLI run: the e2e CI step
def test_evaluate_without_products(h125, tmp_path):
    import uproot

    from data.ditau import load
    from evaluate.tpmt import main as evaluate_main
    from evaluate.tpmt import without_products

    model = build_model(DROPPING)
    rng = np.random.default_rng(0)
    model.set_weights([w + 0.3 * rng.normal(size=w.shape) for w in model.get_weights()])
    path = str(tmp_path / "tpmt.keras")
    model.save(path)
    ev = str(tmp_path / "ev")
    evaluate_main(["--model", path, "--input", h125, "--out", ev, "--no-fastmtt", "--no-products"])
    with open(os.path.join(ev, "metrics.json")) as f:
        res = json.load(f)
    assert res["products"] is False and "h125/all" in res["per_process_channel"]
    with open(os.path.join(ev, "README.md")) as f:
        assert "without decay-product tokens" in f.readline()
    m = uproot.open(os.path.join(ev, "predictions.root"))["Events"]["m_tpmt"].array(library="np")
    x = load(h125)["inputs"]
    assert x["product_mask"].any()  # the file has products; the evaluation dropped them
    np.testing.assert_allclose(m, predict_named(model, without_products(x))["m_tautau"], rtol=1e-5)
    assert not np.allclose(m, predict_named(model, x)["m_tautau"], rtol=1e-5)


@pytest.mark.parametrize("rate", ["1", "-0.2"])
def test_fit_rejects_a_bad_product_dropout(rate):
    from tests.models.tpmt.test_fit_evaluate import _cli

    r = _cli("-m", "models.tpmt.fit", "--product-dropout", rate, "--data", "x.root")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"error: --product-dropout must be in [0, 1), got {float(rate)}"
