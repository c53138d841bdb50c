"""End to end: generate a few hundred events, fit TPMT for one epoch, evaluate; CLI errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from data.generate.__main__ import run as generate_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    d = tmp_path_factory.mktemp("ditau")
    train, test = str(d / "flat.root"), str(d / "h125.root")
    generate_run("flat", 300, 11, train, progress=False)
    generate_run("h125", 120, 12, test, progress=False)
    return train, test


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_fit_one_epoch_then_evaluate(samples, tmp_path):
    from evaluate.tpmt import main as evaluate_main
    from models.tpmt.fit import main as fit_main

    train, test = samples
    out = str(tmp_path / "model")
    fit_main(["--data", train, "--epochs", "1", "--out", out, "--quiet", "--seed", "3"])
    model = os.path.join(out, "tpmt.keras")
    assert os.path.exists(model)
    assert os.path.exists(os.path.join(out, "history.csv"))
    with open(os.path.join(out, "history.csv")) as f:
        header = f.readline()
    for term in ("tau_pt_mae", "m_tautau_mae", "m_quantile_loss", "m_coverage_68"):
        assert term in header  # every loss term (and the interval coverage) logged
    ev = str(tmp_path / "eval")
    evaluate_main(["--model", model, "--input", test, "--out", ev])
    import uproot

    t = uproot.open(os.path.join(ev, "predictions.root"))["Events"]
    for branch in (
        "m_true",
        "m_tpmt",
        "m_fastmtt",
        "m_collinear",
        "m_vis",
        "tau1_pt_pred",
        "tau2_pt_pred",
        "tau1_pt_true",
        "tau2_pt_true",
        "process",
        "channel",
        "m_tpmt_q16",
        "m_tpmt_q84",
    ):
        assert branch in t.keys()
    assert t.num_entries == 120
    m, q16, q84, m_true = (
        t[b].array(library="np") for b in ("m_tpmt", "m_tpmt_q16", "m_tpmt_q84", "m_true")
    )
    assert np.all(q16 <= m) and np.all(m <= q84) and np.all(q16 > 0)
    with open(os.path.join(ev, "metrics.json")) as f:
        metrics = json.load(f)
    fastmtt = metrics["per_process_channel"]["h125/all"]["fastmtt"]
    assert 0.8 < fastmtt["median"] < 1.1  # FastMTT recovers the H mass on these events
    tpmt = metrics["per_process_channel"]["h125/all"]["tpmt"]
    assert tpmt["coverage_68"] == pytest.approx(np.mean((q16 <= m_true) & (m_true <= q84)))
    assert os.path.exists(os.path.join(ev, "README.md"))
    with open(os.path.join(ev, "README.md")) as f:
        assert "Per-event uncertainty" in f.read()
    assert os.path.exists(os.path.join(ev, "mass_h_vs_z.png"))


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_evaluate_three_column_saved_model(samples, tmp_path):
    """A model saved before the quantile head (3 output columns) evaluates, with NaN quantiles.

    Made from the committed model by keeping its first three output columns (standard layers
    only, so it saves and loads like any old TPMT file).
    """
    import keras
    import uproot

    import models  # noqa: F401
    from evaluate.tpmt import main as evaluate_main

    committed = os.path.join(ROOT, "saved_models", "tpmt", "tpmt.keras")
    if not os.path.exists(committed):
        pytest.skip("saved_models/tpmt/tpmt.keras not trained in this checkout")
    full = keras.models.load_model(committed)
    y = keras.layers.Reshape((full.output.shape[-1], 1))(full.output)
    y = keras.layers.Cropping1D((0, full.output.shape[-1] - 3))(y)
    old = keras.Model(full.input, keras.layers.Reshape((3,), name="tpmt_3col")(y))
    model = str(tmp_path / "tpmt_3col.keras")
    old.save(model)
    _, test = samples
    ev = str(tmp_path / "eval")
    evaluate_main(["--model", model, "--input", test, "--out", ev, "--no-fastmtt"])
    t = uproot.open(os.path.join(ev, "predictions.root"))["Events"]
    m = t["m_tpmt"].array(library="np")
    assert np.all(np.isfinite(m)) and 60 < np.median(m) < 200
    for branch in ("m_tpmt_q16", "m_tpmt_q84"):
        assert np.all(np.isnan(t[branch].array(library="np")))
    with open(os.path.join(ev, "metrics.json")) as f:
        row = json.load(f)["per_process_channel"]["h125/all"]["tpmt"]
    assert "coverage_68" not in row and 0.8 < row["median"] < 1.3
    with open(os.path.join(ev, "README.md")) as f:
        assert "no quantile head" in f.read()


def test_compute_metrics_coverage_hand_made():
    from evaluate.tpmt import compute_metrics, interval_coverage

    n = 100
    true = np.full(n, 100.0)
    lo, hi = np.full(n, 90.0), np.full(n, 110.0)
    lo[:30] = 101.0  # 30 events with m_true below their interval
    hi[95:] = 99.0  # 5 with m_true above it
    cov = interval_coverage(lo, hi, true)
    assert cov["coverage_68"] == pytest.approx(0.65) and cov["n"] == n
    assert cov["half_width"] == pytest.approx(0.1)
    p = {
        "m_true": true,
        "m_tpmt_q16": lo,
        "m_tpmt_q84": hi,
        "process": np.ones(n, np.int32),
        "channel": np.repeat([0, 1], 50).astype(np.int32),
        **{f"m_{m}": np.full(n, 100.0) for m in ("tpmt", "fastmtt", "collinear", "vis")},
        **{f"tau{i}_pt_{k}": np.full(n, 40.0) for i in (1, 2) for k in ("pred", "reco", "true")},
    }
    res = compute_metrics(p)["per_process_channel"]
    assert res["h125/all"]["tpmt"]["coverage_68"] == pytest.approx(0.65)
    assert res["h125/tauh-tauh"]["tpmt"]["coverage_68"] == pytest.approx(0.4)
    assert res["h125/mu-tauh"]["tpmt"]["coverage_68"] == pytest.approx(0.9)
    p["m_tpmt_q16"] = p["m_tpmt_q84"] = np.full(n, np.nan)  # a 3-column model
    assert "coverage_68" not in compute_metrics(p)["per_process_channel"]["h125/all"]["tpmt"]


def _cli(*args):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (["-m", "models.tpmt.fit", "--data", "/nonexistent/x.root"], "no such file"),
        (["-m", "models.tpmt.fit", "--preset", "huge", "--data", "x.root"], "unknown preset"),
        (["-m", "models.tpmt.fit", "--channel", "ee"], "unknown channel"),
        (
            ["-m", "evaluate.tpmt", "--model", "/nonexistent.keras", "--input", "x.root"],
            "no such model file",
        ),
    ],
)
def test_cli_user_errors_exit_2(args, words):
    r = _cli(*args)
    assert r.returncode == 2, r.stderr
    assert words in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_fit_rejects_file_with_nan(samples, tmp_path):
    import numpy as np
    import uproot

    train, _ = samples
    arrays = uproot.open(train)["Events"].arrays(library="ak")
    bad = str(tmp_path / "bad.root")
    from data.io import write_events

    cols = {
        k: arrays[k]
        for k in arrays.fields
        if not k.startswith("n") and "_" in k and arrays[k].ndim == 1
    }
    met = np.asarray(cols["MET_pt"]).copy()
    met[:3] = np.nan
    cols["MET_pt"] = met
    colls = {}
    for k in arrays.fields:
        if arrays[k].ndim > 1:
            name, field = k.split("_", 1)
            colls.setdefault(name, {})[field] = arrays[k]
    cols = {**{k: np.asarray(v) for k, v in cols.items()}, **colls}
    for k in ("event", "process", "channel"):
        cols[k] = np.asarray(arrays[k])
    write_events(bad, cols)
    r = _cli("-m", "models.tpmt.fit", "--data", bad, "--epochs", "1", "--out", str(tmp_path / "m"))
    assert r.returncode == 2
    assert "3 of" in r.stderr and "MET_pt" in r.stderr and "--drop-nonfinite" in r.stderr
