"""Schemas: the toolkit's files, a real CMS NanoAOD and PFNano-style files, read in inference mode
(no generator truth), with NanoAOD object identification and clear errors."""

import os

import awkward as ak
import numpy as np
import pytest
import uproot

from data import ditau, lgatr, schemas
from data.errors import UserError

NANO = os.path.join(os.path.dirname(__file__), "files", "nanoAOD_2015_CMS_Open_Data_ttbar.root")
# working points under which the real file has one selected event per model (files/README.md)
TPMT_LOOSE = schemas.WorkingPoints(tau_id="none", electron_id="none")
LGATR_LOOSE = schemas.WorkingPoints(electron_id="none", jet_id="none", btag="0")


def _rewrite(src, dst, *, drop=(), add=None):
    """Copy the Events tree of `src` to `dst` without the branches `drop`, plus `add`."""
    arrays = uproot.open(src)["Events"].arrays(library="ak")
    cols = {f: arrays[f] for f in arrays.fields if f not in drop and not f.startswith("n")}
    cols.update(add or {})
    with uproot.recreate(dst) as f:
        f["Events"] = cols
    return str(dst)


def _as_nanoaod(own, dst, *, pfnano=False):
    """An own di-tau file under NanoAOD names: run / lumi numbers, ID branches that every object
    passes, no truth and no toolkit PF candidates (PFNano tables instead when `pfnano`)."""
    a = uproot.open(own)["Events"].arrays(library="ak")
    n = len(a)
    add = {
        "run": np.ones(n, np.int32),
        "luminosityBlock": np.ones(n, np.int32),
        "Tau_idDeepTau2017v2p1VSjet": ak.values_astype(a["Tau_pt"] * 0 + 255, np.uint8),
        "Muon_mediumId": a["Muon_pt"] > 0,
        "Muon_pfRelIso04_all": a["Muon_pt"] * 0,
        "Electron_mvaFall17V2Iso_WP90": a["Electron_pt"] > 0,
        "Jet_jetId": ak.values_astype(a["Jet_pt"] * 0 + 6, np.int32),
        # the generator's decay modes 3, 4, 12-14 are reconstructed by HPS as 2 and 11
        "Tau_decayMode": ak.where(
            a["Tau_decayMode"] >= 11,
            11,
            ak.where((a["Tau_decayMode"] >= 3) & (a["Tau_decayMode"] <= 4), 2, a["Tau_decayMode"]),
        ),
    }
    if pfnano:  # one "jet" per tau holding exactly the tau's own decay products
        add.update({f"PFCands_{f}": a[f"PFCand_{f}"] for f in ("pt", "eta", "phi", "charge")})
        add["PFCands_pdgId"] = a["PFCand_pdgId"]
        add["JetPFCands_jetIdx"] = a["PFCand_tauIdx"]
        add["JetPFCands_pFCandsIdx"] = ak.local_index(a["PFCand_pt"])
        add["Tau_jetIdx"] = ak.local_index(a["Tau_pt"])
    drop = {f for f in a.fields if f.startswith(("PFCand_", "Gen")) or "genTauIdx" in f}
    return _rewrite(own, dst, drop=drop | {"process"}, add=add)


def test_detect_schemas(h125_sample, tmp_path):
    assert schemas.detect(schemas.keys_of(NANO)) == "nanoaod"
    assert schemas.detect(schemas.keys_of(h125_sample[1])) == "hepformers"
    pf = _as_nanoaod(h125_sample[1], tmp_path / "pf.root", pfnano=True)
    assert schemas.detect(schemas.keys_of(pf)) == "pfnano"
    with pytest.raises(UserError, match="unknown schema 'nano'"):
        schemas.resolve("nano", (), NANO)


def test_real_nanoaod_ditau_inference_mode():
    d = ditau.load(NANO, working_points=TPMT_LOOSE)
    assert d["meta"]["schema"] == "nanoaod" and d["targets"] is None
    np.testing.assert_array_equal(d["meta"]["entry"], [155])
    assert d["meta"]["channel"].tolist() == [ditau.CHANNELS["mu-tauh"]]
    assert not d["inputs"]["product_mask"].any()  # NanoAOD keeps no PF candidates
    for x in d["inputs"].values():
        assert np.isfinite(np.asarray(x, np.float64)).all()
    legs = uproot.open(NANO)["Events"].arrays(["Muon_pt"], entry_start=155)
    assert d["meta"]["legs"]["pt"][0, 0] == pytest.approx(max(legs["Muon_pt"][0]))


def test_real_nanoaod_default_selection_finds_no_tau_pair(capsys):
    # the file's tau candidates next to leptons are the leptons themselves (files/README.md)
    with pytest.raises(UserError, match="no event"):
        ditau.load(NANO)
    assert "Muon_mediumId is False for every object" in capsys.readouterr().out


def test_real_nanoaod_lgatr_inference_mode():
    d = lgatr.load(NANO, working_points=LGATR_LOOSE)
    assert d["meta"]["schema"] == "nanoaod" and d["targets"] is None
    np.testing.assert_array_equal(d["meta"]["entry"], [10])
    assert d["meta"]["b_pairing"].tolist() == [lgatr.B_PAIRING_BTAG]
    assert np.isfinite(d["inputs"]["fourvectors"]).all() and d["inputs"]["mask"][:, :5].all()


def test_missing_branch_names_branches_and_fitting_schema(tmp_path):
    with pytest.raises(UserError) as err:
        ditau.load(NANO, schema="hepformers")
    assert "PFCand_pt" in str(err.value) and "looks like --schema nanoaod" in str(err.value)
    cut = _rewrite(NANO, tmp_path / "cut.root", drop={"MET_covXX", "Jet_jetId"})
    with pytest.raises(UserError) as err:
        lgatr.load(cut, working_points=LGATR_LOOSE)
    assert "MET_covXX" in str(err.value) and "--schema nanoaod" in str(err.value)
    with pytest.raises(UserError, match="Jet_jetId"):
        lgatr.load(cut, working_points=schemas.WorkingPoints(), mapping={"MET_covXX": "MET_covYY"})
    with pytest.raises(UserError, match="GenTau_pt"):
        ditau.load(NANO, working_points=TPMT_LOOSE, require_truth=True)


def test_nanoaod_path_selects_the_same_pairs_as_own_files(h125_sample, tmp_path):
    own = ditau.load(h125_sample[1])
    nano = ditau.load(_as_nanoaod(h125_sample[1], tmp_path / "nano.root"))
    assert nano["meta"]["schema"] == "nanoaod" and nano["targets"] is None
    np.testing.assert_array_equal(nano["meta"]["entry"], own["meta"]["entry"])
    np.testing.assert_array_equal(nano["meta"]["channel"], own["meta"]["channel"])
    for k in ("legs", "jets", "met", "leg_kinematics"):
        np.testing.assert_allclose(nano["inputs"][k], own["inputs"][k], rtol=1e-6)
    assert own["inputs"]["product_mask"].any() and not nano["inputs"]["product_mask"].any()


def test_pfnano_products_are_the_tau_candidates_in_the_signal_region(h125_sample, tmp_path):
    own = ditau.load(h125_sample[1])
    pf = ditau.load(_as_nanoaod(h125_sample[1], tmp_path / "pf.root", pfnano=True))
    assert pf["meta"]["schema"] == "pfnano"
    np.testing.assert_array_equal(pf["meta"]["entry"], own["meta"]["entry"])
    n_own, n_pf = own["inputs"]["product_mask"].sum(1), pf["inputs"]["product_mask"].sum(1)
    assert np.all(n_pf <= n_own) and n_pf.sum() > 0.8 * n_own.sum()
    # every PFNano product is one of the tau's own products (same features, same leg)
    same = n_pf == n_own
    assert same.mean() > 0.5
    np.testing.assert_allclose(pf["inputs"]["products"][same], own["inputs"]["products"][same])


def test_tau_id_bits_and_levels():
    a = {
        "Tau_pt": ak.Array([[30.0, 30.0, 30.0]]),
        "Tau_eta": ak.Array([[0.0, 0.0, 0.0]]),
        "Tau_decayMode": ak.Array([[0, 5, 10]]),
        "Tau_idDeepTau2017v2p1VSjet": ak.Array([[0b11111, 0b11111, 0b1111]]),
    }
    keys = set(a)
    m = schemas.object_masks(a, keys, schemas.WorkingPoints(), ("Tau",))["Tau"]
    assert m.tolist() == [[True, False, False]]  # medium = bit 4; decay mode 5 is not HPS 1/3-prong
    a["Tau_idDeepTau2018v2p5VSjet"] = ak.Array([[5, 8, 4]])  # v12: levels, 5 = Medium
    m = schemas.object_masks(a, set(a), schemas.WorkingPoints(), ("Tau",))["Tau"]
    assert m.tolist() == [[True, False, False]]
    m = schemas.object_masks(a, set(a), schemas.WorkingPoints(tau_id="loose"), ("Tau",))["Tau"]
    assert m.tolist() == [[True, False, True]]


def test_working_point_errors():
    with pytest.raises(UserError, match="unknown tau_id working point 'medum'"):
        schemas.WorkingPoints(tau_id="medum")
    with pytest.raises(UserError, match="btag"):
        schemas.WorkingPoints(btag="strong")
    assert schemas.WorkingPoints(btag="0.5").btag == "0.5"
    with pytest.raises(UserError, match="CANONICAL=NAME"):
        schemas.parse_mapping(["MET_pt"])
    assert schemas.parse_mapping(["MET_pt=PuppiMET_pt"]) == {"MET_pt": "PuppiMET_pt"}
