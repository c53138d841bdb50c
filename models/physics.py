"""In-graph kinematics with keras.ops (backend independent).

Four-vectors are (..., 4) = (px, py, pz, E) in GeV; angles in radians.
"""

from keras import ops


def p4_from_ptetaphim(pt, eta, phi, mass):
    """(..., 4) four-vectors from broadcastable pt, eta, phi, mass tensors."""
    px = pt * ops.cos(phi)
    py = pt * ops.sin(phi)
    pz = pt * ops.sinh(eta)
    e = ops.sqrt(px * px + py * py + pz * pz + mass * mass)
    return ops.stack([px, py, pz, e], axis=-1)


def invariant_mass(p4, eps=1e-12):
    """Mass of (..., 4) four-vectors (the mass of spacelike vectors is returned as 0)."""
    m2 = p4[..., 3] ** 2 - ops.sum(p4[..., :3] ** 2, axis=-1)
    return ops.sqrt(ops.maximum(m2, eps))


def transverse_momentum(p4):
    return ops.sqrt(p4[..., 0] ** 2 + p4[..., 1] ** 2)


def wrap_phi(phi):
    """Wrap to (-pi, pi] (up to the measure-zero boundary)."""
    return ops.arctan2(ops.sin(phi), ops.cos(phi))
