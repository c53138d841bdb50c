"""Detector-pass copies (`data.generate --smearings`): layout, physics, and the loader's choice."""

import numpy as np
import pytest

from data import io
from data.ditau import load
from data.generate.ditau import generate
from data.generate.ditau_output import take, to_root_columns

S = 3


@pytest.fixture(scope="module")
def copies():
    return generate("flat", 60, 41, tau_decays=2, smearings=S, batch_size=100)


def test_passes_share_the_generated_event_and_differ_in_the_detector(copies):
    c = copies
    assert len(c["event"]) == 60
    assert np.unique(c["event"]).size == 60  # (event, pass) unique through the event number
    source = c["event"] // S
    np.testing.assert_array_equal(c["smearing"], c["event"] % S)
    assert set(np.unique(c["smearing"])) == set(range(S))
    # passes of one event sit next to each other (a cut batch keeps whole groups)
    assert (np.diff(c["event"]) > 0).all()
    groups = [np.nonzero(source == e)[0] for e in np.unique(source)]
    shared = [g for g in groups if len(g) > 1]
    assert shared, "some events should pass the selection in more than one pass"
    for g in shared:
        # the generator level is the same event: same tau pair mass and neutrinos
        assert np.ptp(c["GenDiTau_mass"][g]) == 0
        assert np.ptp(c["GenMET_pt"][g]) == 0
    # the detector is drawn again: the reconstructed MET differs between passes
    assert all(np.ptp(c["MET_pt"][g]) > 0 for g in shared)


def test_generation_is_reproducible():
    a = generate("flat", 20, 43, smearings=2, batch_size=100)
    b = generate("flat", 20, 43, smearings=2, batch_size=100)
    np.testing.assert_array_equal(a["MET_pt"], b["MET_pt"])
    np.testing.assert_array_equal(a["smearing"], b["smearing"])


def test_take_reorders_jagged_collections(copies):
    idx = np.array([5, 0, 5])
    t = take(copies, idx)
    for k, v in copies.items():
        if isinstance(v, dict):
            off = np.concatenate([[0], np.cumsum(v["_counts"])])
            for f, a in v.items():
                if f == "_counts":
                    continue
                want = np.concatenate([a[off[i] : off[i + 1]] for i in idx])
                np.testing.assert_array_equal(t[k][f], want)
        else:
            np.testing.assert_array_equal(t[k], v[idx])


def test_loader_reads_the_first_passes_only_when_asked(copies, tmp_path):
    path = str(tmp_path / "copies.root")
    io.write_events(path, to_root_columns(copies))
    passes = copies["smearing"]
    first = load(path)  # default: independent events only
    assert set(np.unique(passes[first["meta"]["entry"]])) == {0}
    two = load(path, smearings=2)
    assert set(np.unique(passes[two["meta"]["entry"]])) == {0, 1}
    every = load(path, smearings=None)
    assert len(every["meta"]["entry"]) > len(two["meta"]["entry"]) > len(first["meta"]["entry"])


def test_smearings_out_of_range():
    with pytest.raises(ValueError, match="smearings"):
        generate("flat", 5, 1, smearings=0)


def test_tpmt_training_stream_takes_the_passes_it_is_told(copies, tmp_path):
    from models.tpmt.fit import training_stream

    path = str(tmp_path / "copies.root")
    io.write_events(path, to_root_columns(copies))
    counts = {}
    for n in (1, S):
        reading = {"schema": "auto", "mapping": {}, "smearings": n}
        _, val, scan, _ = training_stream(
            [path],
            reading,
            channel="all",
            drop_nonfinite=False,
            chunk_events=100,
            batch_size=8,
            seed=1,
            val_fraction=0.2,
        )
        counts[n] = sum(scan.counts) + len(val[1])
    assert counts[1] == int((copies["smearing"] == 0).sum())
    assert counts[S] == len(copies["event"])


def test_tpmt_split_keeps_the_copies_of_one_event_on_one_side(copies, tmp_path):
    from models.tpmt.fit import same_event_split, target_matrix

    path = str(tmp_path / "copies.root")
    io.write_events(path, to_root_columns(copies))
    d = load(path, smearings=None)
    y = target_matrix(d["targets"])
    source = copies["event"][d["meta"]["entry"]] // S  # the generated event of every row
    train, val = same_event_split((d["inputs"], y), np.random.default_rng(3), val_fraction=0.5)
    assert (train ^ val).all() and val.any() and train.any()
    assert not set(source[train]) & set(source[val])
    # the same rng gives the same split; a hand-made case: three groups of identical targets
    y = np.array([[1, 2, 3], [4, 5, 6], [1, 2, 3], [7, 8, 9], [4, 5, 6]], "float32")
    for seed in range(5):
        _, v = same_event_split((None, y), np.random.default_rng(seed), val_fraction=0.5)
        assert v[0] == v[2] and v[1] == v[4]
        _, again = same_event_split((None, y), np.random.default_rng(seed), val_fraction=0.5)
        np.testing.assert_array_equal(v, again)


def test_detector_passes_counts_the_passes_a_file_holds(copies, tmp_path):
    from data.ditau import detector_passes

    path = str(tmp_path / "copies.root")
    io.write_events(path, to_root_columns(copies))
    assert detector_passes(path) == S
    single = str(tmp_path / "single.root")  # the branch is there, all 0: one pass
    io.write_events(single, to_root_columns(generate("flat", 10, 5, batch_size=100)))
    assert detector_passes(single) == 1
