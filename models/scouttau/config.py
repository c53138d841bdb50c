"""ScoutTau configuration: a frozen dataclass with named presets (seed 001 and a CPU default)."""

from dataclasses import asdict, dataclass, replace

TASKS = ("tau_id", "charge", "pt", "pileup")


@dataclass(frozen=True)
class ScoutTauConfig:
    """Hyperparameters of the ScoutTau transformer.

    Attributes:
        num_features, max_constituents: constituent features and constituents per candidate
            (data/scouttau.py: 14 and 16).
        embed_dims: per-constituent MLP widths; the last is the model width.
        num_heads, num_layers, mlp_ratio, dropout: the transformer encoder.
        task_weights: loss weights of tau_id (cross-entropy), charge (cross-entropy on true
            taus), pt (MAE of log(visible pT / candidate pT) on true taus) and pileup
            (per-constituent cross-entropy), as the seed's "CrossEntropy + MAE".
        learning_rate, batch_size, epochs, early_stopping_patience, reduce_lr_patience,
        min_learning_rate: training loop (seed: Adam 1e-4, batch 20, EarlyStopping,
            ReduceLROnPlateau).
    """

    num_features: int = 14
    max_constituents: int = 16
    embed_dims: tuple = (32, 64, 32)
    num_heads: int = 4
    num_layers: int = 1
    mlp_ratio: int = 2
    dropout: float = 0.0
    task_weights: tuple = (1.0, 0.5, 1.0, 0.5)
    learning_rate: float = 1e-3
    batch_size: int = 256
    epochs: int = 20
    early_stopping_patience: int = 4
    reduce_lr_patience: int = 2
    min_learning_rate: float = 1e-6

    def to_dict(self):
        return asdict(self)


PRESETS = {
    # seed 001: 8 heads, 1 encoder layer, embedding [128, 512, 128], Adam 1e-4, batch 20
    "seed": ScoutTauConfig(
        embed_dims=(128, 512, 128),
        num_heads=8,
        mlp_ratio=4,
        learning_rate=1e-4,
        batch_size=20,
        epochs=100,
        early_stopping_patience=10,
    ),  # fmt: skip
    "cpu": ScoutTauConfig(),
    "tiny": ScoutTauConfig(embed_dims=(8, 8), num_heads=2, batch_size=16, epochs=1),
}


def get_config(preset="cpu", **overrides):
    """The preset with `overrides` (None values ignored); checks the values."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    config = replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
    if config.embed_dims[-1] % config.num_heads:
        raise ValueError("the model width must be divisible by num_heads")
    for name in ("batch_size", "epochs", "num_layers", "max_constituents"):
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(config, name)}")
    if config.learning_rate <= 0:
        raise ValueError(f"learning_rate must be positive, got {config.learning_rate}")
    return config
