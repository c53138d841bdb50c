"""Multivector operations with `keras.ops` (backend-agnostic), plus spurion constants.

Multivectors have 16 components on the last axis in the blade order of `algebra.py`.
Four-vectors follow the toolkit convention (px, py, pz, E) on the last axis.
"""

import keras
import numpy as np
from keras import ops

from models.layers.geometric import algebra

_GP_TABLE = algebra.GEOMETRIC_PRODUCT.astype("float32")  # (16, 16, 16): [out, left, right]
_GP_FLAT = _GP_TABLE.reshape(16, 256).T  # (256, 16)
_IP_FACTORS = algebra.INNER_PRODUCT_FACTORS.astype("float32")
_GRADE_MASKS = np.stack([algebra.GRADES == k for k in range(5)]).astype("float32")  # (5, 16)
_VEC_TO_MV = algebra.vector_to_multivector_matrix().astype("float32")  # (4, 16)
_BEAM_VECTORS = {
    "lightlike": (1.0, 0.0, 0.0, 1.0),
    "timelike": (np.sqrt(2.0), 0.0, 0.0, 1.0),
    "spacelike": (0.0, 0.0, 0.0, 1.0),
}


def _const(array, like):
    return ops.convert_to_tensor(array, dtype=keras.backend.standardize_dtype(like.dtype))


def precise_dtype(dtype):
    """Dtype of norms and softmax: float64 stays float64, anything else computes in float32.

    lgatr runs these in at least float32 (`minimum_autocast_precision`); a float64 model keeps
    its precision.
    """
    return "float64" if keras.backend.standardize_dtype(dtype) == "float64" else "float32"


def geometric_product(x, y):
    """Geometric product, broadcast over leading axes.

    Args:
        x: (..., 16) multivectors.
        y: (..., 16) multivectors, broadcastable with `x`.

    Returns:
        (..., 16) multivectors x y.
    """
    if keras.backend.backend() == "jax":
        # the three-operand einsum with the table: the large preset's product (forward +
        # backward) 72 ms, 84 ms as 16 flips in bitmask order, 126 ms as below
        return ops.einsum("...j,...k,ijk->...i", x, y, _const(_GP_TABLE, x))
    outer = ops.expand_dims(x, -1) * ops.expand_dims(y, -2)  # (..., 16, 16)
    shape = ops.shape(outer)
    outer = ops.reshape(outer, tuple(shape[:-2]) + (256,))
    return ops.matmul(outer, _const(_GP_FLAT, outer))


def inner_product(x, y):
    """Lorentz-invariant inner product <x, y> = <reverse(x) y>_0.

    On grade-1 vectors it is the Minkowski product E1 E2 - p1.p2.

    Args:
        x: (..., 16) multivectors.
        y: (..., 16) multivectors.

    Returns:
        (...,) invariants.
    """
    return ops.sum(x * y * _const(_IP_FACTORS, x), axis=-1)


def abs_squared_norm(x):
    """Positive semidefinite norm sum_k |<x_k, x_k>| over grades k, shape (...,16) -> (...,)."""
    per_grade = ops.matmul(x * x * _const(_IP_FACTORS, x), _const(_GRADE_MASKS.T, x))
    return ops.sum(ops.abs(per_grade), axis=-1)


def grade_project(x, grade):
    """Projection <x>_grade: zeroes all other components, shape preserved (..., 16)."""
    return x * _const(_GRADE_MASKS[grade], x)


def equi_layer_norm(x, epsilon=0.01, axis=-2):
    """Equivariant multivector normalisation x / sqrt(max(mean_c ||x_c||^2, epsilon)).

    Args:
        x: (..., C, 16) multivectors.
        epsilon: lower clamp of the mean squared norm.
        axis: channel axis to average over.

    Returns:
        (..., C, 16) normalised multivectors.
    """
    xf = ops.cast(x, precise_dtype(x.dtype))
    sq = ops.mean(abs_squared_norm(xf), axis=axis + 1 if axis < 0 else axis, keepdims=True)
    out = xf / ops.sqrt(ops.maximum(ops.expand_dims(sq, -1), epsilon))
    return ops.cast(out, x.dtype)


def scalar_layer_norm(s, epsilon=1e-5):
    """Standardise over the last axis without gain or offset, as torch's `F.layer_norm`.

    Args:
        s: (..., S) scalars.
        epsilon: added to the (biased) variance.

    Returns:
        (..., S), in the dtype of `s`.
    """
    sf = ops.cast(s, precise_dtype(s.dtype))
    mean = ops.mean(sf, axis=-1, keepdims=True)
    var = ops.var(sf, axis=-1, keepdims=True)
    return ops.cast((sf - mean) / ops.sqrt(var + epsilon), s.dtype)


def tanh_gelu(x):
    """GELU, tanh approximation, written out as torch's: tf.nn.gelu rounds 0.044715 to float32,
    which puts its float64 GELU 1e-9 away from torch's (and lgatr's)."""
    return 0.5 * x * (1.0 + ops.tanh(0.7978845608028654 * (x + 0.044715 * ops.power(x, 3))))


def gated_gelu(multivectors, scalars=None):
    """Gated nonlinearity: GELU(<x>_0) x for multivectors, GELU(s) for scalars (tanh GELU).

    Args:
        multivectors: (..., C, 16).
        scalars: (..., S) or None.

    Returns:
        (multivectors, scalars) with the same shapes.
    """
    gate = tanh_gelu(multivectors[..., 0:1])
    out_s = None if scalars is None else tanh_gelu(scalars)
    return gate * multivectors, out_s


def embed_vector(p):
    """Four-vectors (..., 4) (px, py, pz, E) -> multivectors (..., 16), grade 1 = (E, px, ...)."""
    return ops.matmul(p, _const(_VEC_TO_MV, p))


def extract_vector(mv):
    """Grade-1 part of multivectors (..., 16) -> four-vectors (..., 4) as (px, py, pz, E)."""
    return ops.matmul(mv, _const(_VEC_TO_MV.T, mv))


def embed_scalar(s):
    """Scalars (..., 1) -> multivectors (..., 16) with only component 0."""
    return ops.pad(s, [(0, 0)] * (len(s.shape) - 1) + [(0, 15)])


def extract_scalar(mv):
    """Grade-0 component (..., 16) -> (..., 1)."""
    return mv[..., 0:1]


def embed_pseudoscalar(p):
    """Pseudoscalars (..., 1) -> multivectors (..., 16) with only component 15."""
    return ops.pad(p, [(0, 0)] * (len(p.shape) - 1) + [(15, 0)])


def extract_pseudoscalar(mv):
    """Pseudoscalar component (..., 16) -> (..., 1)."""
    return mv[..., 15:16]


def num_spurions(beam="xyplane", time=True, beam_mirror=True):
    """Number of spurion multivectors built by `spurions` with the same options."""
    return len(spurions(beam=beam, time=time, beam_mirror=beam_mirror))


def spurions(beam="xyplane", time=True, beam_mirror=True):
    """Reference multivectors that break Lorentz symmetry (numpy constants, as in lgatr).

    Args:
        beam: None, "xyplane" (bivector e12, invariant under z-rotations and z-boosts),
            or a beam four-vector along z: "lightlike" (1,0,0,1), "timelike" (sqrt2,0,0,1),
            "spacelike" (0,0,0,1), given here as (t, x, y, z).
        time: add the time direction (1, 0, 0, 0) as a vector.
        beam_mirror: for vector beams, also add the copy with z -> -z.

    Returns:
        (n, 16) float32 array.
    """
    rows = []
    if beam == "xyplane":
        row = np.zeros(16)
        row[algebra.BLADE_INDEX[(1, 2)]] = 1.0
        rows.append(row)
    elif beam in _BEAM_VECTORS:
        t, x, y, z = _BEAM_VECTORS[beam]
        for sign in (1.0, -1.0) if beam_mirror else (1.0,):
            row = np.zeros(16)
            row[1:5] = (t, x, y, sign * z)
            rows.append(row)
    elif beam is not None:
        raise ValueError(f"unknown beam spurion {beam!r}")
    if time:
        row = np.zeros(16)
        row[1] = 1.0
        rows.append(row)
    return np.array(rows, dtype="float32").reshape(-1, 16)
