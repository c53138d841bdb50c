"""L-GATr trains from a stream of chunks of two files: the same batches for the same seed,
validation events never among the training ones."""

import argparse

import pytest

from data import io
from models.lgatr.fit import make_config, training_events
from tests.models.stream_checks import (
    assert_other_batches,
    assert_same_batches,
    check_disjoint,
    epoch,
)

ARGS = dict(preset="default", epochs=None, learning_rate=None, mass_weight=None)
CONFIG = make_config(argparse.Namespace(**ARGS, batch_size=8))


@pytest.fixture(scope="module")
def ttbar_files(tmp_path_factory):
    """One generated sample of 40 dilepton ttbar events written as two files of 20."""
    from data.generate.ditau_output import to_root_columns
    from data.generate.ttbar_dilepton import generate

    columns = to_root_columns(generate(40, seed=5))
    folder = tmp_path_factory.mktemp("ttbar_two")
    paths = []
    for i, part in enumerate((slice(0, 20), slice(20, 40))):
        path = str(folder / f"ttbar_{i}.root")
        io.write_events(
            path,
            {
                k: {f: a[part] for f, a in v.items()} if isinstance(v, dict) else v[part]
                for k, v in columns.items()
            },
        )
        paths.append(path)
    return paths


def _stream(paths, seed):
    return training_events(paths, CONFIG, chunk_events=7, seed=seed)


def test_same_seed_same_batches_other_seed_other_order(ttbar_files):
    train, val = _stream(ttbar_files, 1)
    first = epoch(train)
    assert len({c.path for c in train.chunks}) == 2 and len(train.chunks) == 6
    assert_same_batches(first, epoch(_stream(ttbar_files, 1)[0]))
    assert_other_batches(first, epoch(_stream(ttbar_files, 2)[0]))
    # every selected event is for training or validation, never both
    n_train = int(sum(train.counts))
    assert n_train + len(val[1]["tops"]) == 40
    check_disjoint(first, lambda b: b[1]["tops"], val[1]["tops"], n_train)
    x, y = first[0]
    assert x["fourvectors"].shape == (8, CONFIG.n_objects, 4) and y["tops"].shape == (8, 2, 4)
