"""ScoutTau loader (data.scouttau): hand-made L1 events, truth matching and a generated file."""

import math

import awkward as ak
import numpy as np
import pytest

from data import io
from data import scouttau as st
from data.errors import UserError
from data.generate.tau_decays import ELECTRON, HADRONIC
from data.reco.clue import clue

CAND_FIELDS = ("pt", "eta", "phi", "charge", "pdgId", "z0", "puppiWeight", "fromPU")
CAND_TYPES = (np.float32, np.float32, np.float32, np.int8, np.int16, np.float32, np.float32, bool)
TAU_FIELDS = ("pt", "eta", "phi", "mass", "charge", "kind", "decayMode")
TAU_TYPES = (np.float32,) * 4 + (np.int8,) * 3


def _columns(events):
    """events: list of dicts with cands [(pt, eta, phi, q, pdg, z0, w, pu)], taus [(pt, eta,
    phi, q, kind, dm)] and pv -> the column dict of `data.io.write_events`."""

    def jagged(rows, i, dtype):
        flat = np.array([r[i] for ev in rows for r in ev], dtype)
        return ak.unflatten(flat, [len(ev) for ev in rows])

    cands = [ev["cands"] for ev in events]
    taus = [[(t[0], t[1], t[2], 1.0, *t[3:]) for t in ev.get("taus", [])] for ev in events]
    return {
        "event": np.arange(100, 100 + len(events), dtype=np.int64),
        "PV_z": np.array([ev.get("pv", 0.0) for ev in events], np.float32),
        "L1Cand": {f: jagged(cands, i, t) for i, (f, t) in enumerate(zip(CAND_FIELDS, CAND_TYPES))},
        "GenVisTau": {f: jagged(taus, i, t) for i, (f, t) in enumerate(zip(TAU_FIELDS, TAU_TYPES))},
    }


def _arrays(tmp_path, events, name="hand.root"):
    path = str(tmp_path / name)
    io.write_events(path, _columns(events))
    return path, st.read(path)


def _pion(pt, eta, phi, q=1, z0=0.1, w=1.0, pu=False):
    return (pt, eta, phi, q, 211 * q, z0, w, pu)


def _neutral(pt, eta, phi, pdg=22, w=1.0, pu=False):
    return (pt, eta, phi, 0, pdg, 0.0, w, pu)


# tau A around (0.5, 1.0); tau B across phi = pi; a lone soft photon far away (an outlier)
TAU_A = [_pion(8.0, 0.5, 1.0, z0=0.3), _neutral(3.0, 0.55, 1.05), _pion(2.0, 0.45, 0.95, q=-1)]
TAU_B = [_pion(6.0, -1.0, 3.10, q=-1), _neutral(2.5, -1.02, -3.12, pdg=130, pu=True)]
LONE = [_neutral(1.5, 2.0, -1.5)]
EVENT = {"cands": TAU_A + TAU_B + LONE, "pv": 0.1}


def test_puppi_selection_uses_weighted_pt_and_tracker_acceptance(tmp_path):
    cands = [
        _pion(10.0, 0.0, 0.0, w=0.05),  # 0.5 GeV after PUPPI: dropped
        _neutral(2.0, 0.1, 0.0, w=0.6),  # 1.2 GeV: kept
        _pion(5.0, 2.5, 0.0),  # outside |eta| < 2.4: dropped
        _neutral(1.0, 0.0, 1.0),  # exactly 1 GeV: dropped (> 1 required)
        _pion(3.0, -2.3, 4.0),  # kept, phi wrapped
    ]
    _, arrays = _arrays(tmp_path, [{"cands": cands}])
    p = st.puppi_candidates(arrays)
    np.testing.assert_allclose(p["pt"], [1.2, 3.0], rtol=1e-6)
    np.testing.assert_array_equal(p["index"], [1, 4])
    np.testing.assert_allclose(p["phi"][1], 4.0 - 2 * math.pi, rtol=1e-6)
    assert p["n_events"] == 1 and p["from_pu"].tolist() == [False, False]


def test_clue_finds_two_taus_with_their_constituents_and_axes(tmp_path):
    _, arrays = _arrays(tmp_path, [EVENT])
    p = st.puppi_candidates(arrays)
    c = st.cluster(p)
    assert len(c["pt"]) == 2
    np.testing.assert_array_equal(c["member"], [0, 0, 0, 1, 1, -1])  # lone photon: outlier
    np.testing.assert_allclose(c["pt"], [13.0, 8.5], rtol=1e-6)
    np.testing.assert_allclose(c["eta"][0], (8 * 0.5 + 3 * 0.55 + 2 * 0.45) / 13, rtol=1e-6)
    phi_b = 3.10 + 2.5 * (2 * math.pi - 3.12 - 3.10) / 8.5  # pT-weighted across +-pi
    np.testing.assert_allclose(c["phi"][1], phi_b, rtol=1e-5)
    np.testing.assert_array_equal(c["n_constituents"], [3, 2])


def test_one_clue_call_equals_a_loop_over_events():
    rng = np.random.default_rng(3)
    n = rng.integers(0, 60, 8)
    ev = np.repeat(np.arange(8), n)
    p = {
        "pt": rng.exponential(2.0, n.sum()) + 1,
        "eta": rng.uniform(-2.4, 2.4, n.sum()),
        "phi": rng.uniform(-math.pi, math.pi, n.sum()),
        "event": ev,
        "n_events": 8,
    }
    label, _ = st._clue(p, dc=0.3, rhoc=3.0, outlier_factor=2.0)
    for e in range(8):
        s = ev == e
        ref = clue(np.stack([p["eta"][s], p["phi"][s]], 1), p["pt"][s], dc=0.3, rhoc=3.0,
                   outlier_factor=2.0, periodic=(None, 2 * math.pi))  # fmt: skip
        got = label[s]
        assert np.array_equal(got < 0, ref < 0)
        if (got >= 0).any():
            assert np.array_equal(got[got >= 0] - got[got >= 0].min(), ref[ref >= 0])


def test_features_padding_and_mask_by_hand(tmp_path):
    path, _ = _arrays(tmp_path, [EVENT])
    d = st.load(path, max_constituents=2)
    assert d["constituents"].shape == (2, 2, len(st.FEATURES)) and d["n_events"] == 1
    np.testing.assert_array_equal(d["mask"], [[True, True], [True, True]])
    np.testing.assert_array_equal(d["cands"]["n_constituents"], [3, 2])  # 3rd of A dropped
    # the neutral hadron of tau B, across phi = pi from the axis
    phi_b = d["cands"]["phi"][1]
    dphi = -3.12 - phi_b + 2 * math.pi
    eta_b = (6 * -1.0 + 2.5 * -1.02) / 8.5
    want = [math.log(2.5), 2.5 / 8.5, -1.02 - eta_b, dphi, 0.0, 0.0, 0, 1, 0, 0, 0]
    want += [math.log(8.5), 0.0, 0.0]  # candidate pT; nothing else within 0.4
    np.testing.assert_allclose(d["constituents"][1, 1], want, rtol=1e-5, atol=1e-6)
    assert abs(dphi) < 0.05
    lead_a = d["constituents"][0, 0]
    np.testing.assert_allclose(lead_a[[0, 1, 4, 5]], [math.log(8.0), 8 / 13, 0.2, 1], rtol=1e-5)
    np.testing.assert_allclose(lead_a[6:], [1, 0, 0, 0, 0, math.log(13.0), 0, 0], rtol=1e-6)
    np.testing.assert_array_equal(d["constituent_pu"], [[False, False], [False, True]])
    d = st.load(path, max_constituents=4)
    np.testing.assert_array_equal(d["mask"].sum(1), [3, 2])
    assert not d["constituents"][~d["mask"]].any()  # padding is zero
    np.testing.assert_allclose(d["constituents"][0, :3, 0], np.log([8.0, 3.0, 2.0]), rtol=1e-6)
    np.testing.assert_array_equal(d["cands"]["event_number"], [100, 100])


def test_isolation_counts_other_clusters_within_0p4_across_phi_pi(tmp_path):
    # two CLUE clusters 0.293 apart across phi = pi (each a seed: 0.293 > dc), a third far away
    event = {"cands": [_pion(10.0, 0.0, 3.0), _pion(4.0, 0.0, -2.99), _pion(5.0, 1.5, 0.0)]}
    path, _ = _arrays(tmp_path, [event])
    d = st.load(path)
    np.testing.assert_allclose(d["cands"]["pt"], [10.0, 5.0, 4.0], rtol=1e-6)
    iso = d["constituents"][:, 0, -2:]
    np.testing.assert_allclose(iso[:, 0], [0.4, 0.0, 2.5], rtol=1e-6)
    np.testing.assert_allclose(iso[:, 1], np.log1p([1, 0, 1]), rtol=1e-6)
    np.testing.assert_allclose(d["constituents"][:, 0, -3], np.log([10.0, 5.0, 4.0]), rtol=1e-6)


def test_truth_matching_closest_within_0p2(tmp_path):
    taus = [
        (12.0, 0.52, 1.02, 1, HADRONIC, 1),  # A
        (8.0, -1.0, -3.13, -1, HADRONIC, 0),  # B, across phi = pi
        (9.0, 0.5, 1.0, 1, ELECTRON, -1),  # leptonic: not a target
        (7.0, 1.8, -2.0, 1, HADRONIC, 10),  # far from everything
    ]
    path, _ = _arrays(tmp_path, [{**EVENT, "taus": taus}, {"cands": TAU_A, "pv": 0.0}])
    d = st.load(path)
    np.testing.assert_array_equal(d["cands"]["event"], [0, 0, 1])
    np.testing.assert_array_equal(d["is_tau"], [True, True, False])
    np.testing.assert_array_equal(d["tau_charge"], [1, -1, 0])
    np.testing.assert_allclose(d["tau_vis_pt"], [12.0, 8.0, 0.0])
    np.testing.assert_array_equal(d["decay_mode"], [1, 0, -1])
    np.testing.assert_array_equal(d["gen_taus"]["matched"], [0, 1, -1])
    np.testing.assert_allclose(d["gen_taus"]["pt"], [12.0, 8.0, 7.0])
    # closest first, one object each; candidates of another event never match
    cands = {"eta": np.array([0.15, 0.05, 0.0]), "phi": np.zeros(3), "event": np.array([0, 0, 1])}
    taus = {"eta": np.array([0.0, 0.12, 0.5]), "phi": np.zeros(3), "event": np.array([0, 0, 0])}
    t2c, c2t = st.match_taus(cands, taus)
    np.testing.assert_array_equal(t2c, [1, 0, -1])
    np.testing.assert_array_equal(c2t, [1, 0, -1])
    t2c, _ = st.match_taus(cands, {k: v[:1] for k, v in taus.items()})
    np.testing.assert_array_equal(t2c, [1])  # the closer of two candidates within 0.2


def test_antikt_option_and_no_truth(tmp_path):
    path, _ = _arrays(tmp_path, [EVENT])
    d = st.load(path, clustering="antikt", with_truth=False)
    assert "is_tau" not in d and "constituent_pu" not in d
    np.testing.assert_allclose(d["cands"]["pt"], [13.0, 8.5], rtol=2e-3)
    np.testing.assert_array_equal(d["mask"].sum(1), [3, 2])
    d = st.load(path, clustering="antikt", radius=0.05, min_pt=2.2)
    assert len(d["cands"]["pt"]) == 4  # small cones split the taus


def test_bad_inputs(tmp_path):
    path, arrays = _arrays(tmp_path, [EVENT])
    p = st.puppi_candidates(arrays)
    with pytest.raises(UserError, match="unknown clustering 'dbscan'"):
        st.load(path, clustering="dbscan")
    with pytest.raises(UserError, match="dc must be a positive"):
        st.cluster(p, dc=-0.1)
    with pytest.raises(UserError, match="radius"):
        st.load(path, clustering="antikt", radius=0)
    with pytest.raises(UserError, match="unknown clustering parameter.*rho_c"):
        st.load(path, rho_c=3.0)
    with pytest.raises(UserError, match="max_constituents"):
        st.load(path, max_constituents=0)
    bad = tmp_path / "bad.root"
    bad.write_text("not root")
    with pytest.raises(UserError, match="not a readable ROOT file"):
        st.load(str(bad))
    cols = _columns([EVENT])
    del cols["PV_z"]
    io.write_events(str(tmp_path / "nopv.root"), cols)
    with pytest.raises(UserError, match="lacks branch PV_z"):
        st.load(str(tmp_path / "nopv.root"))


@pytest.mark.parametrize("clustering", ["clue", "antikt"])
def test_generated_file_shapes(scouttau_file, clustering):
    d = st.load(scouttau_file, clustering=clustering)
    n = len(d["cands"]["pt"])
    assert d["n_events"] == 8 and n > 0
    assert d["constituents"].shape == (n, st.MAX_CONSTITUENTS, len(st.FEATURES))
    assert d["mask"].shape == d["constituent_pu"].shape == (n, st.MAX_CONSTITUENTS)
    assert np.isfinite(d["constituents"]).all()
    np.testing.assert_array_equal(d["mask"].sum(1), np.minimum(d["cands"]["n_constituents"], 16))
    assert (d["cands"]["pt"] > st.MIN_CAND_PT).all() and (np.abs(d["cands"]["eta"]) < 2.4).all()
    for k in ("is_tau", "tau_charge", "tau_vis_pt", "decay_mode"):
        assert d[k].shape == (n,)
    g = d["gen_taus"]
    matched = g["matched"][g["matched"] >= 0]
    assert d["is_tau"].sum() == len(matched) and d["is_tau"][matched].all()
    np.testing.assert_allclose(d["tau_vis_pt"][matched], g["pt"][g["matched"] >= 0])
    assert set(np.unique(d["tau_charge"][d["is_tau"]])) <= {-1, 1}
    if clustering == "clue":  # scalar pT sums: the kept fractions add up to at most 1
        assert (d["constituents"][..., 1].sum(1) <= 1 + 1e-5).all()


def test_pf_inputs_keep_taus_that_puppi_drops(tmp_path):
    # a tau from a vertex 2 cm from the (misidentified) PV: PUPPI weights its tracks to 0
    tau = [_pion(8.0, 0.3, 0.5, z0=2.0, w=0.0), _pion(4.0, 0.35, 0.5, q=-1, z0=2.1, w=0.0),
           _neutral(3.5, 0.3, 0.55, w=0.2), _neutral(2.0, 0.3, 0.45)]  # fmt: skip
    path, _ = _arrays(
        tmp_path, [{"cands": tau, "pv": 0.0, "taus": [(15.0, 0.31, 0.5, 1, HADRONIC, 1)]}]
    )
    assert len(st.load(path)["cands"]["pt"]) == 0
    d = st.load(path, inputs="pf")
    # the 2 GeV photon is below PF_MIN_PT; the rest at their own pT
    np.testing.assert_allclose(d["cands"]["pt"], [15.5], rtol=1e-6)
    np.testing.assert_allclose(d["cands"]["vz"], [2.0], rtol=1e-6)
    np.testing.assert_allclose(d["constituents"][0, :3, 4], [0.0, 0.1, 0.0], atol=1e-6)  # dz
    assert d["is_tau"].tolist() == [True]
    with pytest.raises(UserError, match="inputs"):
        st.load(path, inputs="calo")
