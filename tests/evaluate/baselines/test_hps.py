"""Tests for the HPS-like tau reconstruction on hand-built jets with exact decay kinematics."""

import numpy as np
import pytest

from evaluate.baselines.hps import FAIL_SCORE, DecayModeCuts, HPSConfig, jet_charge, reconstruct

M_PI, M_PI0 = 0.13957, 0.1349768


def _dir(theta, phi):
    return np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])


def _p4(p3, m):
    p3 = np.asarray(p3, float)
    return np.append(p3, np.sqrt(p3 @ p3 + m**2))


def _boost(p, beta):
    """Boost four-vectors p (..., 4) by the velocity beta (3,)."""
    b2 = beta @ beta
    g = 1.0 / np.sqrt(1.0 - b2)
    bp = p[..., :3] @ beta
    xyz = p[..., :3] + ((g - 1.0) / b2 * bp + g * p[..., 3])[..., None] * beta
    return np.concatenate([xyz, (g * (p[..., 3] + bp))[..., None]], -1)


def _decay(p_vis, theta, phi, rest):
    """Boost rest-frame four-vectors (k, 4) of a system of momentum p_vis to (theta, phi)."""
    mass = np.sqrt(np.sum(rest[:, 3]) ** 2 - np.sum(np.sum(rest[:, :3], 0) ** 2))
    return _boost(rest, p_vis / np.hypot(p_vis, mass) * _dir(theta, phi))


def _pi0_to_photons(pi0):
    """Split a lab pi0 (4,) into two photons emitted perpendicular to its flight in its frame."""
    beta = pi0[:3] / pi0[3]
    axis = np.cross(beta, [0.0, 0.0, 1.0])
    axis /= np.linalg.norm(axis)
    rest = np.array([np.append(s * M_PI0 / 2 * axis, M_PI0 / 2) for s in (1, -1)])
    return _boost(rest, beta)


def _tetra(p_star, masses):
    """Four rest-frame particles along the vertices of a tetrahedron (momenta sum to zero)."""
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    return np.array([_p4(p_star * u, m) for u, m in zip(v, masses)])


def _jet(parts):
    """parts: list of (p4, charge, pdg) -> dict of one jet's arrays."""
    p4 = np.array([p for p, _, _ in parts])
    pt = np.hypot(p4[:, 0], p4[:, 1])
    order = np.argsort(-pt)
    return dict(
        p4=p4[order],
        q=np.array([q for _, q, _ in parts])[order],
        pdg=np.array([d for _, _, d in parts])[order],
        jet=p4.sum(0),
    )


def single_pion():
    return _jet([(_p4(20.0 * _dir(1.2, 0.3), M_PI), -1, -211)])


def rho():
    """rho- -> pi- pi0 (pi0 -> two photons), m = 0.77 GeV, p = 25 GeV."""
    rest_p = np.sqrt((0.77**2 - (M_PI + M_PI0) ** 2) * (0.77**2 - (M_PI - M_PI0) ** 2)) / 1.54
    rest = np.array([_p4([rest_p, 0.0, 0.0], M_PI), _p4([-rest_p, 0.0, 0.0], M_PI0)])
    pi, pi0 = _decay(25.0, 1.0, 2.5, rest)
    g1, g2 = _pi0_to_photons(pi0)
    return _jet([(pi, -1, -211), (g1, 0, 22), (g2, 0, 22)])


def three_prong(charges=(1, -1, 1), mass=1.1, p=30.0):
    """a1 -> 3 pi at rest at 120 degrees in a plane tilted to the flight axis, boosted."""
    p_star = np.sqrt((mass / 3) ** 2 - M_PI**2)
    angles = 0.4 + 2 * np.pi / 3 * np.arange(3)
    rest = np.array([_p4(p_star * np.array([np.cos(a), 0.0, np.sin(a)]), M_PI) for a in angles])
    pis = _decay(p, 1.9, -2.0, rest)
    return _jet([(pi, q, 211 * q) for pi, q in zip(pis, charges)])


def three_prong_pi0():
    """3 pi + pi0 (two photons) at rest on a tetrahedron, m = 1.3 GeV, boosted to 35 GeV."""
    masses = [M_PI, M_PI, M_PI, M_PI0]
    p_star = 0.31
    *pis, pi0 = _decay(35.0, 0.7, 1.0, _tetra(p_star, masses))
    g1, g2 = _pi0_to_photons(pi0)
    return _jet(
        [(pis[0], 1, 211), (pis[1], -1, -211), (pis[2], -1, -211), (g1, 0, 22), (g2, 0, 22)]
    )


def gluon(seed=0):
    """Wide, soft, many-particle jet: 12 charged, 10 photons, 4 neutral hadrons within 0.35."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, (q, pdg) in enumerate([(1, 211)] * 12 + [(0, 22)] * 10 + [(0, 130)] * 4):
        th = 1.4 + rng.uniform(-0.25, 0.25)
        ph = 1.0 + rng.uniform(-0.25, 0.25)
        q = q * (1 if k % 2 else -1)
        parts.append(
            (_p4(rng.uniform(0.6, 4.0) * _dir(th, ph), M_PI if q else 0.0), q, pdg * (q or 1))
        )
    return _jet(parts)


def _batch(jets, extra=0, garbage=False, seed=1):
    n_max = max(len(j["q"]) for j in jets) + extra
    rng = np.random.default_rng(seed)
    n = len(jets)
    p4 = rng.normal(0, 10, (n, n_max, 4)) if garbage else np.zeros((n, n_max, 4))
    q = rng.choice([-1, 1], (n, n_max)) if garbage else np.zeros((n, n_max))
    pdg = rng.choice([211, 22, 11], (n, n_max)) if garbage else np.zeros((n, n_max), int)
    mask = np.zeros((n, n_max), bool)
    for i, j in enumerate(jets):
        k = len(j["q"])
        p4[i, :k], q[i, :k], pdg[i, :k], mask[i, :k] = j["p4"], j["q"], j["pdg"], True
    return p4, q, pdg, mask, np.array([j["jet"] for j in jets])


def _run(jets, config=None, **kw):
    return reconstruct(*_batch(jets, **kw), config=config or HPSConfig())


ALL = (single_pion, rho, three_prong, three_prong_pi0, gluon)


@pytest.fixture(scope="module")
def batch_out():
    return _run([f() for f in ALL])


def test_toy_kinematics():
    m = lambda p: np.sqrt(p[3] ** 2 - p[:3] @ p[:3])  # noqa: E731
    assert m(rho()["jet"]) == pytest.approx(0.77, abs=1e-6)
    assert m(three_prong()["jet"]) == pytest.approx(1.1, abs=1e-6)
    g1, g2 = rho()["p4"][rho()["pdg"] == 22]
    assert m(g1 + g2) == pytest.approx(M_PI0, abs=1e-6)


def test_single_pion_is_class_0(batch_out):
    assert batch_out["passes_dm"][0] and batch_out["decay_mode"][0] == 0
    assert batch_out["hps_code"][0] == 0 and batch_out["charge"][0] == -1
    np.testing.assert_allclose(batch_out["tau_p4"][0], single_pion()["jet"])
    assert batch_out["iso_abs"][0] == 0 and batch_out["score"][0] == 1.0


def test_rho_is_class_1(batch_out):
    assert batch_out["decay_mode"][1] == 1 and batch_out["hps_code"][1] == 1
    assert batch_out["charge"][1] == -1
    # the two photons form one strip; with the pi0 mass it rebuilds the visible tau exactly
    np.testing.assert_allclose(batch_out["tau_p4"][1], rho()["jet"], rtol=1e-6)


def test_three_prongs(batch_out):
    assert batch_out["decay_mode"][2] == 3 and batch_out["hps_code"][2] == 10
    assert batch_out["charge"][2] == 1
    np.testing.assert_allclose(batch_out["tau_p4"][2], three_prong()["jet"], rtol=1e-9)
    assert batch_out["decay_mode"][3] == 4 and batch_out["hps_code"][3] == 11
    assert batch_out["charge"][3] == -1 and batch_out["iso_abs"][3] == 0


def test_gluon_jet_is_not_tau_like(batch_out):
    assert not batch_out["passes_dm"][4] or batch_out["iso_rel"][4] > 0.5
    assert batch_out["score"][4] < batch_out["score"][:4].min()


def test_charge_sum_must_be_one():
    wrong = three_prong(charges=(1, 1, 1))
    out = _run([wrong])
    assert out["decay_mode"][0] != 3 and abs(out["charge"][0]) <= 1
    assert not out["passes_dm"][0] or out["iso_rel"][0] > 0.5  # a lone prong, not isolated
    only_3h = HPSConfig(modes=(DecayModeCuts(3, 0, 0.8, 1.5),))
    out = _run([wrong], config=only_3h)
    assert not out["passes_dm"][0] and out["decay_mode"][0] == -1 and out["hps_code"][0] == -1
    assert out["charge"][0] == 0 and out["score"][0] == FAIL_SCORE
    np.testing.assert_allclose(out["tau_p4"][0], wrong["jet"])
    assert _run([three_prong()], config=only_3h)["passes_dm"][0]


def _same(a, b):
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_padding_and_order_do_not_matter(batch_out):
    jets = [f() for f in ALL]
    _same(batch_out, _run(jets, extra=7, garbage=True))
    rng = np.random.default_rng(3)
    shuffled = []
    for j in jets:
        perm = rng.permutation(len(j["q"]))
        shuffled.append({**{k: j[k][perm] for k in ("p4", "q", "pdg")}, "jet": j["jet"]})
    _same(batch_out, _run(shuffled))


def test_batch_equals_one_by_one(batch_out):
    for i, f in enumerate(ALL):
        one = _run([f()])
        _same({k: v[i : i + 1] for k, v in batch_out.items()}, one)


def test_jet_charge():
    p4 = np.array([[[10.0, 0, 0, 10], [0, 5.0, 0, 5], [0, 0, 3.0, 3], [1.0, 1, 0, 2]]])
    q = np.array([[1, -1, 1, 1]])
    mask = np.array([[True, True, True, False]])
    jet = np.array([[10.0, 5.0, 3.0, 18.0]])
    pt_jet = np.hypot(10, 5)
    assert jet_charge(p4, q, mask, jet)[0] == pytest.approx((10 - 5) / pt_jet)
    assert jet_charge(p4, q, mask, jet, kappa=0.5)[0] == pytest.approx(
        (10**0.5 - 5**0.5) / pt_jet**0.5
    )
