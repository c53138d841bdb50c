"""Hand-built kinematics for the baseline benchmarks and tests (exact, no detector)."""

import numpy as np


def boost(p, beta):
    """Boost four-vectors p (N, 4) (px, py, pz, E) by velocities beta (N, 3)."""
    b2 = np.sum(beta**2, axis=1)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = np.sum(beta * p[:, :3], axis=1)
    g2 = np.where(b2 > 0, (gamma - 1.0) / np.where(b2 > 0, b2, 1.0), 0.0)
    p3 = p[:, :3] + (g2 * bp + gamma * p[:, 3])[:, None] * beta
    return np.concatenate([p3, (gamma * (p[:, 3] + bp))[:, None]], axis=1)
