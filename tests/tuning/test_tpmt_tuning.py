"""The TPMT hypermodel maps hp.* onto the model config; the search CLI runs and resumes."""

import keras_tuner
import pytest

from models.tpmt.config import get_config
from tests.tuning.search_checks import SEARCH, check_resumable_search
from tuning.tpmt import TPMTHyperModel


def test_hypermodel_maps_hyperparameters_onto_config():
    hm = TPMTHyperModel(get_config("cpu"))
    hp = keras_tuner.HyperParameters()
    hp.Fixed("d_model", 32)
    hp.Fixed("num_blocks", 1)
    hp.Fixed("lambda_m", 0.05)
    hp.Fixed("learning_rate", 2e-4)
    model = hm.build(hp)
    config = hm.config(hp)
    assert (config.d_model, config.num_blocks, config.lambda_m) == (32, 1, 0.05)
    assert config.learning_rate == 2e-4
    assert model.get_layer("legs_projection").units == 32
    assert len([layer for layer in model.layers if layer.name.startswith("encoder_")]) == 1
    assert float(model.optimizer.learning_rate) == pytest.approx(2e-4)


@pytest.fixture(scope="module")
def flat_file(tmp_path_factory):
    from data.generate.__main__ import run as generate_run

    path = str(tmp_path_factory.mktemp("ditau") / "flat.root")
    generate_run("flat", 120, 11, path, progress=False)
    return path


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_search_cli_runs_and_resumes(flat_file, tmp_path):
    from tuning.tpmt import main

    out = tmp_path / "search"
    # --trials: the alias that scripts use
    argv = ["--data", flat_file, "--out", str(out), *SEARCH, "--trials", "2"]
    check_resumable_search(main, argv, out)


@pytest.mark.e2e
def test_search_scores_trials_on_held_out_files(flat_file, tmp_path, capsys):
    import json

    from tuning.tpmt import main

    out = tmp_path / "held_out"
    argv = ["--data", flat_file, "--validation", flat_file, "--out", str(out), *SEARCH]
    main([*argv, "--max-trials", "1", "--objective", "val_m_tautau_mae"])
    assert "validation events (held-out files)" in capsys.readouterr().err
    summary = json.loads((out / "best_trials.json").read_text())
    assert summary["trials_completed"] == 1 and summary["objective"] == "val_m_tautau_mae"
