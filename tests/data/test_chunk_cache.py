"""`data.stream.ChunkCache`: a chunk is loaded once, later reads come from disk and equal the
first; a changed file, entry range or tag is a new key; a bad folder is one clear error."""

import os

import numpy as np
import pytest

from data import stream
from data.errors import UserError


def _loader(calls):
    def load(chunk):
        calls.append(chunk)
        n = chunk.stop - chunk.start
        x = np.arange(chunk.start, chunk.stop, dtype="float32")
        return {"x": {"a": x[:, None] * [1, 2], "mask": x > 2}, "y": np.int64(n), "event": x}

    return load


def _equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            _equal(a[k], b[k])
        else:
            assert np.asarray(a[k]).dtype == np.asarray(b[k]).dtype
            np.testing.assert_array_equal(a[k], b[k])


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "events.root"  # only its size and time matter to the cache
    path.write_bytes(b"x" * 10)
    return str(path)


def test_second_read_comes_from_disk_and_is_equal(tmp_path, source):
    calls = []
    cache = stream.ChunkCache(_loader(calls), str(tmp_path / "c"), tag="a")
    chunk = stream.Chunk(source, 0, 5)
    first = cache(chunk)
    again = cache(chunk)
    assert len(calls) == 1
    _equal(first, again)
    # another cache object on the same folder and tag reuses the file (a later run)
    other = stream.ChunkCache(_loader(calls), str(tmp_path / "c"), tag="a")
    _equal(first, other(chunk))
    assert len(calls) == 1


def test_new_key_for_other_entries_tag_or_changed_file(tmp_path, source):
    calls = []
    folder = str(tmp_path / "c")
    cache = stream.ChunkCache(_loader(calls), folder, tag="a")
    cache(stream.Chunk(source, 0, 5))
    cache(stream.Chunk(source, 5, 10))
    assert len(calls) == 2
    stream.ChunkCache(_loader(calls), folder, tag="b")(stream.Chunk(source, 0, 5))
    assert len(calls) == 3
    with open(source, "ab") as f:  # the file changed: its arrays are read again
        f.write(b"more")
    cache(stream.Chunk(source, 0, 5))
    assert len(calls) == 4
    assert not [f for f in os.listdir(folder) if f.endswith(".tmp")]


def test_temporary_folder_is_removed_with_the_cache(source):
    cache = stream.ChunkCache(_loader([]), None)
    cache(stream.Chunk(source, 0, 3))
    folder = cache.directory
    assert os.listdir(folder)
    del cache
    assert not os.path.exists(folder)


def test_a_file_as_folder_is_a_user_error(source):
    with pytest.raises(UserError, match="chunk cache"):
        stream.ChunkCache(_loader([]), source)
