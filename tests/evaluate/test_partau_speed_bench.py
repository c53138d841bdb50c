"""The harness of evaluate.bench.partau_speed, without torch: inputs, table, environment check.

No timing is asserted (DESIGN.md, tests never assert on wall time).
"""

import os
import re
import stat
import sys
import textwrap
import types

import numpy as np
import pytest

from evaluate.bench import partau_speed

# Trainable parameters of weaver-core 0.5.3's ParticleTransformer at partau_speed.CONFIG,
# read off the benchmark environment (torch 2.13.0); the Keras model must match it.
WEAVER_PARAMETERS = 3_450_310
WEAVER_BN_STATISTICS = 442


def test_toy_jets_shapes_and_padding():
    jets = partau_speed.toy_jets(300, num_particles=20, num_features=17, seed=3)
    assert jets["features"].shape == (300, 20, 17) and jets["features"].dtype == np.float32
    assert jets["fourvectors"].shape == (300, 20, 4) and jets["fourvectors"].dtype == np.float32
    assert jets["mask"].shape == (300, 20) and jets["labels"].shape == (300,)
    mask = jets["mask"].astype(bool)
    assert set(np.unique(jets["mask"])) == {0.0, 1.0}
    n_real = mask.sum(1)
    assert n_real.min() >= 5 and n_real.max() <= 20
    assert len(np.unique(n_real)) > 10  # the whole range 5-20 occurs, not one length
    # real candidates first, then padding
    np.testing.assert_array_equal(mask, np.arange(20)[None] < n_real[:, None])
    assert not jets["features"][~mask].any() and not jets["fourvectors"][~mask].any()
    p4 = jets["fourvectors"][mask].astype(np.float64)
    p2 = (p4[:, :3] ** 2).sum(1)
    assert (p4[:, 3] > 0).all() and (p4[:, 3] ** 2 >= p2 * (1 - 1e-6)).all()  # physical
    assert np.isfinite(jets["features"]).all() and set(np.unique(jets["labels"])) <= {0, 1}


def test_toy_jets_options_and_seed():
    a = partau_speed.toy_jets(50, num_particles=8, num_features=3, min_real=8, seed=1)
    assert a["mask"].all() and a["features"].shape == (50, 8, 3)
    b = partau_speed.toy_jets(50, num_particles=8, num_features=3, min_real=8, seed=1)
    np.testing.assert_array_equal(a["fourvectors"], b["fourvectors"])
    with pytest.raises(ValueError):
        partau_speed.toy_jets(10, num_particles=20, min_real=21)


def test_batches_split_the_jets():
    jets = partau_speed.toy_jets(100, seed=0)
    batches = partau_speed._batches(jets, 32)
    assert len(batches) == 3  # the incomplete last batch is dropped: one shape for XLA
    x, y = batches[1]
    assert set(x) == {"features", "fourvectors", "mask"}
    assert x["features"].shape == (32, 20, 17) and y.shape == (32,)
    np.testing.assert_array_equal(x["mask"], jets["mask"][32:64])


def _summary(step_s, batch=512):
    return partau_speed.summarize(dict(step_s=step_s, cpu_s=[s / 2 for s in step_s]), batch)


def test_summarize_takes_the_median_step():
    s = _summary([1.0, 2.0, 100.0])
    assert s["rate"] == pytest.approx(256.0) and s["median_step_s"] == 2.0
    assert s["mean_rate"] == pytest.approx(512 * 3 / 103.0)
    assert s["cpu_wall"] == pytest.approx(0.5) and s["steps"] == 3


def test_format_table_rows_and_ratios():
    rows = [
        dict(side="Keras, jit_compile=True (XLA)", train=_summary([0.5]), infer=_summary([0.1])),
        dict(side="Keras, tf.function(jit_compile) call", train=None, infer=_summary([0.4])),
        dict(side="PyTorch eager", train=_summary([1.0]), infer=_summary([0.2])),
    ]
    lines = partau_speed.format_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert "train jets/s" in lines[0] and "infer jets/s" in lines[0]
    keras, call, torch = lines[2:]
    assert keras.startswith("Keras, jit_compile=True (XLA)")
    assert "1,024" in keras and "2.00x" in keras and "5,120" in keras
    assert "1.00x" in torch and "512" in torch
    assert call.split()[4:7] == ["-", "-", "-"] and "0.50x" in call
    # without a PyTorch row the ratios are left out, not invented
    assert not re.search(r"\d\.\d\dx", partau_speed.format_table(rows[:2]))


def test_keras_over_torch_ratios():
    rows = [
        dict(side=partau_speed.KERAS_XLA, train=_summary([0.5]), infer=_summary([0.25])),
        dict(side=partau_speed.KERAS_CALL, train=None, infer=_summary([0.1])),
        dict(side=partau_speed.TORCH_EAGER, train=_summary([1.5]), infer=_summary([0.2])),
        dict(side=partau_speed.TORCH_FTZ, train=None, infer=_summary([0.1])),
        # another function (tanh GELU): shown, never the "best Keras path"
        dict(side=partau_speed.KERAS_TANH, train=_summary([0.1]), infer=_summary([0.01])),
    ]
    r = partau_speed.keras_over_torch(rows)
    assert r["train"] == pytest.approx(3.0) and r["infer"] == pytest.approx(2.0)  # best path
    assert partau_speed.keras_over_torch(rows, partau_speed.TORCH_FTZ) == {"infer": 1.0}
    assert partau_speed.keras_over_torch(rows, "PyTorch torch.compile") == {}
    line = partau_speed.ratio_line(r)
    assert "training 3.00x" in line and "inference 2.00x" in line
    assert "training -" in partau_speed.ratio_line({"infer": 1.0})


def test_torch_env_sleeps_openmp_threads_unless_told_otherwise():
    assert partau_speed.torch_env({"PATH": "/bin"}) == {
        "PATH": "/bin",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    assert partau_speed.torch_env({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"


def test_parameter_line():
    same = partau_speed.parameter_line(
        dict(parameters=10, non_trainable=4), dict(parameters=10, bn_statistics=4)
    )
    assert "(equal)" in same and "DIFFER" not in same
    other = partau_speed.parameter_line(
        dict(parameters=12, non_trainable=4), dict(parameters=10, bn_statistics=4)
    )
    assert "DIFFER: Keras - PyTorch = +2" in other


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_missing_torch_python_exits_2_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        partau_speed.main(["--torch-python", str(tmp_path / "no" / "python")])
    assert exc.value.code == 2
    line = _one_error_line(capsys)
    assert "python3 -m venv cache/bench-venv" in line and "torch==2.13.0" in line


def test_python_without_torch_exits_2(tmp_path, capsys):
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(SystemExit) as exc:
        partau_speed.main(["--torch-python", str(fake)])
    assert exc.value.code == 2
    line = _one_error_line(capsys)
    assert "cannot import torch and weaver" in line and "No module named 'torch'" in line


def test_bad_sizes_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        partau_speed.main(["--steps", "0", "--torch-python", os.devnull])
    assert exc.value.code == 2
    assert "--steps" in _one_error_line(capsys)


def test_keras_model_matches_weaver_parameter_count():
    model = partau_speed.build_keras(jit_compile=False)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert trainable == WEAVER_PARAMETERS
    assert non_trainable == WEAVER_BN_STATISTICS
    jets = partau_speed.toy_jets(4, seed=0)
    x = {k: jets[k] for k in ("features", "fourvectors", "mask")}
    assert model.predict_on_batch(x).shape == (4, 2)


class _FakeStepper:
    def __init__(self, log, name, fail_at=None):
        self.log, self.name, self.fail_at, self.calls = log, name, fail_at, 0

    def warm(self, n):
        return 1.0

    def run(self, n):
        self.calls += 1
        if self.calls == self.fail_at:
            raise partau_speed.PathError("boom")
        self.log.append(self.name)
        return dict(step_s=[0.5] * n, cpu_s=[0.25] * n)


def test_round_sizes():
    assert partau_speed.round_sizes(10, 3) == [4, 3, 3]
    assert partau_speed.round_sizes(2, 5) == [1, 1]
    assert sum(partau_speed.round_sizes(17, 4)) == 17


def test_measure_interleaves_and_drops_failed_paths():
    log = []
    paths = {
        ("A", "train"): _FakeStepper(log, "A"),
        ("B", "train"): _FakeStepper(log, "B"),
        ("B", "infer"): _FakeStepper(log, "Bi", fail_at=2),
    }
    timings, errors = partau_speed.measure(paths, warmup=1, steps=5, rounds=3)
    assert errors == {("B", "infer"): "boom"}
    assert set(timings) == {("A", "train"), ("B", "train")}
    assert len(timings[("A", "train")]["step_s"]) == 5
    assert timings[("A", "train")]["first_step_s"] == 1.0
    assert log[:3] == ["A", "B", "Bi"] and log[3] == "B"  # rotating order, every round
    rows = partau_speed.table_rows(timings, batch=10)
    assert [r["side"] for r in rows] == ["A", "B"]
    assert rows[0]["train"]["rate"] == pytest.approx(20.0) and rows[0]["infer"] is None


FAKE_TORCH_SIDE = """\
    import json, sys
    model = sys.argv[sys.argv.index("--model") + 1]
    print(json.dumps(dict(torch="0", weaver="0", threads=2, parameters=7, bn_statistics=2)))
    sys.stdout.flush()
    for line in sys.stdin:
        op, name, n = (line.split() + ["", "", ""])[:3]
        if op == "quit":
            break
        if name != model or (model == "compile" and op == "train"):
            res = dict(error=f"no {op} for {name}")
        elif op.startswith("warmup"):
            res = dict(first_step_s=2.0)
        else:
            res = dict(step_s=[0.1] * int(n), cpu_s=[0.2] * int(n))
        print(json.dumps(res))
        sys.stdout.flush()
"""


def _fake_python(tmp_path, body):
    fake = tmp_path / "python"
    fake.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return str(fake)


def test_torch_side_protocol(tmp_path):
    """The pipe protocol of _weaver_side.py, spoken by a fake that needs no torch."""
    args = types.SimpleNamespace(
        torch_python=_fake_python(tmp_path, FAKE_TORCH_SIDE), batch=8, threads=2
    )
    inputs = str(tmp_path / "jets.npz")
    eager = partau_speed.TorchSide(args, inputs, str(tmp_path / "e.log"), "eager")
    compiled = partau_speed.TorchSide(args, inputs, str(tmp_path / "c.log"), "compile")
    try:
        assert eager.info["parameters"] == 7
        paths = {
            ("PyTorch eager", "train"): partau_speed.TorchStepper(eager, "eager", "train"),
            ("PyTorch eager", "infer"): partau_speed.TorchStepper(eager, "eager", "infer"),
            ("PyTorch compile", "train"): partau_speed.TorchStepper(compiled, "compile", "train"),
            ("PyTorch compile", "infer"): partau_speed.TorchStepper(compiled, "compile", "infer"),
        }
        timings, errors = partau_speed.measure(paths, warmup=2, steps=3, rounds=2)
    finally:
        eager.close()
        compiled.close()
    assert eager.proc.returncode == 0 and compiled.proc.returncode == 0
    assert list(errors) == [("PyTorch compile", "train")]
    assert errors[("PyTorch compile", "train")] == "no train for compile"
    assert timings[("PyTorch eager", "train")]["step_s"] == [0.1] * 3
    assert timings[("PyTorch compile", "infer")]["first_step_s"] == 2.0


def test_torch_side_that_dies_reports_its_stderr(tmp_path):
    args = types.SimpleNamespace(
        torch_python=_fake_python(tmp_path, "import sys\nsys.exit('weaver exploded')\n"),
        batch=8,
        threads=2,
    )
    with pytest.raises(RuntimeError, match="weaver exploded"):
        partau_speed.TorchSide(args, "x.npz", str(tmp_path / "log"))
