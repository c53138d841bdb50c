"""Di-tau event generation: selection, tau truth, decay-mode fractions, reproducibility."""

import awkward as ak
import numpy as np
import pytest
import uproot

from data import io
from data.detector import cms
from data.generate import ditau_events
from data.generate import tau_decays as td
from data.generate.ditau import FLAT_MASS_RANGE, PROCESSES, generate, streams
from data.generate.ditau_output import to_root_columns
from data.generate.pythia import ChargeTable, flatten_batch, make_pythia


def _read(path):
    return uproot.open(path)["Events"].arrays(library="ak")


def _check_selection(a, process):
    """Seed-000 selection and channel codes, on the arrays of a written file."""
    n = len(a)
    assert n > 0
    np.testing.assert_array_equal(ak.to_numpy(a.process), PROCESSES[process])
    ch = ak.to_numpy(a.channel)
    n_tau, n_mu, n_e = (ak.to_numpy(a[f"n{c}"]) for c in ("Tau", "Muon", "Electron"))
    np.testing.assert_array_equal(n_tau, np.select([ch == 0], [2], 1))
    np.testing.assert_array_equal(n_mu, ch == 1)
    np.testing.assert_array_equal(n_e, ch == 2)
    assert set(np.unique(ch)) <= {0, 1, 2}
    pt = ak.concatenate([a.Tau_pt, a.Muon_pt, a.Electron_pt], axis=1)
    q = ak.concatenate([a.Tau_charge, a.Muon_charge, a.Electron_charge], axis=1)
    assert ak.all(ak.num(pt) == 2)
    assert ak.all(pt > 20.0)
    assert ak.all(ak.prod(q, axis=1) == -1)  # opposite charges
    assert ak.all(abs(a.Tau_eta) < cms.TAU_ETA_MAX)
    assert ak.all(abs(a.Muon_eta) < cms.LEPTON_ETA_MAX)
    assert ak.all(abs(a.Electron_eta) < cms.LEPTON_ETA_MAX)
    assert ak.all(a.Tau_pt[:, :-1] >= a.Tau_pt[:, 1:])  # pT-ordered
    assert ak.all((a.Tau_decayMode >= 0) & (a.Tau_decayMode != 5))
    assert ak.all((a.PFCand_tauIdx >= 0) & (a.PFCand_tauIdx < a.nTau))
    assert ak.all(ak.num(a.PFCand_pt) >= a.nTau)  # every tau_h has decay products
    assert ak.all(a.Jet_pt > 20.0) and ak.all(abs(a.Jet_eta) < cms.JET_ETA_MAX)
    for name in ("MET_pt", "MET_covXX", "MET_covYY", "GenMET_pt"):
        assert np.isfinite(ak.to_numpy(a[name])).all()
    assert (ak.to_numpy(a.MET_covXX) > 0).all()
    assert np.unique(ak.to_numpy(a.event)).size == n


def _check_genuine(a):
    assert ak.all(a.nGenTau == 2)
    assert ak.all(ak.prod(a.GenTau_charge, axis=1) == -1)
    for coll in ("Tau", "Muon", "Electron"):
        idx = a[f"{coll}_genTauIdx"]
        assert ak.all((idx == 0) | (idx == 1))
        assert ak.all(a[f"{coll}_topMatch"] == 0)
        assert ak.all(a.GenTau_charge[idx] == a[f"{coll}_charge"])  # leg charge = tau charge
    kinds = ak.concatenate(
        [
            a.Muon_genTauIdx * 0 + td.MUON,
            a.Electron_genTauIdx * 0 + td.ELECTRON,
            a.Tau_genTauIdx * 0 + td.HADRONIC,
        ],
        axis=1,
    )
    idx = ak.concatenate([a.Muon_genTauIdx, a.Electron_genTauIdx, a.Tau_genTauIdx], axis=1)
    assert ak.all(a.GenTau_kind[idx] == kinds)  # each leg points at a tau of its kind
    assert ak.all(ak.sort(idx, axis=1) == ak.Array([[0, 1]] * len(idx)))  # both taus are legs
    assert (ak.to_numpy(a.GenDiTau_mass) > 0).all()


def test_h125_selection(h125_sample):
    a = _read(h125_sample[1])
    _check_selection(a, "h125")
    _check_genuine(a)
    np.testing.assert_allclose(ak.to_numpy(a.GenBoson_mass), 125.0, atol=1.0)
    assert set(np.unique(ak.to_numpy(a.channel))) == {0, 1, 2}
    # every tau_h leg's generated tau is hadronic with the same HPS decay mode
    assert ak.all(a.GenTau_decayMode[a.Tau_genTauIdx] == a.Tau_decayMode)
    assert ak.all(a.GenTau_charge[a.Tau_genTauIdx] == a.Tau_charge)


@pytest.fixture(scope="module", params=["dy", "bsm350"])
def small_sample(request, tmp_path_factory):
    cols = generate(request.param, 12, 3)
    path = str(tmp_path_factory.mktemp(request.param) / "s.root")
    io.write_events(path, to_root_columns(cols))
    return request.param, path


def test_other_processes_selection(small_sample):
    process, path = small_sample
    a = _read(path)
    assert len(a) == 12
    _check_selection(a, process)
    _check_genuine(a)
    boson = ak.to_numpy(a.GenBoson_mass)
    if process == "bsm350":
        np.testing.assert_allclose(boson, 350.0, atol=1.0)
    else:
        assert (boson > 50.0).all()


@pytest.mark.parametrize("process", ["flat", "flatz"])
def test_flat_masses_in_range(tmp_path, process):
    cols = generate(process, 50, 2)
    path = str(tmp_path / "flat.root")
    io.write_events(path, to_root_columns(cols))
    a = _read(path)
    _check_selection(a, process)
    _check_genuine(a)
    boson = ak.to_numpy(a.GenBoson_mass)
    lo, hi = FLAT_MASS_RANGE
    assert ((boson > lo - 1.0) & (boson < hi + 1.0)).all()
    assert len(np.unique(np.round(boson, -1))) >= 2  # more than one mass point


@pytest.mark.slow
def test_flat_masses_span_range():
    cols = generate("flat", 500, 4)
    boson = cols["GenBoson_mass"]
    print(f"flat: {len(boson)} events, boson mass {boson.min():.1f}-{boson.max():.1f} GeV")
    assert boson.min() < 80.0 and boson.max() > 250.0


def test_ttbar_fakes(ttbar_sample):
    a = _read(ttbar_sample[1])
    _check_selection(a, "ttbar")
    assert ak.all(a.nGenTau == 0)
    assert ak.all(a.Tau_topMatch > 0)
    assert ak.all(a.Tau_genTauIdx == -1)
    assert ak.all(a.Muon_topMatch == 2) and ak.all(a.Electron_topMatch == 2)  # W leptons
    assert (ak.to_numpy(a.GenDiTau_mass) == -1).all()


# --- generated taus, before any selection -----------------------------------------------


def _raw_taus(n_events, seed):
    settings, boson = streams("h125")[0]
    py = make_pythia(settings, seed)
    rec = flatten_batch(py.nextBatch(n_events, "skip"))
    legs = ditau_events.genuine_legs(rec, ChargeTable(py)(rec.id), np.random.default_rng(0), boson)
    return legs["valid"], legs["gen"]


@pytest.fixture(scope="module")
def raw_taus():
    """Generated taus of 1500 ggH(125) -> tautau events, no selection."""
    return _raw_taus(1500, 2024)


def test_visible_plus_neutrinos_is_tau(raw_taus):
    valid, gen = raw_taus
    assert valid.mean() > 0.99
    tau = gen["tau_p4"][valid]
    diff = gen["vis_p4"][valid] + gen["nu_p4"][valid] - tau
    rel = np.abs(diff).max(-1) / tau[..., 3]
    assert rel.max() < 1e-4
    m = np.sqrt(tau[..., 3] ** 2 - (tau[..., :3] ** 2).sum(-1))
    np.testing.assert_allclose(m, 1.77686, atol=1e-3)
    assert (gen["nu_p4"][valid][..., 3] > 0).all()  # every tau decay has a neutrino


def _fraction_table(valid, gen):
    groups = td.pdg_group(
        gen["kind"][valid].ravel(), gen["decay_mode"][valid].ravel(), gen["has_k0"][valid].ravel()
    )
    n = len(groups)
    print(f"\ndecay modes of {n} generated taus (ggH 125)")
    print(f"{'group':>10} {'gen %':>7} {'PDG %':>7} {'diff':>6} {'sigma':>6}")
    rows = []
    for g, ref in td.PDG_FRACTIONS.items():
        f = 100.0 * np.mean(groups == g)
        sigma = 100.0 * np.sqrt(ref / 100 * (1 - ref / 100) / n)  # binomial, at the PDG value
        print(f"{g:>10} {f:7.2f} {ref:7.2f} {f - ref:+6.2f} {sigma:6.2f}")
        rows.append((g, f, ref, sigma))
    return rows, n


def test_decay_mode_fractions_match_pdg(raw_taus):
    rows, n = _fraction_table(*raw_taus)
    assert n >= 2900
    for g, f, ref, sigma in rows:
        # 1.5 pp (the issue's agreement on 20k taus) plus 4 sigma of statistics on this sample
        assert abs(f - ref) < 1.5 + 4 * sigma, g


@pytest.mark.slow
def test_decay_mode_fractions_20k_taus():
    rows, n = _fraction_table(*_raw_taus(10_000, 7))
    assert n >= 19_800
    for g, f, ref, _ in rows:
        assert abs(f - ref) < 1.5, g


# --- reproducibility --------------------------------------------------------------------


def test_same_seed_same_events(tmp_path):
    paths = []
    for i, seed in enumerate((5, 5, 6)):
        cols = generate("h125", 15, seed, batch_size=100)
        paths.append(str(tmp_path / f"{i}.root"))
        io.write_events(paths[-1], to_root_columns(cols))
    a, b, c = (uproot.open(p)["Events"] for p in paths)
    assert a.keys() == b.keys()
    for key in a.keys():
        assert ak.to_list(a[key].array()) == ak.to_list(b[key].array()), key
    assert ak.to_list(a["MET_pt"].array()) != ak.to_list(c["MET_pt"].array())
    # Bytes: the UUID is fixed, but ROOT headers and keys hold write timestamps (TDatime, 1 s
    # resolution), so files written in different seconds differ in a few dozen bytes only.
    with open(paths[0], "rb") as f0, open(paths[1], "rb") as f1:
        b0, b1 = f0.read(), f1.read()
    assert len(b0) == len(b1)
    n_diff = int((np.frombuffer(b0, np.uint8) != np.frombuffer(b1, np.uint8)).sum())
    print(f"same seed: {n_diff} of {len(b0)} bytes differ (timestamps)")
    assert n_diff < 200
