"""TPMT: the Tau Pair Mass Transformer (seed 000)."""

from models.tpmt import layers, losses  # noqa: F401  (registers serialisable classes)
