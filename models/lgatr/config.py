"""Configuration and presets of the L-GATr dilepton ttbar reconstruction model."""

import dataclasses

OBJECTS = (
    "lepton",
    "antilepton",
    "b",
    "bbar",
    "met",
    "jet1",
    "jet2",
    "jet3",
    "jet4",
    "jet5",
    "jet6",
    "jet7",
)
"""Token order of the `fourvectors`, `scalars` and `mask` inputs (MET as (px, py, 0, |pT|))."""

SCALAR_FEATURES = ("is_lepton", "is_antilepton", "is_b", "is_bbar", "is_met", "is_jet")
"""Default per-object scalar features: Lorentz invariants (object-type one-hot)."""


CHOICES = {
    "spurions": ("none", "beam", "beam_time"),
    "beam_spurion": ("xyplane", "spacelike", "lightlike", "timelike"),
    "spurion_mode": ("token", "channel"),
    "readout": ("global", "leptons"),
    "output": ("onshell", "fourvector"),
    "loss": ("mse", "physical"),
}
"""Allowed values of the string fields of `LGATrConfig` (also the fit CLI's choices)."""


@dataclasses.dataclass(frozen=True)
class LGATrConfig:
    """Hyperparameters of the L-GATr top reconstruction model and its plain baseline.

    Attributes:
        objects: token names, in input order (12 objects).
        scalar_features: names of the per-object scalar inputs; n_scalar = len(...).
        momentum_scale: GeV; four-vectors are divided by it before embedding and outputs
            multiplied by it (a single constant, so the scaling is Lorentz invariant).
        num_blocks: L-GATr blocks.
        hidden_mv_channels: multivector channels in the blocks.
        hidden_s_channels: scalar channels in the blocks.
        num_heads: attention heads.
        attn_ratio: attention width factor.
        mlp_ratio: GeoMLP width factor.
        spurions: "none" (fully Lorentz equivariant), "beam" (SO(1,1) x SO(2) about the beam
            axis with the xyplane beam), or "beam_time" (only rotations about the beam axis).
        beam_spurion: "xyplane" (bivector e12) or a beam vector "spacelike", "lightlike",
            "timelike" (two mirrored copies each).
        spurion_mode: "token" (extra tokens) or "channel" (extra multivector channels on
            every token).
        readout: "global" (one extra token with zero multivector and a scalar flag; its two
            output channels are top and antitop) or "leptons" (top at the antilepton token,
            antitop at the lepton token).
        output: "onshell" (the predicted three-momenta with E = sqrt(p^2 + top_mass^2),
            `layers.OnShellTops`) or "fourvector" (the raw four-vectors, as the first models).
        loss: "mse" (MSE on the scaled four-momenta + the m_tt term, `TopReconstructionLoss`)
            or "physical" (squared errors in log pT, y, the relative transverse vector and
            log m_tt, `PhysicalTopLoss`; needs output "onshell"; in 3-epoch tests on 8k events
            it learned the top direction more slowly than "mse", see the card).
        top_mass: GeV, the mass shell of the "onshell" output.
        mass_weight: weight of the auxiliary m_tt term in the loss.
        plain_dim: embedding width of the plain transformer baseline.
        learning_rate: Adam learning rate.
        batch_size: training batch size.
        epochs: maximum training epochs.
        early_stopping_patience: EarlyStopping patience (epochs).
        reduce_lr_patience: ReduceLROnPlateau patience (epochs).
        min_learning_rate: floor of ReduceLROnPlateau.
    """

    objects: tuple = OBJECTS
    scalar_features: tuple = SCALAR_FEATURES
    momentum_scale: float = 100.0
    num_blocks: int = 2
    hidden_mv_channels: int = 8
    hidden_s_channels: int = 16
    num_heads: int = 2
    attn_ratio: int = 1
    mlp_ratio: int = 2
    spurions: str = "beam_time"
    beam_spurion: str = "xyplane"
    spurion_mode: str = "token"
    readout: str = "global"
    output: str = "onshell"
    loss: str = "mse"
    top_mass: float = 172.5
    mass_weight: float = 0.5
    plain_dim: int = 46
    learning_rate: float = 3e-4
    batch_size: int = 256
    epochs: int = 100
    early_stopping_patience: int = 8
    reduce_lr_patience: int = 4
    min_learning_rate: float = 1e-6

    def __post_init__(self):
        for field, allowed in CHOICES.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field} must be one of {allowed}, got {getattr(self, field)!r}")
        if self.loss == "physical" and self.output != "onshell":
            raise ValueError('loss "physical" needs output "onshell" (its rapidity needs E > |pz|)')

    @property
    def n_objects(self):
        return len(self.objects)

    @property
    def n_scalar(self):
        return len(self.scalar_features)


PRESETS = {
    # The seed's smallest networks (~10k parameters): 2 blocks, 4 mv / 8 s channels.
    "small": LGATrConfig(
        hidden_mv_channels=4,
        hidden_s_channels=8,
        plain_dim=23,
        epochs=20,
        early_stopping_patience=5,
        reduce_lr_patience=3,
    ),
    # Small: trains on a laptop CPU (20k events x 20 epochs in ~15 min on 2 cores).
    "default": LGATrConfig(epochs=20, early_stopping_patience=5, reduce_lr_patience=3),
    # The talk's fork (config/model/gatr_reco.yaml): 8 mv / 2 s channels, 12 blocks, 8 heads,
    # attention width x2, three spurion tokens (spacelike beam x2, time), lr 1e-4, batch 256.
    "seed": LGATrConfig(
        num_blocks=12,
        hidden_mv_channels=8,
        hidden_s_channels=2,
        num_heads=8,
        attn_ratio=2,
        mlp_ratio=2,
        beam_spurion="spacelike",
        learning_rate=1e-4,
        plain_dim=43,
    ),
    # Larger: lgatr event-generation widths.
    "large": LGATrConfig(
        num_blocks=6,
        hidden_mv_channels=16,
        hidden_s_channels=32,
        num_heads=8,
        attn_ratio=2,
        mlp_ratio=2,
        plain_dim=106,
    ),
}


def get_config(preset="default", **overrides):
    """A preset, with fields replaced by `overrides`.

    Args:
        preset: one of `PRESETS`.
        **overrides: LGATrConfig fields.

    Returns:
        LGATrConfig.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[preset], **overrides)
