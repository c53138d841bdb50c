"""Checks shared by the tests of the fits' streamed training sets (`data.stream.ChunkStream`)."""

import numpy as np


def epoch(ds):
    """Every batch of the current epoch of `ds`."""
    return [ds[i] for i in range(len(ds))]


def flat(tree):
    """The arrays of a nested dict / tuple / array, in a fixed order."""
    if isinstance(tree, dict):
        return [a for k in sorted(tree) for a in flat(tree[k])]
    if isinstance(tree, (tuple, list)):
        return [a for v in tree for a in flat(v)]
    return [np.asarray(tree)]


def assert_same_batches(a, b):
    """Two epochs (lists of batches) hold the same arrays."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for u, v in zip(flat(x), flat(y), strict=True):
            np.testing.assert_array_equal(u, v)


def assert_other_batches(a, b):
    """Two epochs differ (another seed): their first batches are not the same."""
    assert any(
        u.shape != v.shape or not np.array_equal(u, v)
        for u, v in zip(flat(a[0]), flat(b[0]), strict=True)
    )


def rows(array):
    """One bytes key per event (row) of `array`, to compare sets of events."""
    array = np.ascontiguousarray(array)
    return [r.tobytes() for r in array.reshape(len(array), -1)]


def check_disjoint(epoch_batches, key, val_rows, n_train):
    """Every training event is streamed once per epoch (`n_train` rows under `key`, a
    function of a batch) and none of them is a validation event (`val_rows`)."""
    train = [r for batch in epoch_batches for r in rows(key(batch))]
    assert len(train) == n_train
    assert len(set(train)) == n_train  # each event once (the events are distinct)
    assert not set(train) & set(rows(val_rows))
    return train
