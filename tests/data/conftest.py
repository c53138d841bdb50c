"""Small generated di-tau samples shared by the data tests (made once per session)."""

import pytest

from data import io
from data.generate.ditau import generate
from data.generate.ditau_output import to_root_columns

SEED = 11


def _sample(tmp_path_factory, process, n_events):
    cols = generate(process, n_events, SEED)
    path = tmp_path_factory.mktemp(process) / f"{process}.root"
    io.write_events(str(path), to_root_columns(cols))
    return cols, str(path)


@pytest.fixture(scope="session")
def h125_sample(tmp_path_factory):
    """(columns, path) of 120 selected h125 events."""
    return _sample(tmp_path_factory, "h125", 120)


@pytest.fixture(scope="session")
def ttbar_sample(tmp_path_factory):
    """(columns, path) of 24 selected ttbar events (fake tau_h)."""
    return _sample(tmp_path_factory, "ttbar", 24)
