"""The harness of evaluate.bench.lgatr_reference_speed, without torch or lgatr.

Inputs, reference configuration, table, JSON, and the user errors (exit 2). No timing is
asserted (DESIGN.md: tests never assert on wall time).
"""

import json
import os
import stat

import numpy as np
import pytest

from evaluate.bench import lgatr_reference_speed as bench
from models.lgatr import get_config


def test_side_config_matches_the_presets():
    small = bench.side_config(get_config("default"))
    assert small["tokens"] == 15  # 12 objects + global token + 2 spurion tokens
    assert small["in_mv_channels"] == 1 and small["out_mv_channels"] == 2
    assert small["in_s_channels"] == 8 and small["out_s_channels"] == 0
    assert (small["num_blocks"], small["hidden_mv_channels"], small["num_heads"]) == (2, 8, 2)
    large = bench.side_config(get_config("large"))
    assert (large["num_blocks"], large["hidden_mv_channels"], large["hidden_s_channels"]) == (
        6,
        16,
        32,
    )
    assert (large["num_heads"], large["attn_ratio"]) == (8, 2)
    json.dumps(small)  # goes to the reference side on its command line


def test_make_inputs_gives_both_sides_the_same_events():
    config = get_config("default")
    d = bench.make_inputs(config, 6, seed=1)
    assert d["fourvectors"].shape == (6, 12, 4) and d["tops"].shape == (6, 2, 4)
    assert d["mv"].shape == (6, 15, 1, 16) and d["s"].shape == (6, 15, 8)
    assert d["token_mask"].shape == (6, 15) and d["token_mask"].dtype == bool
    # the objects' four-vectors sit on grade 1 of the last 12 tokens as (E, px, py, pz) / 100
    p = d["fourvectors"]
    emb = np.concatenate([p[..., 3:], p[..., :3]], -1) / config.momentum_scale
    np.testing.assert_allclose(d["mv"][:, 3:, 0, 1:5], emb, rtol=1e-6)
    np.testing.assert_allclose(d["targets"], emb[:, :2], rtol=1e-6)


def _summary(step_s, batch=256):
    return bench.summarize(dict(step_s=step_s, cpu_s=step_s), batch)


def test_rows_ratios_table_and_json(tmp_path):
    timings = {
        (bench.REFERENCE, "train"): dict(step_s=[1.0, 1.0, 3.0]),
        (bench.REFERENCE, "infer"): dict(step_s=[0.5]),
        ("Keras tensorflow, xla", "train"): dict(step_s=[0.25]),
        ("Keras tensorflow, xla", "infer"): dict(step_s=[0.25]),
        ("Keras torch, eager", "train"): dict(step_s=[2.0]),
    }
    rows = bench.table_rows("small", timings, 256)
    by = {r["path"]: r for r in rows}
    assert by[bench.REFERENCE]["train_ratio"] == pytest.approx(1.0)
    assert by["Keras tensorflow, xla"]["train_ratio"] == pytest.approx(4.0)
    assert by["Keras tensorflow, xla"]["infer_ratio"] == pytest.approx(2.0)
    assert by["Keras torch, eager"]["train_ratio"] == pytest.approx(0.5)
    assert by["Keras torch, eager"]["infer"] is None
    assert by["Keras torch, eager"]["infer_ratio"] is None
    lines = bench.format_table(rows).splitlines()
    assert len(lines) == 1 + len(rows) and "x lgatr" in lines[0]
    assert "1024" in lines[2] and "4.00" in lines[2]  # 256 events / 0.25 s
    assert lines[3].split()[-1] == "-"
    out = tmp_path / "x.json"
    bench.write_json(out, dict(rows=rows))
    assert json.loads(out.read_text())["rows"][1]["train_ratio"] == pytest.approx(4.0)


def test_missing_reference_python_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--reference-python", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no reference python" in err[0]


def test_reference_python_without_lgatr_is_a_user_error(tmp_path, capsys):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named lgatr' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(SystemExit) as exc:
        bench.main(["--reference-python", str(fake), "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "cannot import torch and lgatr" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--configs", "huge"], "unknown config"),
        (["--backends", "mlx"], "unknown backend"),
        (["--events", "10", "--batch-size", "256"], "less than one batch"),
        (["--warmup", "0"], "must be >= 1"),
        (["--out", os.path.join("no", "such", "dir")], "not a directory"),
    ],
)
def test_bad_values_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "onednn, expected",
    [
        ("both", {"Keras tensorflow": "0", "Keras tensorflow+oneDNN": "1", "Keras jax": "0"}),
        ("off", {"Keras tensorflow": "0", "Keras jax": "0"}),
        ("on", {"Keras tensorflow+oneDNN": "1", "Keras jax": "0"}),
    ],
)
def test_tensorflow_sides_with_onednn_off_and_on(monkeypatch, tmp_path, onednn, expected):
    class FakeSide:
        def __init__(self, cmd, log_path, env):
            self.env = env

    monkeypatch.setattr(bench, "Side", FakeSide)
    args = bench.argparse.Namespace(
        reference_python="ref",
        keras_python="py",
        batch_size=256,
        threads=2,
        backends=["tensorflow", "jax"],
        onednn=onednn,
    )
    sides, errors = bench.start_sides(args, "default", "x.npz", str(tmp_path))
    assert not errors
    started = {k: s.env.get("TF_ENABLE_ONEDNN_OPTS") for k, s in sides.items()}
    started.pop(bench.REFERENCE)  # the PyTorch side, no TensorFlow in it
    assert started == expected
    assert sides["Keras jax"].env["KERAS_BACKEND"] == "jax"
