"""The backend-specific fast paths of the geometric algebra agree with the dense tables."""

import numpy as np
from keras import ops

from models.layers.geometric import algebra
from models.layers.geometric import ops as gops
from models.layers.geometric.linear import _PICK


def test_geometric_product_of_this_backend_matches_the_table():
    rng = np.random.default_rng(0)
    for xs, ys in (((4, 3, 16), (4, 3, 16)), ((4, 1, 16), (4, 3, 16)), ((2, 16), (16,))):
        x, y = rng.normal(size=xs).astype("float32"), rng.normal(size=ys).astype("float32")
        ref = np.einsum("ijk,...j,...k->...i", algebra.GEOMETRIC_PRODUCT, x, y)
        got = ops.convert_to_numpy(gops.geometric_product(x, y))
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_per_component_tables_span_the_equivariant_basis():
    rev = np.stack([np.eye(16), np.eye(16)[::-1]])  # identity and component reversal
    np.testing.assert_array_equal(np.einsum("tai,tij->aij", _PICK, rev), algebra.EQUI_LINEAR_BASIS)
