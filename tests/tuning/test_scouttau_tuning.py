"""The ScoutTau hypermodel maps hp.* onto ScoutTauConfig; the search CLI runs and resumes."""

import keras_tuner
import pytest

from models.scouttau.config import get_config
from tests.tuning.search_checks import SEARCH, check_resumable_search
from tuning.scouttau import ScoutTauHyperModel


def test_hypermodel_maps_hyperparameters_onto_config():
    hm = ScoutTauHyperModel(get_config("cpu"))
    hp = keras_tuner.HyperParameters()
    values = dict(embed_dims="16,32,16", num_heads=2, num_layers=2, task_weights_pileup=1.0)
    for name, value in values.items():
        hp.Fixed(name, value)
    config = hm.config(hp)
    assert (config.embed_dims, config.num_heads, config.num_layers) == ((16, 32, 16), 2, 2)
    assert config.task_weights[3] == 1.0 and config.task_weights[0] == 1.0
    model = hm.build(hp)
    assert model.get_layer("embed_2").units == 16
    assert len([la for la in model.layers if la.name.startswith("encoder_")]) == 2
    assert model.get_compile_config()["loss_weights"]["pileup"] == 1.0


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_search_cli_runs_and_resumes(scouttau_file, tmp_path):
    from tuning.scouttau import main

    out = tmp_path / "search"
    argv = ["--data", scouttau_file, "--out", str(out), "--preset", "tiny", "--val-fraction",
            "0.3", "--no-jit", *SEARCH]  # fmt: skip
    check_resumable_search(main, argv, out)
