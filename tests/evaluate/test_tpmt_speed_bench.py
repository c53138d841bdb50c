"""The fast TPMT inference paths of evaluate.bench.tpmt_speed give the model's outputs.

Correctness only: no timing is asserted (DESIGN.md, tests never assert on wall time).
"""

import os

import numpy as np
import pytest

from evaluate.bench import tpmt_speed
from models.tpmt.config import get_config
from models.tpmt.model import INPUT_NAMES, build_model

SAVED = os.path.join(os.path.dirname(__file__), "..", "..", "saved_models", "tpmt", "tpmt.keras")


def _model(seed=0):
    """The `cpu` preset (5 outputs) with non-trivial standardisation constants."""
    import keras

    c = get_config("cpu")
    rng = np.random.default_rng(seed)
    sizes = dict(
        legs=c.n_leg_features,
        products=c.n_product_features,
        jets=c.n_jet_features,
        met=c.n_met_features,
    )
    stats = {
        k: (rng.normal(size=n).tolist(), rng.uniform(0.5, 2, n).tolist()) for k, n in sizes.items()
    }
    keras.utils.set_random_seed(seed)
    model = build_model(c, stats)
    # trained-like heads: the zero-initialised output layers would hide the encoder
    for name in ("head_out", "quantile_out"):
        layer = model.get_layer(name)
        layer.set_weights([rng.normal(0, 0.05, w.shape) for w in layer.get_weights()])
    return model, c


def _inputs(c, n=300):
    x = tpmt_speed.toy_inputs(c, n, seed=1)
    x["product_mask"][0], x["jet_mask"][0] = False, False  # nothing but legs and MET
    x["product_mask"][1], x["jet_mask"][1] = True, True  # every slot filled
    return x


def test_every_forward_path_matches_predict():
    model, c = _model()
    x = _inputs(c)
    ref = model.predict(x, batch_size=1024, verbose=0)
    assert ref.shape == (300, 5)
    paths = tpmt_speed.forward_paths(model, threads=2)
    assert tpmt_speed.ort_path(1) in paths and tpmt_speed.ort_path(2) in paths
    for name, fn in paths.items():
        for batch_size in (128, 1024):  # 128: a partial last batch (padded for XLA)
            y = fn(x, batch_size)
            np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-6, err_msg=name)


def test_onnx_ignores_padded_slots():
    model, c = _model(seed=2)
    x = _inputs(c, n=64)
    session = tpmt_speed.onnx_session(tpmt_speed.onnx_export(model), threads=2)
    assert [i.name for i in session.get_inputs()] == list(INPUT_NAMES)
    assert [o.name for o in session.get_outputs()] == ["tpmt"]
    y = tpmt_speed.onnx_predict(session, x, 16)
    rng = np.random.default_rng(3)
    garbage = dict(x)
    for col, mask in (("products", "product_mask"), ("jets", "jet_mask")):
        noise = rng.normal(0, 5, x[col].shape).astype("float32")
        garbage[col] = np.where(x[mask][..., None], x[col], noise)
    np.testing.assert_allclose(tpmt_speed.onnx_predict(session, garbage, 16), y, rtol=1e-5)
    np.testing.assert_allclose(y, model.predict(x, verbose=0), rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not os.path.exists(SAVED), reason="no saved_models/tpmt/tpmt.keras")
def test_saved_three_column_model_exports():
    from evaluate.tpmt import load_tpmt

    model = load_tpmt(SAVED)
    x = _inputs(get_config("cpu"), n=100)
    session = tpmt_speed.onnx_session(tpmt_speed.onnx_export(model), threads=1)
    y = tpmt_speed.onnx_predict(session, x, 64)
    ref = model.predict(x, verbose=0)
    assert y.shape == ref.shape and ref.shape[1] in (3, 5)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "argv",
    [[], ["--input", "no/such/file.root"], ["--preset-table", "--repeats", "0"]],
)
def test_cli_user_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as err:
        tpmt_speed.main(argv)
    assert err.value.code == 2
    assert capsys.readouterr().err.startswith("error: ")
