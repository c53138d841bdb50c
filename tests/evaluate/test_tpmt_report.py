"""The TPMT card's training section comes from the model's own run folder."""

import json
from argparse import Namespace

from evaluate.tpmt_report import _run_folder, model_card

NAN = {"median": float("nan"), "resolution": float("nan")}
RES = {
    "n_events": 0,
    "per_process_channel": {},
    "separation": {},
    "tau1_pt": {"tpmt": NAN, "reco": NAN},
    "tau2_pt": {"tpmt": NAN, "reco": NAN},
    "events_per_second": {},
}


def _run_config(folder, files):
    folder.mkdir(exist_ok=True)
    with open(folder / "run_config.json", "w") as f:
        json.dump({"files": files, "config": {"d_model": 8}}, f)


def test_resonant_model_reads_its_own_folder_not_the_flat_models(tmp_path):
    _run_config(tmp_path, ["flat_0000.root"])  # the default model's run, next to tpmt.keras
    _run_config(tmp_path / "tpmt_resonant_sm", ["h125_train_0000.root"])
    assert _run_folder(str(tmp_path / "tpmt.keras")) == str(tmp_path)
    assert _run_folder(str(tmp_path / "tpmt_resonant_sm.keras")) == str(
        tmp_path / "tpmt_resonant_sm"
    )
    # a model without its own folder falls back to the folder it sits in
    assert _run_folder(str(tmp_path / "other.keras")) == str(tmp_path)

    args = Namespace(
        model=str(tmp_path / "tpmt_resonant_sm.keras"), input=["a.root"], out=str(tmp_path)
    )
    model_card(RES, args, str(tmp_path / "README.md"))
    text = (tmp_path / "README.md").read_text()
    assert "h125_train_0000.root" in text and "flat_0000.root" not in text
