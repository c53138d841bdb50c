"""ScoutTau: soft-tau identification in the Level-1 scouting stream (seed 001)."""

from models import starting_cli

if not starting_cli():  # see models/__init__.py
    from models.scouttau import layers, losses  # noqa: F401  (register classes)
    from models.scouttau.config import PRESETS, ScoutTauConfig, get_config  # noqa: F401
    from models.scouttau.model import build_model  # noqa: F401
