"""The L-GATr hypermodel maps hp.* onto LGATrConfig; the search CLI runs and resumes."""

import keras_tuner
import pytest

from tests.tuning.search_checks import SEARCH, check_resumable_search
from tuning.lgatr import LGATrHyperModel, base_config, parse_args


def test_hypermodel_maps_hyperparameters_onto_config():
    base = base_config(parse_args(["--data", "x.root"]))  # the fit's config and token lists
    hm = LGATrHyperModel(base)
    hp = keras_tuner.HyperParameters()
    values = dict(num_blocks=1, hidden_mv_channels=4, hidden_s_channels=8, mass_weight=0.1)
    for name, value in values.items():
        hp.Fixed(name, value)
    config = hm.config(hp)
    assert {k: getattr(config, k) for k in values} == values
    assert config.objects == base.objects and config.scalar_features == base.scalar_features
    model = hm.build(hp)
    network = model.get_layer("lgatr").get_config()
    assert {k: network[k] for k in ("num_blocks", "hidden_mv_channels", "hidden_s_channels")} == {
        "num_blocks": 1,
        "hidden_mv_channels": 4,
        "hidden_s_channels": 8,
    }
    assert model.loss["tops"].mass_weight == 0.1


@pytest.fixture(scope="module")
def ttbar_file(tmp_path_factory):
    from data import io
    from data.generate.ditau_output import to_root_columns
    from data.generate.ttbar_dilepton import generate

    path = str(tmp_path_factory.mktemp("ttbar") / "ttbar.root")
    io.write_events(path, to_root_columns(generate(60, seed=3)))
    return path


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_search_cli_runs_and_resumes(ttbar_file, tmp_path):
    from tuning.lgatr import main

    out = tmp_path / "search"
    check_resumable_search(main, ["--data", ttbar_file, "--out", str(out), *SEARCH], out)
