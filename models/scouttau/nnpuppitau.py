"""NNPuppiTau-like tau ID network (CMSSW TauNNId): 80 inputs -> a dense tau logit.

The ScoutTau baseline; its inputs come from the seeded-cone clustering of `data.nnpuppitau`.
Inputs are standardised by a Normalization layer with the training set's mean and variance.
"""

import keras

from data.errors import UserError
from data.nnpuppitau import N_INPUTS


def build_nnpuppitau(
    hidden=(25, 10), *, n_inputs=N_INPUTS, batch_norm=False, mean=None, variance=None
):
    """TauNNId-like dense network: inputs (B, n_inputs) -> `tau_id` logit (B, 1).

    Args:
        hidden: units of the hidden Dense + ReLU layers (CMSSW TauNNId: two).
        n_inputs: input width (80 = 10 candidates x 8 features).
        batch_norm: BatchNormalization before each ReLU.
        mean, variance: (n_inputs,) input standardisation (None: no standardisation).
    Raises:
        UserError: empty or non-positive `hidden`, non-positive `n_inputs`.
    """
    hidden = tuple(hidden)
    if not hidden or any(int(h) < 1 for h in hidden) or n_inputs < 1:
        raise UserError(f"hidden needs positive layer sizes and n_inputs >= 1, got {hidden}")
    x = inputs = keras.Input((n_inputs,), name="inputs")
    if mean is not None:
        x = keras.layers.Normalization(mean=mean, variance=variance, name="standardise")(x)
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(int(units), name=f"dense_{i}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"batch_norm_{i}")(x)
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
    logit = keras.layers.Dense(1, name="tau_id")(x)
    return keras.Model(inputs, logit, name="nnpuppitau")
