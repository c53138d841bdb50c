"""evaluate.tpmt_compare: one row per shared process/channel, TPMT cells per run, FastMTT last."""

import json

import pytest

from evaluate import tpmt_compare


def _run(folder, median, fast=None):
    folder.mkdir()
    m = {"tpmt": {"median": median, "resolution": 0.2, "n": 10}}
    if fast is not None:
        m["fastmtt"] = {"median": fast, "resolution": 0.3, "n": 10}
    per = {"h125/all": m, "dy/mu-tauh": m, "flat/all": m}
    (folder / "metrics.json").write_text(json.dumps({"per_process_channel": per}))
    return str(folder)


def test_table_rows_and_columns(tmp_path):
    a, b = _run(tmp_path / "a", 1.01), _run(tmp_path / "b", 0.97, fast=0.95)
    out = tmp_path / "t.md"
    assert tpmt_compare.main(["--run", f"A={a}", "--run", f"B={b}", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "| sample | A | B | FastMTT |"
    assert lines[2] == "| h125/all (n=10) | 1.010 / 0.200 | 0.970 / 0.200 | 0.950 / 0.300 |"
    assert len(lines) == 4  # flat is not among the default processes


def test_bad_run_spec(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        tpmt_compare.main(["--run", "nolabel", "--out", str(tmp_path / "t.md")])
    assert e.value.code == 2 and "LABEL=DIR" in capsys.readouterr().err
