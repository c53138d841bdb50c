"""FCC-ee Z-pole samples (fcctau) and the ParTau loader: jets, truth, features, targets."""

import os
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
import uproot

from data import io, partau
from data.detector import cld
from data.errors import UserError
from data.generate import fcctau
from data.generate.ditau_output import to_root_columns

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fcc")
    out = {}
    for process, n in (("ztautau", 300), ("zqq", 150)):
        cols = fcctau.generate(process, n, 3, batch_size=150)
        out[process] = str(folder / f"{process}.root")
        io.write_events(out[process], to_root_columns(cols))
    return out


def _read(path):
    return uproot.open(path)["Events"].arrays(library="ak")


def test_jets_are_their_candidates(files):
    """Each written jet is the four-vector sum of its candidates (ee_genkt E-scheme), and
    candidates are grouped by jet in decreasing pT."""
    for path in files.values():
        a = _read(path)
        assert ak.all(a.nJet > 0)
        assert ak.all(a.Jet_pt > 0) and ak.all(abs(a.Jet_eta) < fcctau.JET_ETA_MAX)
        pt, eta, phi, m = (a[f"PFCand_{k}"] for k in ("pt", "eta", "phi", "mass"))
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
        for i in range(20):
            idx = ak.to_numpy(a.PFCand_jetIdx[i])
            for j in range(int(a.nJet[i])):
                sel = idx == j
                sx = float(np.sum(ak.to_numpy(px[i])[sel]))
                sy = float(np.sum(ak.to_numpy(py[i])[sel]))
                jet_pt = float(a.Jet_pt[i][j])
                assert np.hypot(sx, sy) == pytest.approx(jet_pt, rel=1e-5)
                assert float(np.sum(ak.to_numpy(e[i])[sel])) > 0
                assert sel.sum() == int(a.Jet_nConstituents[i][j])
            assert np.all(np.diff(idx) >= 0)


def test_tau_truth(files):
    """Z -> tautau: opposite-charge taus, hadronic ones matched to jets with a visible pT close
    to the jet pT; Z -> qq jets carry no tau."""
    a = _read(files["ztautau"])
    assert ak.all(a.nGenTau == 2)
    assert ak.all(ak.prod(a.GenTau_charge, axis=1) == -1)
    dm = ak.to_numpy(ak.flatten(a.Jet_genTauDecayMode))
    had = (dm >= 0) & (dm < 16)
    assert 0.5 < had.mean() < 0.85
    ratio = ak.to_numpy(ak.flatten(a.Jet_pt))[had] / ak.to_numpy(ak.flatten(a.Jet_genTauVisPt))[had]
    assert 0.95 < np.median(ratio) < 1.05
    # 1-prong modes dominate, as in the PDG (h pi0 is the largest hadronic mode)
    classes = partau.decay_mode_class(dm[had])
    counts = np.bincount(classes, minlength=6)
    assert counts.argmax() == 1 and counts[3] > 0
    matched = ak.to_numpy(ak.flatten(a.GenTau_jetIdx))
    code = ak.to_numpy(ak.flatten(a.GenTau_decayMode))
    assert (matched[code < 16] >= 0).mean() > 0.85
    q = _read(files["zqq"])
    assert ak.all(q.Jet_genTauDecayMode == -1) and ak.all(q.nGenTau == 0)


def test_same_seed_same_sample():
    a = fcctau.generate("zqq", 60, 5, batch_size=60)
    b = fcctau.generate("zqq", 60, 5, batch_size=60)
    for k in ("pt", "dxy", "jetIdx"):
        np.testing.assert_array_equal(a["PFCand"][k], b["PFCand"][k])


def test_full_decay_mode_codes():
    np.testing.assert_array_equal(
        fcctau.full_decay_mode([1, 1, 1, 3, 3, 2, 5, 0], [0, 1, 6, 0, 2, 0, 0, 0]),
        [0, 1, 4, 10, 12, 5, 15, 16],
    )
    np.testing.assert_array_equal(
        partau.decay_mode_class([0, 1, 2, 4, 5, 6, 10, 11, 14, 15, 16, -1]),
        [0, 1, 2, 2, 3, 4, 3, 4, 4, 5, -1, -1],
    )


def test_impact_parameters_hand_computed():
    """A track from (1, 0, 2) mm with p = (0, 1, 1) GeV: dxy = -dx py / pT = -1 mm, dz = 2 mm."""
    dxy, dz = cld.impact_parameters(
        np.array([[0.0, 1.0, 1.0, 2.0]]), np.array([[1.0, 0.0, 2.0]]), np.zeros((1, 3))
    )
    assert dxy[0] == pytest.approx(-1.0) and dz[0] == pytest.approx(2.0)


def test_loader_features_and_targets(files):
    d = partau.load([files["ztautau"], files["zqq"]])
    x, m = d["inputs"]["features"], d["inputs"]["mask"]
    assert x.shape[1:] == (partau.MAX_CANDS, len(partau.FEATURES))
    assert (x[~m] == 0).all() and (d["inputs"]["fourvectors"][~m] == 0).all()
    assert (m.sum(1) >= 1).all()
    # the one-hot candidate types are exclusive; log(pT) decreases along the candidates
    assert (x[m][:, 8:13].sum(1) == 1).all()
    lp = np.where(m, x[..., 2], -1e9)
    assert (np.diff(lp, axis=1)[m[:, 1:]] <= 1e-6).all()
    # hand check of one candidate against the file
    a = _read(files["zqq"])
    jet_pt, jet_eta = float(a.Jet_pt[0][0]), float(a.Jet_eta[0][0])
    sel = ak.to_numpy(a.PFCand_jetIdx[0]) == 0
    cpt = ak.to_numpy(a.PFCand_pt[0])[sel][0]
    ceta = ak.to_numpy(a.PFCand_eta[0])[sel][0]
    q = partau.load(files["zqq"])
    row = np.nonzero((q["jets"]["entry"] == 0) & (q["jets"]["index"] == 0))[0][0]
    x_q = q["inputs"]["features"]
    assert x_q[row, 0, 0] == pytest.approx(abs(ceta - jet_eta), rel=1e-5)
    assert x_q[row, 0, 4] == pytest.approx(np.log(cpt / jet_pt), rel=1e-5, abs=1e-6)
    t = d["targets"]
    tau = t["tau_id"] == 1
    assert tau.any() and (~tau).any()
    assert set(np.unique(t["charge"][tau])) <= {0.0, 1.0} and (t["charge"][~tau] == -1).all()
    assert (t["decay_mode"][~tau] == -1).all() and (t["decay_mode"][tau] >= 0).all()
    kin = t["kinematics"]
    assert (kin[~tau] == 0).all() and (kin[tau, 5] == 1).all()
    np.testing.assert_allclose(kin[tau, 2] ** 2 + kin[tau, 3] ** 2, 1.0, rtol=1e-5)
    assert np.median(kin[tau, 0]) == pytest.approx(0.0, abs=0.05)  # pT_gen ~ pT_jet
    # leptonic tau jets are dropped unless asked for
    n_lep = len(partau.load(files["ztautau"], keep_leptonic=True)["jets"]["pt"])
    assert n_lep > len(partau.load(files["ztautau"])["jets"]["pt"])
    assert "targets" not in partau.load(files["zqq"], with_truth=False)


def test_class_weights_and_split():
    rng = np.random.default_rng(0)
    is_tau = rng.random(4000) < 0.3
    p = np.where(is_tau, rng.uniform(5, 45, 4000), rng.exponential(10, 4000) + 5)
    theta = rng.uniform(0.2, 2.9, 4000)
    w = partau.class_weights(is_tau, p, theta)
    assert w.mean() == pytest.approx(1.0, rel=1e-5)
    assert w[is_tau].sum() == pytest.approx(w[~is_tau].sum(), rel=1e-4)
    # the weighted background p spectrum follows the signal's
    assert np.average(p[~is_tau], weights=w[~is_tau]) == pytest.approx(p[is_tau].mean(), rel=0.1)
    u = partau.split_of(np.arange(100_000))
    assert ((u >= 0) & (u < 1)).all()
    assert np.mean(u < 0.7) == pytest.approx(0.7, abs=0.01)


def test_loader_bad_inputs(tmp_path):
    cols = fcctau.generate("zqq", 20, 7, batch_size=20)
    cols["PFCand"]["jetIdx"] = cols["PFCand"]["jetIdx"] + 50
    path = str(tmp_path / "bad.root")
    io.write_events(path, to_root_columns(cols))
    with pytest.raises(UserError, match="point outside"):
        partau.load(path)
    del cols["PFCand"]
    io.write_events(path, to_root_columns(cols))
    with pytest.raises(UserError, match="lacks branch PFCand_pt"):
        partau.load(path)


def test_cli_fcctau(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "data.generate", "fcctau", "--process", "zz"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 2 and "unknown fcctau process 'zz'" in res.stderr
    out = str(tmp_path / "q.root")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "data.generate",
            "fcctau",
            "--process",
            "zqq",
            "--events",
            "20",
            "--out",
            out,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert len(partau.load(out)["jets"]["pt"]) > 20
