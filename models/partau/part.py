"""The generic Particle Transformer (ParT) classifier and its reusable pieces.

Keras 3 functional reimplementation of weaver-core's `ParticleTransformer` (arXiv:2202.03772):
particle embedding, pair-feature attention bias shared by all particle blocks, class-attention
readout, LayerNorm, linear head. `part_backbone` and `class_attention_head` work on symbolic
tensors so multi-task models (MultiParTau: one backbone, several class tokens) reuse them.
"""

import keras

from models.layers import (
    ClassAttentionBlock,
    ClassToken,
    PairEmbed,
    PairFeatures,
    ParticleAttentionBlock,
    ParticleEmbed,
)
from models.layers.particle_embed import layer_norm, torch_linear


def part_backbone(
    features,
    fourvectors,
    mask,
    *,
    embed_dims=(128, 512, 128),
    pair_embed_dims=(64, 64, 64),
    num_heads=8,
    num_layers=8,
    activation="gelu",
    dropout=0.1,
    metric="rapidity-phi",
    use_pre_activation_pair=False,
    name="part",
):
    """Particle embedding + pair bias + `num_layers` particle attention blocks.

    Args:
        features: (B, P, F) symbolic tensor of standardised particle features.
        fourvectors: (B, P, 4) symbolic tensor (px, py, pz, E); zeros for padding.
        mask: (B, P) symbolic tensor, 1 = real particle.
        embed_dims: ParticleEmbed widths; the last is the model width E.
        pair_embed_dims: PairEmbed hidden widths (the output has `num_heads` channels);
            None or () switches the pair bias off.
        num_heads: attention heads.
        num_layers: particle blocks.
        activation: "gelu" (exact), "gelu_tanh" (ONNX export) or "relu" for the embedding
            and the blocks; the pair embedding uses GELU ("gelu_tanh" if that is chosen).
        dropout: dropout, attention dropout and activation dropout of the particle blocks.
        metric: pair-feature angular metric, "rapidity-phi" or "theta-phi".
        use_pre_activation_pair: drop PairEmbed's final activation.
        name: prefix of the layer names.

    Returns:
        (particle embeddings (B, P, E), mask (B, P)).
    """
    x = ParticleEmbed(embed_dims, activation=activation, name=f"{name}_embed")(
        features, particle_mask=mask
    )  # (B, P, E)
    bias = None
    # weaver builds PairEmbed with its default GELU whatever `activation` is; only the
    # ONNX-friendly tanh GELU is passed on
    pair_activation = "gelu_tanh" if activation == "gelu_tanh" else "gelu"
    if pair_embed_dims:
        pairs = PairFeatures(metric=metric, name=f"{name}_pair_features")(fourvectors)
        bias = PairEmbed(
            pair_embed_dims,
            num_heads=num_heads,
            activation=pair_activation,
            use_pre_activation_pair=use_pre_activation_pair,
            name=f"{name}_pair_embed",
        )(pairs)  # (B, H, P, P), shared by every particle block
    for i in range(num_layers):
        block = ParticleAttentionBlock(
            embed_dims[-1],
            num_heads,
            dropout=dropout,
            attn_dropout=dropout,
            activation_dropout=dropout,
            activation=activation,
            name=f"{name}_block_{i}",
        )
        x = block(x, particle_mask=mask, attn_bias=bias)
    return x, mask


def class_attention_head(
    x, mask, num_cls_layers=2, *, num_heads=8, activation="gelu", dropout=0.0, name="cls"
):
    """Class token + `num_cls_layers` class-attention blocks + LayerNorm.

    Args:
        x: (B, P, E) particle embeddings from `part_backbone`.
        mask: (B, P), 1 = real particle.
        num_cls_layers: class-attention blocks.
        num_heads: attention heads.
        activation: "gelu", "gelu_tanh" or "relu".
        dropout: all dropouts of the class blocks (weaver: 0).
        name: prefix of the layer names; use one per class token.

    Returns:
        (B, E) normalised class-token embedding.
    """
    e = x.shape[-1]
    cls = ClassToken(e, name=f"{name}_token")(x)  # (B, 1, E)
    for i in range(num_cls_layers):
        block = ClassAttentionBlock(
            e,
            num_heads,
            dropout=dropout,
            attn_dropout=dropout,
            activation_dropout=dropout,
            activation=activation,
            name=f"{name}_block_{i}",
        )
        cls = block(x, cls, particle_mask=mask)
    cls = layer_norm(name=f"{name}_norm")(cls)
    return keras.layers.Reshape((e,), name=f"{name}_embedding")(cls)  # (B, E)


def _head_dtype():
    """float32 logits under a mixed policy, the policy's dtype otherwise."""
    policy = keras.config.dtype_policy()
    return "float32" if policy.compute_dtype in ("float16", "bfloat16") else None


def build_part(
    num_features=17,
    num_classes=10,
    *,
    num_particles=None,
    embed_dims=(128, 512, 128),
    pair_embed_dims=(64, 64, 64),
    num_heads=8,
    num_layers=8,
    num_cls_layers=2,
    fc_params=(),
    activation="gelu",
    dropout=0.1,
    metric="rapidity-phi",
    use_pre_activation_pair=False,
    name="ParT",
) -> keras.Model:
    """ParT classifier (defaults: the JetClass reference model, 2,143,486 parameters).

    Inputs (dict):
        features: (B, P, num_features) standardised particle features.
        fourvectors: (B, P, 4) (px, py, pz, E) in GeV, zeros for padded particles.
        mask: (B, P), 1 = real particle.

    Output:
        logits: (B, num_classes), raw (no softmax).

    Args:
        num_features: F.
        num_classes: output logits.
        num_particles: P, or None for a variable length.
        embed_dims, pair_embed_dims, num_heads, num_layers, activation, dropout, metric,
            use_pre_activation_pair: see `part_backbone`.
        num_cls_layers: class-attention blocks (dropout 0, as weaver).
        fc_params: hidden head layers as (units, dropout_rate) pairs: Dense -> ReLU -> Dropout.
        name: model name.
    """
    features = keras.Input((num_particles, num_features), name="features")
    fourvectors = keras.Input((num_particles, 4), name="fourvectors")
    mask = keras.Input((num_particles,), name="mask")
    x, _ = part_backbone(
        features,
        fourvectors,
        mask,
        embed_dims=embed_dims,
        pair_embed_dims=pair_embed_dims,
        num_heads=num_heads,
        num_layers=num_layers,
        activation=activation,
        dropout=dropout,
        metric=metric,
        use_pre_activation_pair=use_pre_activation_pair,
        name="part",
    )
    h = class_attention_head(
        x, mask, num_cls_layers, num_heads=num_heads, activation=activation, name="cls"
    )  # (B, E)
    fan_in = embed_dims[-1]
    for i, (units, rate) in enumerate(fc_params):
        h = torch_linear(units, fan_in, activation="relu", name=f"fc_{i}")(h)
        h = keras.layers.Dropout(rate, name=f"fc_dropout_{i}")(h)
        fan_in = units
    logits = torch_linear(num_classes, fan_in, dtype=_head_dtype(), name="logits")(h)
    inputs = {"features": features, "fourvectors": fourvectors, "mask": mask}
    return keras.Model(inputs, logits, name=name)
