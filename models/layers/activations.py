"""Activation functions shared by several models (registered so saved models load)."""

import keras


@keras.saving.register_keras_serializable(package="hepformers")
def gelu_tanh(x):
    """GELU with the tanh approximation: exact GELU (Erf) does not convert to ONNX (tf2onnx)."""
    return keras.activations.gelu(x, approximate=True)
