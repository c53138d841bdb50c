"""ParTau configuration: a frozen dataclass with named presets (seed 002 and a CPU default)."""

from dataclasses import asdict, dataclass, replace

TASKS = ("tau_id", "charge", "decay_mode", "kinematics")


@dataclass(frozen=True)
class ParTauConfig:
    """Hyperparameters of MultiParTau / SingleParTau.

    Attributes:
        variant: "multi" (shared backbone, one class token and head per task) or "single".
        task: the task of a single-task model (one of TASKS); ignored for "multi".
        num_features, max_cands: candidate features and candidates per jet (17, 20).
        embed_dims: particle-embedding widths; the last is the model width E.
        pair_embed_dims: hidden widths of the pair embedding (its output has num_heads maps).
        num_heads: attention heads.
        num_layers: particle-attention blocks of the shared backbone.
        num_cls_layers: class-attention blocks per class token.
        activation: "gelu" (exact, as ParT) or "gelu_tanh" (exportable to ONNX).
        metric: angular metric of the pair features ("theta-phi" for e+e-, as ML-Tau).
        dropout: dropout of the particle blocks.
        head_dropout: dropout of the tau_id, charge, decay_mode and kinematics heads.
        task_weights: loss weights of the four tasks (seed: 1, 1, 1, 2).
        label_smoothing: tau-ID label smoothing.
        pcgrad: merge the task gradients with PCGrad (multi only, TensorFlow backend).
        learning_rate: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW weight decay (not on the class tokens).
        clip_norm: global gradient-norm clip.
        schedule: "onecycle" (seed) or "plateau" (constant rate + ReduceLROnPlateau).
        batch_size, epochs, early_stopping_patience, reduce_lr_patience, min_learning_rate:
            training loop.
    """

    variant: str = "multi"
    task: str = "tau_id"
    num_features: int = 17
    max_cands: int = 20
    embed_dims: tuple = (64, 128, 64)
    pair_embed_dims: tuple = (32, 32)
    num_heads: int = 4
    num_layers: int = 2
    num_cls_layers: int = 2
    activation: str = "gelu"
    metric: str = "theta-phi"
    dropout: float = 0.1
    head_dropout: tuple = (0.05, 0.1, 0.1, 0.0)
    task_weights: tuple = (1.0, 1.0, 1.0, 2.0)
    label_smoothing: float = 0.1
    pcgrad: bool = True
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    clip_norm: float = 1.0
    schedule: str = "onecycle"
    batch_size: int = 512
    epochs: int = 20
    early_stopping_patience: int = 5
    reduce_lr_patience: int = 2
    min_learning_rate: float = 1e-6

    @property
    def tasks(self):
        return TASKS if self.variant == "multi" else (self.task,)

    def to_dict(self):
        return asdict(self)


PRESETS = {
    # Seed 002 (ML-Tau model card): embed [256, 512, 256], pair embed [64, 64, 64], 8 heads,
    # 2 particle + 2 class-attention layers, GELU, AdamW 1e-3 / wd 1e-2, one-cycle cosine,
    # batch 12288, task weights 1, 1, 1, 2, PCGrad; 100 epochs (training.yaml).
    "seed": ParTauConfig(
        embed_dims=(256, 512, 256),
        pair_embed_dims=(64, 64, 64),
        num_heads=8,
        batch_size=12288,
        epochs=100,
        early_stopping_patience=20,
    ),
    # Small default: ~1000 jets/s of MultiParTau training (XLA) on 2 CPU cores.
    "cpu": ParTauConfig(),
    # A few thousand parameters: smoke runs and tests of the CLIs.
    "tiny": ParTauConfig(
        embed_dims=(16, 16),
        pair_embed_dims=(8,),
        num_heads=2,
        num_layers=1,
        num_cls_layers=1,
        epochs=2,
    ),
}


def get_config(preset="cpu", **overrides):
    """A preset, optionally with fields replaced (None values are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset '{preset}' (choose from {', '.join(PRESETS)})")
    config = replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
    if config.variant not in ("multi", "single"):
        raise ValueError(f"variant must be multi or single, got '{config.variant}'")
    if config.task not in TASKS:
        raise ValueError(f"unknown task '{config.task}' (choose from {', '.join(TASKS)})")
    if config.schedule not in ("onecycle", "plateau"):
        raise ValueError(f"schedule must be onecycle or plateau, got '{config.schedule}'")
    return config
