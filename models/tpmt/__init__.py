"""TPMT: the Tau Pair Mass Transformer (seed 000)."""

from models import starting_cli

if not starting_cli():  # see models/__init__.py
    from models.tpmt import layers, losses  # noqa: F401  (registers serialisable classes)
