"""The ParTau hypermodel maps hp.* onto ParTauConfig (multi- and single-task); the search CLI
runs and resumes."""

import keras_tuner
import pytest

from models.partau.config import get_config
from tests.tuning.search_checks import SEARCH, check_resumable_search
from tuning.partau import ParTauHyperModel


def test_multi_task_hypermodel_maps_hyperparameters_onto_config():
    hm = ParTauHyperModel(get_config("tiny"))
    hp = keras_tuner.HyperParameters()
    values = dict(num_layers=2, num_heads=2, embed_dims="32,64,32", task_weights_kinematics=0.5)
    for name, value in values.items():
        hp.Fixed(name, value)
    config = hm.config(hp)
    assert (config.num_layers, config.num_heads, config.embed_dims) == (2, 2, (32, 64, 32))
    assert config.task_weights[config.tasks.index("kinematics")] == 0.5
    assert config.task_weights[config.tasks.index("tau_id")] == 1.0
    assert config.pcgrad and config.variant == "multi"
    model = hm.build(hp)
    assert type(model).__name__ == "PCGradModel"
    assert model.get_layer("backbone_embed").get_config()["dims"] == [32, 64, 32]
    assert len([la for la in model.layers if la.name.startswith("backbone_block_")]) == 2
    assert model.get_compile_config()["loss_weights"]["kinematics"] == 0.5


def test_single_task_hypermodel_has_no_task_weights():
    hm = ParTauHyperModel(get_config("tiny", variant="single", task="charge"))
    hp = keras_tuner.HyperParameters()
    hp.Fixed("num_layers", 1)
    model = hm.build(hp)
    assert not any(name.startswith("task_weights") for name in hp.values)
    assert hm.config(hp).tasks == ("charge",)
    assert "charge" in model.output_names and "tau_id" not in model.output_names


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_search_cli_runs_and_resumes(fcc_files, tmp_path):
    """A single-task search (the multi-task PCGrad graph takes minutes to trace on 2 loaded
    CPU cores; its hypermodel is built and compiled by the fast test above)."""
    from tuning.partau import main

    out = tmp_path / "search"
    argv = ["--data", *fcc_files, "--out", str(out), "--preset", "tiny", "--no-jit",
            "--variant", "single", "--task", "charge", *SEARCH]  # fmt: skip
    check_resumable_search(main, argv, out)
