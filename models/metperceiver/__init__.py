"""MET Perceiver: missing transverse momentum at 200 pileup from ~10k particle-flow candidates
through a latent-array cross-attention (seed 003), and the DeepMET-style baseline."""

from models import starting_cli

if not starting_cli():  # see models/__init__.py
    from models.metperceiver import layers, losses  # noqa: F401  (register classes)
    from models.metperceiver.config import PRESETS, MetConfig, get_config  # noqa: F401
    from models.metperceiver.model import build_model  # noqa: F401
