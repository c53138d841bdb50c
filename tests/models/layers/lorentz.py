"""Random Lorentz transformations and a generic equivariance checker for the tests."""

import numpy as np

from models.layers.geometric import algebra

# (px, py, pz, E) <-> (t, x, y, z)
TXYZ_FROM_PXYZE = np.array([[0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], float)


def random_rotation(rng, axis=None):
    """4x4 (t, x, y, z) matrix of a random rotation; about the z axis if axis == "z"."""
    rot = np.eye(4)
    if axis == "z":
        a = rng.uniform(-np.pi, np.pi)
        rot[1:3, 1:3] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
        return rot
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    rot[1:, 1:] = q
    return rot


def random_boost(rng, max_gamma=10.0, axis=None):
    """4x4 (t, x, y, z) matrix of a boost with random direction (along +-z if axis == "z") and
    gamma in [1, max_gamma]."""
    gamma = rng.uniform(1.0, max_gamma)
    n = np.array([0.0, 0.0, rng.choice([-1.0, 1.0])]) if axis == "z" else rng.normal(size=3)
    n /= np.linalg.norm(n)
    beta_gamma = np.sqrt(gamma**2 - 1.0)
    boost = np.eye(4)
    boost[0, 0] = gamma
    boost[0, 1:] = boost[1:, 0] = beta_gamma * n
    boost[1:, 1:] += (gamma - 1.0) * np.outer(n, n)
    return boost


def random_lorentz(rng, max_gamma=10.0):
    """Random proper orthochronous Lorentz transformation R2 B R1, (t, x, y, z) basis."""
    return random_rotation(rng) @ random_boost(rng, max_gamma) @ random_rotation(rng)


def act_on_multivectors(lorentz, mv):
    """Apply the outermorphism of `lorentz` to multivectors (..., 16) (float64)."""
    return np.asarray(mv, np.float64) @ algebra.outermorphism(lorentz).T


def act_on_fourvectors(lorentz, p):
    """Apply `lorentz` to four-vectors (..., 4) given as (px, py, pz, E) (float64)."""
    lam = TXYZ_FROM_PXYZE.T @ lorentz @ TXYZ_FROM_PXYZE
    return np.asarray(p, np.float64) @ lam.T


def relative_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def check_equivariance(fn, multivectors, scalars, lorentz, tol=1e-4):
    """Assert fn(L x, s) = L fn(x, s) for the multivector outputs and invariant scalars.

    Args:
        fn: (mv (..., C, 16), s) -> (mv (..., C', 16), s' or None).
        multivectors: float32 input multivectors.
        scalars: float32 scalars or None.
        lorentz: (4, 4) transformation in the (t, x, y, z) basis.
        tol: bound on the relative error.
    """
    mv_t = act_on_multivectors(lorentz, multivectors).astype("float32")
    out_mv, out_s = fn(multivectors, scalars)
    out_mv_t, out_s_t = fn(mv_t, scalars)
    expected = act_on_multivectors(lorentz, np.asarray(out_mv))
    err = relative_error(out_mv_t, expected)
    assert err < tol, f"multivector equivariance error {err:.2e}"
    if out_s is not None:
        err_s = relative_error(out_s_t, out_s)
        assert err_s < tol, f"scalar invariance error {err_s:.2e}"
    return err
