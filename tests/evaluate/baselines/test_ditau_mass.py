"""Tests for the visible, collinear and FastMTT di-tau masses (evaluate.baselines)."""

import math

import numpy as np
import pytest

from evaluate.baselines.collinear import Leg, collinear_mass, p4_mass, to_p4, visible_mass
from evaluate.baselines.fastmtt import fastmtt

M_TAU = 1.77685


def boost(p4, beta):
    """Lorentz boost of (N, 4) four-vectors by velocity ``beta`` (3,)."""
    beta = np.asarray(beta, dtype=float)
    b2 = beta @ beta
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = p4[:, :3] @ beta
    p = p4[:, :3] + (((gamma - 1.0) * bp / b2 + gamma * p4[:, 3])[:, None]) * beta
    return np.concatenate([p, (gamma * (p4[:, 3] + bp))[:, None]], axis=1)


def resonance_event(mass, direction, beta, tau_mass=M_TAU):
    """Two taus from a resonance decaying along ``direction`` in its rest frame, then boosted."""
    d = np.asarray(direction, dtype=float)
    d /= np.linalg.norm(d)
    p = math.sqrt(mass**2 / 4 - tau_mass**2)
    t1 = boost(np.array([[*(p * d), mass / 2]]), beta)
    t2 = boost(np.array([[*(-p * d), mass / 2]]), beta)
    return t1, t2


def leg_from_p4(p4, kind=1, decay_mode=1):
    pt = np.hypot(p4[:, 0], p4[:, 1])
    n = len(pt)
    return Leg(
        pt=pt,
        eta=np.arcsinh(p4[:, 2] / pt),
        phi=np.arctan2(p4[:, 1], p4[:, 0]),
        mass=p4_mass(p4),
        kind=np.full(n, kind),
        decay_mode=np.full(n, decay_mode if kind == 1 else -1),
    )


def collinear_event(
    x1,
    x2,
    mass=125.0,
    tau_mass=M_TAU,
    direction=(0.6, 0.48, 0.64),
    beta=(0.3, -0.1, 0.2),
    kinds=(1, 1),
):
    """Visible legs = x_i * tau_i (collinear neutrinos); MET = the neutrinos' pT sum exactly."""
    t1, t2 = resonance_event(mass, direction, beta, tau_mass)
    nu = (1 - x1) * t1 + (1 - x2) * t2
    return leg_from_p4(x1 * t1, kinds[0]), leg_from_p4(x2 * t2, kinds[1]), nu[:, 0], nu[:, 1]


def cov(sigma, n=1):
    return np.tile(np.diag([sigma**2, sigma**2]), (n, 1, 1))


def concat(*legs):
    return Leg(*(np.concatenate([getattr(g, f) for g in legs]) for f in Leg.__dataclass_fields__))


# ---------------------------------------------------------------- visible and collinear mass


def test_visible_mass_hand_computed():
    legs = [
        # massless, pT 30 at 90 degrees: m^2 = 2 * 30 * 30
        (
            {"pt": 30.0, "eta": 0.0, "phi": 0.0, "mass": 0.0},
            {"pt": 30.0, "eta": 0.0, "phi": np.pi / 2, "mass": 0.0},
        ),
        # back to back pT 40: m = 80
        (
            {"pt": 40.0, "eta": 0.0, "phi": 0.0, "mass": 0.0},
            {"pt": 40.0, "eta": 0.0, "phi": np.pi, "mass": 0.0},
        ),
        # pT 10 at eta +-1, same phi: m^2 = 2 (E1 E2 - p1.p2) = 400 sinh^2(1)
        (
            {"pt": 10.0, "eta": 1.0, "phi": 3.0, "mass": 0.0},
            {"pt": 10.0, "eta": -1.0, "phi": 3.0, "mass": 0.0},
        ),
    ]
    expected = [math.sqrt(1800.0), 80.0, 20.0 * math.sinh(1.0)]

    def stack(i):
        d = {k: np.array([pair[i][k] for pair in legs]) for k in ("pt", "eta", "phi", "mass")}
        return Leg(**d, kind=np.ones(3, int), decay_mode=np.ones(3, int))

    np.testing.assert_allclose(visible_mass(stack(0), stack(1)), expected, rtol=1e-12)


def test_collinear_exact_for_massless_legs():
    # Massless "taus": visible = x * tau is massless, so m_vis = sqrt(x1 x2) M exactly.
    rng = np.random.default_rng(1)
    x_true = rng.uniform(0.05, 1.0, size=(8, 2))
    events = [
        collinear_event(x1, x2, 91.19, 0.0, rng.normal(size=3), rng.uniform(-0.4, 0.4, 3))
        for x1, x2 in x_true
    ]
    leg1, leg2 = concat(*[e[0] for e in events]), concat(*[e[1] for e in events])
    met_x, met_y = np.concatenate([e[2] for e in events]), np.concatenate([e[3] for e in events])
    res = collinear_mass(leg1, leg2, met_x, met_y)
    np.testing.assert_allclose(res.x1, x_true[:, 0], rtol=1e-9)
    np.testing.assert_allclose(res.x2, x_true[:, 1], rtol=1e-9)
    np.testing.assert_allclose(res.mass_raw, 91.19, rtol=1e-9)
    assert res.physical.all()
    np.testing.assert_array_equal(res.mass, res.mass_raw)


def test_collinear_massive_legs_follow_the_note_formula():
    # With massive legs m_vis / sqrt(x1 x2) differs from |tau1 + tau2| by O(m_leg^2 / M^2).
    leg1, leg2, mx, my = collinear_event(0.37, 0.64)
    res = collinear_mass(leg1, leg2, mx, my)
    np.testing.assert_allclose([res.x1[0], res.x2[0]], [0.37, 0.64], rtol=1e-9)
    np.testing.assert_allclose(res.mass_raw, res.m_vis / np.sqrt(0.37 * 0.64), rtol=1e-12)
    np.testing.assert_allclose(res.mass, 125.0, rtol=1e-4)


def test_collinear_unphysical_events_fall_back_to_visible_mass():
    base = {
        "eta": np.zeros(3),
        "mass": np.zeros(3),
        "kind": np.ones(3, int),
        "decay_mode": np.ones(3, int),
    }
    leg1 = Leg(pt=np.full(3, 40.0), phi=np.array([0.0, 0.0, 0.0]), **base)
    # back to back (D = 0), back to back again, and an ordinary pair at 90 degrees
    leg2 = Leg(pt=np.full(3, 30.0), phi=np.array([np.pi, -np.pi, np.pi / 2]), **base)
    # MET along leg 1 for the degenerate ones; for the 90-degree pair MET points away from both
    res = collinear_mass(leg1, leg2, np.array([10.0, 5.0, -10.0]), np.array([0.0, 0.0, -10.0]))
    assert not res.physical.any()
    assert np.isnan(res.x1[:2]).all() and np.isnan(res.mass_raw[:2]).all()
    assert res.x1[2] > 1 and res.x2[2] > 1  # r_i < 0: neutrinos opposite their legs
    np.testing.assert_array_equal(res.mass, res.m_vis)
    np.testing.assert_allclose(res.m_vis, np.sqrt([4800.0, 4800.0, 2400.0]), rtol=1e-12)


# ---------------------------------------------------------------- FastMTT


def test_fastmtt_recovers_grid_truth_with_precise_met():
    # sigma_MET = 0.1 GeV: W_MET is so narrow that only the true (on-grid) x pair survives.
    for kinds in [(1, 1), (3, 1), (2, 3)]:
        leg1, leg2, mx, my = collinear_event(0.37, 0.64, kinds=kinds)
        res = fastmtt(leg1, leg2, mx, my, cov(0.1))
        assert res.valid.all()
        np.testing.assert_allclose([res.x1[0], res.x2[0]], [0.37, 0.64], rtol=1e-12)
        # Leptonic legs are reset to the e/mu mass (as MeasuredTauLepton does), which moves
        # their energy by ~10 MeV, hence the 1e-3 tolerance; hadronic-only events are exact.
        np.testing.assert_allclose(res.mass, 125.0, rtol=1e-12 if kinds == (1, 1) else 1e-3)
        t1, t2 = res.tau1_p4[0], res.tau2_p4[0]
        np.testing.assert_allclose(p4_mass((t1 + t2)[None]), res.mass, rtol=1e-12)
        np.testing.assert_allclose(res.pt, np.hypot(*(t1 + t2)[:2]), rtol=1e-12)


def test_fastmtt_off_grid_truth_within_a_grid_step():
    leg1, leg2, mx, my = collinear_event(0.373, 0.642, mass=91.19, beta=(0.1, 0.5, -0.3))
    res = fastmtt(leg1, leg2, mx, my, cov(1.0))
    assert abs(res.x1[0] - 0.373) <= 0.01 and abs(res.x2[0] - 0.642) <= 0.01
    np.testing.assert_allclose(res.mass, 91.19, rtol=0.02)


def test_fastmtt_mass_term_pulls_low_as_met_resolution_degrades():
    # With MET equal to the true neutrino pT, W_MET peaks at the truth; the mass term
    # ~ m_s^-6 * I(m) falls with m, so the maximum moves to larger x (less neutrino momentum,
    # lower mass) as far as the MET width allows: the estimate falls monotonically with sigma
    # and stays between m_vis and the true mass.
    leg1, leg2, mx, my = collinear_event(0.37, 0.64)
    masses = [fastmtt(leg1, leg2, mx, my, cov(s)).mass[0] for s in (0.1, 1.0, 2.0, 5.0, 10.0)]
    assert masses[0] == pytest.approx(125.0, rel=1e-9)
    assert np.all(np.diff(masses) <= 0)
    assert visible_mass(leg1, leg2)[0] < masses[-1] < 0.8 * 125.0
    res = fastmtt(leg1, leg2, mx, my, cov(10.0))
    assert res.x1[0] >= 0.37 and res.x2[0] >= 0.64


def test_fastmtt_leg_order_leptonic_first():
    # The leptonic mass terms assume the leptonic leg is leg 1; fastmtt orders legs itself and
    # answers in the caller's order, so swapping the inputs swaps the outputs.
    had, mu, mx, my = collinear_event(0.55, 0.3, kinds=(1, 3))
    a, b = fastmtt(had, mu, mx, my, cov(5.0)), fastmtt(mu, had, mx, my, cov(5.0))
    np.testing.assert_array_equal([a.x1, a.x2, a.mass], [b.x2, b.x1, b.mass])
    np.testing.assert_array_equal(a.tau1_p4, b.tau2_p4)
    # ... and equals the reference with the muon first, not the C++ "unsorted" evaluation.
    ref = reference_fastmtt(mu, had, mx[0], my[0], cov(5.0)[0], sort=False)
    unsorted = reference_fastmtt(had, mu, mx[0], my[0], cov(5.0)[0], sort=False)
    assert (b.x1[0], b.x2[0]) == ref[:2]
    assert unsorted[3] != pytest.approx(ref[3], rel=1e-6)  # the order does matter


def test_fastmtt_no_valid_grid_point_gives_nan():
    # Two massless parallel legs (no clamping): m_vis = 0, so L_mass = 0 everywhere.
    leg = {
        "pt": np.array([30.0]),
        "eta": np.zeros(1),
        "phi": np.zeros(1),
        "mass": np.zeros(1),
        "kind": np.ones(1, int),
        "decay_mode": np.ones(1, int),
    }
    res = fastmtt(leg, leg, np.array([5.0]), np.array([0.0]), cov(10.0), clamp_vis_mass=False)
    assert not res.valid[0] and np.isnan(res.mass[0]) and np.isnan(res.tau1_p4).all()


def test_fastmtt_hadronic_mass_clamped_to_1p5_is_not_reset():
    # A tau_h of m_vis = 1.6 GeV is clamped to 1.5 GeV, so x_min = (1.5 / m_tau)^2 = 0.71. The
    # 0.3 GeV reset of x_min is for masses above 1.5 GeV only, but the mass recomputed from the
    # clamped four-vector rounds to 1.5 + O(1e-12) for about a third of kinematics: look for such
    # an event, with the true x = 0.3 of the tau_h leg far below x_min, so a reset shows.
    for seed in range(20):
        rng = np.random.default_rng(seed)
        had, other, mx, my = collinear_event(0.3, 0.64, direction=rng.normal(size=3))
        if p4_mass(to_p4(had.pt, had.eta, had.phi, 1.5))[0] > 1.5:
            break
    else:
        pytest.fail("no event whose clamped tau_h four-vector rounds above 1.5 GeV")

    def run(m):
        leg = Leg(had.pt, had.eta, had.phi, np.array([m]), had.kind, had.decay_mode)
        return fastmtt(leg, other, mx, my, cov(5.0))

    clamped, exact, below = run(1.6), run(1.5), run(1.5 - 1e-9)
    assert clamped.x1[0] >= (1.5 / M_TAU) ** 2
    np.testing.assert_array_equal(clamped.mass, exact.mass)
    # ... and equals the result just below the clamp, where rounding cannot reach 1.5.
    assert (clamped.x1[0], clamped.x2[0]) == (below.x1[0], below.x2[0])
    np.testing.assert_allclose(clamped.mass, below.mass, rtol=1e-6)


def test_fastmtt_mass_quantiles_bracket_the_estimate():
    leg1, leg2, mx, my, v = random_events(np.random.default_rng(5), 6)
    res = fastmtt(leg1, leg2, mx, my, v, grid=49, quantiles=(0.16, 0.5, 0.84))
    q16, q50, q84 = res.mass_quantiles.T
    assert res.mass_quantiles.shape == (6, 3) and res.valid.all()
    assert np.all(q16 < q84) and np.all((q16 <= q50) & (q50 <= q84))
    assert np.all((q16 <= res.mass) & (res.mass <= q84))
    # The default computes no quantiles and leaves the estimate unchanged.
    plain = fastmtt(leg1, leg2, mx, my, v, grid=49)
    assert plain.mass_quantiles.shape == (6, 0)
    np.testing.assert_array_equal(plain.mass, res.mass)
    # A MET resolution of 0.1 GeV leaves one grid point: every quantile is its mass.
    leg1, leg2, mx, my = collinear_event(0.37, 0.64)
    sharp = fastmtt(leg1, leg2, mx, my, cov(0.1), quantiles=(0.16, 0.84))
    np.testing.assert_allclose(sharp.mass_quantiles, [[125.0, 125.0]], rtol=1e-9)


# ---------------------------------------------------------------- vectorisation vs reference


def reference_fastmtt(leg1, leg2, met_x, met_y, v, *, grid=99, sort=True):
    """Slow one-event FastMTT, straight from FastMTT.cc; returns (x1, x2, mass, likelihood)."""
    legs = [
        {k: float(np.asarray(getattr(g, k))[0]) for k in Leg.__dataclass_fields__}
        for g in (leg1, leg2)
    ]
    for g in legs:  # MeasuredTauLepton::setMass
        if g["kind"] == 2:
            g["mass"] = 0.51100e-3
        elif g["kind"] == 3:
            g["mass"] = 0.10566
        elif g["decay_mode"] == 0:
            g["mass"] = 0.13957
        else:
            g["mass"] = min(max(g["mass"], 0.13957 if g["decay_mode"] == -1 else 0.3), 1.5)
    swapped = False
    if sort and ((legs[0]["kind"] == 1) != (legs[1]["kind"] == 1)):
        swapped = legs[0]["kind"] == 1
    elif sort:
        swapped = legs[1]["pt"] > legs[0]["pt"]
    if swapped:
        legs = legs[::-1]

    def p4(g):
        px, py = g["pt"] * math.cos(g["phi"]), g["pt"] * math.sin(g["phi"])
        pz = g["pt"] * math.sinh(g["eta"])
        return [px, py, pz, math.sqrt(px * px + py * py + pz * pz + g["mass"] ** 2)]

    def mass(p):
        return math.sqrt(max(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2, 0.0))

    p1, p2 = p4(legs[0]), p4(legs[1])
    mvis = mass([a + b for a, b in zip(p1, p2, strict=True)])
    # The C++ tests mass(p) > 1.5, which rounding decides for a mass clamped to 1.5; the clamped
    # mass itself is tested here, as fastmtt does (see its module docstring).
    mv = [
        mass(p) if not (g["kind"] == 1 and g["mass"] > 1.5) else 0.3 for p, g in zip((p1, p2), legs)
    ]
    xmin = [min(1.0, (m / M_TAU) ** 2) for m in mv]
    det = v[0, 0] * v[1, 1] - v[0, 1] * v[1, 0]
    best, best_x = 0.0, (0.75, 0.75)
    for i2 in range(1, grid + 1):
        for i1 in range(1, grid + 1):
            x1, x2 = i1 * (1.0 / (grid + 1)), i2 * (1.0 / (grid + 1))
            if x1 < xmin[0] or x2 < xmin[1]:
                continue
            tau = [a / x1 + b / x2 for a, b in zip(p1, p2, strict=True)]
            rx, ry = met_x - (tau[0] - p1[0] - p2[0]), met_y - (tau[1] - p1[1] - p2[1])
            pull2 = (v[1, 1] * rx * rx - (v[0, 1] + v[1, 0]) * rx * ry + v[0, 0] * ry * ry) / det
            w_met = math.exp(-0.5 * pull2) / (2 * math.pi * math.sqrt(det))
            ms = mass(tau) / 1.15
            if ms < mvis:
                continue
            r = (mvis / ms) ** 2
            lo, hi = max((mv[1] / M_TAU) ** 2, r), min(1.0, r / xmin[0])
            if hi < lo:
                continue
            integral = math.log(hi) - math.log(lo)
            if legs[0]["kind"] != 1:
                integral += r * (1 / hi - 1 / lo)
            if legs[1]["kind"] != 1:
                integral += r * (math.log(hi) - math.log(lo)) - (hi - lo)
            like = w_met * 1e9 * 2 * mvis**2 * ms**-6 * integral
            if like > best:
                best, best_x = like, (x1, x2)
    x1, x2 = best_x
    tau = [a / x1 + b / x2 for a, b in zip(p1, p2, strict=True)]
    return (x2, x1, mass(tau), best) if swapped else (x1, x2, mass(tau), best)


def random_events(rng, n):
    """Realistic-looking events: legs of 20-80 GeV, mixed channels and leg orders."""
    kinds = rng.choice([1, 2, 3], size=(n, 2))
    legs = []
    for i in range(2):
        had = kinds[:, i] == 1
        legs.append(
            Leg(
                pt=rng.uniform(20, 80, n),
                eta=rng.uniform(-2.3, 2.3, n),
                phi=rng.uniform(-np.pi, np.pi, n),
                mass=np.where(had, rng.uniform(0.1, 1.7, n), 0.1),
                kind=kinds[:, i],
                decay_mode=np.where(had, rng.choice([0, 1, 10, -1], n), -1),
            )
        )
    met = rng.normal(0, 30, size=(n, 2))
    a = rng.uniform(50, 600, size=(n, 2))
    c = rng.uniform(-0.5, 0.5, n) * np.sqrt(a[:, 0] * a[:, 1])
    v = np.stack([np.stack([a[:, 0], c], 1), np.stack([c, a[:, 1]], 1)], 1)
    return legs[0], legs[1], met[:, 0], met[:, 1], v


@pytest.mark.parametrize("grid,n", [(99, 4), (19, 40)])
def test_chunked_vectorised_scan_matches_reference(grid, n):
    rng = np.random.default_rng(7)
    leg1, leg2, mx, my, v = random_events(rng, n)
    res = fastmtt(leg1, leg2, mx, my, v, grid=grid, chunk_size=3)
    for i in range(n):
        one = [
            Leg(*(np.asarray(getattr(g, f))[i : i + 1] for f in Leg.__dataclass_fields__))
            for g in (leg1, leg2)
        ]
        x1, x2, m, like = reference_fastmtt(*one, mx[i], my[i], v[i], grid=grid)
        assert (res.x1[i], res.x2[i]) == (x1, x2)
        assert res.mass[i] == pytest.approx(m, rel=1e-12)
        assert res.likelihood[i] == pytest.approx(like, rel=1e-9)


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_value_error():
    rng = np.random.default_rng(3)
    leg1, leg2, mx, my, v = random_events(rng, 5)
    with pytest.raises(ValueError, match="inconsistent number of events"):
        fastmtt(leg1, Leg(*(getattr(leg2, f)[:4] for f in Leg.__dataclass_fields__)), mx, my, v)
    with pytest.raises(ValueError, match="met_x"):
        collinear_mass(leg1, leg2, mx[:4], my)
    bad_pt = leg1.pt.copy()
    bad_pt[2] = np.nan
    with pytest.raises(ValueError, match="leg1.pt: 1 non-finite value.*event 2"):
        fastmtt(
            Leg(bad_pt, *(getattr(leg1, f) for f in ("eta", "phi", "mass", "kind", "decay_mode"))),
            leg2,
            mx,
            my,
            v,
        )
    v_bad = v.copy()
    v_bad[1] = [[400.0, 400.0], [400.0, 400.0]]  # det V = 0
    with pytest.raises(ValueError, match="singular or not positive definite.*event 1"):
        fastmtt(leg1, leg2, mx, my, v_bad)
    with pytest.raises(ValueError, match=r"expected shape \(5, 2, 2\)"):
        fastmtt(leg1, leg2, mx, my, v[:, 0])
    with pytest.raises(ValueError, match=r"quantiles: levels must lie in \(0, 1\)"):
        fastmtt(leg1, leg2, mx, my, v, quantiles=(0.16, 1.0))
    with pytest.raises(ValueError, match="leg2.kind: 4"):
        visible_mass(leg1, {**leg2.__dict__, "kind": np.full(5, 4)})
    with pytest.raises(ValueError, match="missing field"):
        visible_mass(leg1, {"pt": leg2.pt})
