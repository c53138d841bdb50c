"""PUPPI weights (data/reco/puppi.py) on hand-built events."""

import numpy as np
import pytest

from data.reco import puppi

CFG = puppi.PuppiConfig()


def _event(*cands):
    """Candidates as (pt, eta, phi, charged, is_reco_pu) tuples -> the argument arrays."""
    pt, eta, phi, ch, pu = (np.array(c) for c in zip(*cands))
    return pt.astype(float), eta.astype(float), phi.astype(float), ch.astype(bool), pu.astype(bool)


# pileup tracks near a soft primary-vertex track, so the pileup reference has finite alpha
_PU_REFERENCE = [
    (1.0, -1.0, 2.0, True, False),
    (0.8, -1.0, 2.2, True, True),
    (0.6, -0.75, 2.0, True, True),
    (0.9, -1.0, 1.7, True, True),
    (0.7, -1.3, 2.1, True, True),
    (1.2, -1.1, 2.35, True, True),
]


def test_charged_hadron_subtraction():
    ev = _event(
        (5.0, 0.0, 0.0, True, False),
        (0.7, 1.0, 1.0, True, False),
        (3.0, 0.1, 0.1, True, True),
        (0.6, -2.0, -3.0, True, True),
        *_PU_REFERENCE,
    )
    w = puppi.event_weights(*ev, n_pu=200)
    np.testing.assert_array_equal(w[ev[3]], np.where(ev[4][ev[3]], 0.0, 1.0))


def test_isolated_neutral_gets_zero():
    ev = _event(
        (50.0, 0.0, 0.0, True, False),
        (40.0, 0.2, 0.2, True, False),
        (30.0, 1.0, 1.5, False, False),  # dR > 1 from every PV track
        (30.0, -0.1, -0.42, False, False),  # dR 0.43 from the nearest PV track, outside R0
        *_PU_REFERENCE,
    )
    w = puppi.event_weights(*ev, n_pu=0)
    assert w[2] == 0.0 and w[3] == 0.0


def test_hard_neutral_near_pv_tracks():
    ev = _event(
        (30.0, 0.5, 1.0, False, False),
        (50.0, 0.6, 1.0, True, False),
        (40.0, 0.5, 1.1, True, False),
        *_PU_REFERENCE,
    )
    w = puppi.event_weights(*ev, n_pu=10)
    assert w[0] > 0.99
    # the same neutral against pileup tracks only is removed
    ev_pu = _event(
        (30.0, 0.5, 1.0, False, False),
        (50.0, 0.6, 1.0, True, True),
        (40.0, 0.5, 1.1, True, True),
        *_PU_REFERENCE,
    )
    assert puppi.event_weights(*ev_pu, n_pu=10)[0] == 0.0


def test_neutral_pt_threshold():
    """w pT < min + slope * n_pu kills a neutral (Delphes Phase-II RunPUPPI numbers)."""
    assert CFG.neutral_pt == ((1.5, 0.2, 0.006), (4.0, 0.2, 0.013), (np.inf, 0.5, 0.067))
    for eta, (lo, slope) in ((0.3, (0.2, 0.006)), (2.0, (0.2, 0.013))):
        for n_pu in (0, 50, 200):
            cut = lo + slope * n_pu
            for pt, alive in ((cut * 1.02, True), (cut * 0.98, False)):
                ev = _event(
                    (pt, eta, 0.0, False, False),
                    (80.0, eta + 0.05, 0.0, True, False),
                    (80.0, eta, 0.05, True, False),
                    *_PU_REFERENCE,
                )
                w = puppi.event_weights(*ev, n_pu=n_pu)
                assert (w[0] > 0.99) if alive else (w[0] == 0.0), (eta, n_pu, pt, w[0])
    # a 1 GeV neutral survives at PU 50 (cut 0.5) but not at PU 200 (cut 1.4)
    ev = _event((1.0, 0.0, 0.0, False, False), (80.0, 0.05, 0.0, True, False), *_PU_REFERENCE)
    assert puppi.event_weights(*ev, n_pu=50)[0] > 0.99
    assert puppi.event_weights(*ev, n_pu=200)[0] == 0.0


def test_alpha_by_hand():
    pt = np.array([10.0, 20.0, 5.0, 30.0, 40.0])
    eta = np.array([0.0, 0.1, -0.2, 0.003, 0.9])
    phi = np.array([0.0, 0.05, 0.1, 0.0, 0.0])
    # tracks 3 (dR 0.003 < dr_min) and 4 (dR 0.9 > R0) do not count
    dr1, dr2 = np.hypot(0.1, 0.05), np.hypot(0.2, 0.1)
    want = np.log(20.0**2 / dr1**2 + 5.0**2 / dr2**2)
    got = puppi._alpha(eta, phi, pt, np.array([0]), np.array([1, 2, 3, 4]), CFG)
    assert got[0] == pytest.approx(want, rel=1e-12)
    assert puppi._alpha(eta, phi, pt, np.array([0]), np.array([4]), CFG)[0] == -np.inf


def test_phi_periodicity():
    def ev(phi_n, phi_t):
        return _event(
            (20.0, 0.0, phi_n, False, False),
            (30.0, 0.05, phi_t, True, False),
            (25.0, -0.05, phi_t, True, False),
            *_PU_REFERENCE,
        )

    wrapped = ev(np.pi - 0.01, -np.pi + 0.01)
    plain = ev(-0.01, 0.01)
    a_wrap = puppi._alpha(wrapped[1], wrapped[2], wrapped[0], np.array([0]), np.array([1, 2]), CFG)
    a_plain = puppi._alpha(plain[1], plain[2], plain[0], np.array([0]), np.array([1, 2]), CFG)
    assert np.isfinite(a_wrap[0]) and a_wrap[0] == pytest.approx(a_plain[0], rel=1e-9)
    want = np.log((30.0**2 + 25.0**2) / (0.05**2 + 0.02**2))
    assert a_wrap[0] == pytest.approx(want, rel=1e-9)
    w_wrap = puppi.event_weights(*wrapped, n_pu=10)
    w_plain = puppi.event_weights(*plain, n_pu=10)
    assert w_wrap[0] > 0.99
    np.testing.assert_allclose(w_wrap, w_plain, rtol=1e-9)


def test_phi_just_below_zero():
    """A phi a hair below 0 (mod 2 pi rounds it to 2 pi) must not break the periodic tree."""
    ev = _event(
        (20.0, 0.0, -1e-17, False, False),
        (30.0, 0.05, 0.0, True, False),
        (25.0, -0.05, -0.0, True, False),
        *_PU_REFERENCE,
    )
    w = puppi.event_weights(*ev, n_pu=10)
    assert w[0] > 0.99


def test_forward_region_uses_all_candidates():
    """Beyond the tracker, neutrals see every candidate (no PV tracks needed)."""
    soft = []
    for k, dr in enumerate((0.2, 0.25, 0.3, 0.35)):  # soft forward pairs: the reference
        soft += [(1.0, 3.5, -2.5 + k, False, False), (1.0, 3.5 + dr, -2.5 + k, False, False)]

    def ev(eta):
        return _event((20.0, eta, 2.5, False, False), (20.0, eta + 0.1, 2.5, False, False), *soft)

    w = puppi.event_weights(*ev(3.5), n_pu=0)
    assert w[0] > 0.99 and w[1] > 0.99  # the hard forward pair is kept
    assert np.all(w[2:] < w[0])
    # the same hard pair in the tracker region, without PV tracks, is removed
    w_central = puppi.event_weights(*ev(0.5), n_pu=0)
    assert w_central[0] == 0.0 and w_central[1] == 0.0


def test_weights_many_events_match_single():
    rng = np.random.default_rng(1)
    counts = np.array([12, 0, 30, 7])
    n = counts.sum()
    pt = rng.exponential(3.0, n) + 0.3
    eta = rng.uniform(-4.5, 4.5, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    charged = (rng.random(n) < 0.6) & (np.abs(eta) < 2.5)
    is_pu = charged & (rng.random(n) < 0.5)
    n_pu = np.array([5, 0, 40, 200])
    w = puppi.weights(pt, eta, phi, charged, is_pu, counts, n_pu)
    assert w.shape == (n,) and np.all((w >= 0) & (w <= 1))
    off = np.concatenate([[0], np.cumsum(counts)])
    for k in range(len(counts)):
        a, b = off[k], off[k + 1]
        want = puppi.event_weights(pt[a:b], eta[a:b], phi[a:b], charged[a:b], is_pu[a:b], n_pu[k])
        np.testing.assert_array_equal(w[a:b], want)
