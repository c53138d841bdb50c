"""The Tau Pair Mass Transformer (seed 000) as a Keras functional model.

Tokens: the two tau legs, up to P tau_h decay products, up to J jets and one MET token (MET,
its covariance and the visible mass). Each collection has its own standardisation, projection
and type embedding; an encoder runs over all tokens with a padding mask; a head on the two leg
tokens predicts log(pT_tau) - log(pT_reco), and `CollinearDiTau` rebuilds the taus and m_tautau.
With `product_dropout` > 0, `ProductDropout` masks all decay products of a random fraction of
training events, so one model runs with and without them (NanoAOD has no PF candidates).
A second small head on the pooled leg tokens predicts two non-negative log-offsets, and
`MassQuantiles` turns them into the 16% and 84% quantiles of m_tautau (a per-event 68% interval
that contains the point estimate by construction).
"""

import keras
import numpy as np

from models.tpmt.layers import (
    CollinearDiTau,
    EncoderBlock,
    LogMass,
    MassQuantiles,
    ProductDropout,
    TokenMask,
    TokenType,
    gelu_tanh,
)

INPUT_NAMES = ("legs", "products", "product_mask", "jets", "jet_mask", "met", "leg_kinematics")
OUTPUT_COLUMNS = ("tau1_pt", "tau2_pt", "m_tautau", "m_tautau_q16", "m_tautau_q84")
# The quantile head starts at offsets softplus(b) = 0.15, i.e. an interval m * [0.86, 1.16]:
# about the relative resolution of a trained model, so the pinball term starts near its optimum.
QUANTILE_INIT_OFFSET = 0.15


def build_model(config, stats=None):
    """Build TPMT.

    Args:
        config: `TPMTConfig`.
        stats: optional dict collection -> (mean, variance) lists of its features (from the
            training sample) for the built-in standardisation; identity if None.
    Returns:
        keras.Model with inputs INPUT_NAMES and one output `tpmt` (B, 5) = OUTPUT_COLUMNS:
        tau1 and tau2 pT, m_tautau and its 16% and 84% quantiles (GeV), q16 <= m <= q84.
    """
    c = config
    legs = keras.Input((2, c.n_leg_features), name="legs")
    products = keras.Input((c.n_products, c.n_product_features), name="products")
    product_mask = keras.Input((c.n_products,), name="product_mask", dtype="bool")
    jets = keras.Input((c.n_jets, c.n_jet_features), name="jets")
    jet_mask = keras.Input((c.n_jets,), name="jet_mask", dtype="bool")
    met = keras.Input((c.n_met_features,), name="met")
    leg_kinematics = keras.Input((2, 3), name="leg_kinematics")
    inputs = [legs, products, product_mask, jets, jet_mask, met, leg_kinematics]
    if c.product_dropout > 0:  # training only: all products of some events masked and zeroed
        products, product_mask = ProductDropout(c.product_dropout, name="product_dropout")(
            [products, product_mask]
        )

    def embed(x, name):
        mean, var = (stats or {}).get(name, (0.0, 1.0))
        n = x.shape[-1]
        x = keras.layers.Normalization(
            mean=np.broadcast_to(mean, n).tolist(),
            variance=np.broadcast_to(var, n).tolist(),
            name=f"{name}_standardise",
        )(x)
        x = keras.layers.Dense(c.d_model, name=f"{name}_projection")(x)
        return TokenType(name=f"{name}_type")(x)

    met_token = keras.layers.Reshape((1, c.n_met_features), name="met_token")(met)
    token_list = [
        embed(legs, "legs"),
        embed(products, "products"),
        embed(jets, "jets"),
        embed(met_token, "met"),
    ]
    if c.parametric:  # the hypothesised mass as one more token, from its log
        hypothesis = keras.Input((1,), name="mass_hypothesis")
        log_m = LogMass(name="log_mass_hypothesis")(hypothesis)
        token_list.append(embed(keras.layers.Reshape((1, 1))(log_m), "hypothesis"))
        inputs.append(hypothesis)
    n_trailing = len(token_list) - 3  # MET (and hypothesis) tokens after the jets
    tokens = keras.layers.Concatenate(axis=1, name="tokens")(token_list)  # (B, 2+P+J+T, d)
    mask = TokenMask(n_leading=2, n_trailing=n_trailing, name="token_mask")(
        [product_mask, jet_mask]
    )
    h = tokens
    for i in range(c.num_blocks):
        h = EncoderBlock(
            c.d_model, c.num_heads, c.key_dim, c.ff_dim, c.dropout, name=f"encoder_{i}"
        )([h, mask])
    h = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(h)
    n_tokens = 2 + c.n_products + c.n_jets + n_trailing
    legs_h = keras.layers.Cropping1D((0, n_tokens - 2), name="leg_tokens")(h)  # (B, 2, d)
    h = keras.layers.Dense(c.head_dim, activation=gelu_tanh, name="head_hidden")(legs_h)
    delta = keras.layers.Dense(1, kernel_initializer="zeros", name="head_out")(h)  # (B, 2, 1)
    delta = keras.layers.Reshape((2,), name="log_pt_correction")(delta)
    point = CollinearDiTau(name="collinear_ditau")([delta, legs, leg_kinematics])  # (B, 3)
    # quantile head: mean of the two leg tokens -> raw log-offsets (a, b) of q16 and q84
    q = keras.layers.GlobalAveragePooling1D(name="pooled_legs")(legs_h)  # (B, d)
    q = keras.layers.Dense(c.quantile_dim, activation=gelu_tanh, name="quantile_hidden")(q)
    raw = keras.layers.Dense(
        2,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(
            float(np.log(np.expm1(QUANTILE_INIT_OFFSET)))  # softplus^-1
        ),
        name="quantile_out",
    )(q)  # (B, 2)
    out = MassQuantiles(name="tpmt")([point, raw])  # (B, 5)
    return keras.Model(inputs={x.name: x for x in inputs}, outputs=out, name="tpmt")


def with_product_dropout(model, rate, seed=None):
    """A TPMT with product dropout `rate` (0: none), sharing the layers and weights of `model`.

    A trained `.keras` file holds its own graph, so fine-tuning it (`fit.py --init-from`) with
    another `product_dropout` than it was trained with inserts, replaces or removes the
    `ProductDropout` layer here. Returns `model` itself when its rate is already `rate`.
    """
    if product_dropout_rate(model) == rate:
        return model

    def make_call(inputs):
        raw = (inputs["products"], inputs["product_mask"])
        dropped = (
            ProductDropout(rate, seed=seed, name="product_dropout")(list(raw)) if rate > 0 else raw
        )
        swap = {id(raw[0]): dropped[0], id(raw[1]): dropped[1]}

        def call(layer, *args, **kwargs):
            if isinstance(layer, ProductDropout):  # the old dropout: replaced (or removed)
                return dropped
            args, kwargs = keras.tree.map_structure(lambda t: swap.get(id(t), t), (args, kwargs))
            return layer(*args, **kwargs)

        return call

    return rewire(model, make_call)


def rewire(model, make_call):
    """The graph of `model` rebuilt on fresh inputs, sharing its layers and weights.

    `make_call(inputs)` gets the new input tensors (a dict by name) and returns the hook that
    makes every layer call of the rebuilt graph (`call(layer, *args, **kwargs)`), where layers
    are inserted, replaced or skipped.
    """
    inputs = keras.tree.map_structure(
        lambda x: keras.Input(batch_shape=x.shape, dtype=x.dtype, name=x.name), model.input
    )
    return keras.models.clone_model(
        model,
        input_tensors=inputs,
        clone_function=lambda layer: layer,
        call_function=make_call(inputs),
    )


def product_dropout_rate(model):
    """The `ProductDropout` rate of a TPMT, 0.0 for a model without the layer."""
    rates = [layer.rate for layer in model.layers if isinstance(layer, ProductDropout)]
    return rates[0] if rates else 0.0


def compile_model(model, config):
    """Adam + the three-term TPMT loss, each term logged as a metric, and the 68% coverage."""
    from models.tpmt.losses import (
        MassMAE,
        MassQuantileCoverage,
        MassQuantileLoss,
        TauPtMAE,
        TPMTLoss,
    )

    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=TPMTLoss(config.lambda_tau, config.lambda_m, config.lambda_q),
        metrics=[TauPtMAE(), MassMAE(), MassQuantileLoss(), MassQuantileCoverage()],
    )
    return model


def predict_named(model, inputs, batch_size=4096):
    """Run the model and name its output columns: dict of (N,) arrays.

    Models saved before the quantile head have 3 output columns: their dict has only
    tau1_pt, tau2_pt and m_tautau (no m_tautau_q16 / m_tautau_q84 keys).
    """
    y = model.predict({k: inputs[k] for k in input_names(model)}, batch_size=batch_size, verbose=0)
    return {name: y[:, i] for i, name in enumerate(OUTPUT_COLUMNS[: y.shape[1]])}


def input_names(model):
    """Names of a TPMT's inputs: INPUT_NAMES, plus `mass_hypothesis` for a parametric model."""
    inp = model.input
    return list(inp) if isinstance(inp, dict) else [t.name for t in model.inputs]


def is_parametric(model):
    return "mass_hypothesis" in input_names(model)
