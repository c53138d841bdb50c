"""The harness of evaluate.bench.loader_throughput on the tiny FCC-ee files: the ParTau stream
as its fit builds it, one epoch read and counted, the table; structure, not timing (no model is
trained here: DESIGN.md, tests never assert on wall time)."""

import numpy as np
import pytest

from evaluate.bench import loader_throughput as bench


def test_partau_stream_epoch_and_table(fcc_files):
    stream, make_model, preset = bench.build("partau", fcc_files)
    assert preset == "cpu" and callable(make_model)
    rate, n, clock, kept = bench.loader_rate(stream, keep=2)
    assert n == int(sum(stream.counts)) and rate > 0 and clock.wall > 0
    assert all(bench.batch_size_of(b) == stream.batch_size for b in kept)
    if kept:  # jets, targets of every task, weights
        x, y, w = kept[0]
        assert set(x) == {"features", "fourvectors", "mask"} and np.isfinite(w).all()
    row = dict(unit="jets", loader_per_s=rate, train_per_s=rate / 2, ratio=2.0, ok=True,
               batch_size=stream.batch_size, loader_cpu_over_wall=1.0,
               train_cpu_over_wall=1.9, scan_s=0.25)  # fmt: skip
    text = bench.table({"partau": row})
    assert "| partau (jets) |" in text and "| 2.0 | ok |" in text
    assert text.splitlines()[-1].endswith("| 0.2 |")  # the scan column
    del row["scan_s"]  # a row from before the scan column: blank, not a crash
    assert bench.table({"partau": row}).splitlines()[-1].endswith("|  |")


def test_help_and_bad_values(capsys):
    with pytest.raises(SystemExit) as err:
        bench.main(["--help"])
    assert err.value.code == 0
    assert "--pu-events" in capsys.readouterr().out
    with pytest.raises(SystemExit) as err:
        bench.main(["--events", "0"])
    assert err.value.code == 2
