"""Visible legs, visible mass and the collinear approximation for di-tau events.

Everything here is array-in, array-out numpy, vectorised over events (shape ``(N,)``).

A *leg* is one visible tau decay product: a hadronic tau (``kind=1``), an electron (``2``) or a
muon (``3``), the lepton-type enum of SVfit (``interface/MeasuredTauLepton.h``). Legs are given as
a :class:`Leg` or as any mapping with the same keys.

Collinear approximation (Ellis, Hinchliffe, Soldate, van der Bij, Nucl. Phys. B297 (1988) 221):
each neutrino system is collinear with its visible leg, ``nu_i = r_i * vis_i`` with
``r_i = 1/x_i - 1``, and the MET is carried only by those neutrinos. The 2x2 transverse system
``MET = r1 p1T + r2 p2T`` gives ``r1, r2``, then ``m_coll = m_vis / sqrt(x1 x2)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

HADRONIC, ELECTRON, MUON = 1, 2, 3  # SVfit MeasuredTauLepton::kTauToHadDecay, ElecDecay, MuDecay
TAU_MASS = 1.77685  # GeV, classic_svFit::tauLeptonMass (svFitAuxFunctions.h)


@dataclass(frozen=True)
class Leg:
    """One visible tau decay product per event.

    Attributes:
        pt: Transverse momentum in GeV, shape (N,).
        eta: Pseudorapidity, shape (N,).
        phi: Azimuth in rad, shape (N,); any value, wrapped to (-pi, pi] on use.
        mass: Visible mass in GeV, shape (N,).
        kind: 1 = hadronic tau, 2 = electron, 3 = muon, shape (N,).
        decay_mode: Hadronic decay mode (HPS numbering), -1 for leptons, shape (N,).
    """

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    kind: np.ndarray
    decay_mode: np.ndarray


def as_leg(leg: Leg | Mapping, name: str = "leg") -> Leg:
    """Converts a :class:`Leg` or mapping into a validated :class:`Leg` of 1-D numpy arrays.

    Raises:
        ValueError: a key is missing, arrays are not 1-D or differ in length, a value is not
            finite, ``pt`` or ``mass`` is negative, or ``kind`` is not 1, 2 or 3.
    """
    keys = [f.name for f in fields(Leg)]
    if isinstance(leg, Leg):
        leg = {k: getattr(leg, k) for k in keys}
    missing = [k for k in keys if k not in leg]
    if missing:
        raise ValueError(f"{name}: missing field(s) {', '.join(missing)}")
    out = {}
    for k in keys:
        dtype = np.int64 if k in ("kind", "decay_mode") else np.float64
        a = np.asarray(leg[k])
        if a.ndim != 1:
            raise ValueError(f"{name}.{k}: expected a 1-D array, got shape {a.shape}")
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{name}.{k}: expected numbers, got dtype {a.dtype}")
        if not np.all(np.isfinite(a)):
            bad = np.flatnonzero(~np.isfinite(a))
            raise ValueError(f"{name}.{k}: {bad.size} non-finite value(s), first at event {bad[0]}")
        if dtype is np.int64 and np.any(a != np.round(a)):
            raise ValueError(f"{name}.{k}: expected integer codes, got non-integer value(s)")
        out[k] = a.astype(dtype)
    n = {k: v.shape[0] for k, v in out.items()}
    if len(set(n.values())) != 1:
        raise ValueError(f"{name}: arrays differ in length {n}")
    for k in ("pt", "mass"):
        if np.any(out[k] < 0):
            raise ValueError(f"{name}.{k}: negative value(s)")
    bad_kind = ~np.isin(out["kind"], (HADRONIC, ELECTRON, MUON))
    if np.any(bad_kind):
        i = np.flatnonzero(bad_kind)[0]
        raise ValueError(f"{name}.kind: {out['kind'][i]} at event {i}; expected 1, 2 or 3")
    return Leg(**out)


def check_same_length(*arrays: np.ndarray, names: tuple[str, ...]) -> int:
    """Returns the common leading length of ``arrays`` or raises ValueError naming them."""
    lengths = [np.shape(a)[0] if np.ndim(a) else None for a in arrays]
    if len(set(lengths)) != 1 or lengths[0] is None:
        desc = ", ".join(f"{n}: {length}" for n, length in zip(names, lengths, strict=True))
        raise ValueError(f"inconsistent number of events ({desc})")
    return lengths[0]


def as_met(met_x, met_y, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Validates MET components: 1-D, length ``n``, finite. Returns float64 arrays."""
    out = []
    for name, a in (("met_x", met_x), ("met_y", met_y)):
        a = np.asarray(a, dtype=np.float64)
        if a.shape != (n,):
            raise ValueError(f"{name}: expected shape ({n},), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(
                f"{name}: non-finite value(s), first at event {np.argmin(np.isfinite(a))}"
            )
        out.append(a)
    return out[0], out[1]


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Wraps angles to (-pi, pi]."""
    out = np.mod(phi + np.pi, 2 * np.pi) - np.pi  # in [-pi, pi)
    return np.where(out <= -np.pi, out + 2 * np.pi, out)


def to_p4(pt, eta, phi, mass) -> np.ndarray:
    """(pt, eta, phi, mass) -> (px, py, pz, E), shape (N, 4). E = sqrt(p^2 + m^2)."""
    phi = wrap_phi(np.asarray(phi, dtype=np.float64))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)], axis=-1)


def p4_mass(p4: np.ndarray) -> np.ndarray:
    """Invariant mass of (..., 4) four-vectors; negative m^2 from rounding is clipped to 0."""
    m2 = p4[..., 3] ** 2 - p4[..., 0] ** 2 - p4[..., 1] ** 2 - p4[..., 2] ** 2
    return np.sqrt(np.maximum(m2, 0.0))


def visible_mass(leg1: Leg | Mapping, leg2: Leg | Mapping) -> np.ndarray:
    """Invariant mass of the two visible legs, shape (N,), in GeV."""
    l1, l2 = as_leg(leg1, "leg1"), as_leg(leg2, "leg2")
    check_same_length(l1.pt, l2.pt, names=("leg1", "leg2"))
    return p4_mass(to_p4(l1.pt, l1.eta, l1.phi, l1.mass) + to_p4(l2.pt, l2.eta, l2.phi, l2.mass))


class CollinearResult(NamedTuple):
    """Output of :func:`collinear_mass`; every field has shape (N,).

    Attributes:
        mass: Baseline mass: ``mass_raw`` where ``physical``, else ``m_vis`` (note section 2).
        mass_raw: ``m_vis / sqrt(x1 x2)`` for every event; NaN where ``x1 x2 <= 0`` or the
            system is degenerate, meaningless (but returned) where not ``physical``.
        m_vis: Visible mass.
        x1: Visible energy fraction of leg 1 (``inf``/NaN where degenerate).
        x2: Visible energy fraction of leg 2.
        physical: ``0 < x_i <= 1`` for both legs (and ``x_i >= m_vis,i^2 / m_tau^2`` with
            ``require_x_min``); False for back-to-back legs (``|D| <= det_eps``).
    """

    mass: np.ndarray
    mass_raw: np.ndarray
    m_vis: np.ndarray
    x1: np.ndarray
    x2: np.ndarray
    physical: np.ndarray


def collinear_mass(
    leg1: Leg | Mapping,
    leg2: Leg | Mapping,
    met_x,
    met_y,
    *,
    require_x_min: bool = False,
    det_eps: float = 1e-6,
) -> CollinearResult:
    """Collinear-approximation di-tau mass with the m_vis fallback of the baseline convention.

    Solves ``MET = r1 p1T + r2 p2T`` with ``D = p1x p2y - p1y p2x``:
    ``r1 = (METx p2y - METy p2x) / D``, ``r2 = (p1x METy - p1y METx) / D``, ``x_i = 1/(1 + r_i)``.

    Args:
        leg1: First visible leg, fields of shape (N,).
        leg2: Second visible leg, fields of shape (N,).
        met_x: MET x component in GeV, shape (N,).
        met_y: MET y component in GeV, shape (N,).
        require_x_min: Also require ``x_i >= m_vis,i^2 / m_tau^2`` for ``physical``.
        det_eps: Events with ``|D| <= det_eps * pT1 * pT2`` (legs (anti)parallel in the
            transverse plane to ~1e-6 rad) are degenerate: x and mass_raw NaN, unphysical.

    Returns:
        A :class:`CollinearResult`.

    Raises:
        ValueError: inconsistent lengths, non-finite values or bad leg fields.
    """
    l1, l2 = as_leg(leg1, "leg1"), as_leg(leg2, "leg2")
    n = check_same_length(l1.pt, l2.pt, names=("leg1", "leg2"))
    mx, my = as_met(met_x, met_y, n)
    p1 = to_p4(l1.pt, l1.eta, l1.phi, l1.mass)
    p2 = to_p4(l2.pt, l2.eta, l2.phi, l2.mass)
    m_vis = p4_mass(p1 + p2)

    d = p1[:, 0] * p2[:, 1] - p1[:, 1] * p2[:, 0]
    ok = np.abs(d) > det_eps * l1.pt * l2.pt
    d_safe = np.where(ok, d, 1.0)
    r1 = np.where(ok, (mx * p2[:, 1] - my * p2[:, 0]) / d_safe, np.nan)
    r2 = np.where(ok, (p1[:, 0] * my - p1[:, 1] * mx) / d_safe, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        x1, x2 = 1.0 / (1.0 + r1), 1.0 / (1.0 + r2)
        prod = x1 * x2
        mass_raw = np.where(prod > 0, m_vis / np.sqrt(np.where(prod > 0, prod, 1.0)), np.nan)
        physical = ok & (x1 > 0) & (x1 <= 1) & (x2 > 0) & (x2 <= 1)
        if require_x_min:
            physical &= (x1 >= (l1.mass / TAU_MASS) ** 2) & (x2 >= (l2.mass / TAU_MASS) ** 2)
    mass = np.where(physical, mass_raw, m_vis)
    return CollinearResult(mass, mass_raw, m_vis, x1, x2, physical)
