"""`python -m evaluate.metperceiver_weights`: candidate classes, reference METs, the CLI."""

import json

import numpy as np
import pytest
import uproot

from evaluate.metperceiver_weights import main
from models.metperceiver.config import get_config
from models.metperceiver.model import build_model


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """An untrained Perceiver: its decoder starts every weight at exactly 1 (MET = PF MET)."""
    path = str(tmp_path_factory.mktemp("w") / "metperceiver.keras")
    build_model(get_config("tiny", max_cands=4096)).save(path)
    return path


def test_weights_and_reference_mets(untrained, pu_file, tmp_path):
    out = tmp_path / "w.json"
    res = main(["--model", untrained, "--input", pu_file, "--events", "24", "--json", str(out)])
    assert json.loads(out.read_text())["events"] == 24
    for r in res["weights"].values():
        assert r["weight_pt_mean"] == pytest.approx(1.0, abs=1e-5)
    met = res["met"]
    assert met["model"]["res_x"] == pytest.approx(met["pf"]["res_x"], abs=1e-2)
    # the truth MET by hand: minus the hard scatter's candidates
    t = uproot.open(pu_file)["Events"].arrays(
        ["PFCand_px", "PFCand_fromPU", "GenMET_pt", "GenMET_phi"], library="np"
    )
    hs_x = np.array([-px[~pu].sum() for px, pu in zip(t["PFCand_px"], t["PFCand_fromPU"])])
    gen_x = t["GenMET_pt"] * np.cos(t["GenMET_phi"])
    assert met["truth"]["bias_x"] == pytest.approx(np.mean(hs_x - gen_x), abs=1e-2)
    pt = {k: r["pt_per_event"] for k, r in res["weights"].items()}
    assert pt["charged pu"] > 0 and pt["neutral pu"] > 0 and pt["charged hs"] > 0


def test_bad_input(untrained, tmp_path, capsys):
    bad = tmp_path / "x.root"
    bad.write_text("no")
    for argv in (["--events", "0"], ["--input", str(bad)]):
        base = ["--model", untrained, "--input", str(bad)]
        with pytest.raises(SystemExit) as e:
            main(base + argv)
        assert e.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
