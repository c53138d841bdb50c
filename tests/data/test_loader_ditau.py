"""`data.ditau.load`: shapes, masks, padding, targets, channel filter, rotation, name mapping."""

import awkward as ak
import numpy as np
import pytest
import uproot

from data import ditau, io
from data.errors import UserError


@pytest.fixture(scope="module")
def h125(h125_sample):
    return ditau.load(h125_sample[1]), uproot.open(h125_sample[1])["Events"].arrays()


@pytest.fixture(scope="module")
def ttbar(ttbar_sample):
    return ditau.load(ttbar_sample[1]), uproot.open(ttbar_sample[1])["Events"].arrays()


def test_shapes_and_masks(h125):
    d, a = h125
    n = len(a)
    x = d["inputs"]
    assert x["legs"].shape == (n, 2, len(ditau.LEG_FEATURES))
    assert x["products"].shape == (n, ditau.MAX_PRODUCTS, len(ditau.PRODUCT_FEATURES))
    assert x["product_mask"].shape == (n, ditau.MAX_PRODUCTS) and x["product_mask"].dtype == bool
    assert x["jets"].shape == (n, ditau.MAX_JETS, len(ditau.JET_FEATURES))
    assert x["jet_mask"].shape == (n, ditau.MAX_JETS)
    assert x["met"].shape == (n, len(ditau.MET_FEATURES))
    assert x["leg_kinematics"].shape == (n, 2, 3)
    assert d["targets"]["tau_pt"].shape == (n, 2) and d["targets"]["m_tautau"].shape == (n,)
    for v in x.values():
        assert np.isfinite(v).all()
    # masks are left-aligned and count the real objects
    n_pf = np.minimum(ak.to_numpy(ak.num(a.PFCand_pt)), ditau.MAX_PRODUCTS)
    np.testing.assert_array_equal(x["product_mask"].sum(1), n_pf)
    assert (np.diff(x["product_mask"].astype(int), axis=1) <= 0).all()
    assert (np.diff(x["jet_mask"].astype(int), axis=1) <= 0).all()
    assert (x["jet_mask"].sum(1) <= ak.to_numpy(a.nJet)).all()


def test_padding_is_zero(h125):
    x = h125[0]["inputs"]
    assert (x["products"][~x["product_mask"]] == 0).all()
    assert (x["jets"][~x["jet_mask"]] == 0).all()
    assert x["product_mask"].any() and not x["product_mask"].all()
    assert not x["jet_mask"].all()


def test_product_leg_index_consistent(h125):
    d, _ = h125
    x = d["inputs"]
    f = ditau.PRODUCT_FEATURES
    leg = x["products"][..., f.index("leg")]
    mask = x["product_mask"]
    assert set(np.unique(leg[mask])) <= {0.0, 1.0}
    hadronic = x["legs"][..., ditau.LEG_FEATURES.index("is_hadronic")]  # (N, 2)
    rows = np.repeat(np.arange(len(leg))[:, None], leg.shape[1], 1)
    assert (hadronic[rows[mask], leg[mask].astype(int)] == 1).all()  # products only of tau_h
    # the products' leg features agree with the legs, and each is nearer its own leg
    prod_eta, prod_dphi = (x["products"][..., f.index(k)] for k in ("eta", "dphi"))
    own = x["leg_kinematics"][rows, leg.astype(int)]  # (N, P, 3): eta, dphi, mass
    other = x["leg_kinematics"][rows, 1 - leg.astype(int)]
    np.testing.assert_allclose(
        (prod_eta - own[..., 0])[mask], x["products"][..., f.index("deta_leg")][mask], atol=1e-5
    )
    dr_own = np.hypot(prod_eta - own[..., 0], ditau.wrap(prod_dphi - own[..., 1]))
    dr_other = np.hypot(prod_eta - other[..., 0], ditau.wrap(prod_dphi - other[..., 1]))
    assert (dr_own[mask] < dr_other[mask]).all()
    assert np.median(dr_own[mask]) < 0.1
    # every tau_h leg has at least one product; e/mu legs have none
    for s in (0, 1):
        has = ((leg == s) & mask).any(1)
        np.testing.assert_array_equal(has, hadronic[:, s] == 1)


def test_targets_genuine_are_gen_tau_pt(h125):
    d, a = h125
    tau_pt = d["targets"]["tau_pt"]
    gen = np.sort(ak.to_numpy(a.GenTau_pt), axis=1)
    np.testing.assert_allclose(np.sort(tau_pt, axis=1), gen, rtol=1e-6)
    np.testing.assert_allclose(d["targets"]["m_tautau"], ak.to_numpy(a.GenDiTau_mass), rtol=1e-5)
    # each target belongs to its own leg: the visible leg carries a fraction of the tau pT
    ratio = d["meta"]["legs"]["pt"] / tau_pt
    assert (ratio > 0.0).all() and np.median(ratio) < 1.0


def test_targets_fakes_are_reco_pt(ttbar):
    d, _ = ttbar
    np.testing.assert_allclose(d["targets"]["tau_pt"], d["meta"]["legs"]["pt"], rtol=1e-6)
    legs = d["meta"]["legs"]
    m = ditau.pair_mass(
        legs["pt"], legs["eta"], legs["phi"], np.full_like(legs["pt"], ditau.TAU_MASS)
    )
    np.testing.assert_allclose(d["targets"]["m_tautau"], m, rtol=1e-5)
    assert (d["meta"]["process"] == ditau.PROCESSES["ttbar"]).all()


def test_channel_filter(h125_sample, h125):
    d_all, a = h125
    for name, code in ditau.CHANNELS.items():
        d = ditau.load(h125_sample[1], channel=name)
        assert (d["meta"]["channel"] == code).all()
        assert len(d["meta"]["channel"]) == (d_all["meta"]["channel"] == code).sum()
        assert len(d["meta"]["channel"]) == (ak.to_numpy(a.channel) == code).sum()
    # channel code of the loader = channel written by the generator (h125: one pair per event)
    np.testing.assert_array_equal(d_all["meta"]["channel"], ak.to_numpy(a.channel))


def test_phi_rotation(h125):
    d, _ = h125
    x, legs = d["inputs"], d["meta"]["legs"]
    dphi = x["legs"][..., ditau.LEG_FEATURES.index("dphi")]
    assert (dphi[:, 0] == 0).all() and (x["leg_kinematics"][:, 0, 1] == 0).all()
    np.testing.assert_allclose(
        dphi[:, 1], ditau.wrap(legs["phi"][:, 1] - legs["phi"][:, 0]), atol=1e-6
    )
    assert (np.abs(x["products"]) <= 1e3).all()
    met_dphi = x["met"][:, ditau.MET_FEATURES.index("dphi")]
    met_phi = np.arctan2(d["meta"]["met_y"], d["meta"]["met_x"])
    np.testing.assert_allclose(np.cos(met_dphi), np.cos(met_phi - legs["phi"][:, 0]), atol=1e-5)
    # the rotated covariance keeps its trace
    trace = d["meta"]["met_cov"][:, 0, 0] + d["meta"]["met_cov"][:, 1, 1]
    cov_r = (
        x["met"][
            :, [ditau.MET_FEATURES.index("cov_par"), ditau.MET_FEATURES.index("cov_perp")]
        ].sum(1)
        * 400.0
    )
    np.testing.assert_allclose(cov_r, trace, rtol=1e-4)


def test_unknown_channel(h125_sample):
    with pytest.raises(UserError, match="unknown channel 'tautau'"):
        ditau.load(h125_sample[1], channel="tautau")


def _rewrite_renamed(src, dst, rename):
    """Copy an Events tree, renaming branches (collections regrouped as NanoAOD zips)."""
    a = uproot.open(src)["Events"].arrays()
    names = [rename.get(k, k) for k in a.fields]
    columns, collections = {}, {}
    for old, new in zip(a.fields, names):
        if old.startswith("n") and f"{old[1:]}_pt" in a.fields:
            continue  # counters are rewritten by uproot
        prefix = new.split("_")[0]
        if a[old].ndim > 1:
            collections.setdefault(prefix, {})[new[len(prefix) + 1 :]] = a[old]
        else:
            columns[new] = ak.to_numpy(a[old])
    io.write_events(dst, {**columns, **collections})


def test_mapping_of_branch_names(tmp_path, h125_sample, h125):
    rename = {"MET_pt": "PuppiMET_pt", "MET_phi": "PuppiMET_phi", "Tau_pt": "Tau_ptCorr"}
    path = str(tmp_path / "renamed.root")
    _rewrite_renamed(h125_sample[1], path, rename)
    with pytest.raises(UserError, match="lacks branch"):
        ditau.load(path)
    d = ditau.load(path, mapping=rename)
    ref = h125[0]
    for k in ref["inputs"]:
        np.testing.assert_array_equal(d["inputs"][k], ref["inputs"][k], err_msg=k)
    np.testing.assert_array_equal(d["targets"]["tau_pt"], ref["targets"]["tau_pt"])
