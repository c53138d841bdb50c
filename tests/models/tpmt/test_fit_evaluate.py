"""End to end: generate a few hundred events, fit TPMT for one epoch, evaluate; CLI errors."""

import json
import os
import subprocess
import sys

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
    assert "tau_pt_mae" in header and "m_tautau_mae" in header  # both loss terms logged
    ev = str(tmp_path / "eval")
    evaluate_main(["--model", model, "--input", test, "--out", ev])
    import uproot

    t = uproot.open(os.path.join(ev, "predictions.root"))["Events"]
    for branch in ("m_true", "m_tpmt", "m_fastmtt", "m_collinear", "m_vis", "tau1_pt_pred",
                   "tau2_pt_pred", "tau1_pt_true", "tau2_pt_true", "process", "channel"):
        assert branch in t.keys()
    assert t.num_entries == 120
    with open(os.path.join(ev, "metrics.json")) as f:
        metrics = json.load(f)
    fastmtt = metrics["per_process_channel"]["h125/all"]["fastmtt"]
    assert 0.8 < fastmtt["median"] < 1.1  # FastMTT recovers the H mass on these events
    assert os.path.exists(os.path.join(ev, "README.md"))
    assert os.path.exists(os.path.join(ev, "mass_h_vs_z.png"))


def _cli(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


@pytest.mark.parametrize("args, words", [
    (["-m", "models.tpmt.fit", "--data", "/nonexistent/x.root"], "no such file"),
    (["-m", "models.tpmt.fit", "--preset", "huge", "--data", "x.root"], "unknown preset"),
    (["-m", "models.tpmt.fit", "--channel", "ee"], "unknown channel"),
    (["-m", "evaluate.tpmt", "--model", "/nonexistent.keras", "--input", "x.root"],
     "no such model file"),
])
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

    cols = {k: arrays[k] for k in arrays.fields if not k.startswith("n") and "_" in k
            and arrays[k].ndim == 1}
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
    r = _cli("-m", "models.tpmt.fit", "--data", bad, "--epochs", "1", "--out",
             str(tmp_path / "m"))
    assert r.returncode == 2
    assert "3 of" in r.stderr and "MET_pt" in r.stderr and "--drop-nonfinite" in r.stderr
