"""ParTau: Particle Transformer reconstruction of hadronic taus at FCC-ee (MultiParTau and
SingleParTau), after the ML-Tau model card (seed 002)."""

from models import starting_cli

if not starting_cli():  # see models/__init__.py
    from models.partau import losses, pcgrad, schedule  # noqa: E402, F401  (register classes)
    from models.partau.config import PRESETS, TASKS, ParTauConfig, get_config  # noqa: E402, F401
    from models.partau.model import build_model  # noqa: E402, F401
