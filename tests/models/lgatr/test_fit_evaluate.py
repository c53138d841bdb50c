"""End to end: generate a few dilepton ttbar events, fit a tiny L-GATr, evaluate it."""

import json
import os

import keras
import numpy as np
import pytest

from data import io
from data.generate.ditau_output import to_root_columns
from data.generate.ttbar_dilepton import generate
from evaluate import lgatr as evaluate_lgatr
from evaluate import lgatr_study
from models.lgatr import config as lgatr_config
from models.lgatr import fit

TINY = lgatr_config.LGATrConfig(
    num_blocks=1,
    hidden_mv_channels=2,
    hidden_s_channels=4,
    num_heads=1,
    plain_dim=8,
    epochs=1,
    batch_size=64,
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ttbar") / "ttbar.root")
    io.write_events(path, to_root_columns(generate(150, seed=3)))
    return path


@pytest.fixture
def tiny_preset(monkeypatch):
    monkeypatch.setitem(lgatr_config.PRESETS, "tiny", TINY)


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_fit_then_evaluate(sample, tiny_preset, tmp_path):
    out = str(tmp_path / "models")
    fit.main(["--preset", "tiny", "--data", sample, "--out", out, "--quiet"])
    model = os.path.join(out, "lgatr.keras")
    assert os.path.exists(model)
    summary = json.load(open(os.path.join(out, "lgatr", "train_summary.json")))
    assert summary["epochs_run"] == 1 and summary["parameters"] > 0
    assert not os.path.exists(os.path.join(out, "lgatr", "checkpoint.keras"))

    ev = str(tmp_path / "eval")
    evaluate_lgatr.main(["--model", model, "--input", sample, "--out", ev])
    for name in ("predictions.root", "metrics.json", "README.md", "m_tt.png"):
        assert os.path.exists(os.path.join(ev, name)), name
    metrics = json.load(open(os.path.join(ev, "metrics.json")))
    assert set(metrics["all"]) == {"lgatr", "analytic"}
    assert 0 < metrics["analytic"]["solution_efficiency"] <= 1
    for q in evaluate_lgatr.QUANTITIES:
        assert metrics["all"]["analytic"][q]["seed"]["n"] > 0
    columns = io.read_branches(ev + "/predictions.root", ["lgatr_m_tt", "true_top_pt"])
    assert len(columns["lgatr_m_tt"]) == metrics["n_events"]
    card = open(os.path.join(ev, "README.md")).read()
    assert "python -m evaluate.lgatr" in card and "python -m models.lgatr.fit" in card

    # --init-from continues from the saved weights (at a negligible rate they stay put)
    more = str(tmp_path / "more")
    fit.main(
        ["--preset", "tiny", "--data", sample, "--out", more, "--quiet", "--init-from", model]
        + ["--learning-rate", "1e-12"]
    )
    before, after = (
        keras.models.load_model(m).get_weights() for m in (model, os.path.join(more, "lgatr.keras"))
    )
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(SystemExit) as exc:  # another architecture: one clear line
        fit.main(["--data", sample, "--out", str(tmp_path / "x"), "--init-from", model])
    assert exc.value.code == 2

    st = str(tmp_path / "study")
    lgatr_study.main(["--runs", out, "--input", sample, "--out", st])
    study = json.load(open(os.path.join(st, "study.json")))
    (run,) = study["runs"]
    assert run["model"] == "lgatr" and run["train_events"] == summary["train_events"]
    assert run["spurions"] == "x-y plane + time (default)" and run["symmetry_default"]
    assert run["metrics"]["top_mass_median"] == pytest.approx(172.5, rel=1e-3)  # on shell
    assert os.path.exists(os.path.join(st, "learning_curve.png"))
    assert "### Learning curve" in open(os.path.join(st, "study.md")).read()


def test_study_tables_group_the_symmetry_runs():
    m = {q: {"median": 0.0, "res_quantile": 0.3} for q in lgatr_study.STUDY_QUANTITIES}
    runs = [
        {
            "model": "lgatr",
            "train_events": 8,
            "epochs_run": 2,
            "train_seconds": 60.0,
            "spurions": name,
            "symmetry_default": default,
            "metrics": m,
        }
        for name, default in (("none", False), ("x-y plane + time (default)", True))
    ] + [
        {
            "model": "lgatr",
            "train_events": 80,
            "epochs_run": 2,
            "train_seconds": 60.0,
            "spurions": "x-y plane + time (default)",
            "symmetry_default": True,
            "metrics": m,
        }
    ]
    text = lgatr_study.tables(runs, m, 100)
    sym = text.split("### Symmetry breaking")[1]
    assert "8 training events" in sym and "| none | 2 |" in sym and "80" not in sym
    curve = text.split("### Learning curve")[1].split("###")[0]
    assert "| L-GATr | 8 |" in curve and "| L-GATr | 80 |" in curve and "| none" not in curve
    assert lgatr_study.spurion_label({"spurions": "none", "beam_spurion": "spacelike"}).startswith(
        "none"
    )


def test_study_bad_run_folder_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        lgatr_study.main(["--runs", str(tmp_path), "--input", "x.root", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "train_summary.json" in capsys.readouterr().err


def test_fit_missing_data_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        fit.main(["--data", str(tmp_path / "missing.root"), "--out", str(tmp_path)])
    assert err.value.code == 2
    assert "missing.root" in capsys.readouterr().err


def test_fit_bad_value_exits_2(tmp_path):
    with pytest.raises(SystemExit) as err:
        fit.main(["--epochs", "0", "--out", str(tmp_path)])
    assert err.value.code == 2


def test_evaluate_missing_model_exits_2(sample, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        evaluate_lgatr.main(
            ["--model", str(tmp_path / "none.keras"), "--input", sample, "--out", str(tmp_path)]
        )
    assert err.value.code == 2
    assert "none.keras" in capsys.readouterr().err.strip()


def test_evaluate_non_root_input_exits_2(tmp_path, capsys):
    bogus = tmp_path / "notes.root"
    bogus.write_text("not a ROOT file")
    model = tmp_path / "m.keras"
    model.write_text("x")
    with pytest.raises(SystemExit) as err:
        evaluate_lgatr.main(["--model", str(model), "--input", str(bogus), "--out", str(tmp_path)])
    assert err.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_evaluate_missing_branch_exits_2(tmp_path, capsys):
    import numpy as np

    path = str(tmp_path / "partial.root")
    io.write_events(path, {"MET_pt": np.ones(3)})
    model = tmp_path / "m.keras"
    model.write_text("x")
    with pytest.raises(SystemExit) as err:
        evaluate_lgatr.main(["--model", str(model), "--input", path, "--out", str(tmp_path)])
    assert err.value.code == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "Muon_pt" in message, message


def test_top_phi_difference_is_wrapped():
    """A prediction at phi = 3.1 for a true -3.1 is 0.083 rad off (clockwise), not 6.2."""
    import numpy as np

    n = 3
    true = {q: np.ones(n) for q in evaluate_lgatr.QUANTITIES}
    pred = {q: np.ones(n) for q in evaluate_lgatr.QUANTITIES}
    true["top_phi"], pred["top_phi"] = np.array([-3.1, 0.0, 1.0]), np.array([3.1, 0.1, 1.0])
    f = evaluate_lgatr.figures(pred, true)["top_phi"]
    d = [6.2 - 2 * np.pi, 0.1, 0.0]
    assert f["robust"]["median"] == pytest.approx(np.median(d), abs=1e-9)
    assert f["seed"]["rb"] == pytest.approx(np.mean(d), abs=1e-9)
