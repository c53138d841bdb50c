"""Spacetime algebra Cl(1,3): basis, product table and equivariant maps, built in numpy.

Everything here is a constant generated at import time from the construction rules of
L-GATr (`heidelberg-hepml/lgatr`, `primitives/`). Metric diag(+1, -1, -1, -1), e0 is time.

Blade order (16 components)::

    idx    0   1   2   3   4   5    6    7    8    9    10   11    12    13    14    15
    blade  1   e0  e1  e2  e3  e01  e02  e03  e12  e13  e23  e012  e013  e023  e123  e0123
"""

import itertools

import numpy as np

METRIC = np.array([1.0, -1.0, -1.0, -1.0])
"""Diagonal of the Minkowski metric in the (t, x, y, z) basis."""

BLADES = tuple(c for k in range(5) for c in itertools.combinations(range(4), k))
"""Basis blades as sorted tuples of vector indices, in the reference blade order."""

BLADE_INDEX = {blade: i for i, blade in enumerate(BLADES)}
"""Map from a sorted blade tuple to its component index."""

GRADES = np.array([len(b) for b in BLADES])
"""Grade of each of the 16 components, shape (16,)."""

GRADE_SLICES = tuple(np.flatnonzero(GRADES == k) for k in range(5))
"""Component indices of each grade 0..4."""

PSEUDOSCALAR_INDEX = 15


def blade_product(a, b):
    """Geometric product of two basis blades.

    Args:
        a: sorted tuple of vector indices.
        b: sorted tuple of vector indices.

    Returns:
        (sign, blade): the product equals sign * blade, blade a sorted tuple.
    """
    seq = list(a) + list(b)
    sign = 1.0
    # Bubble sort, one sign flip per swap of two anticommuting distinct vectors.
    for i in range(len(seq)):
        for j in range(len(seq) - 1 - i):
            if seq[j] > seq[j + 1]:
                seq[j], seq[j + 1] = seq[j + 1], seq[j]
                sign = -sign
    out = []
    for mu in seq:  # contract adjacent equal pairs e_mu e_mu = eta_mu
        if out and out[-1] == mu:
            out.pop()
            sign *= METRIC[mu]
        else:
            out.append(mu)
    return sign, tuple(out)


def _geometric_product_table():
    table = np.zeros((16, 16, 16))
    for j, a in enumerate(BLADES):
        for k, b in enumerate(BLADES):
            sign, blade = blade_product(a, b)
            table[BLADE_INDEX[blade], j, k] = sign
    return table


GEOMETRIC_PRODUCT = _geometric_product_table()
"""G[i, j, k]: (x y)_i = sum_jk G[i, j, k] x_j y_k, shape (16, 16, 16), 256 non-zeros."""

REVERSE_SIGNS = np.array([(-1.0) ** (k * (k - 1) // 2) for k in GRADES])
"""Sign of each component under reversion, shape (16,)."""

INNER_PRODUCT_FACTORS = np.array([REVERSE_SIGNS[a] * GEOMETRIC_PRODUCT[0, a, a] for a in range(16)])
"""f_A = <reverse(e_A) e_A>_0, so <x, y> = sum_A f_A x_A y_A, shape (16,)."""


def _equi_linear_basis():
    basis = np.zeros((10, 16, 16))
    pseudo = np.zeros(16)
    pseudo[PSEUDOSCALAR_INDEX] = 1.0
    # Right multiplication by the pseudoscalar: (x I)_i = sum_j G[i, j, 15] x_j.
    right_i = np.einsum("ijk,k->ij", GEOMETRIC_PRODUCT, pseudo)
    for k in range(5):
        proj = np.diag((GRADES == k).astype(float))
        basis[k] = proj
        basis[5 + k] = right_i @ proj
    return basis


EQUI_LINEAR_BASIS = _equi_linear_basis()
"""B[a, i, j], shape (10, 16, 16): maps x -> <x>_k (a = k) and x -> <x>_k I (a = 5 + k).

Together these span the linear maps of a multivector that commute with SO+(1,3).
"""


def outermorphism(lorentz):
    """16x16 representation of a Lorentz transformation on multivectors.

    The blade e_A = e_a1 ^ ... ^ e_ak maps to (L e_a1) ^ ... ^ (L e_ak), whose component on
    e_B is the minor det(L[B, A]).

    Args:
        lorentz: (4, 4) matrix acting on vectors in the (t, x, y, z) basis.

    Returns:
        (16, 16) matrix R with (L x)_i = sum_j R[i, j] x_j.
    """
    lorentz = np.asarray(lorentz, dtype=np.float64)
    rep = np.zeros((16, 16))
    for j, a in enumerate(BLADES):
        for i, b in enumerate(BLADES):
            if len(a) == len(b):
                rep[i, j] = 1.0 if not a else np.linalg.det(lorentz[np.ix_(b, a)])
    return rep


def vector_to_multivector_matrix():
    """(4, 16) matrix placing (px, py, pz, E) on the grade-1 blades (e0, e1, e2, e3)."""
    mat = np.zeros((4, 16))
    for col, blade in ((0, 2), (1, 3), (2, 4), (3, 1)):
        mat[col, blade] = 1.0
    return mat
