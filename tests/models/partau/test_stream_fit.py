"""ParTau trains from a stream of chunks of two files: the same batches for the same seed, the
70/10/20 split by event and the jet weights of the whole training set, as before streaming."""

import numpy as np
import pytest

from data import partau
from models.partau.config import get_config
from models.partau.fit import jet_weights, training_jets
from tests.models.stream_checks import (
    assert_other_batches,
    assert_same_batches,
    check_disjoint,
    epoch,
    rows,
)

CONFIG = get_config("tiny", batch_size=16)


def _fourvectors(batch):
    return batch[0]["fourvectors"]


@pytest.fixture(scope="module")
def streams(fcc_files):
    return {seed: training_jets(fcc_files, CONFIG, chunk_events=20, seed=seed) for seed in (1, 2)}


def test_same_seed_same_batches_other_seed_other_order(fcc_files, streams):
    again, _, _ = training_jets(fcc_files, CONFIG, chunk_events=20, seed=1)
    first = epoch(streams[1][0])
    assert len(streams[1][0].chunks) > 2  # chunks of both files
    assert_same_batches(first, epoch(again))
    assert_other_batches(first, epoch(streams[2][0]))


def test_split_and_weights_are_those_of_the_whole_sample(fcc_files, streams):
    train, val, info = streams[1]
    whole = partau.load(fcc_files)
    old_train, old_val = partau.select(whole, "train"), partau.select(whole, "val")
    n = len(old_train["jets"]["pt"])
    assert info["training_jets"] == n == int(sum(train.counts))
    assert info["validation_jets"] == len(old_val["jets"]["pt"]) == len(val[2])
    batches = epoch(train)
    seen = check_disjoint(batches, _fourvectors, val[0]["fourvectors"], n)
    assert set(seen) == set(rows(old_train["inputs"]["fourvectors"]))  # no test-part jet
    # every training jet carries the weight that jet_weights gives it on the whole set
    old_w = jet_weights(old_train["jets"], old_train["targets"]["tau_id"] == 1)
    expected = dict(zip(rows(old_train["inputs"]["fourvectors"]), old_w))
    got = np.concatenate([b[2] for b in batches])
    np.testing.assert_allclose(got, [expected[r] for r in seen], rtol=1e-6)
    assert set(batches[0][1]) == set(CONFIG.tasks)
