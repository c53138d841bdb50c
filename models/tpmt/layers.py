"""Custom layers of TPMT: product dropout, token type, masked encoder block, collinear di-tau
mass, its quantiles."""

import keras
from keras import ops

from models import physics
from models.layers.activations import gelu_tanh  # noqa: F401  (re-exported)
from models.layers.piecewise import piecewise_linear

TAU_MASS = 1.77686  # GeV, PDG


@keras.saving.register_keras_serializable(package="hepformers")
class LogMass(keras.layers.Layer):
    """log of a mass in GeV, floored at 1 GeV: (B, ...) -> (B, ...)."""

    def call(self, x):
        return ops.log(ops.maximum(ops.cast(x, self.compute_dtype), 1.0))


@keras.saving.register_keras_serializable(package="hepformers")
class ProductDropout(keras.layers.Layer):
    """In training, drops every decay-product token of a random `rate` fraction of events.

    Teaches one model to run with and without the tau_h decay products (PF candidates, absent
    from standard NanoAOD, where the loader gives an all-False mask). A dropped event gets an
    all-False product mask and all-zero product features, as the loader pads missing ones; each
    event is dropped independently with probability `rate`. Identity at inference.
    Inputs: products (B, P, F), product_mask (B, P) bool. Outputs: the same two, same shapes.

    Args:
        rate: probability that an event loses all its product tokens, in [0, 1).
        seed: optional integer seed of the layer's `keras.random.SeedGenerator`.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        products, mask = inputs
        mask = ops.cast(mask, "bool")
        if not training or self.rate == 0:
            return products, mask
        b = ops.shape(mask)[0]
        keep = keras.random.uniform((b,), seed=self.seed_generator) >= self.rate  # (B,)
        mask = ops.logical_and(mask, keep[:, None])  # (B, P)
        products = ops.where(keep[:, None, None], products, ops.zeros_like(products))  # (B, P, F)
        return products, mask

    def compute_output_spec(self, inputs, training=None):
        products, mask = inputs
        return (
            keras.KerasTensor(products.shape, dtype=products.dtype),
            keras.KerasTensor(mask.shape, dtype="bool"),
        )

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="hepformers")
class TokenType(keras.layers.Layer):
    """Adds a learned vector that marks which collection a token comes from.

    Input (B, N, d) -> output (B, N, d).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def build(self, input_shape):
        self.embedding = self.add_weight(
            name="embedding", shape=(input_shape[-1],), initializer="random_normal"
        )

    def call(self, x):
        return x + self.embedding


@keras.saving.register_keras_serializable(package="hepformers")
class TokenMask(keras.layers.Layer):
    """Token mask of the concatenated sequence [legs, products, jets, met].

    Inputs: product_mask (B, P), jet_mask (B, J). Output: (B, n_leading + P + J + n_trailing)
    bool, with the always-present legs first and the MET token last.
    """

    def __init__(self, n_leading=2, n_trailing=1, **kwargs):
        super().__init__(**kwargs)
        self.n_leading = n_leading
        self.n_trailing = n_trailing

    def call(self, inputs):
        product_mask, jet_mask = inputs
        b = ops.shape(product_mask)[0]
        lead = ops.ones((b, self.n_leading), dtype="bool")
        trail = ops.ones((b, self.n_trailing), dtype="bool")
        return ops.concatenate(
            [lead, ops.cast(product_mask, "bool"), ops.cast(jet_mask, "bool"), trail], axis=1
        )

    def compute_output_shape(self, input_shapes):
        p, j = input_shapes
        n = None if p[1] is None or j[1] is None else self.n_leading + p[1] + j[1] + self.n_trailing
        return (p[0], n)

    def get_config(self):
        return {**super().get_config(), "n_leading": self.n_leading, "n_trailing": self.n_trailing}


@keras.saving.register_keras_serializable(package="hepformers")
class EncoderBlock(keras.layers.Layer):
    """Pre-norm transformer encoder block with a key padding mask.

    Inputs: tokens (B, N, d), mask (B, N) bool (True = real). Output (B, N, d). Padded keys get
    no attention, so padded tokens never change real tokens' outputs.
    """

    def __init__(self, d_model, num_heads, key_dim, ff_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.d_model = d_model
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.ff_dim = ff_dim
        self.dropout = dropout

    def build(self, input_shape):
        tokens_shape = input_shape[0]
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, self.key_dim, dropout=self.dropout
        )
        self.ff1 = keras.layers.Dense(self.ff_dim, activation=gelu_tanh)
        self.ff2 = keras.layers.Dense(self.d_model)
        self.drop = keras.layers.Dropout(self.dropout)
        self.norm1.build(tokens_shape)
        self.norm2.build(tokens_shape)
        self.attention.build(tokens_shape, tokens_shape)
        self.ff1.build(tokens_shape)
        self.ff2.build((*tokens_shape[:-1], self.ff_dim))

    def call(self, inputs, training=None):
        x, mask = inputs
        mask = ops.cast(mask, "bool")
        attention_mask = ops.logical_and(mask[:, None, :], ops.ones_like(mask)[:, :, None])
        h = self.norm1(x)
        x = x + self.drop(
            self.attention(h, h, attention_mask=attention_mask, training=training),
            training=training,
        )
        h = self.norm2(x)
        return x + self.drop(self.ff2(self.ff1(h)), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {
            **super().get_config(),
            "d_model": self.d_model,
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="hepformers")
class CollinearDiTau(keras.layers.Layer):
    """Rebuild both taus from predicted pT and the visible direction; output pT and m_tautau.

    The tau is taken collinear with its visible decay products (valid for pT_reco > 20 GeV,
    seed 000), with the tau mass.
    Inputs: delta (B, 2) predicted log(pT_tau) - log(pT_reco); legs (B, 2, F) whose feature
    `log_pt_index` is log(pT_reco); kinematics (B, 2, 3) = (eta, phi, visible mass).
    Output: (B, 3) = (pT_tau1, pT_tau2, m_tautau) in GeV.
    """

    def __init__(self, log_pt_index=0, **kwargs):
        super().__init__(**kwargs)
        self.log_pt_index = log_pt_index

    def call(self, inputs):
        delta, legs, kinematics = inputs
        pt = ops.exp(legs[..., self.log_pt_index] + delta)
        p4 = physics.p4_from_ptetaphim(
            pt, kinematics[..., 0], kinematics[..., 1], ops.full_like(pt, TAU_MASS)
        )
        mass = physics.invariant_mass(ops.sum(p4, axis=1))
        return ops.concatenate([pt, mass[:, None]], axis=-1)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], 3)

    def get_config(self):
        return {**super().get_config(), "log_pt_index": self.log_pt_index}


@keras.saving.register_keras_serializable(package="hepformers")
class MassQuantiles(keras.layers.Layer):
    """Append the 16% and 84% quantiles of m_tautau, ordered around the point estimate.

    q16 = m exp(-softplus(a)) and q84 = m exp(+softplus(b)), so q16 <= m <= q84 for any a, b.
    With `detach_point`, m enters through a stop-gradient: the quantile loss then trains the
    offsets (and the encoder through them) but never pulls the point estimate.
    Inputs: point (B, 3) = (pT_tau1, pT_tau2, m_tautau); raw offsets (B, 2) = (a, b).
    Output: (B, 5) = (pT_tau1, pT_tau2, m_tautau, m_q16, m_q84) in GeV.
    """

    def __init__(self, detach_point=True, **kwargs):
        super().__init__(**kwargs)
        self.detach_point = detach_point

    def call(self, inputs):
        point, raw = inputs
        m = point[:, 2:3]  # (B, 1)
        if self.detach_point:
            m = ops.stop_gradient(m)
        offsets = ops.softplus(raw)  # (B, 2), >= 0
        q16 = m * ops.exp(-offsets[:, 0:1])
        q84 = m * ops.exp(offsets[:, 1:2])
        return ops.concatenate([point, q16, q84], axis=-1)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], 5)

    def get_config(self):
        return {**super().get_config(), "detach_point": self.detach_point}


@keras.saving.register_keras_serializable(package="hepformers")
class MassCalibration(keras.layers.Layer):
    """Per-channel response calibration of m_tautau by numerical inversion (`calibration.py`).

    For each channel (tauh-tauh, mu-tauh, e-tauh), knots (x_k, y_k) map the predicted mass x
    to the calibrated one y, linearly between knots and with the end knots' ratio y/x beyond
    them; the map is increasing, so quantiles stay quantiles of the calibrated estimate. All
    five columns are scaled by the same factor m_cal / m: with both tau pT scaled by it the
    collinear di-tau mass scales by it too, so (pT1, pT2, m) stay consistent.
    Inputs: y (B, 5) or (B, 3) TPMT output; legs (B, 2, F) raw leg features, whose
    `muon_index` / `electron_index` features flag the channel.
    Output: y calibrated, same shape.

    Args:
        knots_x, knots_y: 3 lists (tauh-tauh, mu-tauh, e-tauh) of K increasing masses (GeV).
    """

    def __init__(self, knots_x, knots_y, muon_index=6, electron_index=7, **kwargs):
        super().__init__(**kwargs)
        if len(knots_x) != 3 or len(knots_y) != 3:
            raise ValueError("knots_x and knots_y need one list per channel (3)")
        for x, y in zip(knots_x, knots_y):
            if len(x) != len(y) or len(x) < 2:
                raise ValueError("every channel needs at least 2 (x, y) knots")
            if any(b <= a for a, b in zip(x, x[1:])) or any(b <= a for a, b in zip(y, y[1:])):
                raise ValueError("calibration knots must increase")
        self.knots_x = [[float(v) for v in x] for x in knots_x]
        self.knots_y = [[float(v) for v in y] for y in knots_y]
        self.muon_index = muon_index
        self.electron_index = electron_index

    def _map(self, m, x, y):
        """Piecewise-linear y(m) inside [x_0, x_K], constant ratio outside; m: (B,)."""
        return piecewise_linear(m, x, y) * m / ops.clip(m, x[0], x[-1])

    def call(self, inputs):
        y, legs = inputs
        m = ops.maximum(y[:, 2], 1e-3)
        mapped = ops.stack(
            [self._map(m, x, yk) for x, yk in zip(self.knots_x, self.knots_y)], axis=-1
        )  # (B, 3): the mass calibrated as each channel
        is_mu = ops.max(legs[..., self.muon_index], axis=1)
        is_e = ops.max(legs[..., self.electron_index], axis=1)
        onehot = ops.stack([ops.clip(1.0 - is_mu - is_e, 0.0, 1.0), is_mu, is_e], axis=-1)
        m_cal = ops.sum(mapped * ops.cast(onehot, mapped.dtype), axis=-1)
        return y * (m_cal / m)[:, None]

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {
            **super().get_config(),
            "knots_x": self.knots_x,
            "knots_y": self.knots_y,
            "muon_index": self.muon_index,
            "electron_index": self.electron_index,
        }
