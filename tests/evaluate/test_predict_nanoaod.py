"""Friend trees on a real CMS NanoAOD (tests/data/files): one entry per input event, finite
predictions for the selected events, FILL elsewhere, clear errors for the wrong schema."""

import os

import numpy as np
import pytest
import uproot

from evaluate import predict

pytestmark = pytest.mark.interop  # loads the shipped models: the interop CI step

NANO = os.path.join(
    os.path.dirname(os.path.dirname(__file__)),
    "data",
    "files",
    "nanoAOD_2015_CMS_Open_Data_ttbar.root",
)
TPMT = "saved_models/tpmt/tpmt_dropproducts.keras"
LGATR = "saved_models/lgatr/lgatr.keras"


def _friend(args, out, capsys):
    assert predict.main([*args, "--input", NANO, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    return uproot.open(out)["Events"].arrays(library="np"), printed


def test_tpmt_friend_on_real_nanoaod(tmp_path, capsys):
    f, printed = _friend([TPMT, "--schema", "nanoaod"], tmp_path / "default.root", capsys)
    assert len(f["m_tpmt"]) == 200 and "TPMT: 0 of 200 events" in printed  # files/README.md
    assert np.all(f["m_tpmt"] == predict.FILL)
    args = [TPMT, "--schema", "nanoaod", "--tau-id", "none", "--electron-id", "none"]
    f, printed = _friend(args, tmp_path / "loose.root", capsys)
    assert "TPMT: 1 of 200 events" in printed
    sel = f["tpmt_selected"]
    assert len(sel) == 200 and np.flatnonzero(sel).tolist() == [155]
    for k in ("m_tpmt", "m_tpmt_q16", "m_tpmt_q84", "tau1_pt_tpmt", "tau2_pt_tpmt"):
        assert np.isfinite(f[k][sel]).all() and np.all(f[k][~sel] == predict.FILL)
    assert f["m_tpmt_q16"][155] <= f["m_tpmt"][155] <= f["m_tpmt_q84"][155]
    # next to the input, row by row
    events = uproot.open(NANO)["Events"].arrays(["event", "Muon_pt"], library="np")
    assert len(events["event"]) == len(sel)


def test_lgatr_friend_on_real_nanoaod(tmp_path, capsys):
    args = [LGATR, "--schema", "nanoaod", "--electron-id", "none", "--jet-id", "none"]
    f, printed = _friend([*args, "--btag", "0"], tmp_path / "lgatr.root", capsys)
    assert "L-GATr: 1 of 200 events" in printed
    sel = f["lgatr_selected"]
    assert len(sel) == 200 and np.flatnonzero(sel).tolist() == [10]
    assert np.isfinite(f["lgatr_m_tt"][sel]).all() and np.all(f["lgatr_m_tt"][~sel] == -999)


def _error_line(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict.main(args)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert exit_info.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_wrong_schema_and_model_give_one_clear_line(tmp_path, capsys):
    line = _error_line(
        [TPMT, "--schema", "pfnano", "--input", NANO, "--out", str(tmp_path / "x.root")], capsys
    )
    assert "PFCands_pt" in line and "--schema nanoaod" in line
    partau = "saved_models/partau/partau_multi.keras"
    line = _error_line([partau, "--input", NANO, "--out", str(tmp_path / "y.root")], capsys)
    assert "reads the toolkit's own files" in line


def test_nanoaod_tpmt_steps_on_real_file(tmp_path, capsys):
    import json

    from evaluate import nanoaod_tpmt

    out = tmp_path / "nano"
    assert nanoaod_tpmt.main(["--model", TPMT, "--input", NANO, "--out", str(out)]) == 0
    steps = json.load(open(out / "nanoaod_tpmt.json"))["steps"]
    assert list(steps) == list(nanoaod_tpmt.STEPS) and steps["default"]["events"] == 0
    loose = steps["tau ID off"]
    assert loose["events"] == len(loose["m_tpmt"]) == sum(loose["channels"].values()) > 0
    assert sum(loose["tau_flavour"].values()) == loose["events"]  # one tau_h leg per mu-tauh
    assert (out / "nanoaod_tpmt.png").stat().st_size > 1000
