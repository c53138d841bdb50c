"""Shared I/O of the model-card renderers (`evaluate.<model>_report`)."""

import json
import os

from data.errors import UserError


def read_inputs(metrics_path, notes_path=None):
    """(metrics dict, notes text) with one clear error for a missing file."""
    for label, path in (("metrics", metrics_path), ("notes", notes_path)):
        if path is not None and not os.path.exists(path):
            raise UserError(f"no such {label} file: {path}")
    with open(metrics_path) as f:
        metrics = json.load(f)
    notes = ""
    if notes_path:
        with open(notes_path) as f:
            notes = f.read()
    return metrics, notes


def write(text, out):
    with open(out, "w") as f:
        f.write(text)
    print(f"wrote {out}")
