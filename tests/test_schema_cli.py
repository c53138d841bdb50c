"""Every CLI that reads ROOT files takes --schema (and the TPMT / L-GATr ones the NanoAOD
working points), as `data.schemas.add_arguments` declares them."""

import importlib

import pytest

READS_ROOT = {  # module -> whether it reads NanoAOD (working points, --mapping)
    "models.tpmt.fit": True,
    "models.lgatr.fit": True,
    "models.partau.fit": False,
    "models.metperceiver.fit": False,
    "models.scouttau.fit": False,
    "evaluate.tpmt": True,
    "evaluate.lgatr": True,
    "evaluate.partau": False,
    "evaluate.metperceiver": False,
    "evaluate.scouttau": False,
    "evaluate.predict": True,
    "evaluate.nanoaod_tpmt": False,
    "evaluate.feature_importance": True,
    "evaluate.bench.tpmt_speed": True,
    "evaluate.bench.clue_speed": False,
    "tuning.tpmt": True,
    "tuning.lgatr": True,
    "tuning.partau": False,
    "tuning.metperceiver": False,
    "tuning.scouttau": False,
    "data.validate": False,
}


@pytest.mark.parametrize("module, nanoaod", READS_ROOT.items())
def test_cli_accepts_schema(module, nanoaod, capsys):
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--schema {auto,hepformers,nanoaod,pfnano}" in text
    for option in ("--tau-id", "--muon-id", "--electron-id", "--jet-id", "--btag"):
        assert (option in text) == nanoaod, option
