"""MET Perceiver configuration: a frozen dataclass with named presets (seed 003, CPU default)."""

from dataclasses import asdict, dataclass

VARIANTS = ("perceiver", "deepmet")
LOSSES = ("mse", "mae")
WEIGHTINGS = ("flat", "none")
TARGETS = ("v", "met")
DECODERS = ("weights", "pool")


@dataclass(frozen=True)
class MetConfig:
    """Hyperparameters of the MET Perceiver and of the DeepMET-style baseline.

    Attributes:
        variant: "perceiver" (latent-array cross-attention, seed 003) or "deepmet" (one weight
            per candidate, MET = -sum w pT; the CMS baseline, met_l1.md 2.2).
        max_cands: candidates per event (padded; the softest beyond are dropped).
        dim: model width (candidate embedding, latents).
        num_latents: length k of the trainable latent array (seed: N_l = 128).
        num_blocks: latent self-attention blocks (seed: N_blocks = 4).
        cross_heads, num_heads: heads of the cross-attention (Perceiver: 1) and of the blocks.
        mlp_ratio: MLP width / dim in the attention blocks.
        dropout: dropout in the attention blocks.
        decoder: "weights" (every candidate queries the latents for its weight, MET = -sum w p;
            Perceiver IO, as DeepMETEOR's second decoder) or "pool" (averaged latents -> v).
        deepmet_units: hidden widths of the per-candidate DeepMET network (64, 32, 16).
        loss: "mse" or "mae" on the regression target (Perceiver: the seed's v; DeepMET: MET
            in units of 50 GeV).
        target: Perceiver regression target: "v", the seed's v = (MET_gen - MET_PF) /
            |MET_PF| (an MSE on v weighs events by 1 / |MET_PF|^2 and shrinks MET), or "met",
            the rebuilt MET vector in units of 50 GeV as DeepMET (DeepMET always uses "met").
        response_weight, response_edges: weight and gen-MET bin edges (GeV) of DeepMET's
            response term `dev` (`losses.response_deviation`), added to the loss on MET (DeepMET,
            and the Perceiver with target "met"; the dimensionless v target has none). DeepMET's
            training code: 10 and (50, 100).
        hs_weight: weight of the per-candidate truth term (Perceiver, weights decoder): each
            candidate's weight is also regressed on its truth flag (1 hard scatter, 0 pileup;
            `losses.CandidateWeightLoss`), so that -sum w p estimates the hard scatter's
            recoil instead of a MET shrunk towards zero. 0 (default) turns it off; it needs
            events with the `PFCand_fromPU` branch.
        puppi_input: Perceiver: also give every candidate its PUPPI weight, the local
            information (charged hard-scatter pT around a neutral) that the seed's inputs lack;
            off by default (the seed's inputs).
        weighting: "flat" flattens the generated-MET spectrum with per-event weights (as
            DeepMETEOR's DensityWeightHist), "none" keeps it steep.
        weight_edges: (lo, hi, step) in GeV of the flattening histogram; weight_cap caps it.
        learning_rate, clip_norm, batch_size, epochs, early_stopping_patience,
        reduce_lr_patience, min_learning_rate: training loop.
    """

    variant: str = "perceiver"
    max_cands: int = 12_288
    dim: int = 32
    num_latents: int = 32
    num_blocks: int = 2
    cross_heads: int = 1
    num_heads: int = 4
    mlp_ratio: int = 2
    dropout: float = 0.0
    decoder: str = "weights"
    deepmet_units: tuple = (64, 32, 16)
    loss: str = "mse"
    target: str = "v"
    response_weight: float = 10.0
    response_edges: tuple = (50.0, 100.0)
    hs_weight: float = 0.0
    puppi_input: bool = False
    weighting: str = "flat"
    weight_edges: tuple = (0.0, 300.0, 10.0)
    weight_cap: float = 10.0
    learning_rate: float = 1e-3
    clip_norm: float = 1.0
    batch_size: int = 16
    epochs: int = 10
    early_stopping_patience: int = 4
    reduce_lr_patience: int = 1
    min_learning_rate: float = 1e-5

    def to_dict(self):
        return asdict(self)


PRESETS = {
    # Seed 003: a Perceiver with N_l = 128 latents and N_blocks = 4 (width not given; 64 here)
    "seed": MetConfig(dim=64, num_latents=128, num_blocks=4, num_heads=4, epochs=50),
    # the default: trains on 2 CPU cores at ~10k candidates per event
    "cpu": MetConfig(dim=16, num_latents=16, num_blocks=2, num_heads=2),
    # tests
    "tiny": MetConfig(
        max_cands=256,
        dim=8,
        num_latents=4,
        num_blocks=1,
        num_heads=2,
        deepmet_units=(8, 4),
        batch_size=8,
        epochs=1,
    ),
}


def get_config(preset="cpu", **overrides):
    """The preset with `overrides` (None values ignored); checks the choices."""
    from dataclasses import replace

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    config = replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
    for name, value, choices in (
        ("variant", config.variant, VARIANTS),
        ("loss", config.loss, LOSSES),
        ("weighting", config.weighting, WEIGHTINGS),
        ("target", config.target, TARGETS),
        ("decoder", config.decoder, DECODERS),
    ):
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    for name in ("max_cands", "dim", "num_latents", "num_blocks", "batch_size", "epochs"):
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(config, name)}")
    if config.dim % config.num_heads or config.dim % config.cross_heads:
        raise ValueError(f"dim {config.dim} must be divisible by the number of heads")
    edges = config.response_edges
    if not (config.response_weight >= 0 and all(b > a for a, b in zip(edges, edges[1:]))):
        raise ValueError("response_weight must be >= 0 and response_edges increasing")
    if not config.hs_weight >= 0:
        raise ValueError(f"hs_weight must be >= 0, got {config.hs_weight}")
    if config.hs_weight and (config.variant != "perceiver" or config.decoder != "weights"):
        raise ValueError("hs_weight needs the Perceiver with the weights decoder")
    if config.learning_rate <= 0:
        raise ValueError(f"learning_rate must be positive, got {config.learning_rate}")
    return config
