"""Tests of the Cl(1,3) algebra tables and keras.ops multivector operations."""

import numpy as np
import pytest

from models.layers.geometric import algebra
from models.layers.geometric import ops as gops
from tests.models.layers.lorentz import (
    act_on_fourvectors,
    act_on_multivectors,
    random_lorentz,
)


def _basis(name):
    blade = tuple(int(c) for c in name[1:]) if name != "1" else ()
    out = np.zeros(16, "float32")
    out[algebra.BLADE_INDEX[blade]] = 1.0
    return out


def _gp(x, y):
    return np.asarray(gops.geometric_product(np.asarray(x, "float32"), np.asarray(y, "float32")))


def test_blade_order_and_sparsity():
    names = ["1", "e0", "e1", "e2", "e3", "e01", "e02", "e03", "e12", "e13", "e23"]
    names += ["e012", "e013", "e023", "e123", "e0123"]
    assert [_basis(n).argmax() for n in names] == list(range(16))
    assert np.count_nonzero(algebra.GEOMETRIC_PRODUCT) == 256


@pytest.mark.parametrize(
    "a, b, sign, result",
    [
        ("e0", "e0", 1, "1"),
        ("e1", "e1", -1, "1"),
        ("e3", "e3", -1, "1"),
        ("e0", "e1", 1, "e01"),
        ("e1", "e0", -1, "e01"),
        ("e01", "e01", 1, "1"),
        ("e12", "e12", -1, "1"),
        ("e0123", "e0123", -1, "1"),
        ("e0", "e123", 1, "e0123"),
        ("e2", "e013", 1, "e0123"),
    ],
)
def test_basis_blade_products(a, b, sign, result):
    np.testing.assert_array_equal(_gp(_basis(a), _basis(b)), sign * _basis(result))


def test_geometric_product_associative():
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(size=(3, 8, 16)).astype("float32")
    np.testing.assert_allclose(_gp(_gp(x, y), z), _gp(x, _gp(y, z)), rtol=1e-4, atol=1e-4)


def test_vector_square_is_minkowski_norm_and_inner_product():
    rng = np.random.default_rng(1)
    p = rng.normal(size=(5, 4)).astype("float32")  # (px, py, pz, E)
    mv = np.asarray(gops.embed_vector(p))
    m2 = p[:, 3] ** 2 - (p[:, :3] ** 2).sum(-1)
    np.testing.assert_allclose(_gp(mv, mv)[:, 0], m2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(gops.inner_product(mv, mv)), m2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mv[:, 1:5], p[:, [3, 0, 1, 2]])
    np.testing.assert_allclose(np.asarray(gops.extract_vector(mv)), p)


def test_embeddings_and_grade_projection():
    s = np.array([[2.0]], "float32")
    np.testing.assert_array_equal(np.asarray(gops.embed_scalar(s))[0], 2 * _basis("1"))
    np.testing.assert_array_equal(np.asarray(gops.embed_pseudoscalar(s))[0], 2 * _basis("e0123"))
    x = np.arange(16, dtype="float32")
    np.testing.assert_array_equal(
        np.asarray(gops.grade_project(x, 2)), np.where(algebra.GRADES == 2, x, 0)
    )
    assert gops.spurions("xyplane", time=True).shape == (2, 16)
    assert gops.num_spurions("spacelike", time=True) == 3


def test_outermorphism_is_homomorphism_of_the_product():
    rng = np.random.default_rng(2)
    lam = random_lorentz(rng)
    x, y = rng.normal(size=(2, 4, 16))
    lhs = np.einsum(
        "ijk,...j,...k->...i",
        algebra.GEOMETRIC_PRODUCT,
        *(act_on_multivectors(lam, v) for v in (x, y)),
    )
    rhs = act_on_multivectors(
        lam, np.einsum("ijk,...j,...k->...i", algebra.GEOMETRIC_PRODUCT, x, y)
    )
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-8)
    p = rng.normal(size=(3, 4))
    np.testing.assert_allclose(
        act_on_multivectors(lam, np.asarray(gops.embed_vector(p.astype("float32"))))[:, 1:5],
        act_on_fourvectors(lam, p)[:, [3, 0, 1, 2]],
        rtol=1e-5,
        atol=1e-5,
    )


def test_equi_linear_basis_commutes_with_lorentz():
    rng = np.random.default_rng(3)
    rep = algebra.outermorphism(random_lorentz(rng))
    for b in algebra.EQUI_LINEAR_BASIS:
        np.testing.assert_allclose(b @ rep, rep @ b, atol=1e-8 * np.abs(rep).max() ** 2)


def test_inner_product_invariant():
    rng = np.random.default_rng(4)
    lam = random_lorentz(rng, max_gamma=3.0)
    x, y = rng.normal(size=(2, 6, 16))
    ip = np.sum(x * y * algebra.INNER_PRODUCT_FACTORS, -1)
    xt, yt = act_on_multivectors(lam, x), act_on_multivectors(lam, y)
    np.testing.assert_allclose(
        np.sum(xt * yt * algebra.INNER_PRODUCT_FACTORS, -1), ip, atol=1e-8 * 1e4
    )
