"""Neutrino-momentum ellipses for t -> b l nu and their intersection (batched numpy).

Implements the ellipse method of Betchart, Demina, Harel, "Analytic solutions for neutrino
momenta in decay of top quarks", NIM A 736 (2014) 169, arXiv:1305.1878 ("BDH" below).

* `neutrino_ellipse`: Sec. 2 of BDH. The W and top mass constraints confine p_nu to an ellipse,
  p_nu(t) = H (cos t, sin t, 1)^T, with H = R_T H~ built from b, lepton, m_t and m_W.
* `intersect_ellipses`: Sec. 3 of BDH (dilepton). The nu transverse ellipse is intersected with
  the nubar ellipse mapped through MET (nbar = S^T Nbar S, S = V0 - diag(1, 1, -1)). Instead of
  factoring the degenerate conic as BDH do, the nubar condition is written on the nu ellipse
  parameter t and the tangent half-angle substitution u = tan((t - t0) / 2) gives the same
  intersection as a quartic in u (at most 4 real roots), solved for all events at once from the
  eigenvalues of batched companion matrices.
* `closest_approach`: BDH's fallback when the ellipses do not meet: minimise
  |nu_T(t) + nubar_T(tbar) - MET|^2 over the two ellipse parameters (least squares, as in their
  public `nuSolutions.doubleNeutrinoSolutions`), here a coarse grid then damped Gauss-Newton.
"""

import numpy as np

_UNIT = np.diag([1.0, 1.0, -1.0])  # the unit circle x^2 + y^2 - 1 = 0 as a conic


def _dot3(a, b):
    return np.einsum("...i,...i->...", a, b)


def neutrino_ellipse(b, lep, m_top, m_w, m_nu=0.0):
    """Ellipse H of neutrino momenta compatible with the top and W masses (BDH Sec. 2).

    Args:
        b: (N, 4) b-quark (jet) four-momenta (px, py, pz, E), GeV.
        lep: (N, 4) charged-lepton four-momenta from the same top, GeV.
        m_top: top mass, GeV (scalar or (N,)).
        m_w: W mass, GeV (scalar or (N,)).
        m_nu: neutrino mass, GeV.

    Returns:
        h: (N, 3, 3) matrices such that p_nu(t) = h @ (cos t, sin t, 1) for t in [0, 2 pi).
        z2: (N,) BDH's Z^2; Z^2 < 0 means no neutrino satisfies both masses, and h is then the
            degenerate (Z = 0) point closest to a solution.
    """
    pb3, pl3 = b[:, :3], lep[:, :3]
    eb, el = b[:, 3], lep[:, 3]
    pb, pl = np.linalg.norm(pb3, axis=1), np.linalg.norm(pl3, axis=1)
    mb2, ml2 = eb**2 - pb**2, el**2 - pl**2
    beta_b, beta_l = pb / eb, pl / el
    ub, ul = pb3 / pb[:, None], pl3 / pl[:, None]
    c = np.clip(_dot3(ub, ul), -1.0, 1.0)  # cos of the b-lepton opening angle
    s = np.sqrt(1.0 - c**2)
    mt2, mw2, mn2 = np.square(m_top), np.square(m_w), m_nu**2
    # Linear relations from the two mass constraints, in the frame with the lepton along x and
    # the b in the x-y plane (BDH Sec. 2: x0, x0', S_x, S_y, omega, Omega^2, eps^2).
    x0p = -(mt2 - mw2 - mb2) / (2 * eb)
    x0 = -(mw2 - ml2 - mn2) / (2 * el)
    sx = (x0 * beta_l - pl * (1 - beta_l**2)) / beta_l**2
    sy = (x0p / beta_b - c * sx) / s
    w = (beta_l / beta_b - c) / s
    om2 = w**2 + 1 - beta_l**2
    eps2 = (mw2 - mn2) * (1 - beta_l**2)
    x1 = sx - (sx + w * sy) / om2
    y1 = sy - (sx + w * sy) * w / om2
    z2 = x1**2 * om2 - (sy - w * sx) ** 2 - (mw2 - x0**2 - eps2)
    z = np.sqrt(np.maximum(z2, 0.0))
    om = np.sqrt(om2)
    n = len(b)
    h_tilde = np.zeros((n, 3, 3))
    h_tilde[:, 0, 0] = z / om
    h_tilde[:, 0, 2] = x1 - pl
    h_tilde[:, 1, 0] = w * z / om
    h_tilde[:, 1, 2] = y1
    h_tilde[:, 2, 1] = z
    # R_T: rotation from that frame back to the lab; columns are the frame axes in the lab.
    ey = (ub - c[:, None] * ul) / s[:, None]
    rot = np.stack([ul, ey, np.cross(ul, ey)], axis=-1)  # (N, 3, 3)
    return rot @ h_tilde, z2


def ellipse_points(h, t):
    """Points h @ (cos t, sin t, 1).

    Args:
        h: (N, 3, 3) ellipse matrices.
        t: (N,) or (N, K) ellipse parameters.

    Returns:
        (N, 3) or (N, K, 3) points.
    """
    e = np.stack([np.cos(t), np.sin(t), np.ones_like(t)], axis=-1)
    if e.ndim == 2:
        return np.einsum("nij,nj->ni", h, e)
    return np.einsum("nij,nkj->nki", h, e)


def _perp(h):
    """H_perp of BDH: transverse rows of H with (0, 0, 1) as last row, (N, 3, 3)."""
    hp = h.copy()
    hp[:, 2] = (0.0, 0.0, 1.0)
    return hp


def _quadratic_form(m, t):
    """f(t) = e(t)^T m e(t) and df/dt for symmetric m (N, 3, 3), t (N, K)."""
    e = np.stack([np.cos(t), np.sin(t), np.ones_like(t)], axis=-1)
    de = np.stack([-np.sin(t), np.cos(t), np.zeros_like(t)], axis=-1)
    me = np.einsum("nij,nkj->nki", m, e)
    return np.sum(e * me, axis=-1), 2.0 * np.sum(de * me, axis=-1)


def intersect_ellipses(h, hbar, met, tol=1e-6):
    """Neutrino pairs on both ellipses whose transverse sum equals MET (BDH Sec. 3).

    Args:
        h: (N, 3, 3) nu ellipses; every event needs Z^2 > 0 on both sides.
        hbar: (N, 3, 3) nubar ellipses.
        met: (N, 2) missing transverse momentum (x, y), GeV.
        tol: accepted |f(t)| of a root, where f = 0 is the nubar unit circle (dimensionless).

    Returns:
        nu: (N, 4, 3) neutrino three-momenta, one row per root slot.
        nubar: (N, 4, 3) antineutrino three-momenta.
        valid: (N, 4) bool, True where the slot holds a real intersection.
    """
    n = len(h)
    hp, hbp = _perp(h), _perp(hbar)
    s = np.tile(-_UNIT, (n, 1, 1))  # S = V0 - U maps the nu transverse point to nubar's
    s[:, :2, 2] = met
    # K e(t) = (cos tbar, sin tbar, 1) * scale: the nubar ellipse parameter of nubar_T = MET - nu_T.
    k = np.linalg.solve(hbp, s @ hp)
    m = np.swapaxes(k, 1, 2) @ _UNIT @ k  # f(t) = e^T m e = 0 <=> nubar on its ellipse
    # Put the point at u = inf (t = t0 + pi) where |f| is largest, so that the quartic's leading
    # coefficient is never small.
    grid = np.linspace(0.0, 2 * np.pi, 8, endpoint=False)
    f_grid, _ = _quadratic_form(m, np.broadcast_to(grid, (n, 8)))
    scale = np.max(np.abs(f_grid), axis=1)
    t0 = grid[np.argmax(np.abs(f_grid), axis=1)] - np.pi
    c0, s0 = np.cos(t0), np.sin(t0)
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c0, -s0, s0, c0, 1.0
    q = np.swapaxes(rot, 1, 2) @ m @ rot / scale[:, None, None]
    # (1 + u^2)^2 f with cos = (1 - u^2)/(1 + u^2), sin = 2u/(1 + u^2): coefficients u^4 .. u^0.
    coef = np.stack(
        [
            q[:, 0, 0] + q[:, 2, 2] - 2 * q[:, 0, 2],
            4 * (q[:, 1, 2] - q[:, 0, 1]),
            -2 * q[:, 0, 0] + 4 * q[:, 1, 1] + 2 * q[:, 2, 2],
            4 * (q[:, 0, 1] + q[:, 1, 2]),
            q[:, 0, 0] + q[:, 2, 2] + 2 * q[:, 0, 2],
        ],
        axis=1,
    )
    comp = np.zeros((n, 4, 4))
    comp[:, 1:, :3] = np.eye(3)
    comp[:, :, 3] = -coef[:, :0:-1] / coef[:, :1]  # monic companion matrix, last column
    u = np.linalg.eigvals(comp)  # (N, 4)
    near_real = np.abs(u.imag) <= 1e-3 * (1.0 + np.abs(u.real))
    t = t0[:, None] + 2.0 * np.arctan(u.real)
    for _ in range(3):  # Newton polish on f(t), keeping a step only if it lowers |f|
        f, df = _quadratic_form(m, t)
        step = np.where(np.abs(df) > 0, f / np.where(df == 0, 1.0, df), 0.0)
        f_new, _ = _quadratic_form(m, t - step)
        t = np.where(np.abs(f_new) < np.abs(f), t - step, t)
    f, _ = _quadratic_form(m, t)
    valid = near_real & (np.abs(f) < tol)
    for j in range(1, 4):  # a double root (tangent ellipses) counts once
        dt = np.angle(np.exp(1j * (t[:, j : j + 1] - t[:, :j])))
        valid[:, j] &= ~np.any(valid[:, :j] & (np.abs(dt) < 1e-7), axis=1)
    nu = ellipse_points(h, t)
    kbar = np.einsum("nij,nkj->nki", k, np.stack([np.cos(t), np.sin(t), np.ones_like(t)], -1))
    tbar = np.arctan2(kbar[..., 1], kbar[..., 0])  # back onto the nubar ellipse exactly
    nubar = ellipse_points(hbar, tbar)
    return nu, nubar, valid


def closest_approach(h, hbar, met, n_grid=24, n_iter=30):
    """Least-squares MET fallback: points on both ellipses with the closest transverse sum.

    Minimises chi2(t, tbar) = |nu_T(t) + nubar_T(tbar) - MET|^2 (GeV^2), as BDH's fallback does,
    from the best point of an n_grid x n_grid scan with damped Gauss-Newton steps.

    Args:
        h: (N, 3, 3) nu ellipses.
        hbar: (N, 3, 3) nubar ellipses.
        met: (N, 2) missing transverse momentum, GeV.
        n_grid: scan points per ellipse parameter.
        n_iter: Gauss-Newton iterations.

    Returns:
        nu: (N, 3), nubar: (N, 3) three-momenta on the ellipses, chi2: (N,) GeV^2.
    """
    n = len(h)
    if n == 0:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0)
    grid = np.linspace(0.0, 2 * np.pi, n_grid, endpoint=False)
    g = np.broadcast_to(grid, (n, n_grid))
    a = ellipse_points(h, g)[..., :2]  # (N, G, 2)
    ab = ellipse_points(hbar, g)[..., :2]
    r = a[:, :, None] + ab[:, None, :] - met[:, None, None]
    best = np.argmin(np.sum(r**2, axis=-1).reshape(n, -1), axis=1)
    t, tb = grid[best // n_grid], grid[best % n_grid]

    def resid(t, tb):
        return ellipse_points(h, t)[:, :2] + ellipse_points(hbar, tb)[:, :2] - met

    r = resid(t, tb)
    chi2 = np.sum(r**2, axis=1)
    lam = np.full(n, 1e-3)
    for _ in range(n_iter):
        jac = np.stack(
            [
                h[:, :2, 1] * np.cos(t)[:, None] - h[:, :2, 0] * np.sin(t)[:, None],
                hbar[:, :2, 1] * np.cos(tb)[:, None] - hbar[:, :2, 0] * np.sin(tb)[:, None],
            ],
            axis=-1,
        )  # (N, 2, 2): d r / d (t, tbar)
        jtj = np.swapaxes(jac, 1, 2) @ jac
        damp = lam[:, None, None] * (jtj * np.eye(2) + 1e-9 * np.eye(2))
        step = np.linalg.solve(jtj + damp, np.einsum("nji,nj->ni", jac, r)[..., None])[..., 0]
        t_new, tb_new = t - step[:, 0], tb - step[:, 1]
        r_new = resid(t_new, tb_new)
        chi2_new = np.sum(r_new**2, axis=1)
        better = chi2_new < chi2
        t, tb = np.where(better, t_new, t), np.where(better, tb_new, tb)
        r, chi2 = np.where(better[:, None], r_new, r), np.where(better, chi2_new, chi2)
        lam = np.where(better, lam * 0.3, lam * 10.0)
    return ellipse_points(h, t), ellipse_points(hbar, tb), chi2
