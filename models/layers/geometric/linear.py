"""Lorentz-equivariant linear layer on multivector and scalar channels."""

import math

import keras
import numpy as np
from keras import ops

from models.layers.geometric import algebra

# The 10 basis maps are x -> <x>_k (a = k) and x -> <x>_k e0123 (a = 5 + k); right
# multiplication by e0123 reverses the components with signs: (x e0123)_i = sign_i x_(15-i).
# So out[y, i] = sum_x W[x, y, g(i)] in[x, i] + sign_i W[x, y, 9 - g(i)] in[x, 15 - i]:
# per component, a channel mixing of [in, reversed in] with (2 C_in, C_out) weights, gathered
# from the 10 maps by the one-hot (10, 16) tables below (8x fewer multiplications than the
# dense (16 C_in, 16 C_out) kernel that the basis maps span).
_BASIS = algebra.EQUI_LINEAR_BASIS.astype("float32")  # (10, 16, 16)
_DUAL_SIGNS = algebra.EQUI_LINEAR_BASIS[5:].sum(0)[np.arange(16), 15 - np.arange(16)]
_PICK = np.zeros((2, 10, 16), dtype="float32")  # [direct | reversed], map a, component i
_PICK[0, algebra.GRADES, np.arange(16)] = 1.0
_PICK[1, 9 - algebra.GRADES, np.arange(16)] = _DUAL_SIGNS
assert np.allclose(  # the tables reproduce the dense basis
    np.einsum("tai,tij->aij", _PICK, np.stack([np.eye(16), np.eye(16)[::-1]])),
    algebra.EQUI_LINEAR_BASIS,
)
_SCALAR_SLOTS = np.zeros((2, 16), dtype="float32")  # (grade 0, pseudoscalar) -> 16 components
_SCALAR_SLOTS[0, 0] = 1.0
_SCALAR_SLOTS[1, algebra.PSEUDOSCALAR_INDEX] = 1.0
# init -> (gain of the maps to multivectors, gain of the maps to scalars, grade-0 bias centre)
_INIT = {
    "default": (1.0, 1.0, 0.0),
    "small": (0.1, 0.1, 0.0),
    "almost_unit_scalar": (0.5, 1.0, 1.0),
}
# The two basis maps onto the grade-0 component: <x>_0 and <x>_4 e0123.
_SCALAR_OUTPUT_MAPS = np.isin(np.arange(10), (0, 9))


def _mix(multivectors, mv_kernel, lead, out_channels):
    """sum_{x,a} W[x, y, a] B_a(in[x]): (..., C_in, 16), (C_in, C_out, 10) -> (..., C_out, 16).

    TensorFlow and JAX: per component, one batched matmul over the 16 components on rows
    flattened to one axis (forward + backward of the large preset's q/k/v map: TF XLA 2-3x,
    JAX 3.7x faster than the dense kernel; an einsum over several leading axes instead made
    XLA's training step 3x slower). PyTorch: the dense (16 C_in, 16 C_out) kernel, as lgatr
    (per component it was 5x slower: its batched matmul backward on the transposed operands).
    """
    dtype = multivectors.dtype
    in_mv = multivectors.shape[-2]
    if keras.backend.backend() == "torch":
        basis = ops.convert_to_tensor(_BASIS, dtype=dtype)
        kernel = ops.einsum("xya,aij->xjyi", mv_kernel, basis)
        kernel = ops.reshape(kernel, (in_mv * 16, out_channels * 16))
        flat = ops.reshape(multivectors, tuple(lead) + (in_mv * 16,))
        return ops.reshape(ops.matmul(flat, kernel), tuple(lead) + (out_channels, 16))
    pick = ops.convert_to_tensor(_PICK, dtype=dtype)
    kernel = ops.einsum("xya,tai->itxy", mv_kernel, pick)
    kernel = ops.reshape(kernel, (16, 2 * in_mv, out_channels))  # (16, 2 C_in, C_out)
    both = ops.concatenate([multivectors, ops.flip(multivectors, axis=-1)], axis=-2)
    both = ops.transpose(ops.reshape(both, (-1, 2 * in_mv, 16)), (2, 0, 1))  # (16, R, 2 C_in)
    out = ops.transpose(ops.matmul(both, kernel), (1, 2, 0))  # (R, C_out, 16)
    return ops.reshape(out, tuple(lead) + (out_channels, 16))


def _uniform(bound, centre=0.0):
    return keras.initializers.RandomUniform(centre - bound, centre + bound)


@keras.saving.register_keras_serializable(package="hepformers")
class EquiLinear(keras.layers.Layer):
    """Equivariant linear map of multivector channels, with scalar channels mixed in.

    out_mv[y] = sum_{x,a} W[x, y, a] B_a(in_mv[x]) with the 10 maps B_a of
    `algebra.EQUI_LINEAR_BASIS` (grade projections and right multiplication by e0123), plus
    a linear map of the input scalars onto the grade-0 and pseudoscalar components. The
    output scalars are a linear map of the input scalars and of the grade-0 and pseudoscalar
    components of the input multivectors. Biases act only on invariant components.

    Matches lgatr's `EquiLinear` (SO+(1,3): the same 10 maps), initialisation included:
    uniform kernels of bound gain / sqrt(fan_in), with an extra 1/sqrt(2) on the maps that
    share an output with the other input (the two basis maps onto the grade-0 component,
    scalars -> multivectors, and both maps onto the output scalars); uniform biases, centred
    at 1 for the grade-0 and pseudoscalar biases of "almost_unit_scalar".

    Args:
        mv_channels: number of output multivector channels.
        s_channels: number of output scalar channels (0: no scalar output).
        init: "default", "small" (gain 0.1) or "almost_unit_scalar" (gain 0.5 on the maps to
            multivectors, biases centred at 1), as in lgatr.
        use_bias: add biases on the invariant components and on the scalar outputs.
        pseudoscalar_bias: with scalar inputs, also a bias on the pseudoscalar component (lgatr
            has it: its scalar -> multivector map carries the bias). False: layers saved before
            it existed (their configs lack the key).

    Call args:
        multivectors: (..., C_in, 16).
        scalars: (..., S_in) or None.

    Returns:
        (multivectors (..., mv_channels, 16), scalars (..., s_channels) or None).
    """

    def __init__(
        self,
        mv_channels,
        s_channels=0,
        init="default",
        use_bias=True,
        pseudoscalar_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if init not in _INIT:
            raise ValueError(f"init must be one of {sorted(_INIT)}, got {init!r}")
        self.mv_channels = mv_channels
        self.s_channels = s_channels
        self.init = init
        self.use_bias = use_bias
        self.pseudoscalar_bias = pseudoscalar_bias

    @classmethod
    def from_config(cls, config):
        # Configs saved before the pseudoscalar bias existed rebuild the layer without it.
        return super().from_config({"pseudoscalar_bias": False, **config})

    def build(self, multivectors_shape, scalars_shape=None):
        in_mv = multivectors_shape[-2]
        in_s = 0 if scalars_shape is None else scalars_shape[-1]
        mv_gain, s_gain, centre = _INIT[self.init]
        # Outputs fed by both paths get an extra 1/sqrt(2), as in lgatr.
        mix = 1.0 / math.sqrt(2.0) if in_s else 1.0
        # lgatr: of the 10 maps only the two onto the grade-0 component share it with scalars
        bounds = mv_gain / math.sqrt(in_mv) * np.where(_SCALAR_OUTPUT_MAPS, mix, 1.0)
        unit = _uniform(1.0)
        self.mv_kernel = self.add_weight(
            name="mv_kernel",
            shape=(in_mv, self.mv_channels, 10),
            initializer=lambda shape, dtype=None: unit(shape, dtype) * ops.cast(bounds, dtype),
        )
        self.s2mv_kernel = None
        if in_s:
            self.s2mv_kernel = self.add_weight(
                name="s2mv_kernel",
                shape=(in_s, self.mv_channels * 2),
                initializer=_uniform(mv_gain * mix / math.sqrt(in_s)),
            )
        self.mv_bias = self.ps_bias = None
        if self.use_bias:
            # lgatr: uniform around the centre, bound 1/sqrt(fan_in), when scalars come in
            bias_init = keras.initializers.Constant(centre)
            if in_s:
                bias_init = _uniform(1.0 / math.sqrt(in_s + in_mv), centre)
            self.mv_bias = self.add_weight(
                name="mv_bias", shape=(self.mv_channels,), initializer=bias_init
            )
        self.mv2s_kernel = self.s2s_kernel = self.s_bias = None
        if self.s_channels:
            s_mix = 1.0 / math.sqrt(2.0) if in_s else 1.0
            self.mv2s_kernel = self.add_weight(
                name="mv2s_kernel",
                shape=(2 * in_mv, self.s_channels),
                initializer=_uniform(s_gain * s_mix / math.sqrt(2 * in_mv)),
            )
            if in_s:
                self.s2s_kernel = self.add_weight(
                    name="s2s_kernel",
                    shape=(in_s, self.s_channels),
                    initializer=_uniform(s_gain * s_mix / math.sqrt(in_s)),
                )
            if self.use_bias:
                self.s_bias = self.add_weight(  # lgatr: uniform, not zeros
                    name="s_bias",
                    shape=(self.s_channels,),
                    initializer=_uniform(s_gain / math.sqrt(2 * in_mv + in_s)),
                )
        if self.use_bias and in_s and self.pseudoscalar_bias:
            self.ps_bias = self.add_weight(  # lgatr's scalar -> multivector map has this bias
                name="ps_bias",
                shape=(self.mv_channels,),
                initializer=_uniform(1.0 / math.sqrt(in_s + in_mv), centre),
            )

    def call(self, multivectors, scalars=None):
        in_mv = multivectors.shape[-2]
        lead = ops.shape(multivectors)[:-2]
        dtype = multivectors.dtype
        slots = ops.convert_to_tensor(_SCALAR_SLOTS, dtype=dtype)
        out_mv = _mix(multivectors, ops.cast(self.mv_kernel, dtype), lead, self.mv_channels)

        invariant = None  # (..., C_out, 2) added to components (0, 15)
        if self.s2mv_kernel is not None and scalars is not None:
            invariant = ops.matmul(scalars, ops.cast(self.s2mv_kernel, dtype))
            invariant = ops.reshape(invariant, tuple(lead) + (self.mv_channels, 2))
        if self.mv_bias is not None:
            ps = self.ps_bias if self.ps_bias is not None else ops.zeros((self.mv_channels,))
            bias = ops.stack([ops.cast(self.mv_bias, dtype), ops.cast(ps, dtype)], -1)
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
            pseudoscalar_bias=self.pseudoscalar_bias,
        )
        return config
