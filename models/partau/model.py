"""MultiParTau and SingleParTau: ParT backbones with task-specific class tokens and heads.

MultiParTau (ML-Tau `MultiParTau.py`): one shared backbone (particle embedding, pair bias,
particle blocks) and, per task, its own class token, class-attention stack, LayerNorm and head
Linear(E, E/2) -> GELU -> Dropout -> Linear. SingleParTau: one class token and a linear head
for one task. Outputs are raw: tau_id (B, 2) logits, charge (B, 1) logit (tau+), decay_mode
(B, 6) logits, kinematics (B, 5) corrections (data/partau.py), as a dict keyed by task.
"""

import keras

from models.layers.activations import gelu_tanh
from models.layers.particle_embed import torch_linear
from models.partau.config import TASKS, ParTauConfig
from models.partau.part import _head_dtype, class_attention_head, part_backbone
from models.partau.pcgrad import PCGradModel

OUTPUTS = {"tau_id": 2, "charge": 1, "decay_mode": 6, "kinematics": 5}


def build_model(config: ParTauConfig) -> keras.Model:
    """MultiParTau (config.variant "multi") or SingleParTau ("single", config.task).

    Inputs (dict): features (B, P, 17), fourvectors (B, P, 4) px, py, pz, E, mask (B, P).
    """
    p, f = config.max_cands, config.num_features
    features = keras.Input((p, f), name="features")
    fourvectors = keras.Input((p, 4), name="fourvectors")
    mask = keras.Input((p,), name="mask")
    x, _ = part_backbone(
        features,
        fourvectors,
        mask,
        embed_dims=config.embed_dims,
        pair_embed_dims=config.pair_embed_dims,
        num_heads=config.num_heads,
        num_layers=config.num_layers,
        activation=config.activation,
        dropout=config.dropout,
        metric=config.metric,
        name="backbone",
    )  # (B, P, E)
    e = config.embed_dims[-1]
    outputs = {}
    for task in config.tasks:
        h = class_attention_head(
            x,
            mask,
            config.num_cls_layers,
            num_heads=config.num_heads,
            activation=config.activation,
            name=f"{task}_cls",
        )  # (B, E)
        if config.variant == "multi":
            rate = dict(zip(TASKS, config.head_dropout))[task]
            act = gelu_tanh if config.activation == "gelu_tanh" else config.activation
            h = torch_linear(e // 2, e, activation=act, name=f"{task}_hidden")(h)
            if rate:
                h = keras.layers.Dropout(rate, name=f"{task}_dropout")(h)
            fan_in = e // 2
        else:
            fan_in = e
        outputs[task] = torch_linear(OUTPUTS[task], fan_in, dtype=_head_dtype(), name=task)(h)
    inputs = {"features": features, "fourvectors": fourvectors, "mask": mask}
    if config.variant == "multi":
        return PCGradModel(
            inputs=inputs,
            outputs=outputs,
            pcgrad=config.pcgrad,
            protected_task="kinematics",
            clip_norm=config.clip_norm,
            name="MultiParTau",
        )
    return keras.Model(inputs, outputs, name=f"SingleParTau_{config.task}")
