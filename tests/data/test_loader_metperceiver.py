"""The PU200 loader (data/metperceiver.py): padded candidates, features, MET, targets, errors."""

import numpy as np
import pytest
import uproot

from data import metperceiver as dm
from data.errors import UserError


def test_shapes_mask_and_features(pu_file):
    d = dm.load(pu_file, features=dm.DEEPMET_FEATURES, max_cands=4096)
    n = len(d["met_gen"])
    assert d["cands"].shape == (n, 4096, len(dm.DEEPMET_FEATURES))
    np.testing.assert_array_equal(d["mask"].sum(1), d["n_cands"])
    t = uproot.open(pu_file)["Events"].arrays(["PFCand_px", "PFCand_charge", "PFCand_pdgId"])
    k = dm.DEEPMET_FEATURES.index
    for i in range(n):
        m = d["mask"][i]
        np.testing.assert_allclose(d["cands"][i, m, 0], np.asarray(t["PFCand_px"][i]), rtol=1e-6)
        np.testing.assert_array_equal(
            d["cands"][i, m, k("charged")], np.asarray(t["PFCand_charge"][i]) != 0
        )
        pdg = np.abs(np.asarray(t["PFCand_pdgId"][i]))
        np.testing.assert_array_equal(d["cands"][i, m, k("photon")], pdg == 22)
        assert not d["cands"][i, ~m].any()  # padding is zero


def test_met_of_candidates_is_pf_met(pu_file):
    d = dm.load(pu_file, max_cands=4096)
    assert (d["n_dropped"] == 0).all()
    np.testing.assert_allclose(dm.met_of(d["cands"], d["mask"]), d["met_pf"], atol=2e-2)


def test_truncation_keeps_the_hardest(pu_file):
    full = dm.load(pu_file, max_cands=4096)
    cut = dm.load(pu_file, max_cands=50)
    assert (cut["n_dropped"] == np.maximum(full["n_cands"] - 50, 0)).all()
    for i in range(len(cut["mask"])):
        pt_full = np.sort(np.hypot(*full["cands"][i, full["mask"][i], :2].T))[::-1][:50]
        pt_cut = np.sort(np.hypot(*cut["cands"][i, cut["mask"][i], :2].T))[::-1]
        np.testing.assert_allclose(pt_cut, pt_full, rtol=1e-6)


def test_target_v_by_hand():
    gen = np.array([[30.0, 40.0]])
    reco = np.array([[0.0, 20.0]])
    np.testing.assert_allclose(dm.target_v(gen, reco), [[1.5, 1.0]])


def test_bad_inputs(pu_file, tmp_path):
    with pytest.raises(UserError, match="lacks branch"):
        dm.load(pu_file, mapping={"PFCand_px": "PFCand_nothing"})
    with pytest.raises(UserError, match="max_cands"):
        dm.load(pu_file, max_cands=0)
    bad = tmp_path / "not_root.root"
    bad.write_text("hello")
    with pytest.raises(UserError, match="not a readable ROOT file"):
        dm.load(str(bad))
