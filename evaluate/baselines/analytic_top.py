"""Analytic dilepton ttbar reconstruction: the ellipse method with an m_tt ambiguity rule.

For each event the neutrino momenta are solved from the W and top mass constraints and the MET
with the ellipse method of Betchart, Demina, Harel, NIM A 736 (2014) 169, arXiv:1305.1878 (see
`nu_ellipse`), and the tops are rebuilt as t = b + l+ + nu, tbar = bbar + l- + nubar.

Choices, per event:

* Real solutions (up to 4 per b-lepton pairing): the candidate chosen by `rule`:
  ``"min_mtt"`` (default) the smallest m(t tbar), the usual choice of CMS dilepton analyses;
  ``"min_nu_energy"`` the smallest E_nu + E_nubar. On 2000 exact toys they pick the true
  solution in 62.5% and 64.7% of events
  (``pytest tests/evaluate/baselines/test_analytic_top.py -s`` prints both).
* No real solution: BDH's closest approach, the points on both ellipses whose transverse sum is
  closest to MET (`fallback` True, `chi2` its squared distance in GeV^2). Both tops keep their
  masses exactly, unless an ellipse does not exist at all (BDH's Z^2 < 0, possible for
  mismeasured b or lepton), where the degenerate Z = 0 point is used and masses are not exact.
* ``try_swap=True`` also solves with (l+, bbar) and (l-, b): real solutions of either pairing are
  pooled and `rule` picks among them; if neither has one, the pairing with the smaller fallback
  chi2 wins. `swapped` says which pairing was used.
* Events with the b collinear with its lepton have no ellipse: NaN outputs, both flags False.
"""

import numpy as np

from evaluate.baselines.nu_ellipse import closest_approach, intersect_ellipses, neutrino_ellipse

RULES = ("min_mtt", "min_nu_energy")
_FOUR = ("lep_pos", "lep_neg", "b", "bbar")


def _as_four(name, x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) as (px, py, pz, E), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has non-finite values")
    if np.any(x[:, 3] <= 0) or np.any(np.linalg.norm(x[:, :3], axis=1) == 0):
        raise ValueError(f"{name} needs E > 0 and |p| > 0 in every event")
    return x


def _validate(four, met_x, met_y, m_top, m_w, rule):
    four = [_as_four(name, x) for name, x in zip(_FOUR, four, strict=True)]
    n = len(four[0])
    if any(len(x) != n for x in four):
        raise ValueError(f"inputs disagree on the number of events: {[len(x) for x in four]}")
    met = []
    for name, x in (("met_x", met_x), ("met_y", met_y)):
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} has non-finite values")
        met.append(x)
    if not (np.isfinite(m_top) and np.isfinite(m_w) and m_top > m_w > 0):
        raise ValueError(f"need m_top > m_w > 0, got m_top={m_top}, m_w={m_w}")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    return four, np.stack(met, axis=1)


def _four(p3):
    """Massless four-vectors (..., 4) from three-momenta (..., 3)."""
    return np.concatenate([p3, np.linalg.norm(p3, axis=-1, keepdims=True)], axis=-1)


def _mass(p):
    return np.sqrt(np.maximum(p[..., 3] ** 2 - np.sum(p[..., :3] ** 2, axis=-1), 0.0))


def dilepton_candidates(lep_pos, lep_neg, b, bbar, met, m_top, m_w):
    """All neutrino-pair candidates of one b-lepton pairing (inputs already validated).

    Args:
        lep_pos: (N, 4) l+, paired with `b`.
        lep_neg: (N, 4) l-, paired with `bbar`.
        b: (N, 4) b from the top.
        bbar: (N, 4) bbar from the antitop.
        met: (N, 2) MET (x, y), GeV.
        m_top: top mass, GeV.
        m_w: W mass, GeV.

    Returns:
        dict with ``nu`` and ``nubar`` (N, 4, 3) three-momenta, ``real`` (N, 4) bool for real
        intersections; slot 0 holds the closest-approach pair where no slot is real, flagged by
        ``fallback`` (N,) with its ``chi2`` (N,) in GeV^2 (0 for real solutions); ``ok`` (N,)
        is False where an ellipse is undefined (collinear b and lepton).
    """
    n = len(b)
    with np.errstate(divide="ignore", invalid="ignore"):  # collinear b, lepton: caught by `ok`
        h, z2 = neutrino_ellipse(b, lep_pos, m_top, m_w)
        hbar, z2bar = neutrino_ellipse(bbar, lep_neg, m_top, m_w)
    ok = np.all(np.isfinite(h), axis=(1, 2)) & np.all(np.isfinite(hbar), axis=(1, 2))
    nu, nubar = np.full((n, 4, 3), np.nan), np.full((n, 4, 3), np.nan)
    real = np.zeros((n, 4), dtype=bool)
    both = ok & (z2 > 0) & (z2bar > 0)  # both ellipses exist: try the exact intersection
    if np.any(both):
        nu[both], nubar[both], real[both] = intersect_ellipses(h[both], hbar[both], met[both])
    fallback = ok & ~np.any(real, axis=1)
    chi2 = np.where(ok, 0.0, np.nan)
    nu_f, nubar_f, chi2[fallback] = closest_approach(h[fallback], hbar[fallback], met[fallback])
    nu[fallback, 0], nubar[fallback, 0] = nu_f, nubar_f
    return {"nu": nu, "nubar": nubar, "real": real, "fallback": fallback, "chi2": chi2, "ok": ok}


def solve_dilepton(
    lep_pos,
    lep_neg,
    b,
    bbar,
    met_x,
    met_y,
    *,
    m_top=172.5,
    m_w=80.4,
    try_swap=False,
    rule="min_mtt",
):
    """Top and antitop four-momenta of dilepton ttbar events from the analytic neutrino solution.

    Args:
        lep_pos: (N, 4) positive lepton (px, py, pz, E), GeV; from the top.
        lep_neg: (N, 4) negative lepton, from the antitop.
        b: (N, 4) b jet assigned to the top.
        bbar: (N, 4) b jet assigned to the antitop.
        met_x: (N,) MET x component, GeV.
        met_y: (N,) MET y component, GeV.
        m_top: top mass constraint, GeV.
        m_w: W mass constraint, GeV.
        try_swap: also try b <-> bbar and keep the better pairing (see module docstring).
        rule: ambiguity rule among real solutions, one of `RULES`.

    Returns:
        dict of arrays: ``top``, ``antitop``, ``nu``, ``nubar`` (N, 4) as (px, py, pz, E) GeV;
        ``has_solution`` (N,) bool, a real solution was found; ``n_solutions`` (N,) int, real
        solutions of the pairing used; ``fallback`` (N,) bool, closest approach used; ``chi2``
        (N,) GeV^2, MET distance of the fallback (0 for real solutions); ``swapped`` (N,) bool.

    Raises:
        ValueError: wrong shapes, non-finite values, non-positive energies, bad masses or rule.
    """
    (lp, lm, bq, bb), met = _validate((lep_pos, lep_neg, b, bbar), met_x, met_y, m_top, m_w, rule)
    n = len(lp)
    pairings = [(bq, bb)] + ([(bb, bq)] if try_swap else [])
    tops, atops, nus, nubars, keys, fb_keys, nreal, fbs = [], [], [], [], [], [], [], []
    for b_top, b_atop in pairings:
        cand = dilepton_candidates(lp, lm, b_top, b_atop, met, m_top, m_w)
        nu4, nubar4 = _four(cand["nu"]), _four(cand["nubar"])  # (N, 4, 4)
        top = b_top[:, None] + lp[:, None] + nu4
        atop = b_atop[:, None] + lm[:, None] + nubar4
        if rule == "min_mtt":
            key = _mass(top + atop)
        else:
            key = nu4[..., 3] + nubar4[..., 3]
        keys.append(np.where(cand["real"], key, np.inf))
        # Without real solutions the pairing closer to MET wins; only slot 0 is filled.
        fb_key = np.full((n, 4), np.inf)
        fb_key[:, 0] = np.where(cand["fallback"], cand["chi2"], np.inf)
        fb_keys.append(fb_key)
        tops.append(top), atops.append(atop), nus.append(nu4), nubars.append(nubar4)
        nreal.append(np.sum(cand["real"], axis=1)), fbs.append(cand["fallback"])
    key, fb_key = np.concatenate(keys, axis=1), np.concatenate(fb_keys, axis=1)
    has_solution = np.any(np.isfinite(key), axis=1)
    pick = np.where(has_solution, np.argmin(key, axis=1), np.argmin(fb_key, axis=1))
    ok = has_solution | np.any(np.isfinite(fb_key), axis=1)
    rows = np.arange(n)

    def choose(arrays):
        out = np.concatenate(arrays, axis=1)[rows, pick]
        return np.where(ok[:, None], out, np.nan)

    swapped = pick >= 4
    which = swapped.astype(int) if try_swap else np.zeros(n, dtype=int)
    fallback = np.stack(fbs, axis=1)[rows, which] & ~has_solution
    fb_chi2 = np.where(fallback, np.concatenate(fb_keys, axis=1)[rows, pick], 0.0)
    return {
        "top": choose(tops),
        "antitop": choose(atops),
        "nu": choose(nus),
        "nubar": choose(nubars),
        "has_solution": has_solution,
        "n_solutions": np.stack(nreal, axis=1)[rows, which],
        "fallback": fallback & ok,
        "chi2": np.where(ok, fb_chi2, np.nan),
        "swapped": swapped & ok,
    }


def solution_efficiency(result):
    """Fraction of events with a real analytic solution.

    Args:
        result: the dict returned by `solve_dilepton`.

    Returns:
        float in [0, 1] (NaN for zero events).
    """
    has = np.asarray(result["has_solution"], dtype=bool)
    return float(np.mean(has)) if has.size else float("nan")
