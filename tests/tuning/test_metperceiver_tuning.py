"""The MET Perceiver hypermodel maps hp.* onto MetConfig; the search CLI runs and resumes."""

import keras_tuner
import pytest

from models.metperceiver.config import get_config
from tests.tuning.search_checks import SEARCH, check_resumable_search
from tuning.metperceiver import MetPerceiverHyperModel


def test_hypermodel_maps_hyperparameters_onto_config():
    hm = MetPerceiverHyperModel(get_config("tiny"))
    hp = keras_tuner.HyperParameters()
    values = dict(num_latents=16, dim=32, num_blocks=2, num_heads=4)
    for name, value in values.items():
        hp.Fixed(name, value)
    config = hm.config(hp)
    assert {k: getattr(config, k) for k in values} == values
    assert config.max_cands == get_config("tiny").max_cands
    model = hm.build(hp)
    cross = model.get_layer("cross_attention").get_config()
    assert (cross["num_latents"], cross["dim"]) == (16, 32)
    assert len([la for la in model.layers if la.name.startswith("latent_block_")]) == 2


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_search_cli_runs_and_resumes(pu_file, tmp_path):
    from tuning.metperceiver import main

    out = tmp_path / "search"
    argv = ["--data", pu_file, "--out", str(out), "--preset", "tiny", "--chunk-events", "12",
            "--no-jit", *SEARCH]  # fmt: skip
    check_resumable_search(main, argv, out)
