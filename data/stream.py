"""Many ROOT files -> shuffled training batches through a `keras.utils.PyDataset`.

A training set is cut into chunks (file, entry range). One pass over all chunks (`scan`)
counts the usable events of each chunk after the loader's selection, puts a fixed, seeded
fraction of every chunk's events aside for validation (kept in memory, capped), and keeps a
subset of chunks for the standardisation statistics. Training then streams: every epoch the
chunks are shuffled across files, read a few at a time into a buffer, the buffer's events are
shuffled, and batches are cut from the buffer stream. Memory holds one or two buffers, never
the whole set, and the same seed gives the same batches. A model whose split is not a coin per
event (events of a fixed part, candidates grouped by their event) passes its own `split`. A
loader whose result is much smaller than its work (ScoutTau's clustering) is wrapped in
`ChunkCache`, so only the scan does that work.
"""

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from data import io
from data.errors import UserError


@dataclass(frozen=True)
class Chunk:
    path: str
    start: int
    stop: int


def make_chunks(paths, chunk_events):
    """Cut every file into entry ranges of at most `chunk_events`."""
    if chunk_events <= 0:
        raise UserError(f"chunk size must be positive, got {chunk_events}")
    chunks = []
    for path in paths:
        n = io.num_entries(path)
        chunks += [Chunk(path, a, min(a + chunk_events, n)) for a in range(0, n, chunk_events)]
    return chunks


def take(arrays, idx):
    """Index every array of a (nested) dict, tuple or array."""
    if isinstance(arrays, dict):
        return {k: take(v, idx) for k, v in arrays.items()}
    if isinstance(arrays, tuple):
        return tuple(take(v, idx) for v in arrays)
    return arrays[idx]


def concat(parts):
    """Concatenate a list of equally nested dicts / tuples / arrays along axis 0."""
    first = parts[0]
    if isinstance(first, dict):
        return {k: concat([p[k] for p in parts]) for k in first}
    if isinstance(first, tuple):
        return tuple(concat([p[i] for p in parts]) for i in range(len(first)))
    return np.concatenate(parts)


def length(arrays):
    while isinstance(arrays, (dict, tuple)):
        arrays = next(iter(arrays.values())) if isinstance(arrays, dict) else arrays[0]
    return len(arrays)


def _split_rng(seed, chunk_index):
    return np.random.default_rng([seed, chunk_index, 7])


def random_split(data, rng, *, val_fraction):
    """The default split: every event is a validation event with probability `val_fraction`."""
    val = rng.random(length(data)) < val_fraction
    return ~val, val


def split_masks(data, seed, chunk_index, val_fraction=0.2, split=None):
    """(train, val) boolean masks over the events of chunk `chunk_index` (see `scan`)."""
    rng = _split_rng(seed, chunk_index)
    if split is None:
        return random_split(data, rng, val_fraction=val_fraction)
    train, val = (np.asarray(m, bool) for m in split(data, rng))
    if (train & val).any():
        raise ValueError("a split put events into both training and validation")
    return train, val


@dataclass
class Scan:
    """What one pass over the chunks learnt: usable training events per chunk, validation
    events (capped), a subset of training events for statistics, and every training event's
    value of `summary` (e.g. the target mass, for flat-spectrum weights)."""

    counts: list
    validation: object
    subset: object
    summary: np.ndarray = field(default=None)


def scan(
    chunks,
    load_chunk,
    *,
    seed,
    val_fraction=0.2,
    max_val_events=50_000,
    subset_events=50_000,
    summary=None,
    progress=True,
    split=None,
):
    """One pass over `chunks`: counts, validation split, statistics subset.

    Args:
        chunks: list of `Chunk`.
        load_chunk: callable(Chunk) -> nested dict/tuple of arrays over the chunk's events.
        seed: fixes the validation split.
        val_fraction: fraction of each chunk's events held out for validation.
        max_val_events: validation events kept in memory (the rest are held out unused).
        subset_events: training events kept for statistics (the first chunks in file order).
        summary: optional callable(arrays) -> (n,) or (n, k) values recorded for every training
            event (e.g. what event weights are learnt from).
        progress: show a progress bar.
        split: optional callable(arrays, rng) -> (train, val) boolean masks over a chunk's
            events, disjoint; events in neither are not used (e.g. a test part). `rng` is a
            numpy Generator seeded by (seed, chunk index), the same here and in every epoch
            of `ChunkStream`, so a split drawn from it (or computed from the arrays) is the
            same in both. Default: `random_split` with `val_fraction`.
    """
    from tqdm import tqdm

    counts, val, subset, summ = [], [], [], []
    n_val = n_sub = 0
    # the bar shows after a second: a file that fails at once leaves one line on stderr
    bar = tqdm(chunks, desc="scan", unit="chunk", disable=not progress, delay=1.0)
    for i, chunk in enumerate(bar):
        data = load_chunk(chunk)
        is_train, is_val = split_masks(data, seed, i, val_fraction, split)
        train = take(data, is_train)
        counts.append(int(is_train.sum()))
        if n_val < max_val_events and is_val.any():
            val.append(take(data, np.nonzero(is_val)[0][: max_val_events - n_val]))
            n_val += length(val[-1])
        if n_sub < subset_events and counts[-1]:
            subset.append(train)
            n_sub += counts[-1]
        if summary is not None:
            summ.append(np.asarray(summary(train)))
    if sum(counts) == 0:
        raise UserError("no usable training events in the input files")
    return Scan(
        counts=counts,
        validation=concat(val) if val else None,
        subset=concat(subset),
        summary=np.concatenate(summ) if summary is not None else None,
    )


class ChunkCache:
    """`load_chunk` that keeps each chunk's loaded arrays on disk after the first read.

    For loaders whose work per chunk is much more than its result (ScoutTau decompresses every
    L1 candidate of a PU200 event and clusters them to keep ~8 candidates): the scan's pass
    fills the cache, and every epoch then reads small uncompressed .npz files. A file's key
    covers its absolute path, size and modification time, the entry range and `tag` (the
    loader's options), so a changed file or option never reads stale arrays. Files are written
    to a temporary name and renamed, so processes sharing `directory` never read half a file.

    Args:
        load_chunk: callable(Chunk) -> nested dict of arrays (dicts and arrays only).
        directory: where the .npz files go (kept, and reused by a later run with the same
            files and tag); None: a temporary folder removed with this object.
        tag: the loader's options, as a string.
    """

    def __init__(self, load_chunk, directory=None, tag=""):
        self.load_chunk, self.tag = load_chunk, tag
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hepformers-chunks-")
            directory = self._tmp.name
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot use {directory} as a chunk cache: {err.strerror}") from None
        self.directory = directory

    def path(self, chunk):
        info = os.stat(chunk.path)
        key = (os.path.abspath(chunk.path), info.st_size, info.st_mtime_ns, chunk.start)
        key = repr((*key, chunk.stop, self.tag)).encode()
        return os.path.join(self.directory, hashlib.sha1(key).hexdigest() + ".npz")

    def __call__(self, chunk):
        path = self.path(chunk)
        if os.path.exists(path):
            with np.load(path, allow_pickle=False) as f:
                return _unflatten({k: f[k] for k in f.files})
        data = self.load_chunk(chunk)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, **_flatten(data))
        os.replace(tmp, path)
        return data


def _flatten(arrays, prefix=""):
    """{'a/b': array} of a nested dict of arrays ('/' joins the keys)."""
    if not isinstance(arrays, dict):
        raise TypeError("ChunkCache stores nested dicts of arrays")
    out = {}
    for k, v in arrays.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = np.asarray(v)
    return out


def _unflatten(flat):
    out = {}
    for key, v in flat.items():
        *parents, leaf = key.split("/")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def _keras_pydataset():
    import keras

    return keras.utils.PyDataset


class ChunkStream(_keras_pydataset()):
    """Shuffled batches streamed from chunks of ROOT files.

    Each epoch: chunks in a seeded random order, grouped `buffer_chunks` at a time; a group's
    training events (the complement of `scan`'s validation split) are loaded, passed through
    `transform`, shuffled and concatenated into one stream that is cut into batches (the
    last batch of an epoch may be short, unless `drop_last`).

    Args:
        chunks: list of `Chunk`.
        counts: usable training events per chunk (`Scan.counts`).
        load_chunk: callable(Chunk) -> nested arrays; the same function `scan` used.
        batch_size: events per batch.
        seed: fixes the split (as in `scan`) and every epoch's order.
        val_fraction, split: as in `scan` (the same values).
        buffer_chunks: chunks read together and shuffled as one buffer.
        transform: optional callable(arrays, rng) -> (x, y) or (x, y, weights), applied per
            buffer with a seeded numpy Generator (augmentation such as mirrored copies may
            change the event count by a fixed factor `multiplicity`).
        multiplicity: events out of `transform` per event in.
        drop_last: drop the last partial batch of an epoch (distributed runs need equal
            batches in every process).
        max_batches: at most this many batches per epoch (the same count in every process).
    """

    def __init__(
        self,
        chunks,
        counts,
        load_chunk,
        batch_size,
        *,
        seed,
        val_fraction=0.2,
        buffer_chunks=4,
        transform=None,
        multiplicity=1,
        drop_last=False,
        max_batches=None,
        split=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.chunks, self.counts = list(chunks), np.asarray(counts)
        self.load_chunk, self.transform = load_chunk, transform
        self.batch_size, self.seed, self.val_fraction = batch_size, seed, val_fraction
        self.buffer_chunks, self.multiplicity = buffer_chunks, multiplicity
        self.drop_last, self.max_batches = drop_last, max_batches
        self.split = split
        self.epoch = 0
        # Keras may call __getitem__ from more than one thread: buffers are loaded under a
        # lock and kept in a small LRU cache, so each is read once per epoch
        self._cache, self._lock = OrderedDict(), threading.Lock()
        if len(self) == 0:
            raise UserError("no training events to stream")

    def __len__(self):
        events = int(self.counts.sum()) * self.multiplicity
        n = events // self.batch_size if self.drop_last else -(-events // self.batch_size)
        return n if self.max_batches is None else min(n, self.max_batches)

    def on_epoch_end(self):
        with self._lock:
            self.epoch += 1
            self._cache.clear()

    def _plan(self):
        """(groups of chunk indices, start of each group in the epoch's event stream)."""
        order = np.random.default_rng([self.seed, self.epoch, 1]).permutation(len(self.chunks))
        groups = [
            order[i : i + self.buffer_chunks] for i in range(0, len(order), self.buffer_chunks)
        ]
        sizes = [int(self.counts[g].sum()) * self.multiplicity for g in groups]
        return groups, np.concatenate([[0], np.cumsum(sizes)])

    def _buffer(self, g, groups):
        with self._lock:
            return self._load_buffer(g, groups)

    def _load_buffer(self, g, groups):
        key = (self.epoch, g)
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            parts = []
            for i in groups[g]:
                data = self.load_chunk(self.chunks[i])
                keep, _ = split_masks(data, self.seed, i, self.val_fraction, self.split)
                parts.append(take(data, keep))
            data = concat(parts)
            if self.transform is not None:
                data = self.transform(data, np.random.default_rng([self.seed, self.epoch, 3, g]))
            perm = np.random.default_rng([self.seed, self.epoch, 2, g]).permutation(length(data))
            while len(self._cache) >= 3:  # a batch spans at most two buffers
                self._cache.popitem(last=False)
            self._cache[key] = take(data, perm)
        return self._cache[key]

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(index)
        groups, starts = self._plan()
        a = index * self.batch_size
        b = min(a + self.batch_size, int(self.counts.sum()) * self.multiplicity)
        parts = []
        g = int(np.searchsorted(starts, a, side="right") - 1)
        while a < b:
            buf = self._buffer(g, groups)
            lo, hi = a - starts[g], min(b, starts[g + 1]) - starts[g]
            parts.append(take(buf, slice(lo, hi)))
            a, g = starts[g] + hi, g + 1
        return concat(parts) if len(parts) > 1 else parts[0]
