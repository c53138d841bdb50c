"""NNPuppiTau-like baseline: seeded-cone clustering on hand-made events and the dense network."""

import math

import awkward as ak
import numpy as np
import pytest

from data import nnpuppitau as nt
from data.errors import UserError
from data.generate.tau_decays import HADRONIC
from models.scouttau.nnpuppitau import build_nnpuppitau
from tests.helpers import assert_keras_round_trip


def _puppi(rows, event=None):
    """rows: (pt, eta, phi, pdg) -> the flat dict of `data.scouttau.puppi_candidates`."""
    pt, eta, phi, pdg = np.array(rows, float).reshape(-1, 4).T
    event = np.zeros(len(pt), np.int64) if event is None else np.asarray(event)
    return {"pt": pt, "eta": eta, "phi": phi, "pdg": pdg.astype(np.int64), "event": event,
            "n_events": int(event.max(initial=-1)) + 1}  # fmt: skip


# tau 1 seeded by the 10 GeV pion at (0, 0); tau 2 by the 5 GeV pion at (1.5, 1.0)
EVENT = [
    (3.0, 0.0, 0.05, 22),  # photon in the core (dR 0.05)
    (10.0, 0.0, 0.0, 211),  # seed 1
    (2.0, 0.05, 0.0, 130),  # neutral hadron: in the cone, not in the tau pT
    (4.0, 0.3, 0.0, -211),  # in the cone (not the core): collected, so never a seed
    (3.5, 0.0, 0.2, -13),  # muon in the cone
    (5.0, 1.5, 1.0, 211),  # seed 2
    (2.0, 1.55, 1.0, -11),  # electron in its core
    (1.5, -1.5, -2.0, 211),  # below seed_pt
    (6.0, -1.0, 3.0, 22),  # a photon: seeds only with em_seed
]


def test_two_seeds_two_taus_and_the_cone_removes_its_candidates():
    t = nt.seeded_cone(_puppi(EVENT))
    assert len(t["pt"]) == 2
    np.testing.assert_array_equal(t["member"], [0, 0, 0, 0, 0, 1, 1, -1, -1])
    np.testing.assert_allclose(t["seed_pt"], [10.0, 5.0])
    np.testing.assert_allclose(t["cone_pt"], [22.5, 7.0])
    # tau pT: massless vector sum of the charged hadron, photon and electron within 0.1
    px, py = 10 + 3 * math.cos(0.05), 3 * math.sin(0.05)
    np.testing.assert_allclose(t["pt"][0], math.hypot(px, py), rtol=1e-12)
    np.testing.assert_allclose(t["phi"][0], math.atan2(py, px), rtol=1e-12)
    pz = 5 * math.sinh(1.5) + 2 * math.sinh(1.55)
    np.testing.assert_allclose(t["pt"][1], 7.0, rtol=1e-12)
    np.testing.assert_allclose(t["eta"][1], math.asinh(pz / 7.0), rtol=1e-12)
    # seed pT threshold, photon seeds, max_taus
    assert len(nt.seeded_cone(_puppi(EVENT), seed_pt=1.0)["pt"]) == 3
    t = nt.seeded_cone(_puppi(EVENT), em_seed=True)
    np.testing.assert_allclose(t["seed_pt"], [10.0, 6.0, 5.0])
    np.testing.assert_allclose(nt.seeded_cone(_puppi(EVENT), max_taus=1)["seed_pt"], [10.0])


def test_80_inputs_in_cmssw_order():
    t = nt.seeded_cone(_puppi(EVENT))
    assert t["inputs"].shape == (2, 80) and t["inputs"].dtype == np.float32
    x = t["inputs"].reshape(2, 10, 8)
    # pT, deta, dphi, photon, electron, muon, neutral hadron, charged hadron; by pT
    want = [
        [10.0, 0.0, 0.0, 0, 0, 0, 0, 1],
        [4.0, 0.3, 0.0, 0, 0, 0, 0, 1],
        [3.5, 0.0, 0.2, 0, 0, 1, 0, 0],
        [3.0, 0.0, 0.05, 1, 0, 0, 0, 0],
        [2.0, 0.05, 0.0, 0, 0, 0, 1, 0],
    ]
    np.testing.assert_allclose(x[0, :5], want, atol=1e-6)
    assert not x[0, 5:].any()
    np.testing.assert_allclose(x[1, :2], [[5, 0, 0, 0, 0, 0, 0, 1], [2, 0.05, 0, 0, 1, 0, 0, 0]],
                               atol=1e-6)  # fmt: skip
    # delta phi wraps across pi; only the 10 leading cone candidates enter
    rows = [(20.0, 0.0, 3.1, 211)] + [(1.5 + 0.1 * i, 0.01 * i, -3.1, 22) for i in range(12)]
    x = nt.seeded_cone(_puppi(rows))["inputs"].reshape(-1, 10, 8)
    assert x.shape[0] == 1
    np.testing.assert_allclose(x[0, 1, :3], [2.6, 0.11, 2 * math.pi - 6.2], atol=1e-6)
    np.testing.assert_allclose(x[0, 9, 0], 1.8, atol=1e-6)


def test_events_are_separate_and_truth_matches():
    rows = EVENT + [(r[0], r[1], r[2], r[3]) for r in EVENT[:2]]
    t = nt.seeded_cone(_puppi(rows, event=[0] * len(EVENT) + [1, 1]))
    np.testing.assert_array_equal(t["event"], [0, 0, 1])
    np.testing.assert_allclose(t["seed_pt"], [10.0, 5.0, 10.0])
    # through nnpuppitau_candidates, from L1Cand_* / GenVisTau_* arrays
    ev = [EVENT, EVENT[:2]]
    n = [len(e) for e in ev]
    flat = [r for e in ev for r in e]

    def jag(values, counts=n, dtype=np.float32):
        return ak.unflatten(np.asarray(values, dtype), counts)

    arrays = {
        "L1Cand_pt": jag([r[0] for r in flat]),
        "L1Cand_eta": jag([r[1] for r in flat]),
        "L1Cand_phi": jag([r[2] for r in flat]),
        "L1Cand_pdgId": jag([r[3] for r in flat], dtype=np.int16),
        "L1Cand_charge": jag(np.zeros(len(flat)), dtype=np.int8),  # not used here
        "L1Cand_z0": jag(np.zeros(len(flat))),
        "L1Cand_puppiWeight": jag(np.ones(len(flat))),
        "GenVisTau_pt": jag([12.0, 6.5, 30.0], [2, 1]),
        "GenVisTau_eta": jag([0.02, 1.5, 2.0], [2, 1]),
        "GenVisTau_phi": jag([0.03, 1.0, 0.0], [2, 1]),
        "GenVisTau_charge": jag([1, -1, 1], [2, 1], np.int8),
        "GenVisTau_kind": jag([HADRONIC, HADRONIC, HADRONIC], [2, 1], np.int8),
        "GenVisTau_decayMode": jag([1, 0, 0], [2, 1], np.int8),
    }
    t = nt.nnpuppitau_candidates(arrays)
    np.testing.assert_array_equal(t["is_tau"], [True, True, False])
    np.testing.assert_array_equal(t["tau_charge"], [1, -1, 0])
    np.testing.assert_allclose(t["tau_vis_pt"], [12.0, 6.5, 0.0])
    np.testing.assert_array_equal(t["gen_taus"]["matched"], [0, 1, -1])


def test_dense_network_builds_and_round_trips(tmp_path):
    model = build_nnpuppitau()
    assert model.output_shape == (None, 1) and model.layers[-1].name == "tau_id"
    assert [layer.units for layer in model.layers if hasattr(layer, "units")] == [25, 10, 1]
    x = np.random.default_rng(0).normal(size=(4, nt.N_INPUTS)).astype(np.float32)
    assert_keras_round_trip(model, x, tmp_path)
    bn = build_nnpuppitau((8, 8, 4), batch_norm=True)
    assert sum("batch_norm" in layer.name for layer in bn.layers) == 3
    (tmp_path / "bn").mkdir()
    assert_keras_round_trip(bn, x, tmp_path / "bn")


def test_bad_inputs():
    with pytest.raises(UserError, match="hidden"):
        build_nnpuppitau(())
    with pytest.raises(UserError, match="hidden"):
        build_nnpuppitau((25, 0))
    with pytest.raises(ValueError, match="tausize <= conesize"):
        nt.seeded_cone(_puppi(EVENT), tausize=0.5)
    with pytest.raises(ValueError, match="max_taus"):
        nt.seeded_cone(_puppi(EVENT), max_taus=0)
    empty = nt.seeded_cone(_puppi([]))
    assert empty["inputs"].shape == (0, 80) and len(empty["member"]) == 0


def test_seed_z0_and_core_charge():
    puppi = _puppi(EVENT)
    # charges of EVENT's rows; the -211 at dR 0.3 is outside tau 1's core (0.1)
    puppi["charge"] = np.array([0, 1, 0, -1, -1, 1, -1, 1, 0])
    puppi["z0"] = np.array([0.0, 1.5, 0.0, 1.4, 1.6, -3.0, -3.1, 2.0, 0.0])
    t = nt.seeded_cone(puppi)
    np.testing.assert_array_equal(t["charge"], [1, 0])  # tau 2: pi+ and e- in the core
    np.testing.assert_allclose(t["z0"], [1.5, -3.0])
