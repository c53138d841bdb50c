"""Embedding and readout layers of the L-GATr top reconstruction model."""

import keras
import numpy as np
from keras import ops

from models.layers.geometric import ops as gops
from models.layers.piecewise import piecewise_linear


@keras.saving.register_keras_serializable(package="hepformers")
class TopEventEmbedding(keras.layers.Layer):
    """Four-vectors, scalars and mask of the objects -> L-GATr tokens.

    Tokens are [global token (if `global_token`), spurion tokens (if `spurion_mode` is
    "token"), objects]. Each object carries its scaled four-vector on grade 1 of channel 0.
    The global token carries a zero multivector (invariant, so equivariance is kept) and is
    told apart by a scalar flag. Two flags are appended to the scalars: [is_global,
    is_spurion]. In "channel" mode the spurions are extra multivector channels of every token.

    Args:
        momentum_scale: GeV; four-vectors are divided by it.
        spurions: "none", "beam" or "beam_time".
        beam_spurion: "xyplane", "spacelike", "lightlike" or "timelike".
        spurion_mode: "token" or "channel".
        global_token: prepend the global readout token.

    Call args:
        fourvectors: (B, N, 4) as (px, py, pz, E) in GeV.
        scalars: (B, N, S).
        object_mask: (B, N), 1 = real object, or None.

    Returns:
        (multivectors (B, T, C, 16), scalars (B, T, S + 2), token_mask (B, T) bool), with
        T = N + extra tokens and C = 1 (+ number of spurions in "channel" mode).
    """

    def __init__(
        self,
        momentum_scale=100.0,
        spurions="beam_time",
        beam_spurion="xyplane",
        spurion_mode="token",
        global_token=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.momentum_scale = momentum_scale
        self.spurions = spurions
        self.beam_spurion = beam_spurion
        self.spurion_mode = spurion_mode
        self.global_token = global_token

    def _spurion_array(self):
        if self.spurions == "none":
            return np.zeros((0, 16), "float32")
        return gops.spurions(beam=self.beam_spurion, time=self.spurions == "beam_time")

    def build(self, fourvectors_shape, scalars_shape):
        sp = self._spurion_array()
        n_sp = len(sp)
        n_s = scalars_shape[-1]
        channel_mode = self.spurion_mode == "channel"
        self._channels = 1 + (n_sp if channel_mode else 0)
        extra_mv, extra_s = [], []
        if self.global_token:
            extra_mv.append(np.zeros((1, 16), "float32"))
            extra_s.append(np.eye(1, n_s + 2, n_s, dtype="float32"))
        if not channel_mode and n_sp:
            extra_mv.append(sp)
            extra_s.append(np.repeat(np.eye(1, n_s + 2, n_s + 1, dtype="float32"), n_sp, 0))
        self._n_extra = sum(len(a) for a in extra_mv)
        mv = np.concatenate(extra_mv or [np.zeros((0, 16), "float32")])[:, None, :]
        if channel_mode and n_sp:
            mv = np.concatenate([mv, np.broadcast_to(sp, (len(mv),) + sp.shape)], axis=1)
        self._extra_mv = mv.astype("float32")  # (n_extra, C, 16)
        self._extra_s = np.concatenate(extra_s or [np.zeros((0, n_s + 2), "float32")])
        self._channel_spurions = sp if channel_mode and n_sp else None

    def call(self, fourvectors, scalars, object_mask=None):
        dtype = self.compute_dtype
        b, n = ops.shape(fourvectors)[0], ops.shape(fourvectors)[1]
        mv = gops.embed_vector(ops.cast(fourvectors, dtype) / self.momentum_scale)
        mv = ops.expand_dims(mv, 2)  # (B, N, 1, 16)
        if self._channel_spurions is not None:
            sp = ops.convert_to_tensor(self._channel_spurions, dtype=dtype)
            sp = ops.broadcast_to(sp[None, None], (b, n) + tuple(self._channel_spurions.shape))
            mv = ops.concatenate([mv, sp], axis=2)
        s = ops.cast(scalars, dtype)
        s = ops.concatenate([s, ops.zeros((b, n, 2), dtype=dtype)], axis=-1)
        token_mask = ops.ones((b, n), "bool")
        if object_mask is not None:
            token_mask = ops.cast(object_mask, "bool")
        if self._n_extra:
            e = self._n_extra
            extra_mv = ops.convert_to_tensor(self._extra_mv, dtype=dtype)
            extra_s = ops.convert_to_tensor(self._extra_s, dtype=dtype)
            mv = ops.concatenate(
                [ops.broadcast_to(extra_mv[None], (b, e, self._channels, 16)), mv], axis=1
            )
            s = ops.concatenate(
                [ops.broadcast_to(extra_s[None], (b, e, self._extra_s.shape[-1])), s], axis=1
            )
            token_mask = ops.concatenate([ops.ones((b, e), "bool"), token_mask], axis=1)
        return mv, s, token_mask

    def compute_output_spec(self, fourvectors, scalars, object_mask=None):
        b, n = fourvectors.shape[0], fourvectors.shape[1]
        t = None if n is None else n + self._n_extra
        return (
            keras.KerasTensor((b, t, self._channels, 16), dtype=self.compute_dtype),
            keras.KerasTensor((b, t, scalars.shape[-1] + 2), dtype=self.compute_dtype),
            keras.KerasTensor((b, t), dtype="bool"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            momentum_scale=self.momentum_scale,
            spurions=self.spurions,
            beam_spurion=self.beam_spurion,
            spurion_mode=self.spurion_mode,
            global_token=self.global_token,
        )
        return config


@keras.saving.register_keras_serializable(package="hepformers")
class FourVectorReadout(keras.layers.Layer):
    """Grade-1 parts of chosen (token, channel) multivectors as four-vectors in GeV.

    Args:
        tokens: token index of each output four-vector.
        channels: multivector channel of each output four-vector.
        momentum_scale: GeV; the extracted vectors are multiplied by it.

    Call args:
        multivectors: (B, T, C, 16).

    Returns:
        (B, len(tokens), 4) four-vectors as (px, py, pz, E).
    """

    def __init__(self, tokens, channels, momentum_scale=100.0, **kwargs):
        super().__init__(**kwargs)
        self.tokens = tokens
        self.channels = channels
        self.momentum_scale = momentum_scale

    def call(self, multivectors):
        picked = [multivectors[:, t, c] for t, c in zip(self.tokens, self.channels)]
        picked = ops.stack(picked, axis=1)  # (B, K, 16)
        return gops.extract_vector(picked) * self.momentum_scale

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.tokens), 4)

    def get_config(self):
        config = super().get_config()
        config.update(
            tokens=self.tokens, channels=self.channels, momentum_scale=self.momentum_scale
        )
        return config


@keras.saving.register_keras_serializable(package="hepformers")
class OnShellTops(keras.layers.Layer):
    """Puts predicted tops on their mass shell: (px, py, pz[, E]) -> (px, py, pz, sqrt(p^2 + m^2)).

    The network's three-momentum is kept and the energy replaced, so the predicted top mass is
    `top_mass` by construction and m_tt >= 2 `top_mass` (the m_tt loss term can never see a
    space-like pair).

    Symmetry: the map commutes with rotations (SO(3)) but not with boosts, so a fully
    Lorentz-equivariant network followed by it is rotation-equivariant in the lab frame. With
    the toolkit's spurions ("beam": SO(1,1) x SO(2) about the beam; "beam_time": SO(2) about the
    beam) what survives is the rotation about the beam axis: the detector's own symmetry.

    Args:
        top_mass: GeV.

    Call args:
        momenta: (B, K, 3) or (B, K, 4) in GeV; a fourth component is ignored.

    Returns:
        (B, K, 4) as (px, py, pz, E) in GeV.
    """

    def __init__(self, top_mass=172.5, **kwargs):
        super().__init__(**kwargs)
        self.top_mass = top_mass

    def call(self, momenta):
        p3 = momenta[..., :3]
        energy = ops.sqrt(ops.sum(ops.square(p3), axis=-1, keepdims=True) + self.top_mass**2)
        return ops.concatenate([p3, energy], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (4,)

    def get_config(self):
        config = super().get_config()
        config.update(top_mass=self.top_mass)
        return config


@keras.saving.register_keras_serializable(package="hepformers")
class TopPtCalibration(keras.layers.Layer):
    """Response calibration of the predicted top pT at fixed rapidity, azimuth and mass.

    pT -> pT * r(pT), with r piecewise linear between knots (pT_k, r_k) of predicted pT and
    constant beyond the end knots (`calibrate.py` derives them: in bins of predicted pT, the
    median of pT_true / pT_pred on calibration events, as jet and MET response corrections
    are made). The transverse mass mT = sqrt(pT^2 + m^2) changes with pT and pz, E are scaled
    by mT' / mT, so y, phi and the four-vector's own mass stay as they were.

    Symmetry: the map commutes with rotations about the beam axis and with boosts along it
    (pT and m are invariant under both, y only shifts), the symmetry the spurions leave.

    Args:
        knots_pt: increasing predicted pT values (GeV), at least 2.
        knots_ratio: the positive ratio pT_cal / pT at each knot.

    Call args:
        tops: (B, K, 4) as (px, py, pz, E) in GeV.

    Returns:
        (B, K, 4) calibrated, same convention.
    """

    def __init__(self, knots_pt, knots_ratio, **kwargs):
        super().__init__(**kwargs)
        if len(knots_pt) != len(knots_ratio) or len(knots_pt) < 2:
            raise ValueError("knots_pt and knots_ratio need the same length, at least 2")
        if any(b <= a for a, b in zip(knots_pt, knots_pt[1:])):
            raise ValueError("knots_pt must increase")
        if any(not r > 0 for r in knots_ratio):
            raise ValueError("knots_ratio must be positive")
        self.knots_pt = [float(v) for v in knots_pt]
        self.knots_ratio = [float(v) for v in knots_ratio]

    def ratio(self, pt):
        """r(pT) of a tensor of pT values (GeV)."""
        return piecewise_linear(pt, self.knots_pt, self.knots_ratio)

    def call(self, tops):
        px, py, pz, e = (tops[..., i] for i in range(4))
        pt2 = px**2 + py**2
        mt2 = ops.maximum(e**2 - pz**2, 1e-6)  # pT^2 + m^2
        m2 = ops.maximum(mt2 - pt2, 0.0)
        r = self.ratio(ops.sqrt(pt2))
        boost = ops.sqrt((r**2 * pt2 + m2) / mt2)  # mT' / mT
        return ops.stack([px * r, py * r, pz * boost, e * boost], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(knots_pt=self.knots_pt, knots_ratio=self.knots_ratio)
        return config
