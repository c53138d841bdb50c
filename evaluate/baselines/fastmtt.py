"""FastMTT di-tau mass, vectorised over events with numpy.

Re-implements the published FastMTT of SVfit/ClassicSVfit, branch ``fastMTT_19_02_2019``,
``src/FastMTT.cc`` (cited below as "FastMTT.cc"), with its default components (MET and MASS; the
PX/PY/ENERGY/IP terms are off there by default). Under the collinear hypothesis
``tau_i = vis_i / x_i`` the likelihood ``L(x1, x2) = W_MET * L_mass`` is maximised by a scan over
the grid ``x1, x2 in {0.01, ..., 0.99}`` (``FastMTT::scan``).

- ``W_MET = exp(-1/2 d^T V^-1 d) / (2 pi sqrt(det V))``, ``d = MET - p_nu,T`` with
  ``p_nu = tau1 + tau2 - vis1 - vis2`` (``Likelihood::metTF``).
- ``L_mass = 1e9 * 2 m_vis^2 * m_s^-kappa * I`` with ``m_s = m / 1.15`` and the analytic integral
  ``I`` including the leptonic-leg terms (``Likelihood::massLikelihood``).
- ``L = 0`` where ``x_i < min(1, m_vis,i^2 / m_tau^2)`` (``Likelihood::value``).

Differences from the C++, all deliberate: the legs are ordered as ``FastMTT::run`` intends
(leptonic first, else higher pT first; the C++ sorts but then uses the unsorted legs), and
results are returned in the caller's leg order; the scan runs in log space, so an event whose
likelihood underflows double precision still gets its maximum; an event with no grid point of
non-zero likelihood gets NaN instead of the C++ fallback ``x = (0.75, 0.75)``; the 0.3 GeV
reset of hadronic ``m_vis > 1.5 GeV`` (``Likelihood::setLeptonInputs``) tests the leg's clamped
input mass, as the Python port does, not the mass recomputed from its four-vector as the C++ does
(a leg clamped to 1.5 GeV recomputes to 1.5 + O(1e-12) GeV for about a third of kinematics, so
there rounding decides whether it is reset).

Optionally (``quantiles=``) the per-event quantiles of ``m`` under the scanned likelihood are
returned too, as FastMTT's own mass uncertainty (see :func:`fastmtt`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from evaluate.baselines.collinear import (
    ELECTRON,
    HADRONIC,
    MUON,
    TAU_MASS,
    Leg,
    as_leg,
    as_met,
    check_same_length,
    p4_mass,
    to_p4,
)

# Particle masses in GeV as in classic_svFit (svFitAuxFunctions.h).
ELECTRON_MASS, MUON_MASS, CHARGED_PION_MASS = 0.51100e-3, 0.10566, 0.13957
DET_MIN = 1e-10  # Likelihood::metTF: |det V| < 1e-10 -> "Cannot invert MET covariance"
LIKELIHOOD_SCALE = 1e9  # Likelihood::massLikelihood: "The E9 factor to get values around 1.0"


class FastMTTResult(NamedTuple):
    """Output of :func:`fastmtt`, in the caller's leg order.

    Attributes:
        mass: Di-tau mass ``|tau1 + tau2|`` in GeV, shape (N,).
        pt: Di-tau transverse momentum in GeV, shape (N,).
        x1: Best visible energy fraction of leg 1 (a grid value), shape (N,).
        x2: Best visible energy fraction of leg 2, shape (N,).
        tau1_p4: ``leg1 / x1`` as (px, py, pz, E) in GeV, shape (N, 4).
        tau2_p4: ``leg2 / x2``, shape (N, 4).
        likelihood: ``L`` at the maximum (positive; the C++ reports ``-L``); may underflow to 0.
        valid: False where no grid point has ``L > 0``; all other fields are NaN there.
        mass_quantiles: Quantiles of ``m`` under the scanned likelihood, one column per entry of
            the ``quantiles`` argument of :func:`fastmtt`, shape (N, Q); (N, 0) by default.
    """

    mass: np.ndarray
    pt: np.ndarray
    x1: np.ndarray
    x2: np.ndarray
    tau1_p4: np.ndarray
    tau2_p4: np.ndarray
    likelihood: np.ndarray
    valid: np.ndarray
    mass_quantiles: np.ndarray


def clamp_visible_mass(leg: Leg) -> np.ndarray:
    """Visible masses as ``MeasuredTauLepton::setMass`` (ClassicSVfit) sets them, shape (N,).

    Electrons and muons get their PDG mass; hadronic taus are clipped to [m_pi, 1.5] GeV for
    decay mode -1, fixed to m_pi for decay mode 0 and clipped to [0.3, 1.5] GeV otherwise.
    """
    lo = np.where(leg.decay_mode <= 0, CHARGED_PION_MASS, 0.3)
    hi = np.where(leg.decay_mode == 0, CHARGED_PION_MASS, 1.5)
    had = np.clip(leg.mass, lo, hi)
    return np.select([leg.kind == ELECTRON, leg.kind == MUON], [ELECTRON_MASS, MUON_MASS], had)


def as_met_cov(met_cov, n: int) -> np.ndarray:
    """Validates MET covariances: shape (n, 2, 2), finite, symmetric, positive definite."""
    v = np.asarray(met_cov, dtype=np.float64)
    if v.shape != (n, 2, 2):
        raise ValueError(f"met_cov: expected shape ({n}, 2, 2), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("met_cov: non-finite value(s)")
    asym = np.abs(v[:, 0, 1] - v[:, 1, 0]) > 1e-6 * (np.abs(v[:, 0, 0]) + np.abs(v[:, 1, 1]))
    if np.any(asym):
        raise ValueError(f"met_cov: not symmetric at event {np.flatnonzero(asym)[0]}")
    det = v[:, 0, 0] * v[:, 1, 1] - v[:, 0, 1] * v[:, 1, 0]
    bad = (det < DET_MIN) | (v[:, 0, 0] <= 0)
    if np.any(bad):
        i = np.flatnonzero(bad)
        raise ValueError(
            f"met_cov: {i.size} event(s) singular or not positive definite "
            f"(det V < {DET_MIN:g}), first at event {i[0]} with det {det[i[0]]:.3g}"
        )
    return v


def _scan(p1, p2, m_vis, xmin1, xmin2, lep1, lep2, met, icov, x, kappa, mass_scale, q):
    """Log-likelihood grid scan for one chunk of B events over G x G grid points.

    Args are per event (leading axis B): legs ``p1, p2`` (B, 4); ``m_vis, xmin1, xmin2`` (B,);
    ``lep1, lep2`` bool (B,); ``met`` (B, 2); inverse covariance ``icov`` (B, 3) as
    ``(xx, xy, yy)``; ``x`` the grid (G,); ``q`` the quantile levels (Q,). Returns the flat best
    index (x2-major, as the C++ loop order, so ties go to the same point) and its log-likelihood
    without event constants, (B,), and the mass quantiles (B, Q) (NaN for events without L > 0).
    """
    b, g = p1.shape[0], x.shape[0]
    r = 1.0 / x - 1.0  # neutrino-to-visible momentum ratio, (G,)
    col = (slice(None), None, None)  # per-event scalar -> (B, 1, 1)
    # Axis 1 indexes x2, axis 2 indexes x1: (B, G, 1) - (B, 1, G) -> (B, G, G).
    dx = (met[:, 0, None] - p2[:, 0, None] * r)[:, :, None] - (p1[:, 0, None] * r)[:, None, :]
    dy = (met[:, 1, None] - p2[:, 1, None] * r)[:, :, None] - (p1[:, 1, None] * r)[:, None, :]
    pull2 = dx * dx
    pull2 *= icov[col + (0,)]
    dx *= dy
    dx *= 2.0 * icov[col + (1,)]
    pull2 += dx
    dy *= dy
    dy *= icov[col + (2,)]
    pull2 += dy
    del dx, dy

    # m^2 = |p1/x1 + p2/x2|^2 = m1^2/x1^2 + m2^2/x2^2 + 2 p1.p2 / (x1 x2); m_s = m * mass_scale.
    u = 1.0 / x
    m1sq, m2sq = _minkowski(p1, p1), _minkowski(p2, p2)
    ms2 = (2.0 * _minkowski(p1, p2))[col] * np.multiply.outer(u, u)
    ms2 += (m1sq[:, None] * u**2)[:, None, :]
    ms2 += (m2sq[:, None] * u**2)[:, :, None]
    ms2 *= mass_scale**2

    # Likelihood::massLikelihood: integral over x2 in [x2lo, x2hi] of the delta(m) constraint.
    x1min = np.minimum(1.0, xmin1)[col]
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN/inf only where L = 0 anyway
        rr = (m_vis**2)[col] / ms2  # (m_vis / m_s)^2; L_mass = 0 where m_s < m_vis: rr > 1
        x2lo = np.maximum(xmin2[col], rr)
        x2hi = np.minimum(1.0, rr / x1min)
        log_ratio = np.log(x2hi / x2lo)
        integral = log_ratio.copy()
        # Leptonic legs add their m_nunu integral terms; the 0/1 factor keeps this branch-free
        # (a NaN it makes from 0 * inf sits where L = 0 anyway and fails `integral > 0`).
        if lep1.any():
            integral += lep1.astype(np.float64)[col] * rr * (1.0 / x2hi - 1.0 / x2lo)
        if lep2.any():
            integral += lep2.astype(np.float64)[col] * (rr * log_ratio - (x2hi - x2lo))
        ok = (rr <= 1.0) & (x2hi >= x2lo) & (integral > 0.0)
        # Likelihood::value: L = 0 below the kinematic x_min of each leg.
        ok &= (x >= np.minimum(1.0, xmin1)[:, None])[:, None, :]
        ok &= (x >= np.minimum(1.0, xmin2)[:, None])[:, :, None]
        logl = -0.5 * pull2 + np.log(integral) - 0.5 * kappa * np.log(ms2)
    logl = np.where(ok, logl, -np.inf).reshape(b, g * g)
    best = np.argmax(logl, axis=1)
    best_logl = logl[np.arange(b), best]
    if q.size == 0:
        return best, best_logl, np.empty((b, 0))
    # Quantiles of m with weights L: the inverse of the step CDF of the grid masses sorted per
    # event; the first mass where the CDF reaches q carries weight > 0 for 0 < q < 1.
    m = np.sqrt(ms2.reshape(b, g * g)) / mass_scale
    order = np.argsort(m, axis=1)
    with np.errstate(invalid="ignore"):  # -inf - -inf: events without L > 0, NaN below
        cdf = np.cumsum(np.exp(np.take_along_axis(logl, order, 1) - best_logl[:, None]), axis=1)
    cdf /= cdf[:, -1:]
    k = (cdf[:, None, :] < q[None, :, None]).sum(axis=2)  # first index with CDF >= q, (B, Q)
    mq = np.take_along_axis(np.take_along_axis(m, order, 1), np.minimum(k, g * g - 1), 1)
    return best, best_logl, np.where(np.isfinite(best_logl)[:, None], mq, np.nan)


def _minkowski(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minkowski product of (B, 4) four-vectors (px, py, pz, E), shape (B,)."""
    return a[:, 3] * b[:, 3] - a[:, 0] * b[:, 0] - a[:, 1] * b[:, 1] - a[:, 2] * b[:, 2]


def fastmtt(
    leg1: Leg | Mapping,
    leg2: Leg | Mapping,
    met_x,
    met_y,
    met_cov,
    *,
    grid: int = 99,
    kappa: float = 6.0,
    mass_scale: float = 1.0 / 1.15,
    clamp_vis_mass: bool = True,
    chunk_size: int = 128,
    quantiles: Sequence[float] = (),
) -> FastMTTResult:
    """FastMTT di-tau mass: grid maximum of ``W_MET * L_mass`` over (x1, x2).

    With ``quantiles``, also FastMTT's own per-event mass uncertainty: each grid point
    ``(x1, x2)`` has the mass ``m = |leg1 / x1 + leg2 / x2|`` and the weight ``L(x1, x2)``
    (normalised over the grid, i.e. the likelihood integrated over a uniform ``dx1 dx2``); the
    quantile ``q`` is the smallest grid mass at which the cumulative weight of the masses sorted
    in ascending order reaches ``q``. The point estimate (the grid maximum) usually lies between
    the 0.16 and 0.84 quantiles, but a skewed likelihood need not put it there.

    Example:
        ``res = fastmtt(leg1, leg2, met_x, met_y, met_cov, quantiles=(0.16, 0.84))``, then
        ``q16, q84 = res.mass_quantiles.T``.

    Args:
        leg1: First visible leg, fields of shape (N,) (see :class:`Leg`).
        leg2: Second visible leg, fields of shape (N,).
        met_x: MET x component in GeV, shape (N,).
        met_y: MET y component in GeV, shape (N,).
        met_cov: MET covariance in GeV^2, shape (N, 2, 2).
        grid: Grid points per axis, ``x = k / (grid + 1)`` for ``k = 1..grid`` (FastMTT::scan:
            ``nGridPoints = 100``, i.e. 99 points 0.01..0.99).
        kappa: Power of the ``m_s^-kappa`` term (FastMTT::initialize: ``shapeParams = {6, ..}``).
        mass_scale: ``m_s = m * mass_scale`` (FastMTT::initialize: ``1.0 / 1.15``).
        clamp_vis_mass: First clamp leg masses as ``MeasuredTauLepton`` does (see
            :func:`clamp_visible_mass`); the leg four-vectors then use the clamped masses.
        chunk_size: Events per vectorised block (memory ~ 10 * chunk_size * grid^2 * 8 bytes).
        quantiles: Levels in (0, 1) of the mass quantiles to return in ``mass_quantiles``
            (e.g. ``(0.16, 0.84)``); empty (the default) skips their computation (a sort of
            the grid masses per event, which makes a call 2-3 times slower).

    Returns:
        A :class:`FastMTTResult` in the caller's leg order. Events with no grid point of
        non-zero likelihood (e.g. a zero visible mass) have ``valid = False`` and NaN fields.

    Raises:
        ValueError: inconsistent lengths, non-finite values, bad leg fields, or a MET
            covariance that is not symmetric positive definite with ``det V >= 1e-10``
            (the C++ returns ``W_MET = 0`` for every grid point of such an event), or a
            quantile level outside (0, 1).
    """
    l1, l2 = as_leg(leg1, "leg1"), as_leg(leg2, "leg2")
    n = check_same_length(l1.pt, l2.pt, np.asarray(met_cov), names=("leg1", "leg2", "met_cov"))
    mx, my = as_met(met_x, met_y, n)
    v = as_met_cov(met_cov, n)
    if grid < 1 or chunk_size < 1:
        raise ValueError(f"grid ({grid}) and chunk_size ({chunk_size}) must be >= 1")
    q = np.asarray(quantiles, dtype=np.float64).reshape(-1)
    if np.any(~((q > 0) & (q < 1))):
        raise ValueError(f"quantiles: levels must lie in (0, 1), got {list(q)}")

    # Order legs as FastMTT::compareLeptons intends: leptonic before hadronic, else higher pT.
    lep_a, lep_b = l1.kind != HADRONIC, l2.kind != HADRONIC
    swap = np.where(lep_a != lep_b, lep_b, l2.pt > l1.pt)
    mass_a = clamp_visible_mass(l1) if clamp_vis_mass else l1.mass
    mass_b = clamp_visible_mass(l2) if clamp_vis_mass else l2.mass
    pa, pb = to_p4(l1.pt, l1.eta, l1.phi, mass_a), to_p4(l2.pt, l2.eta, l2.phi, mass_b)
    p1, p2 = np.where(swap[:, None], pb, pa), np.where(swap[:, None], pa, pb)
    lep1, lep2 = np.where(swap, lep_b, lep_a), np.where(swap, lep_a, lep_b)
    m_in1, m_in2 = np.where(swap, mass_b, mass_a), np.where(swap, mass_a, mass_b)
    # Likelihood::setLeptonInputs: hadronic m_vis > 1.5 GeV is reset to 0.3 GeV for x_min; the
    # four-vectors keep their mass. Test the input mass, not p4_mass(p): a leg clamped to 1.5 GeV
    # recomputes to 1.5 + 1e-12 GeV about a third of the time and would get the reset, so it
    # applies only to masses really above 1.5 GeV (clamp_vis_mass=False).
    mvis_leg = []
    for p, lep, m_in in ((p1, lep1, m_in1), (p2, lep2, m_in2)):
        mvis_leg.append(np.where(~lep & (m_in > 1.5), 0.3, p4_mass(p)))
    xmin1, xmin2 = (mvis_leg[0] / TAU_MASS) ** 2, (mvis_leg[1] / TAU_MASS) ** 2
    m_vis = p4_mass(p1 + p2)

    det = v[:, 0, 0] * v[:, 1, 1] - v[:, 0, 1] * v[:, 1, 0]
    icov = (
        np.stack([v[:, 1, 1], -0.5 * (v[:, 0, 1] + v[:, 1, 0]), v[:, 0, 0]], axis=1) / det[:, None]
    )
    met = np.stack([mx, my], axis=1)
    x = np.arange(1, grid + 1) * (1.0 / (grid + 1))  # as FastMTT::scan: iX * gridFactor

    best = np.empty(n, dtype=np.int64)
    best_logl = np.empty(n)
    mass_q = np.empty((n, q.size))
    for s in range(0, n, chunk_size):
        sl = slice(s, s + chunk_size)
        best[sl], best_logl[sl], mass_q[sl] = _scan(
            p1[sl], p2[sl], m_vis[sl], xmin1[sl], xmin2[sl], lep1[sl], lep2[sl],
            met[sl], icov[sl], x, kappa, mass_scale, q,
        )  # fmt: skip

    valid = np.isfinite(best_logl)
    x1 = np.where(valid, x[best % grid], np.nan)
    x2 = np.where(valid, x[best // grid], np.nan)
    tau1, tau2 = p1 / x1[:, None], p2 / x2[:, None]
    total = tau1 + tau2
    with np.errstate(divide="ignore"):  # m_vis = 0 only for invalid events
        log_norm = np.log(LIKELIHOOD_SCALE * 2.0 * m_vis**2) - np.log(2.0 * np.pi * np.sqrt(det))
    likelihood = np.where(valid, np.exp(best_logl + log_norm), np.nan)
    # Back to the caller's leg order.
    x1, x2 = np.where(swap, x2, x1), np.where(swap, x1, x2)
    tau1, tau2 = np.where(swap[:, None], tau2, tau1), np.where(swap[:, None], tau1, tau2)
    return FastMTTResult(
        mass=p4_mass(total),
        pt=np.hypot(total[:, 0], total[:, 1]),
        x1=x1,
        x2=x2,
        tau1_p4=tau1,
        tau2_p4=tau2,
        likelihood=likelihood,
        valid=valid,
        mass_quantiles=mass_q,
    )
