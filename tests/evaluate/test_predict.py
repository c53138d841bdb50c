"""Friend trees: one entry per input entry, values aligned event by event, FILL where nothing
was selected."""

import awkward as ak
import numpy as np
import pytest
import uproot

from data import io
from evaluate import predict


def _friend(model, inputs, out):
    assert predict.main([model, "--input", *inputs, "--out", str(out)]) == 0
    return uproot.open(out)["Events"].arrays(library="ak")


@pytest.fixture(scope="module")
def ditau_files(tmp_path_factory):
    """A generated h125 file and a copy in which every lepton and tau of events 1 and 4 has
    charge +1 (so they have no opposite-charge pair and fail the selection): rows must not
    shift."""
    from data.generate.ditau import generate
    from data.generate.ditau_output import to_root_columns

    folder = tmp_path_factory.mktemp("predict_ditau")
    good = str(folder / "h125.root")
    io.write_events(good, to_root_columns(generate("h125", 12, 5)))
    arrays = uproot.open(good)["Events"].arrays(library="ak")
    flag = np.zeros(len(arrays), np.int32)
    flag[[1, 4]] = 1
    cols = {f: arrays[f] for f in arrays.fields}
    for f in ("Tau_charge", "Muon_charge", "Electron_charge"):
        cols[f] = arrays[f] + (1 - arrays[f]) * flag
    bad = str(folder / "h125_failing.root")
    with uproot.recreate(bad) as f:
        f["Events"] = cols
    return good, bad


def test_tpmt_friend_is_aligned_with_fill_for_unselected(ditau_files, tmp_path):
    good, bad = ditau_files
    model = "saved_models/tpmt/tpmt.keras"
    ref = _friend(model, [good], tmp_path / "ref.root")
    got = _friend(model, [bad, good], tmp_path / "friend.root")
    n = io.num_entries(good)
    assert len(ref) == n and len(got) == 2 * n  # one entry per input entry, files in order
    assert ref["tpmt_selected"].to_numpy().all()
    sel = got["tpmt_selected"].to_numpy()
    assert not sel[[1, 4]].any() and sel[:n].sum() == n - 2 and sel[n:].all()
    m_ref, m_got = ref["m_tpmt"].to_numpy(), got["m_tpmt"].to_numpy()
    assert np.all(m_got[[1, 4]] == predict.FILL)
    keep = np.setdiff1d(np.arange(n), [1, 4])
    np.testing.assert_allclose(m_got[keep], m_ref[keep], rtol=1e-5)  # same event, same row
    np.testing.assert_allclose(m_got[n:], m_ref, rtol=1e-5)
    assert np.all((m_ref > 20) & (m_ref < 1000))


def test_metperceiver_friend_event_by_event(pu_file, tmp_path):
    from evaluate.metperceiver import predict_chunk
    from models.training import load_trained

    path = "saved_models/metperceiver/deepmet.keras"
    got = _friend(path, [pu_file], tmp_path / "met.root")
    assert len(got) == io.num_entries(pu_file)
    model = load_trained(path)
    for i in (0, 7, len(got) - 1):  # each event alone gives its own row
        met = predict_chunk({"m": model}, pu_file, (i, i + 1), 8)["m"][0]
        assert got["deepmet_pt"][i] == pytest.approx(np.hypot(*met), rel=1e-4)
        assert got["deepmet_phi"][i] == pytest.approx(np.arctan2(met[1], met[0]), abs=1e-4)


def test_scouttau_friend_counts_candidates_per_event(scouttau_file, tmp_path):
    from evaluate.scouttau import transformer_candidates
    from models.training import load_trained

    path = "saved_models/scouttau/scouttau_pf.keras"
    got = _friend(path, [scouttau_file], tmp_path / "tau.root")
    n = io.num_entries(scouttau_file)
    assert len(got) == n
    c = transformer_candidates(
        load_trained(path), [scouttau_file], clustering="clue", inputs="pf", with_truth=False
    )
    counts = np.bincount(c["event"], minlength=n)
    np.testing.assert_array_equal(ak.num(got["ScoutTau_score"]).to_numpy(), counts)
    for e in np.flatnonzero(counts)[:3]:
        np.testing.assert_allclose(
            np.sort(got["ScoutTau_score"][e].to_numpy()),
            np.sort(c["score"][c["event"] == e]),
            rtol=1e-5,
        )


def test_unknown_model_and_bad_paths_exit_2(tmp_path, capsys, pu_file):
    import keras

    x = keras.Input((3,), name="x")
    foreign = str(tmp_path / "foreign.keras")
    keras.Model(x, keras.layers.Dense(1)(x), name="mine").save(foreign)
    for argv in (
        [foreign, "--input", pu_file, "--out", str(tmp_path / "f.root")],
        [
            "saved_models/tpmt/tpmt.keras",
            "--input",
            "missing.root",
            "--out",
            str(tmp_path / "f.root"),
        ],
        ["saved_models/tpmt/tpmt.keras", "--input", pu_file, "--out", str(tmp_path)],
    ):
        with pytest.raises(SystemExit) as err:
            predict.main(argv)
        assert err.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "f.root").exists()


@pytest.mark.interop  # generates its own FCC-ee and ttbar events: the interop CI step
def test_partau_and_lgatr_friends_follow_their_collections(tmp_path):
    from data.generate import fcctau, ttbar_dilepton
    from data.generate.ditau_output import to_root_columns

    jets_file, tt_file = str(tmp_path / "zqq.root"), str(tmp_path / "tt.root")
    io.write_events(jets_file, to_root_columns(fcctau.generate("zqq", 40, 17, batch_size=40)))
    io.write_events(tt_file, to_root_columns(ttbar_dilepton.generate(12, 18, batch_size=12)))
    got = _friend("saved_models/partau/partau_multi.keras", [jets_file], tmp_path / "p.root")
    n_jet = ak.num(uproot.open(jets_file)["Events"]["Jet_pt"].array())
    assert ak.all(ak.num(got["PartauJet_tau_score"]) == n_jet)
    score = ak.flatten(got["PartauJet_tau_score"]).to_numpy()
    assert np.all((score >= 0) & (score <= 1))
    assert set(np.unique(ak.flatten(got["PartauJet_decay_mode"]).to_numpy())) <= set(range(6))

    got = _friend("saved_models/lgatr/lgatr.keras", [tt_file], tmp_path / "t.root")
    assert len(got) == io.num_entries(tt_file)
    sel = got["lgatr_selected"].to_numpy()
    top_pt = got["lgatr_top_pt"].to_numpy()
    assert sel.any() and np.all(top_pt[sel] > 0) and np.all(top_pt[~sel] == predict.FILL)
