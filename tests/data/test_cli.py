"""CLIs `python -m data.generate` and `python -m data.validate`: one-line errors, exit status 2."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from data import io

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def _assert_user_error(res, *words):
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert lines[0].startswith("error: ")
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.mark.parametrize(
    "args, words",
    [
        (["--process", "h126"], ["unknown process 'h126'", "h125"]),
        (["--events", "0"], ["--events must be positive"]),
        (["--events", "-3"], ["--events must be positive"]),
        (["--out", "/no/such/folder/x.root"], ["cannot write /no/such/folder/x.root"]),
        (["--out", "/proc/x.root"], ["cannot write /proc/x.root"]),
    ],
)
def test_generate_bad_input(args, words):
    _assert_user_error(_run("data.generate", "ditau", "--events", "5", *args), *words)


def test_generate_out_is_folder(tmp_path):
    _assert_user_error(_run("data.generate", "ditau", "--out", str(tmp_path)), "is a folder")


def test_generate_small_run(tmp_path):
    out = str(tmp_path / "h.root")
    res = _run(
        "data.generate", "ditau", "--process", "h125", "--events", "20", "--seed", "4", "--out", out
    )
    assert res.returncode == 0, res.stderr
    assert f"wrote 20 events to {out}" in res.stdout
    a = io.read_branches(out, ["MET_pt", "Tau_pt", "GenTau_hasK0", "channel"])
    assert len(a["MET_pt"]) == 20


def test_help():
    for module in ("data.generate", "data.validate"):
        res = _run(module, "--help")
        assert res.returncode == 0 and "usage" in res.stdout


def test_validate_bad_input(tmp_path):
    fake = tmp_path / "fake.root"
    fake.write_bytes(b"\x00garbage" * 50)
    _assert_user_error(
        _run("data.validate", "ditau", str(fake), "--out", str(tmp_path / "v")),
        str(fake),
        "not a readable ROOT file",
    )
    missing = str(tmp_path / "missing.root")
    _assert_user_error(
        _run("data.validate", "ditau", missing, "--out", str(tmp_path / "v")),
        "no such file",
        missing,
    )
    partial = str(tmp_path / "partial.root")
    io.write_events(partial, {"process": np.ones(3, np.int32), "MET_pt": np.ones(3)})
    _assert_user_error(
        _run("data.validate", "ditau", partial, "--out", str(tmp_path / "v")),
        partial,
        "lacks branch",
        "channel",
    )
    assert not os.path.exists(tmp_path / "v")


def test_validate_nonfinite(tmp_path, h125_sample):
    import uproot

    tree = uproot.open(h125_sample[1])["Events"]
    arrays = tree.arrays(library="ak")
    bad = {k: arrays[k] for k in arrays.fields}
    met = np.asarray(bad["MET_pt"]).copy()
    met[[0, 5]] = np.nan
    bad["MET_pt"] = met
    path = str(tmp_path / "nan.root")
    with uproot.recreate(path) as f:
        f["Events"] = {k: v for k, v in bad.items() if not k.startswith("n")}
    _assert_user_error(
        _run("data.validate", "ditau", path, "--out", str(tmp_path / "v")),
        "2 of 120 events",
        "MET_pt (2)",
        "--drop-nonfinite",
    )
    res = _run("data.validate", "ditau", path, "--out", str(tmp_path / "v"), "--drop-nonfinite")
    assert res.returncode == 0, res.stderr
    assert json.load(open(tmp_path / "v" / "summary.json"))["n_events"] == 118


def test_validate_writes_plots_and_summary(tmp_path, h125_sample, ttbar_sample):
    out = tmp_path / "val"
    res = _run("data.validate", "ditau", h125_sample[1], ttbar_sample[1], "--out", str(out))
    assert res.returncode == 0, res.stderr
    for name in (
        "mass_vis.png",
        "mass_ditau_true.png",
        "mass_boson_true.png",
        "decay_modes.png",
        "met_resolution.png",
        "summary.json",
    ):
        assert (out / name).stat().st_size > 1000 if name.endswith("png") else (out / name).exists()
    summary = json.load(open(out / "summary.json"))
    assert summary["n_events"] == 120 + 24
    assert summary["decay_modes"]["n_taus"] == 2 * 120
    assert summary["decay_modes"]["has_k0_flag"] is True
    assert abs(sum(r["fraction"] for r in summary["decay_modes"]["rows"]) - 100.0) < 1e-6
    assert {"h125/tauh-tauh", "ttbar/mu-tauh"} <= set(summary["m_vis"])
    assert "ttbar/tauh-tauh" not in summary["GenDiTau_mass"]  # no generated tau pair in ttbar
    for c in ("x", "y"):
        m = summary["met"][c]
        assert 5.0 < m["rms"] < 60.0 and 5.0 < m["mean_sigma"] < 60.0
        assert 0.5 < m["pull_std"] < 1.5
    assert "PDG" in res.stdout and "MET x" in res.stdout
