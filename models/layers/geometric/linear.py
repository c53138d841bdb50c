"""Lorentz-equivariant linear layer on multivector and scalar channels."""

import math

import keras
import numpy as np
from keras import ops

from models.layers.geometric import algebra

_BASIS = algebra.EQUI_LINEAR_BASIS.astype("float32")  # (10, 16, 16)
_SCALAR_SLOTS = np.zeros((2, 16), dtype="float32")  # (grade 0, pseudoscalar) -> 16 components
_SCALAR_SLOTS[0, 0] = 1.0
_SCALAR_SLOTS[1, algebra.PSEUDOSCALAR_INDEX] = 1.0
_INIT_GAINS = {"default": 1.0, "small": 0.1, "almost_unit_scalar": 0.5}


def _uniform(bound):
    return keras.initializers.RandomUniform(-bound, bound)


@keras.saving.register_keras_serializable(package="hepformers")
class EquiLinear(keras.layers.Layer):
    """Equivariant linear map of multivector channels, with scalar channels mixed in.

    out_mv[y] = sum_{x,a} W[x, y, a] B_a(in_mv[x]) with the 10 maps B_a of
    `algebra.EQUI_LINEAR_BASIS` (grade projections and right multiplication by e0123), plus
    a linear map of the input scalars onto the grade-0 and pseudoscalar components. The
    output scalars are a linear map of the input scalars and of the grade-0 and pseudoscalar
    components of the input multivectors. Biases act only on invariant components.

    Args:
        mv_channels: number of output multivector channels.
        s_channels: number of output scalar channels (0: no scalar output).
        init: "default", "small" (gain 0.1) or "almost_unit_scalar" (gain 0.5, grade-0
            bias initialised at 1), as in lgatr.
        use_bias: add biases on the invariant components and on the scalar outputs.

    Call args:
        multivectors: (..., C_in, 16).
        scalars: (..., S_in) or None.

    Returns:
        (multivectors (..., mv_channels, 16), scalars (..., s_channels) or None).
    """

    def __init__(self, mv_channels, s_channels=0, init="default", use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if init not in _INIT_GAINS:
            raise ValueError(f"init must be one of {sorted(_INIT_GAINS)}, got {init!r}")
        self.mv_channels = mv_channels
        self.s_channels = s_channels
        self.init = init
        self.use_bias = use_bias

    def build(self, multivectors_shape, scalars_shape=None):
        in_mv = multivectors_shape[-2]
        in_s = 0 if scalars_shape is None else scalars_shape[-1]
        gain = _INIT_GAINS[self.init]
        # Outputs fed by both paths get an extra 1/sqrt(2), as in lgatr.
        mix = 1.0 / math.sqrt(2.0) if in_s else 1.0
        self.mv_kernel = self.add_weight(
            name="mv_kernel",
            shape=(in_mv, self.mv_channels, 10),
            initializer=_uniform(gain * mix / math.sqrt(in_mv)),
        )
        self.s2mv_kernel = None
        if in_s:
            self.s2mv_kernel = self.add_weight(
                name="s2mv_kernel",
                shape=(in_s, self.mv_channels * 2),
                initializer=_uniform(gain * mix / math.sqrt(in_s)),
            )
        self.mv_bias = None
        if self.use_bias:
            centre = 1.0 if self.init == "almost_unit_scalar" else 0.0
            self.mv_bias = self.add_weight(
                name="mv_bias",
                shape=(self.mv_channels,),
                initializer=keras.initializers.Constant(centre),
            )
        self.mv2s_kernel = self.s2s_kernel = self.s_bias = None
        if self.s_channels:
            s_mix = 1.0 / math.sqrt(2.0) if in_s else 1.0
            self.mv2s_kernel = self.add_weight(
                name="mv2s_kernel",
                shape=(2 * in_mv, self.s_channels),
                initializer=_uniform(gain * s_mix / math.sqrt(2 * in_mv)),
            )
            if in_s:
                self.s2s_kernel = self.add_weight(
                    name="s2s_kernel",
                    shape=(in_s, self.s_channels),
                    initializer=_uniform(gain * s_mix / math.sqrt(in_s)),
                )
            if self.use_bias:
                self.s_bias = self.add_weight(
                    name="s_bias", shape=(self.s_channels,), initializer="zeros"
                )

    def call(self, multivectors, scalars=None):
        in_mv = multivectors.shape[-2]
        lead = ops.shape(multivectors)[:-2]
        dtype = multivectors.dtype
        basis = ops.convert_to_tensor(_BASIS, dtype=dtype)
        slots = ops.convert_to_tensor(_SCALAR_SLOTS, dtype=dtype)
        # Dense (C_in*16, C_out*16) kernel assembled from the 10 equivariant maps.
        kernel = ops.einsum("xya,aij->xjyi", ops.cast(self.mv_kernel, dtype), basis)
        kernel = ops.reshape(kernel, (in_mv * 16, self.mv_channels * 16))
        flat = ops.reshape(multivectors, tuple(lead) + (in_mv * 16,))
        out_mv = ops.reshape(ops.matmul(flat, kernel), tuple(lead) + (self.mv_channels, 16))

        invariant = None  # (..., C_out, 2) added to components (0, 15)
        if self.s2mv_kernel is not None and scalars is not None:
            invariant = ops.matmul(scalars, ops.cast(self.s2mv_kernel, dtype))
            invariant = ops.reshape(invariant, tuple(lead) + (self.mv_channels, 2))
        if self.mv_bias is not None:
            bias = ops.stack(
                [ops.cast(self.mv_bias, dtype), ops.zeros((self.mv_channels,), dtype)], -1
            )
            invariant = bias if invariant is None else invariant + bias
        if invariant is not None:
            out_mv = out_mv + ops.matmul(invariant, slots)

        out_s = None
        if self.s_channels:
            pair = ops.stack([multivectors[..., 0], multivectors[..., 15]], axis=-1)
            pair = ops.reshape(pair, tuple(lead) + (2 * in_mv,))
            out_s = ops.matmul(pair, ops.cast(self.mv2s_kernel, dtype))
            if self.s2s_kernel is not None and scalars is not None:
                out_s = out_s + ops.matmul(scalars, ops.cast(self.s2s_kernel, dtype))
            if self.s_bias is not None:
                out_s = out_s + ops.cast(self.s_bias, dtype)
        return out_mv, out_s

    def compute_output_spec(self, multivectors, scalars=None):
        lead = tuple(multivectors.shape[:-2])
        mv = keras.KerasTensor(lead + (self.mv_channels, 16), dtype=self.compute_dtype)
        s = None
        if self.s_channels:
            s = keras.KerasTensor(lead + (self.s_channels,), dtype=self.compute_dtype)
        return mv, s

    def get_config(self):
        config = super().get_config()
        config.update(
            mv_channels=self.mv_channels,
            s_channels=self.s_channels,
            init=self.init,
            use_bias=self.use_bias,
        )
        return config
