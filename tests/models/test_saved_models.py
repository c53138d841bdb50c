"""The committed default models load in safe mode and accept what today's loaders produce."""

import os

import numpy as np
import pytest

from data import io
from data.generate.ditau_output import to_root_columns

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(path):
    import keras

    import models  # noqa: F401

    full = os.path.join(ROOT, path)
    if not os.path.exists(full):
        pytest.skip(f"{path} not trained in this checkout")
    return keras.models.load_model(full, safe_mode=True)


def test_saved_tpmt_matches_the_ditau_loader(tmp_path):
    from data.ditau import load
    from data.generate.ditau import generate
    from models.tpmt.model import predict_named

    model = _load("saved_models/tpmt/tpmt.keras")
    path = str(tmp_path / "h125.root")
    io.write_events(path, to_root_columns(generate("h125", 40, 5)))
    pred = predict_named(model, load(path)["inputs"])
    assert np.all(np.isfinite(pred["m_tautau"])) and np.all(pred["m_tautau"] > 0)
    assert 60 < np.median(pred["m_tautau"]) < 200  # a trained model, on H(125) events


def test_saved_lgatr_matches_the_lgatr_loader(tmp_path):
    from data.generate.ttbar_dilepton import generate
    from data.lgatr import load

    model = _load("saved_models/lgatr/lgatr.keras")
    path = str(tmp_path / "tt.root")
    io.write_events(path, to_root_columns(generate(30, 5)))
    x = load(path)["inputs"]
    tops = model.predict(x, verbose=0)["tops"]
    assert tops.shape == (30, 2, 4) and np.all(np.isfinite(tops))
    # the symmetry the spurions keep: rotating every input about the beam axis rotates the
    # predicted tops the same way (float32)
    a = 0.7
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    turned = dict(x, fourvectors=x["fourvectors"].copy())
    turned["fourvectors"][..., :2] = x["fourvectors"][..., :2] @ rot.T
    moved = model.predict(turned, verbose=0)["tops"]
    expected = tops.copy()
    expected[..., :2] = tops[..., :2] @ rot.T
    err = np.abs(moved - expected).max() / np.abs(expected).max()
    assert err < 1e-4, err


def test_saved_met_models_load_and_rebuild_met(pu_file):
    """The shipped MET models load in safe mode and give finite MET on the toolkit's events;
    the Perceiver's MET is MET_PF + v |MET_PF| of its own inputs."""
    from data import metperceiver as dm

    for name, features in (
        ("metperceiver", dm.PERCEIVER_FEATURES),
        ("deepmet", dm.DEEPMET_FEATURES),
    ):
        model = _load(f"saved_models/metperceiver/{name}.keras")
        max_cands = model.input["cands"].shape[1]
        d = dm.load(pu_file, features=features, max_cands=max_cands, entries=(0, 6))
        out = model.predict({"cands": d["cands"], "mask": d["mask"]}, verbose=0)
        assert np.isfinite(out["met"]).all()
        if name == "metperceiver":
            reco = dm.met_of(d["cands"], d["mask"])
            norm = np.linalg.norm(reco, axis=1, keepdims=True)
            np.testing.assert_allclose(out["met"], reco + out["v"] * norm, rtol=1e-3, atol=0.05)


def test_saved_scouttau_models_score_the_loaders_candidates(scouttau_file):
    """The shipped ScoutTau models load in safe mode and score today's candidates: the
    transformers on their inputs' CLUE clusters, the baseline on seeded-cone taus."""
    from data import nnpuppitau, scouttau

    for name, inputs in (("scouttau_pf", "pf"), ("scouttau", "puppi")):
        model = _load(f"saved_models/scouttau/{name}.keras")
        d = scouttau.load(scouttau_file, inputs=inputs)
        out = model.predict({"constituents": d["constituents"], "mask": d["mask"]}, verbose=0)
        assert out["tau_id"].shape == (len(d["cands"]["pt"]), 1)
        assert all(np.isfinite(v).all() for v in out.values())
    base = _load("saved_models/scouttau/nnpuppitau.keras")
    taus = nnpuppitau.nnpuppitau_candidates(scouttau.read(scouttau_file))
    assert np.isfinite(base.predict(taus["inputs"], verbose=0)).all()
