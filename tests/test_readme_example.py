"""The README's analysis example runs as written in a fresh process (on generated files)."""

import os
import re
import subprocess
import sys

import pytest

from data import io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _example():
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text.split("## Using the models in an analysis", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.interop  # generates a sample for each model: the interop CI step
def test_readme_analysis_example_runs(tmp_path, pu_file, scouttau_file):
    from data.generate import ditau, fcctau, ttbar_dilepton
    from data.generate.ditau_output import to_root_columns

    files = {"metperceiver": pu_file, "scouttau": scouttau_file}
    for name, cols in (
        ("tpmt", ditau.generate("h125", 10, 21)),
        ("lgatr", ttbar_dilepton.generate(8, 22, batch_size=8)),
        ("partau", fcctau.generate("ztautau", 20, 23, batch_size=20)),
    ):
        files[name] = str(tmp_path / f"{name}.root")
        io.write_events(files[name], to_root_columns(cols))
    code = re.sub(r"FILES = \{.*?\}\n", f"FILES = {files!r}\n", _example(), flags=re.S)
    assert f"FILES = {files!r}" in code
    code += (
        "\nfor x in (m_tautau, tops, tau_score, met_xy, l1_logit):\n"
        "    assert np.all(np.isfinite(x)), x\n"
        "print('shapes', m_tautau.shape, tops.shape, tau_score.shape, met_xy.shape,"
        " l1_logit.shape)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr[-2000:]
    shapes = r.stdout.split("shapes", 1)[1]
    assert f"({io.num_entries(pu_file)}, 2)" in shapes  # one MET per event
