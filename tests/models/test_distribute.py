"""The distribution settings of the fits (models/distribute.py) and the search cluster check."""

import argparse

import pytest

from data.errors import UserError
from models import distribute
from tuning import cluster


def _args(**kw):
    base = dict(distribution="none", job_addresses=None, num_processes=1, process_id=0)
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(num_processes=2, process_id=2, distribution="data-parallel"), "--process-id"),
        (dict(num_processes=2, job_addresses="h:1"), "needs --distribution data-parallel"),
        (dict(num_processes=2, distribution="data-parallel"), "--job-addresses"),
    ],
)
def test_impossible_settings_are_one_line_errors(kw, message):
    with pytest.raises(UserError, match=message):
        distribute.check_args(_args(**kw))


def test_multi_process_needs_jax(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    with pytest.raises(UserError, match="KERAS_BACKEND=jax"):
        distribute.check_args(
            _args(distribution="data-parallel", num_processes=2, job_addresses="h:1")
        )
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(UserError, match="JAX or TensorFlow"):
        distribute.check_args(_args(distribution="data-parallel"))


def test_plan_shards_chunks_round_robin_and_names_folders():
    plan = distribute.Plan(process_id=1, num_processes=2, devices=2)
    assert plan.shard(list(range(5))) == [1, 3]
    assert plan.out_dir("run") == "run/process-1"
    assert distribute.Plan().out_dir("run") == "run" and not distribute.Plan().distributed
    with pytest.raises(UserError, match="3 processes"):
        distribute.Plan(process_id=0, num_processes=3).shard([0, 1])


def test_fit_refuses_impossible_settings_in_one_line(capsys):
    from models.tpmt.fit import main

    with pytest.raises(SystemExit) as err:
        main(["--distribution", "data-parallel", "--num-processes", "2", "--out", "x"])
    assert err.value.code == 2
    assert "--job-addresses" in capsys.readouterr().err


def _summary(out, completed):
    import json

    (out / "best_trials.json").write_text(json.dumps({"trials_completed": completed}))


def test_cluster_check_finds_trials_run_twice(tmp_path):
    _summary(tmp_path, 3)
    log = "0\ttuner0\tCOMPLETED\n1\ttuner1\tCOMPLETED\n2\ttuner0\tCOMPLETED\n"
    (tmp_path / "trials_run.tsv").write_text(log)
    ok, lines = cluster.check(str(tmp_path), 2)
    assert ok and lines[-1].startswith("PASS: 3 trials")
    (tmp_path / "trials_run.tsv").write_text(log + "2\ttuner1\tCOMPLETED\n")
    ok, lines = cluster.check(str(tmp_path), 2)
    assert not ok and any("more than once: ['2']" in line for line in lines)


def test_cluster_needs_the_search_arguments(capsys):
    with pytest.raises(SystemExit) as err:
        cluster.main(["--model", "tpmt"])
    assert err.value.code == 2
    assert "after --" in capsys.readouterr().err
