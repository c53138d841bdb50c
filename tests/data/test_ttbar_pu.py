"""Dileptonic ttbar with pileup (data/generate/ttbar_pu.py), the Phase-2 particle flow
(data/detector/phase2.py) and the ttbar-pu CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest
import uproot

from data.detector import phase2
from data.generate import pileup, ttbar_pu
from data.generate.batches import subseed
from data.generate.pythia import NEUTRINOS, flatten_batch, make_pythia

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# the same library as tests/data/test_pileup.py, in the same session cache (generated once)
LIB_EVENTS, LIB_SEED = 30, 5
N_EVENTS, SEED, MU = 4, 3, 20


def shared_cache(tmp_path_factory):
    return str(tmp_path_factory.getbasetemp() / "minbias-cache")


def _gen(cache, mu=MU, seed=SEED):
    return ttbar_pu.generate(
        N_EVENTS, seed, mu=mu, library_events=LIB_EVENTS, library_seed=LIB_SEED, cache=cache
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = shared_cache(tmp_path_factory)
    pileup.load_library(path, LIB_EVENTS, LIB_SEED, progress=False)
    return path


@pytest.fixture(scope="module")
def sample(cache):
    return _gen(cache)


def _split(c, field):
    off = np.concatenate([[0], np.cumsum(c["_counts"])])
    return [c[field][a:b] for a, b in zip(off[:-1], off[1:])]


# --- the sample ----------------------------------------------------------------------------


def test_columns_consistent(sample):
    n = N_EVENTS
    for k in ("event", "nPU", "PV_z", "GenPV_z", "GenMET_pt", "GenMET_phi", "PFMET_pt",
              "PFMET_phi", "PuppiMET_pt", "PuppiMET_phi"):  # fmt: skip
        assert sample[k].shape == (n,), k
        assert np.all(np.isfinite(sample[k])), k
    assert len(np.unique(sample["event"])) == n
    c = sample["PFCand"]
    assert c["_counts"].shape == (n,) and c["_counts"].sum() > 0
    for f in ("px", "py", "eta", "charge", "pdgId", "vz", "isRecoPU", "fromPU", "puppiWeight"):
        assert len(c[f]) == c["_counts"].sum(), f
        if c[f].dtype.kind == "f":
            assert np.all(np.isfinite(c[f])), f
    assert np.all(sample["nPU"] >= 0) and sample["nPU"].mean() > 5
    # pileup candidates are there and come from the overlaid interactions
    fpu = np.array([x.sum() for x in _split(c, "fromPU")])
    assert np.all((fpu > 0) == (sample["nPU"] > 0))


def test_gen_met_is_hard_neutrino_sum(sample):
    """GenMET = vector sum of the hard scatter's final-state neutrinos (same Pythia stream)."""
    assert np.all(sample["GenMET_pt"] > 0)
    py = make_pythia(ttbar_pu.SETTINGS, subseed(SEED, 0, 0), ecm=pileup.ECM)
    rec = flatten_batch(py.nextBatch(N_EVENTS, "skip"))
    nu = rec.is_final & np.isin(np.abs(rec.id), NEUTRINOS)
    assert np.all(np.bincount(rec.event[nu], minlength=N_EVENTS) >= 2)  # two W -> l nu
    mx = np.bincount(rec.event[nu], weights=rec.p4[nu, 0], minlength=N_EVENTS)
    my = np.bincount(rec.event[nu], weights=rec.p4[nu, 1], minlength=N_EVENTS)
    np.testing.assert_allclose(sample["GenMET_pt"], np.hypot(mx, my), rtol=1e-5)
    np.testing.assert_allclose(sample["GenMET_phi"], np.arctan2(my, mx), atol=1e-5)


def test_candidates(sample):
    c = sample["PFCand"]
    pt = np.hypot(c["px"], c["py"])
    ch = c["charge"] != 0
    assert ch.sum() > 0 and (~ch).sum() > 0
    # tracks: inside the tracker, above its threshold (pT smeared by < 2%)
    assert np.all(np.abs(c["eta"][ch]) <= phase2.TRACK_ETA_MAX)  # float32 eta
    assert np.all(pt[ch] > phase2.TRACK_PT_MIN * 0.9)
    assert set(np.unique(c["pdgId"][ch])) <= {211, -211, 11, -11, 13, -13}
    # the sign of a track's code follows its charge (pi+ 211, e- 11, mu+ -13)
    hadron = np.abs(c["pdgId"]) == 211
    assert np.all(np.sign(c["pdgId"][ch & hadron]) == c["charge"][ch & hadron])
    assert np.all(np.sign(c["pdgId"][ch & ~hadron]) == -c["charge"][ch & ~hadron])
    # neutrals: no track z, no charge, calorimeter codes, above the cluster threshold
    assert np.all(c["vz"][~ch] == 0)
    assert set(np.unique(c["pdgId"][~ch])) <= {22, 130, 1, 2}
    assert np.all(pt[~ch] > phase2.NEUTRAL_PT_MIN * (1 - 1e-6))
    assert np.all(np.abs(c["eta"][~ch]) < phase2.CALO_ETA_MAX)
    hf = np.isin(c["pdgId"], (1, 2))
    assert np.all(np.abs(c["eta"][hf]) >= phase2.HF_ETA_MIN)
    assert np.all(np.abs(c["eta"][np.isin(c["pdgId"], (22, 130))]) <= phase2.HF_ETA_MIN)


def test_pileup_flags_and_weights(sample):
    c = sample["PFCand"]
    ch = c["charge"] != 0
    assert not c["isRecoPU"][~ch].any()
    w = c["puppiWeight"]
    assert np.all((w >= 0) & (w <= 1))
    np.testing.assert_array_equal(w[ch], 1.0 - c["isRecoPU"][ch])
    # isRecoPU = |vz - PV_z| > 1 mm
    ev = np.repeat(np.arange(N_EVENTS), c["_counts"])
    dz = np.abs(c["vz"] - sample["PV_z"][ev])
    far = dz > phase2.DELTA_Z_CUT
    margin = np.abs(dz - phase2.DELTA_Z_CUT) > 1e-5  # float32 rounding of the written columns
    np.testing.assert_array_equal(c["isRecoPU"][ch & margin], far[ch & margin])
    # most pileup tracks are flagged, most hard-scatter tracks are not
    assert c["isRecoPU"][ch & c["fromPU"]].mean() > 0.7
    assert c["isRecoPU"][ch & ~c["fromPU"]].mean() < 0.3


def test_met_sums(sample):
    c = sample["PFCand"]
    ev = np.repeat(np.arange(N_EVENTS), c["_counts"])
    px, py = c["px"].astype(np.float64), c["py"].astype(np.float64)
    for name, w in (("PFMET", np.ones(len(px))), ("PuppiMET", c["puppiWeight"].astype(np.float64))):
        mx = -np.bincount(ev, weights=w * px, minlength=N_EVENTS)
        my = -np.bincount(ev, weights=w * py, minlength=N_EVENTS)
        np.testing.assert_allclose(sample[f"{name}_pt"], np.hypot(mx, my), rtol=1e-4, atol=2e-3)
        np.testing.assert_allclose(
            np.cos(sample[f"{name}_phi"] - np.arctan2(my, mx)), 1.0, atol=1e-5
        )


def test_primary_vertex_found(sample):
    close = np.abs(sample["PV_z"] - sample["GenPV_z"]) < 0.1  # 1 mm
    assert close.mean() >= 0.75
    assert np.all(np.abs(sample["GenPV_z"]) < pileup.Z_MAX_CM)


def test_seeded(sample, cache):
    again = _gen(cache)
    assert again.keys() == sample.keys()
    for k, v in sample.items():
        if isinstance(v, dict):
            for f in v:
                np.testing.assert_array_equal(again[k][f], v[f], err_msg=f"{k}_{f}")
        else:
            np.testing.assert_array_equal(again[k], v, err_msg=k)


def test_no_pileup(cache):
    cols = _gen(cache, mu=0)
    assert np.all(cols["nPU"] == 0)
    assert not cols["PFCand"]["fromPU"].any()
    assert np.all(cols["GenMET_pt"] > 0)
    c = cols["PFCand"]
    assert c["_counts"].min() > 10
    assert np.all(np.abs(cols["PV_z"] - cols["GenPV_z"]) < 0.1)


# --- the Phase-2 particle flow on hand-made particles -----------------------------------------


def _particles(rows):
    """(pdg, charge, pt, eta, phi) rows -> the dict that `phase2.reconstruct` takes."""
    pdg, q, pt, eta, phi = (np.array(c, np.float64) for c in zip(*rows))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    m = np.where(np.abs(pdg) == 211, 0.1396, np.where(np.abs(pdg) == 130, 0.4976, 0.0))
    return dict(
        px=px,
        py=py,
        pz=pz,
        e=np.sqrt(px**2 + py**2 + pz**2 + m**2),
        vz=np.full(len(pt), 1.5),
        pdg=pdg.astype(np.int64),
        charge=q.astype(np.int8),
        tag=np.arange(len(pt)),
    )


def test_reconstruct_tracks_and_codes():
    n = 400
    kinds = [(211, 1, 211), (-211, -1, -211), (11, -1, 11), (-13, 1, -13)]
    rows = []
    for pdg, q, _ in kinds:
        rows += [(pdg, q, 10.0, 0.3, phi) for phi in np.linspace(-3, 3, n)]
        rows += [(pdg, q, 10.0, 1.8, phi) for phi in np.linspace(-3, 3, n)]
    p = _particles(rows)
    out = phase2.reconstruct(p, np.random.default_rng(0))
    src = out["source"]
    np.testing.assert_array_equal(out["tag"], p["tag"][src])  # extra arrays carried along
    trk = out["charge"] != 0
    for k, (pdg, q, code) in enumerate(kinds):
        for j, (eff, eta) in enumerate(((0.97, 0.3), (0.87, 1.8))):
            block = (src >= (2 * k + j) * n) & (src < (2 * k + j + 1) * n)
            t = block & trk
            assert t.sum() / n == pytest.approx(eff, abs=0.05), (pdg, eta)
            assert np.all(out["pdgId"][t] == code) and np.all(out["charge"][t] == q)
            # a track keeps its direction, its pT is smeared by ~1%, z0 near the true 1.5 cm
            np.testing.assert_allclose(out["eta"][t], eta, rtol=1e-12)
            pt = np.hypot(out["px"][t], out["py"][t])
            assert abs(np.median(pt) / 10.0 - 1) < 0.01 and pt.std() / 10.0 < 0.05
            np.testing.assert_allclose(out["sigma_z"][t], phase2.track_sigma_z(10.0, eta))
            assert np.all(np.abs(out["vz"][t] - 1.5) < 6 * out["sigma_z"][t])
            # a lost track: hadrons and electrons reach the calorimeter, muons are lost
            lost = block & ~trk
            want = {211: 130, 11: 22, 13: None}[abs(pdg)]
            if want is None:
                assert lost.sum() == 0
            else:
                assert np.all(out["pdgId"][lost] == want) and np.all(out["vz"][lost] == 0)


def test_reconstruct_neutrals_and_acceptance():
    rows = [
        (22, 0, 10.0, 0.5, 0.1),  # photon -> 22
        (22, 0, 10.0, 2.7, 0.2),  # HGCAL photon -> 22
        (22, 0, 10.0, 3.5, 0.3),  # HF EM -> 2
        (130, 0, 10.0, 0.5, 0.4),  # K_L -> 130
        (130, 0, 10.0, 4.0, 0.5),  # HF hadron -> 1
        (211, 1, 10.0, 3.2, 0.6),  # pi+ beyond the tracker -> HF hadron, neutral
        (13, -1, 10.0, 3.0, 0.7),  # muon beyond the tracker: dropped
        (22, 0, 10.0, 5.5, 0.8),  # beyond the calorimeters: dropped
        (22, 0, 0.05, 2.0, 0.9),  # far below the 0.5 GeV cluster threshold: dropped
        (130, 0, 0.05, 2.0, 1.0),
    ]
    codes = [22, 22, 2, 130, 1, 1]
    for seed in range(5):
        out = phase2.reconstruct(_particles(rows), np.random.default_rng(seed))
        np.testing.assert_array_equal(out["source"], np.arange(len(codes)))
        np.testing.assert_array_equal(out["pdgId"], codes)
        assert np.all(out["charge"] == 0) and np.all(out["vz"] == 0) and np.all(out["sigma_z"] == 0)
        assert np.all(np.hypot(out["px"], out["py"]) > phase2.NEUTRAL_PT_MIN)


def test_reconstruct_neutral_threshold():
    """Every kept neutral has a (smeared) pT above 0.5 GeV."""
    rng = np.random.default_rng(1)
    n = 2000
    rows = [
        (int(rng.choice([22, 130])), 0, pt, eta, phi)
        for pt, eta, phi in zip(
            rng.uniform(0.1, 2, n), rng.uniform(-4.5, 4.5, n), rng.uniform(-3, 3, n)
        )
    ]
    out = phase2.reconstruct(_particles(rows), rng)
    assert 0 < len(out["px"]) < n
    assert np.all(np.hypot(out["px"], out["py"]) > phase2.NEUTRAL_PT_MIN)


def test_track_sigma_z():
    assert phase2.track_sigma_z(1.0, 0.0) == pytest.approx(10**1.5 * 1e-4, rel=1e-12)
    assert phase2.track_sigma_z(1.0, 0.0) == pytest.approx(0.00316, abs=1e-5)
    assert phase2.track_sigma_z(20.0, 0.0) == pytest.approx(0.2 * 10**1.5 * 1e-4)
    assert phase2.track_sigma_z(1.0, 2.0) == pytest.approx(10 * phase2.track_sigma_z(1.0, 0.0))
    assert phase2.track_sigma_z(0.5, 0.0) > phase2.track_sigma_z(1.0, 0.0)


def test_calo_sigma():
    e = 10.0
    barrel = np.sqrt((0.009 * e) ** 2 + 0.12**2 * e + 0.45**2)
    assert phase2.calo_sigma(e, 0.5, True) == pytest.approx(barrel)
    assert phase2.calo_sigma(e, 0.5, False) == pytest.approx(np.sqrt((0.05 * e) ** 2 + e))
    assert phase2.calo_sigma(e, 3.5, True) == pytest.approx(np.sqrt((0.11 * e) ** 2 + 2.8**2 * e))


def test_primary_vertex():
    # event 0: hard tracks at z = 1.0 cm and softer pileup at -3 cm; event 1: no tracks
    vz = np.array([1.0, 1.002, 0.998, -3.0, -3.01, -2.99, -3.0, 4.0])
    pt = np.array([40.0, 30.0, 20.0, 2.0, 1.5, 1.0, 1.2, 5.0])
    charged = np.array([True] * 7 + [False])
    event = np.array([0] * 7 + [1])
    pv = phase2.primary_vertex(vz, pt, charged, event, 2)
    assert pv[0] == pytest.approx(1.0, abs=2e-3) and pv[1] == 0.0


# --- CLI -----------------------------------------------------------------------------------


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "data.generate", "ttbar-pu", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_writes_file(tmp_path, cache):
    out = str(tmp_path / "pu.root")
    res = _run(
        "--events", "3", "--pileup", "10", "--seed", "2", "--minbias-events", str(LIB_EVENTS),
        "--minbias-seed", str(LIB_SEED), "--cache", cache, "--out", out,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"wrote 3 events to {out}" in res.stdout
    tree = uproot.open(out)["Events"]
    assert tree.num_entries == 3
    want = {"event", "nPU", "PV_z", "GenPV_z", "GenMET_pt", "GenMET_phi", "PFMET_pt", "PFMET_phi",
            "PuppiMET_pt", "PuppiMET_phi", "nPFCand"}  # fmt: skip
    want |= {f"PFCand_{f}" for f in ("px", "py", "eta", "charge", "pdgId", "vz", "isRecoPU",
                                     "fromPU", "puppiWeight")}  # fmt: skip
    assert want <= set(tree.keys())
    a = tree.arrays(["nPU", "nPFCand", "GenMET_pt"], library="np")
    assert np.all(a["nPFCand"] > 0) and np.all(a["GenMET_pt"] > 0)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--pileup", "-1"], ["--pileup must be between 0 and 1000"]),
        (["--minbias-events", "0"], ["--minbias-events must be positive"]),
        (["--out", "/no/such/folder/x.root"], ["cannot write /no/such/folder/x.root"]),
    ],
)
def test_cli_bad_input(args, words, tmp_path):
    res = _run("--events", "3", "--cache", str(tmp_path), *args)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not os.listdir(tmp_path)  # nothing generated before the check
