"""The harness of evaluate.bench.clue_speed on a synthetic event: structure, not timing.

No timing is asserted (DESIGN.md, tests never assert on wall time).
"""

import argparse
import json

import numpy as np
import pytest

from data.io import write_events
from evaluate.bench import clue_speed


def _event(seed=0, n_soft=400):
    """Two hard sprays (one across phi = pi) on soft uniform candidates: px, py, eta."""
    rng = np.random.default_rng(seed)
    eta = np.concatenate([rng.normal(0.5, 0.03, 20), rng.normal(-1.0, 0.03, 20)])
    phi = np.concatenate([rng.normal(np.pi, 0.03, 20), rng.normal(0.0, 0.03, 20)])
    pt = rng.uniform(5, 20, 40)
    eta = np.concatenate([eta, rng.uniform(-4, 4, n_soft)])
    phi = np.concatenate([phi, rng.uniform(-np.pi, np.pi, n_soft)])
    pt = np.concatenate([pt, rng.uniform(0.1, 0.5, n_soft)])
    return pt * np.cos(phi), pt * np.sin(phi), eta


def test_event_inputs_are_the_same_candidates():
    px, py, eta = _event()
    inputs = clue_speed.event_inputs(px, py, eta)
    pt, p4 = inputs["pt"], inputs["p4"]
    assert inputs["points"].shape == (440, 2) and pt.shape == (440,) and len(p4) == 440
    np.testing.assert_allclose(np.asarray(p4.pt), pt, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(p4.eta), inputs["points"][:, 0], atol=1e-9)
    np.testing.assert_allclose(np.asarray(p4.phi), inputs["points"][:, 1], atol=1e-9)
    np.testing.assert_allclose(np.asarray(p4.mass), 0.0, atol=1e-4)


def test_time_event_and_summary():
    inputs = clue_speed.event_inputs(*_event())
    kw = dict(clue_speed.DEFAULTS, rhoc=5.0)  # the soft candidates stay below rhoc
    row = clue_speed.time_event(inputs, **kw, jet_min_pt=20.0, repeats=2)
    assert set(row) == {"candidates", "clue_s", "antikt_s", "clusters", "outliers", "jets"}
    assert row["candidates"] == 440 and row["clue_s"] > 0 and row["antikt_s"] > 0
    assert row["clusters"] >= 2 and row["outliers"] > 0  # the two sprays, the soft outliers
    assert row["jets"] == 2  # two hard anti-kT jets, the one at phi = pi in one piece
    s = clue_speed.summarize([row, dict(row, clusters=row["clusters"] + 2)])
    assert s["events"] == 2 and s["clusters"] == row["clusters"] + 1
    assert s["ratio"] == pytest.approx(row["clue_s"] / row["antikt_s"])
    table = clue_speed.format_table(s, argparse.Namespace(**kw, jet_min_pt=20.0))
    assert "ratio CLUE / anti-kT" in table and "clusters" in table and "jets" in table


def test_reference_skipped_without_clustering_package():
    try:
        import CLUEstering  # noqa: F401

        pytest.skip("CLUEstering is installed")
    except ImportError:
        pass
    inputs = clue_speed.event_inputs(*_event())
    assert clue_speed.reference_agreement(inputs, dc=0.1, rhoc=2.0, outlier_factor=2.0) is None


def test_cli_on_a_small_file(tmp_path, capsys):
    import awkward as ak

    evs = [_event(seed, n_soft=100) for seed in range(3)]
    cols = {
        name: ak.Array([e[k].astype(np.float32) for e in evs])
        for k, name in enumerate(("px", "py", "eta"))
    }
    path = tmp_path / "pu.root"
    write_events(str(path), {"PFCand": cols})
    out = tmp_path / "speed.json"
    clue_speed.main(["--input", str(path), "--events", "5", "--repeats", "1", "--json", str(out)])
    text = capsys.readouterr().out
    assert "3 events" in text and "ratio CLUE / anti-kT" in text
    saved = json.loads(out.read_text())
    assert saved["summary"]["events"] == 3 and len(saved["events"]) == 3


@pytest.mark.parametrize(
    "argv",
    [["--input", "no/such/file.root"], ["--input", "x.root", "--events", "0"], ["--dc", "1"]],
)
def test_cli_user_errors_exit_2(argv):
    with pytest.raises(SystemExit) as err:
        clue_speed.main(argv)
    assert err.value.code == 2
