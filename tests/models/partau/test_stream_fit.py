"""ParTau trains from a stream of chunks of two files: the same batches for the same seed, the
70/10/20 split by event and the jet weights of the whole training set, as before streaming."""

import threading
from dataclasses import dataclass, field

import numpy as np
import pytest

from data import partau
from models import distribute
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


@dataclass
class _ThreadPlan(distribute.Plan):
    """Process `process_id` of a 2-process run whose processes are threads: what
    models/distribute.py exchanges through JAX goes through a shared board here."""

    board: list = field(default=None, repr=False)
    barrier: object = field(default=None, repr=False)

    def _everyone(self, value):
        self.board[self.process_id] = value
        self.barrier.wait()
        values = list(self.board)
        self.barrier.wait()
        return values

    def agree_min(self, value):
        return int(min(self._everyone(int(value))))

    def gather(self, values):
        return np.concatenate(self._everyone(values))


def test_two_processes_learn_the_weights_of_the_whole_training_set(fcc_files):
    """Each process streams its shard, in as many full batches as the other, with the jet
    weights of the whole training set (as one process)."""
    config = get_config("tiny", batch_size=4)
    board, barrier = [None, None], threading.Barrier(2, timeout=120)
    out = [None, None]

    def run(k):
        plan = _ThreadPlan(k, 2, 2, board=board, barrier=barrier)
        out[k] = training_jets(fcc_files, config, chunk_events=20, seed=1, plan=plan)

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(out), "a process failed"
    _, _, one_info = training_jets(fcc_files, config, chunk_events=20, seed=1)
    whole = partau.select(partau.load(fcc_files), "train")
    weight = dict(
        zip(
            rows(whole["inputs"]["fourvectors"]),
            jet_weights(whole["jets"], whole["targets"]["tau_id"] == 1),
        )
    )
    (train0, val0, info0), (train1, val1, info1) = out
    assert len(train0) == len(train1) > 0 and len(val0[2]) == len(val1[2]) > 0
    assert info0 == info1
    for key in ("training_jets", "training_tau_jets", "training_per_class"):
        assert info0[key] == one_info[key]
    seen = []
    for train in (train0, train1):
        batches = epoch(train)
        seen += rows(np.concatenate([_fourvectors(b) for b in batches]))
        got = np.concatenate([b[2] for b in batches])
        np.testing.assert_allclose(got, [weight[r] for r in seen[-len(got) :]], rtol=1e-6)
    assert len(set(seen)) == len(seen)  # the shards are disjoint
