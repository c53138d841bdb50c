"""The one place that reads and writes ROOT files (uproot), validates them and names problems.

Trees follow NanoAOD conventions: a flat `Events` tree, per-object collections `Tau_pt`,
`Jet_eta`, ... with counters `nTau`, `nJet`, and event-level branches such as `MET_pt`.
"""

import contextlib
import os
import uuid

import awkward as ak
import numpy as np

from data.errors import UserError

TREE = "Events"


def _deterministic_uuid():
    # ROOT files carry a UUID; a fixed one keeps files from the same seed byte-comparable.
    return uuid.UUID(int=0)


def write_events(path, columns, *, tree=TREE):
    """Write an `Events` tree.

    Args:
        path: output `.root` file (its folder is created).
        columns: dict of collection name -> dict of field -> jagged awkward array (written as
            `nName`, `Name_field`), or branch name -> flat numpy array (written as is).
        tree: tree name.
    Raises:
        UserError: if the path cannot be written.
    """
    import uproot

    branches = {}
    for name, value in columns.items():
        if isinstance(value, dict):
            branches[name] = ak.zip(dict(value), depth_limit=2)
        else:
            branches[name] = np.asarray(value)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        with uproot.recreate(path, uuid_function=_deterministic_uuid) as f:
            f.mktree(tree, branches)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None


def open_tree(path, *, tree=TREE):
    """Open a tree with clear errors for missing, non-ROOT, tree-less or empty files."""
    import uproot

    if not os.path.exists(path):
        raise UserError(f"no such file: {path}")
    if os.path.isdir(path):
        raise UserError(f"{path} is a folder, not a ROOT file")
    try:
        f = uproot.open(path)
    except Exception as err:  # uproot raises assorted errors for non-ROOT bytes
        if _has_root_magic(path):
            raise UserError(
                f"cannot read {path}: truncated or corrupt ROOT file ({type(err).__name__})"
            ) from None
        raise UserError(f"{path} is not a readable ROOT file ({type(err).__name__})") from None
    with _reading(path):
        keys = f.keys()
        if tree not in f:
            found = ", ".join(sorted({k.split(";")[0] for k in keys})) or "nothing"
            raise UserError(f"{path} has no tree '{tree}' (it holds: {found})")
        t = f[tree]
        n = t.num_entries
    if n == 0:
        raise UserError(f"tree '{tree}' in {path} is empty")
    return t


def _has_root_magic(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"root"
    except OSError:
        return False


@contextlib.contextmanager
def _reading(path):
    """Turn the assorted errors of uproot on a truncated or corrupt file (OSError, ValueError,
    KeyError, DeserializationError, zlib / lz4 / zstd errors, ...) into one `UserError`."""
    try:
        yield
    except UserError:
        raise
    except Exception as err:
        raise UserError(
            f"cannot read {path}: truncated or corrupt ROOT file ({type(err).__name__})"
        ) from None


def read_branches(
    paths,
    branches,
    *,
    tree=TREE,
    mapping=None,
    drop_nonfinite=False,
    entries=None,
    with_entry=False,
):
    """Read branches from one or more ROOT files into awkward arrays, checking every value.

    Args:
        paths: a path or list of paths.
        branches: canonical branch names to read (e.g. `Tau_pt`).
        tree: tree name.
        mapping: optional dict canonical name -> name in the user's file (e.g.
            `{"MET_pt": "PuppiMET_pt"}`), so NanoAOD-style files with other names can be read.
        drop_nonfinite: drop events with NaN or inf in any branch instead of failing.
        entries: optional (start, stop) entry range, for a single path (chunked reading).
        with_entry: add `__entry__`, each event's row in the tree (files one after another),
            which stays aligned when events with NaN/inf are dropped.
    Returns:
        dict canonical name -> awkward array (flat or jagged), files concatenated.
    Raises:
        UserError: missing file or branch (named with the file), empty tree, non-finite values.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise UserError("no input files given")
    mapping = mapping or {}
    if entries is not None and len(paths) != 1:
        raise ValueError("an entry range needs exactly one path")
    start, stop = entries if entries is not None else (None, None)
    parts = []
    for path in paths:
        t = open_tree(path, tree=tree)
        names = {b: mapping.get(b, b) for b in branches}
        with _reading(path):
            keys = set(t.keys())
        missing = [f"{n}" for n in names.values() if n not in keys]
        if missing:
            raise UserError(f"{path} lacks branch {', '.join(missing[:5])} in tree '{tree}'")
        with _reading(path):
            arrays = t.arrays(
                list(set(names.values())), library="ak", entry_start=start, entry_stop=stop
            )
        parts.append({b: arrays[n] for b, n in names.items()})
    out = {
        b: ak.concatenate([p[b] for p in parts]) if len(parts) > 1 else parts[0][b]
        for b in branches
    }
    if with_entry:
        n = len(out[branches[0]]) if branches else 0
        out["__entry__"] = np.arange(n) + (start or 0)
    return _check_finite(out, paths, drop_nonfinite)


def num_entries(path, *, tree=TREE):
    """Entries of the tree in `path` (same checks as `open_tree`)."""
    return open_tree(path, tree=tree).num_entries


def expand_paths(patterns):
    """Files named by paths, glob patterns and generation manifests (`*.manifest.json`).

    Args:
        patterns: a string or a list of strings.
    Returns:
        list of file paths, in the order given (globs sorted, manifests in shard order).
    Raises:
        UserError: a pattern that matches nothing, or an unreadable manifest.
    """
    import glob
    import json

    patterns = [patterns] if isinstance(patterns, (str, os.PathLike)) else list(patterns)
    out = []
    for pattern in map(str, patterns):
        if pattern.endswith(".manifest.json"):
            try:
                with open(pattern) as f:
                    files = json.load(f)["files"]
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise UserError(f"cannot read manifest {pattern}: {err}") from None
            folder = os.path.dirname(pattern)
            out += [os.path.join(folder, entry["path"]) for entry in files]
        elif glob.has_magic(pattern):
            hits = sorted(glob.glob(pattern))
            if not hits:
                raise UserError(f"no file matches {pattern}")
            out += hits
        else:
            out.append(pattern)
    if not out:
        raise UserError("no input files given")
    return out


def _check_finite(arrays, paths, drop_nonfinite):
    n = len(next(iter(arrays.values())))
    bad_event = np.zeros(n, dtype=bool)
    bad_counts = {}
    for name, arr in arrays.items():
        flat = ak.flatten(arr, axis=None) if arr.ndim > 1 else arr
        if not np.issubdtype(np.asarray(flat).dtype, np.floating):
            continue
        bad = ~np.isfinite(arr)
        per_event = ak.to_numpy(ak.any(bad, axis=-1)) if arr.ndim > 1 else ak.to_numpy(bad)
        if per_event.any():
            bad_counts[name] = int(per_event.sum())
            bad_event |= per_event
    if not bad_counts:
        return arrays
    where = ", ".join(f"{k} ({v})" for k, v in sorted(bad_counts.items())[:4])
    if not drop_nonfinite:
        raise UserError(
            f"{int(bad_event.sum())} of {n} events in {', '.join(map(str, paths))} have NaN or "
            f"inf in {where}; pass --drop-nonfinite to skip them"
        )
    keep = ~bad_event
    if not keep.any():
        raise UserError("every event has NaN or inf values; nothing left to read")
    print(f"warning: dropped {int(bad_event.sum())} of {n} events with NaN or inf in {where}")
    return {k: v[keep] for k, v in arrays.items()}
