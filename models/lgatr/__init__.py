"""L-GATr: Lorentz-equivariant dilepton ttbar top / antitop reconstruction.

Importing this package registers its layers and losses with Keras serialization.
"""

from models import starting_cli

if not starting_cli():  # see models/__init__.py
    from models.layers import geometric  # noqa: F401  registers the geometric layers
    from models.lgatr.baseline_transformer import (
        ClassToken,
        PlainTransformerBlock,
        build_plain_transformer,
    )
    from models.lgatr.config import PRESETS, LGATrConfig, get_config
    from models.lgatr.layers import FourVectorReadout, OnShellTops, TopEventEmbedding
    from models.lgatr.losses import (
        PhysicalTopLoss,
        TopReconstructionLoss,
        loss_term_metrics,
        physical_term_metrics,
        physical_top_loss,
        top_momentum_mse,
        top_reconstruction_loss,
        ttbar_mass_mse,
    )
    from models.lgatr.model import build_model

__all__ = [
    "PRESETS",
    "ClassToken",
    "FourVectorReadout",
    "LGATrConfig",
    "OnShellTops",
    "PhysicalTopLoss",
    "PlainTransformerBlock",
    "TopEventEmbedding",
    "TopReconstructionLoss",
    "build_model",
    "build_plain_transformer",
    "get_config",
    "loss_term_metrics",
    "physical_term_metrics",
    "physical_top_loss",
    "top_momentum_mse",
    "top_reconstruction_loss",
    "ttbar_mass_mse",
]
