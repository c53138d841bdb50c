"""Several tau decays per generated event: record structure, physics, the exact pre-check."""

import awkward as ak
import numpy as np
import pytest
import uproot

from data import io
from data.detector import cms
from data.generate import ditau_events, redecay
from data.generate import tau_decays as td
from data.generate.ditau import generate, streams
from data.generate.ditau_output import to_root_columns
from data.generate.pythia import ChargeTable, flatten_batch, make_pythia

COPIES = 5


def _redecayed(process, n_events, seed, copies=COPIES):
    settings, boson = streams(process)[0]
    py = make_pythia(settings + redecay.UNDECAYED, seed)
    rec = flatten_batch(py.nextBatch(n_events, "skip"))
    keep = np.ones(rec.n_events, bool)
    keep[::7] = False  # dropped events must vanish from every copy
    out, src = redecay.redecay(rec, redecay.TauDecayer(seed + 1), boson, copies, keep)
    kept = src[: len(src) // copies]
    np.testing.assert_array_equal(src, np.tile(kept, copies))  # copy-major layout
    return py, rec, out, kept, boson


@pytest.fixture(scope="module")
def dy_copies():
    return _redecayed("dy", 60, 31)


def test_record_layout(dy_copies):
    _, rec, out, kept, _ = dy_copies
    assert out.n_events == COPIES * len(kept)
    assert np.array_equal(kept, np.nonzero(np.arange(rec.n_events) % 7 != 0)[0])
    # every copy holds its original event unchanged in front of the decay products
    for c in (0, COPIES - 1):
        for j in (0, len(kept) - 1):
            e, src = c * len(kept) + j, kept[j]
            o0, n0 = rec.offsets[src], rec.offsets[src + 1] - rec.offsets[src]
            new = slice(out.offsets[e], out.offsets[e] + n0)
            np.testing.assert_array_equal(out.id[new], rec.id[o0 : o0 + n0])
            np.testing.assert_array_equal(out.p4[new], rec.p4[o0 : o0 + n0])
            m1 = rec.mother1[o0 : o0 + n0]
            np.testing.assert_array_equal(
                out.mother1[new], np.where(m1 >= 0, m1 - o0, -1) + ((m1 >= 0) * out.offsets[e])
            )
    # indices never leave their event
    for field in ("mother1", "daughter1", "daughter2"):
        idx = getattr(out, field)
        ok = idx >= 0
        assert np.array_equal(out.event[idx[ok]], out.event[ok])
    assert not (out.is_final & (np.abs(out.id) == 15)).any()  # every tau decayed


def test_decayed_taus_conserve_four_momentum(dy_copies):
    py, _, out, _, boson = dy_copies
    legs = ditau_events.genuine_legs(out, ChargeTable(py)(out.id), np.random.default_rng(0), boson)
    valid, gen = legs["valid"], legs["gen"]
    assert valid.mean() > 0.95
    tau = gen["tau_p4"][valid]
    diff = gen["vis_p4"][valid] + gen["nu_p4"][valid] - tau
    assert (np.abs(diff).max(-1) / tau[..., 3]).max() < 1e-6
    assert (gen["nu_p4"][valid][..., 3] > 0).all()
    # copies share the taus' momenta but not their decays
    n = out.n_events // COPIES
    tau_by_copy = gen["tau_p4"].reshape(COPIES, n, 2, 4)
    np.testing.assert_array_equal(tau_by_copy[0], tau_by_copy[1])
    nu_by_copy = gen["nu_p4"].reshape(COPIES, n, 2, 4)
    assert not np.allclose(nu_by_copy[0], nu_by_copy[1])


def test_decay_modes_follow_pdg():
    py, _, out, _, boson = _redecayed("h125", 40, 5, copies=30)
    legs = ditau_events.genuine_legs(out, ChargeTable(py)(out.id), np.random.default_rng(0), boson)
    valid, gen = legs["valid"], legs["gen"]
    groups = td.pdg_group(
        gen["kind"][valid].ravel(), gen["decay_mode"][valid].ravel(), gen["has_k0"][valid].ravel()
    )
    n = len(groups)
    assert n > 1500
    for g, ref in td.PDG_FRACTIONS.items():
        f = 100.0 * np.mean(groups == g)
        sigma = 100.0 * np.sqrt(ref / 100 * (1 - ref / 100) / n)
        assert abs(f - ref) < 1.5 + 4 * sigma, g


def test_could_pass_hand_cases():
    def tau(pt, eta):
        m = redecay.TAU_MASS
        p = np.array([pt, 0.0, pt * np.sinh(eta)])
        return np.append(p, np.sqrt((p**2).sum() + m**2))

    kw = dict(min_vis_pt=20.0, max_response=2.0, max_abs_eta=2.4)
    cases = {(30.0, 0.0): True, (9.5, 0.0): True, (8.0, 0.0): False, (30.0, 2.8): True}
    cases[(30.0, 3.5)] = False  # beyond the widest angle a visible product can open
    for (pt, eta), want in cases.items():
        assert bool(redecay.could_pass(tau(pt, eta), **kw)) is want, (pt, eta)


def test_could_pass_never_rejects_a_selected_event(tmp_path):
    """Every selected event of the inline path has taus that pass the pre-check."""
    cols = generate("flat", 200, 17)
    path = str(tmp_path / "flat.root")
    io.write_events(path, to_root_columns(cols))
    a = uproot.open(path)["Events"].arrays(["GenTau_pt", "GenTau_eta", "GenTau_phi"])
    pt, eta = ak.to_numpy(a.GenTau_pt), ak.to_numpy(a.GenTau_eta)
    p = np.stack([pt, np.zeros_like(pt), pt * np.sinh(eta)], -1)
    p4 = np.concatenate([p, np.sqrt((p**2).sum(-1) + redecay.TAU_MASS**2)[..., None]], -1)
    ok = redecay.could_pass(
        p4,
        min_vis_pt=ditau_events.MIN_PT,
        max_response=cms.TAU_RESPONSE_RANGE[1],
        max_abs_eta=max(cms.TAU_ETA_MAX, cms.LEPTON_ETA_MAX),
    )
    assert ok.all()


def test_redecayed_sample_is_selected_and_reproducible():
    a = generate("flat", 40, 23, tau_decays=4, batch_size=100)
    b = generate("flat", 40, 23, tau_decays=4, batch_size=100)
    assert len(a["event"]) == 40
    assert set(np.unique(a["channel"])) <= {0, 1, 2}
    np.testing.assert_array_equal(a["MET_pt"], b["MET_pt"])
    np.testing.assert_array_equal(a["GenDiTau_mass"], b["GenDiTau_mass"])
    assert np.unique(a["event"]).size == 40


def test_tau_decays_rejects_ttbar():
    with pytest.raises(ValueError, match="ttbar"):
        generate("ttbar", 5, 1, tau_decays=2)


def test_copy_filter_keeps_every_copy_that_the_selection_could_take():
    """The filter is exact: every copy that the selection takes passes it (whatever the
    detector smearing), and it keeps exactly the copies it says (same decays, same seed)."""
    from data.generate.ditau import _copy_could_pass

    settings, boson = streams("h125")[0]
    py = make_pythia(settings + redecay.UNDECAYED, 8)
    rec = flatten_batch(py.nextBatch(40, "skip"))
    keep = np.ones(rec.n_events, bool)
    charge = ChargeTable(py)
    out, _ = redecay.redecay(rec, redecay.TauDecayer(3), boson, 6, keep)
    legs = ditau_events.genuine_legs(out, charge(out.id), np.random.default_rng(0), boson)
    vis, leptonic = legs["gen"]["vis_p4"], legs["kind"] != td.HADRONIC
    could = _copy_could_pass(vis, leptonic) & legs["valid"]
    for seed in range(20):  # many smearings of the same copies
        legs = ditau_events.genuine_legs(out, charge(out.id), np.random.default_rng(seed), boson)
        ok, _ = ditau_events.select(legs)
        assert could[ok].all()
    filtered, src = redecay.redecay(rec, redecay.TauDecayer(3), boson, 6, keep, _copy_could_pass)
    assert filtered.n_events == could.sum() < out.n_events
    assert len(src) == filtered.n_events
