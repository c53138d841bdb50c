"""L-GATr dilepton ttbar reconstruction model: objects -> top and antitop four-momenta."""

import keras

from models.layers.geometric import LGATrNetwork
from models.lgatr.config import LGATrConfig
from models.lgatr.layers import FourVectorReadout, OnShellTops, TopEventEmbedding

LEPTON_TOKEN, ANTILEPTON_TOKEN = 0, 1  # positions in config.objects


def _n_extra_tokens(config):
    n_sp = {"none": 0, "beam": 1, "beam_time": 2}[config.spurions]
    if config.spurions != "none" and config.beam_spurion != "xyplane":
        n_sp += 1  # mirrored beam vector
    n_global = 1 if config.readout == "global" else 0
    return n_global + (n_sp if config.spurion_mode == "token" else 0)


def build_model(config: LGATrConfig) -> keras.Model:
    """Functional L-GATr model.

    Inputs:
        fourvectors: (B, 12, 4) objects as (px, py, pz, E) in GeV, order `config.objects`.
        scalars: (B, 12, config.n_scalar) Lorentz-invariant object features.
        mask: (B, 12), 1 = real object.

    Outputs:
        tops: (B, 2, 4) top and antitop (px, py, pz, E) in GeV; with `output="onshell"` the
        energy is sqrt(p^2 + top_mass^2).

    Equivariance: every layer is SO+(1,3) equivariant and the extra tokens carry invariants
    (zero multivector, scalar flags) or spurions, so with `spurions="none"` and
    `output="fourvector"` the output transforms like the input four-vectors; the on-shell
    output keeps rotations only, and spurions reduce this to the detector symmetry (rotations
    about the beam axis; "beam" also boosts along it before the on-shell step).
    """
    n, s = config.n_objects, config.n_scalar
    fourvectors = keras.Input((n, 4), name="fourvectors")
    scalars = keras.Input((n, s), name="scalars")
    mask = keras.Input((n,), name="mask")

    mv, sc, token_mask = TopEventEmbedding(
        momentum_scale=config.momentum_scale,
        spurions=config.spurions,
        beam_spurion=config.beam_spurion,
        spurion_mode=config.spurion_mode,
        global_token=config.readout == "global",
        name="embedding",
    )(fourvectors, scalars, object_mask=mask)  # (B, T, C, 16), (B, T, S + 2), (B, T)

    global_readout = config.readout == "global"
    out_mv, _ = LGATrNetwork(
        num_blocks=config.num_blocks,
        hidden_mv_channels=config.hidden_mv_channels,
        hidden_s_channels=config.hidden_s_channels,
        out_mv_channels=2 if global_readout else 1,
        out_s_channels=0,
        num_heads=config.num_heads,
        attn_ratio=config.attn_ratio,
        mlp_ratio=config.mlp_ratio,
        name="lgatr",
    )(mv, sc, token_mask=token_mask)  # (B, T, 2 or 1, 16)

    if global_readout:
        tokens, channels = [0, 0], [0, 1]
    else:  # t -> b l+ nu: top at the antilepton, antitop at the lepton
        offset = _n_extra_tokens(config)
        tokens, channels = [offset + ANTILEPTON_TOKEN, offset + LEPTON_TOKEN], [0, 0]
    onshell = config.output == "onshell"
    tops = FourVectorReadout(
        tokens, channels, config.momentum_scale, name="readout" if onshell else "tops"
    )(out_mv)
    if onshell:
        tops = OnShellTops(config.top_mass, name="tops")(tops)
    return keras.Model(
        {"fourvectors": fourvectors, "scalars": scalars, "mask": mask},
        {"tops": tops},
        name="lgatr",
    )
