"""Piecewise-linear maps in keras.ops, shared by the response calibrations (TPMT mass, L-GATr
top pT)."""

from keras import ops


def piecewise_linear(x, knots_x, knots_y):
    """y(x) linear between increasing knots, constant (the end knots' y) beyond them.

    Args:
        x: tensor.
        knots_x, knots_y: python sequences of equal length >= 2, knots_x increasing.
    """
    c = ops.clip(x, knots_x[0], knots_x[-1])
    out = ops.full_like(c, knots_y[0])
    for k in range(len(knots_x) - 1):
        slope = (knots_y[k + 1] - knots_y[k]) / (knots_x[k + 1] - knots_x[k])
        out = out + slope * (ops.clip(c, knots_x[k], knots_x[k + 1]) - knots_x[k])
    return out
