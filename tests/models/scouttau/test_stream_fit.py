"""ScoutTau trains from a stream of chunks of two files: the same batches for the same seed,
the validation split by event (every candidate of an event on one side) and the class weights
of the whole training set."""

import argparse
import functools
import os

import numpy as np
import pytest

from data import scouttau, stream
from models.scouttau import fit
from tests.models.stream_checks import (
    assert_other_batches,
    assert_same_batches,
    check_disjoint,
    epoch,
)


def _args(seed, variant="transformer", negative_fraction=1.0):
    return argparse.Namespace(
        variant=variant, clustering="clue", inputs="puppi", val_fraction=0.3,
        negative_fraction=negative_fraction, chunk_events=5, seed=seed,
    )  # fmt: skip


@pytest.fixture(scope="module")
def files(scouttau_file, zerobias_file):
    return [scouttau_file, zerobias_file]


def _constituents(batch):
    return batch[0]["constituents"]


def test_same_seed_same_batches_other_seed_other_order(files):
    train, val, info = fit.training_candidates(files, _args(1), 8)
    first = epoch(train)
    assert len(train.chunks) == 5 and info["events"] == 20
    assert_same_batches(first, epoch(fit.training_candidates(files, _args(1), 8)[0]))
    assert_other_batches(first, epoch(fit.training_candidates(files, _args(2), 8)[0]))
    n_train = info["training_candidates"]
    check_disjoint(first, _constituents, val[0]["constituents"], n_train)
    assert n_train + len(val[2]) == len(scouttau.load(files)["is_tau"])  # every candidate
    # the class weights of all training candidates: taus and non-taus of equal total weight
    is_tau = np.concatenate([b[1]["tau_id"][:, 0] for b in first]) > 0.5
    w = np.concatenate([b[2] for b in first])
    np.testing.assert_allclose(w, fit.class_weights(is_tau), rtol=1e-6)
    assert is_tau.sum() == info["training_taus"] > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_candidates_of_an_event_stay_on_one_side(files, seed):
    args = _args(seed, negative_fraction=0.8)
    train, _, info = fit.training_candidates(files, args, 8)
    loader = functools.partial(fit.load_chunk, clustering="clue", inputs="puppi")
    n_val = 0
    for i, chunk in enumerate(train.chunks):
        data = loader(chunk)
        is_train, is_val = stream.split_masks(data, seed, i, split=train.split)
        n_val += int(is_val.sum())
        assert not (is_train & is_val).any()
        for event in np.unique(data["event"]):
            of_event = data["event"] == event
            assert is_val[of_event].all() or not is_val[of_event].any()
        assert is_train[data["is_tau"] & ~is_val].all()  # taus are never dropped
    assert n_val == info["validation_candidates"]


def test_chunk_cache_gives_the_same_batches(files, tmp_path):
    plain = fit.training_candidates(files, _args(1), 8)
    args = _args(1)
    args.no_chunk_cache, args.chunk_cache = False, str(tmp_path / "chunks")
    cached = fit.training_candidates(files, args, 8)
    assert isinstance(cached[0].load_chunk, stream.ChunkCache)
    assert len(os.listdir(args.chunk_cache)) == len(cached[0].chunks)  # filled by the scan
    assert_same_batches(epoch(plain[0]), epoch(cached[0]))
    cached[0].on_epoch_end()  # the next epoch reads every chunk from the cache
    plain[0].on_epoch_end()
    assert_same_batches(epoch(plain[0]), epoch(cached[0]))
    for a, b in zip(plain[1], cached[1]):  # the same validation candidates
        assert_same_batches([a], [b])
