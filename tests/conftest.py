import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def pu_file(tmp_path_factory):
    """A tiny dileptonic ttbar + pileup ROOT file (24 events, mu = 10, 30-event library)."""
    from data import io
    from data.generate import ttbar_pu
    from data.generate.ditau_output import to_root_columns

    cache = str(tmp_path_factory.getbasetemp() / "minbias-cache")
    cols = ttbar_pu.generate(24, 7, mu=10, library_events=30, library_seed=5, cache=cache)
    path = str(tmp_path_factory.mktemp("pu") / "ttbar_pu.root")
    io.write_events(path, to_root_columns(cols))
    return path


@pytest.fixture(scope="session")
def scouttau_file(tmp_path_factory):
    """A tiny generated lowmass ScoutTau file (8 events, mu = 20, 30-event library)."""
    from data import io
    from data.generate import scouttau
    from data.generate.ditau_output import to_root_columns

    cache = str(tmp_path_factory.getbasetemp() / "minbias-cache")
    cols = scouttau.generate("lowmass", 8, 3, mu=20, library_events=30, library_seed=5, cache=cache)
    path = str(tmp_path_factory.mktemp("scouttau") / "lowmass.root")
    io.write_events(path, to_root_columns(cols))
    return path


@pytest.fixture(scope="session")
def zerobias_file(tmp_path_factory):
    """A tiny generated zero-bias ScoutTau file (12 events, mu = 20, 30-event library)."""
    from data import io
    from data.generate import scouttau
    from data.generate.ditau_output import to_root_columns

    cache = str(tmp_path_factory.getbasetemp() / "minbias-cache")
    cols = scouttau.generate(
        "minbias", 12, 4, mu=20, library_events=30, library_seed=5, cache=cache
    )
    path = str(tmp_path_factory.mktemp("zerobias") / "zerobias.root")
    io.write_events(path, to_root_columns(cols))
    return path


@pytest.fixture(scope="session")
def fcc_files(tmp_path_factory):
    """Two tiny generated FCC-ee files: Z -> tautau (60 events) and Z -> qq (30 events)."""
    from data import io
    from data.generate import fcctau
    from data.generate.ditau_output import to_root_columns

    folder = tmp_path_factory.mktemp("fcctau")
    paths = []
    for process, n, seed in (("ztautau", 60, 11), ("zqq", 30, 12)):
        path = str(folder / f"{process}.root")
        io.write_events(path, to_root_columns(fcctau.generate(process, n, seed, batch_size=n)))
        paths.append(path)
    return paths
