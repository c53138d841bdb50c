"""The harness of evaluate.bench.metperceiver_scaling: one tiny measurement, table, verdict.

Structure only: no timing is asserted (DESIGN.md, tests never assert on wall time).
"""

import numpy as np
import pytest

from evaluate.bench import metperceiver_scaling as bench

TINY = dict(batch=2, dim=8, latents=4, blocks=1, heads=2, repeats=1, warmup=1, jit_compile=False)


def test_toy_batch_is_padded():
    x, y = bench.toy_batch(3, 40, seed=1)
    assert x["features"].shape == (3, 40, 5) and x["mask"].shape == (3, 40) and y.shape == (3, 2)
    n_real = x["mask"].sum(1)
    assert (n_real >= 20).all() and (n_real <= 40).all()
    assert not x["features"][~x["mask"]].any()


@pytest.mark.parametrize("kind", bench.KINDS)
def test_measure_step_in_process(kind):
    r = bench.measure_step(kind, 64, **TINY)
    assert r["kind"] == kind and r["n"] == 64 and r["status"] == "ok"
    assert len(r["step_ms"]) == 1 and r["ms_per_step"] > 0 and r["params"] > 0
    assert r["peak_mb"] > 0 and r["base_mb"] > 0


def test_classify_child_exits():
    base = dict(kind="plain", n=10)
    ok = bench.classify(0, 'noise\nRESULT {"kind": "plain", "n": 10, "status": "ok"}\n', "", base)
    assert ok["status"] == "ok"
    assert bench.classify(-9, "", "", base)["status"] == "OOM"
    oom = bench.classify(-6, "", "terminate ... std::bad_alloc\n", base)
    assert oom["status"] == "OOM" and "bad_alloc" in oom["error"]
    err = bench.classify(1, "", "Traceback\nValueError: bug\n", base)
    assert err == dict(base, status="error", error="ValueError: bug")


def _ok(kind, n, ms):
    return dict(kind=kind, n=n, status="ok", ms_per_step=ms, peak_mb=100.0 + n)


def test_table_and_verdict():
    sizes = [100, 200, 400]
    results = [_ok("perceiver", n, 10.0 + 0.1 * n) for n in sizes]
    results += [_ok("plain", 100, 30.0), _ok("plain", 200, 300.0)]
    results += [dict(kind="plain", n=400, status="OOM")]
    rows = bench.table_rows(results, sizes)
    assert [r["n"] for r in rows] == sizes
    assert rows[0]["ratio"] == pytest.approx(30.0 / 20.0) and rows[2]["ratio"] is None
    lines = bench.format_table(rows).splitlines()
    assert len(lines) == 2 + len(sizes) and "perceiver ms/step" in lines[0]
    assert "OOM" in lines[-1] and "1.5x" in lines[2]
    text, fit = bench.verdict(rows, 12.0)
    assert "grows linearly" in text[0] and "NOT" not in text[0]
    assert fit["ms_per_candidate"] == pytest.approx(0.1) and fit["r2"] == pytest.approx(1.0)
    assert "ran out of memory" in text[1] and "400" in text[1]
    # quadratic growth is not linear; a slower plain encoder is reported with its ratio
    quad = [_ok("perceiver", n, 1e-3 * n**2) for n in sizes] + [_ok("plain", 400, 3200.0)]
    text, _ = bench.verdict(bench.table_rows(quad, sizes), 12.0)
    assert "does NOT grow linearly" in text[0] and "20.0x slower (>= 10x)" in text[1]


def test_fit_growth_slopes():
    n = np.array([500, 1000, 2000, 4000])
    assert bench.fit_growth(n, 3.0 * n)["loglog"] == pytest.approx(1.0)
    assert bench.fit_growth(n, 1e-3 * n**2)["loglog"] == pytest.approx(2.0)
    assert bench.fit_growth([5], [1.0]) is None


def test_bad_sizes_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--sizes", "10,x"])
    assert exc.value.code == 2
    assert "--sizes" in capsys.readouterr().err
