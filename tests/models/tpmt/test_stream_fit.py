"""Streaming TPMT training from a list of ROOT files: chunks, split, same batches per seed."""

import functools
import json
import os
import shutil

import numpy as np
import pytest

from data import io, stream
from data.generate.__main__ import run as generate_run
from models import training
from models.tpmt.fit import FLAT_WEIGHT_EDGES, _augment, _load_chunk


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Three files (two share content) and a manifest listing two of them."""
    d = tmp_path_factory.mktemp("stream")
    a, b = str(d / "flat_0000.root"), str(d / "flat_0001.root")
    generate_run("flat", 90, 21, a, progress=False)
    generate_run("flat", 70, 22, b, progress=False)
    c = str(d / "flat_0002.root")
    shutil.copy(a, c)
    with open(d / "flat.manifest.json", "w") as f:
        json.dump({"files": [{"path": "flat_0000.root"}, {"path": "flat_0001.root"}]}, f)
    return [a, b, c], str(d)


def _stream(paths, seed, batch_size=32):
    chunks = stream.make_chunks(paths, 25)
    load = functools.partial(_load_chunk, channel="all", drop_nonfinite=False)
    scan = stream.scan(chunks, load, seed=seed, summary=lambda d: d[1][:, 2], progress=False)
    weights = training.FlatWeights(scan.summary, FLAT_WEIGHT_EDGES)
    transform = functools.partial(_augment, weights=weights, mirrored=True)
    ds = stream.ChunkStream(
        chunks, scan.counts, load, batch_size, seed=seed, transform=transform, multiplicity=2
    )
    return chunks, scan, ds


def _epoch(ds):
    return [ds[i] for i in range(len(ds))]


def test_expand_paths_globs_and_manifests(files):
    paths, folder = files
    assert io.expand_paths(os.path.join(folder, "flat_*.root")) == sorted(paths)
    assert io.expand_paths([os.path.join(folder, "flat.manifest.json")]) == paths[:2]
    with pytest.raises(Exception, match="no file matches"):
        io.expand_paths(os.path.join(folder, "nothing_*.root"))


def test_chunks_split_and_counts(files):
    paths, _ = files
    chunks, scan, ds = _stream(paths, seed=4)
    assert [(c.start, c.stop) for c in chunks if c.path == paths[0]] == [
        (0, 25),
        (25, 50),
        (50, 75),
        (75, 90),
    ]
    n_val = len(scan.validation[1])
    assert sum(scan.counts) + n_val == 90 + 70 + 90  # every usable event: train or validation
    assert 0.1 < n_val / 250 < 0.3
    assert len(ds) == -(-2 * sum(scan.counts) // 32)  # mirrored copies double the stream
    # the validation events never appear in training batches: their masses are disjoint sets
    # (up to the copied file, whose events are duplicates by construction)
    x, y, w = ds[0]
    assert x["legs"].shape == (32, 2, 12) and y.shape == (32, 3) and w.shape == (32,)
    assert np.isfinite(w).all() and (w > 0).all()


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_same_seed_same_batches_and_a_new_order_each_epoch(files):
    paths, _ = files
    _, scan, a = _stream(paths, seed=4)
    _, _, b = _stream(paths, seed=4)
    _, _, c = _stream(paths, seed=5)
    ea, eb, ec = _epoch(a), _epoch(b), _epoch(c)
    for (xa, ya, wa), (xb, yb, wb) in zip(ea, eb):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(wa, wb)
        for k in xa:
            np.testing.assert_array_equal(xa[k], xb[k])
    assert not np.array_equal(ea[0][1], ec[0][1])
    a.on_epoch_end()
    e2 = _epoch(a)
    assert not np.array_equal(ea[0][1], e2[0][1])
    # an epoch sees every training event exactly twice (mirrored)
    every = dict(zip(*np.unique(np.repeat(scan.summary, 2), return_counts=True)))
    for epoch in (ea, e2):
        seen = dict(
            zip(*np.unique(np.concatenate([y[:, 2] for _, y, _ in epoch]), return_counts=True))
        )
        assert seen == every


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_fit_from_file_list_and_glob(files, tmp_path):
    from models.tpmt.fit import main as fit_main

    paths, folder = files
    for i, data in enumerate(([paths[0], paths[1]], [os.path.join(folder, "flat_000*.root")])):
        out = str(tmp_path / f"m{i}")
        fit_main(
            ["--data", *data, "--epochs", "1", "--out", out, "--quiet", "--chunk-events", "40"]
        )
        assert os.path.exists(os.path.join(out, "tpmt.keras"))
        with open(os.path.join(out, "run_config.json")) as f:
            run = json.load(f)
        assert len(run["files"]) == (2, 3)[i]
        assert run["training_events"] + run["validation_events"] == (160, 250)[i]


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_resonant_model_is_its_own_file_and_can_start_from_the_flat_one(files, tmp_path):
    from models.tpmt.fit import main as fit_main

    paths, _ = files
    flat = str(tmp_path / "flat")
    fit_main(["--data", paths[0], "--epochs", "1", "--out", flat, "--quiet"])
    out = str(tmp_path / "res")
    args = ["--data", paths[1], "--epochs", "1", "--out", out, "--quiet"]
    fit_main([*args, "--strategy", "resonant-sm", "--init-from", f"{flat}/tpmt.keras"])
    assert os.path.exists(os.path.join(out, "tpmt_resonant_sm.keras"))
    assert not os.path.exists(os.path.join(out, "tpmt.keras"))  # the flat default untouched
    assert os.path.exists(os.path.join(out, "tpmt_resonant_sm", "history.csv"))
    with pytest.raises(SystemExit) as err:
        fit_main([*args, "--init-from", str(tmp_path / "missing.keras")])
    assert err.value.code == 2
