"""ROOT I/O: round trips with NanoAOD names and a clear UserError for every kind of bad input."""

import awkward as ak
import numpy as np
import pytest
import uproot

from data import io
from data.errors import UserError


def _columns(n=6, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, n)
    total = int(counts.sum())
    tau = {
        "pt": ak.unflatten(rng.uniform(20, 100, total), counts),
        "eta": ak.unflatten(rng.uniform(-2.3, 2.3, total), counts),
        "decayMode": ak.unflatten(rng.integers(0, 12, total).astype(np.int32), counts),
    }
    return {"Tau": tau, "MET_pt": rng.uniform(0, 100, n), "event": np.arange(n, dtype=np.int64)}


def _write(path, columns):
    io.write_events(str(path), columns)
    return str(path)


def test_round_trip_jagged_and_flat(tmp_path):
    cols = _columns()
    path = _write(tmp_path / "sub" / "a.root", cols)  # the folder is created
    keys = set(uproot.open(path)["Events"].keys())
    assert {"nTau", "Tau_pt", "Tau_eta", "Tau_decayMode", "MET_pt", "event"} <= keys
    out = io.read_branches(path, ["nTau", "Tau_pt", "Tau_decayMode", "MET_pt", "event"])
    assert ak.to_list(out["Tau_pt"]) == ak.to_list(cols["Tau"]["pt"])
    assert ak.to_list(out["Tau_decayMode"]) == ak.to_list(cols["Tau"]["decayMode"])
    np.testing.assert_array_equal(ak.to_numpy(out["nTau"]), ak.to_numpy(ak.num(cols["Tau"]["pt"])))
    np.testing.assert_array_equal(ak.to_numpy(out["MET_pt"]), cols["MET_pt"])
    # two files are concatenated event-wise
    both = io.read_branches([path, path], ["MET_pt", "Tau_pt"])
    assert len(both["MET_pt"]) == 2 * len(cols["MET_pt"])
    assert len(both["Tau_pt"]) == 2 * len(cols["MET_pt"])


def test_mapping_of_branch_names(tmp_path):
    cols = _columns()
    cols["PuppiMET_pt"] = cols.pop("MET_pt")
    path = _write(tmp_path / "a.root", cols)
    out = io.read_branches(path, ["MET_pt", "Tau_pt"], mapping={"MET_pt": "PuppiMET_pt"})
    assert set(out) == {"MET_pt", "Tau_pt"}
    np.testing.assert_array_equal(ak.to_numpy(out["MET_pt"]), cols["PuppiMET_pt"])
    with pytest.raises(UserError, match="MET_pt"):
        io.read_branches(path, ["MET_pt"])


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        io.read_branches(str(tmp_path / "nope.root"), ["MET_pt"])
    with pytest.raises(UserError, match="is a folder"):
        io.read_branches(str(tmp_path), ["MET_pt"])
    with pytest.raises(UserError, match="no input files"):
        io.read_branches([], ["MET_pt"])


def test_non_root_file(tmp_path):
    path = tmp_path / "fake.root"
    path.write_bytes(b"this is not a ROOT file\n" * 20)
    with pytest.raises(UserError, match="not a readable ROOT file") as err:
        io.read_branches(str(path), ["MET_pt"])
    assert str(path) in str(err.value)
    empty = tmp_path / "empty.root"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="not a readable ROOT file"):
        io.open_tree(str(empty))


@pytest.mark.parametrize("keep", [1000, 0.5])
def test_truncated_file_is_named(tmp_path, keep):
    """A copy cut short: its header (1000 bytes kept) or its baskets (half kept) are missing;
    uproot's assorted errors become one UserError naming the file."""
    whole = _write(tmp_path / "whole.root", _columns(n=5000, seed=2))
    with open(whole, "rb") as f:
        data = f.read()
    path = tmp_path / "cut.root"
    path.write_bytes(data[: keep if isinstance(keep, int) else int(keep * len(data))])
    with pytest.raises(UserError) as err:
        io.read_branches(str(path), ["MET_pt", "Tau_pt", "Tau_eta", "Tau_decayMode"])
    assert str(err.value).startswith(f"cannot read {path}: truncated or corrupt ROOT file")


def test_missing_tree(tmp_path):
    path = _write(tmp_path / "a.root", _columns())
    with pytest.raises(UserError, match=r"no tree 'Other' \(it holds: Events\)"):
        io.read_branches(path, ["MET_pt"], tree="Other")


def test_empty_tree(tmp_path):
    path = str(tmp_path / "empty.root")
    with uproot.recreate(path) as f:
        f.mktree("Events", {"MET_pt": np.float64})
    with pytest.raises(UserError, match="empty") as err:
        io.read_branches(path, ["MET_pt"])
    assert path in str(err.value)


def test_missing_branch_names_branch_and_file(tmp_path):
    good = _write(tmp_path / "good.root", _columns())
    cols = _columns()
    del cols["Tau"]
    bad = _write(tmp_path / "bad.root", cols)
    with pytest.raises(UserError) as err:
        io.read_branches([good, bad], ["MET_pt", "Tau_pt"])
    msg = str(err.value)
    assert "Tau_pt" in msg and bad in msg and "\n" not in msg


def test_nonfinite_values_are_counted_and_can_be_dropped(tmp_path, capsys):
    cols = _columns(n=8)
    cols["MET_pt"][[1, 4]] = [np.nan, np.inf]
    pt = ak.to_list(cols["Tau"]["pt"])
    event = next(i for i, row in enumerate(pt) if row and i not in (1, 4))
    pt[event][0] = -np.inf
    cols["Tau"]["pt"] = ak.Array(pt)
    path = _write(tmp_path / "a.root", cols)
    with pytest.raises(UserError) as err:
        io.read_branches(path, ["MET_pt", "Tau_pt", "event"])
    msg = str(err.value)
    assert "3 of 8 events" in msg and "MET_pt (2)" in msg and "Tau_pt (1)" in msg
    assert path in msg and "--drop-nonfinite" in msg
    out = io.read_branches(path, ["MET_pt", "Tau_pt", "event"], drop_nonfinite=True)
    assert sorted(ak.to_list(out["event"])) == sorted(set(range(8)) - {1, 4, event})
    assert np.isfinite(ak.to_numpy(out["MET_pt"])).all()
    assert "dropped 3 of 8 events" in capsys.readouterr().out


def test_unwritable_output(tmp_path):
    with pytest.raises(UserError, match="cannot write"):
        io.write_events("/proc/hepformers_test.root", _columns())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        io.write_events(str(blocker / "a.root"), _columns())
