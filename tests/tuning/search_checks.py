"""Checks shared by the end-to-end tests of the `python -m tuning.<model>` searches."""

import json

SEARCH = ["--tuner", "random", "--max-trials", "2", "--epochs", "1", "--seed", "3"]


def _trial_dirs(out):
    return sorted(p.name for p in out.glob("trial_*") if p.is_dir())


def check_resumable_search(main, argv, out, trials=2):
    """Run the search CLI `main(argv)` twice: the first run completes `trials` trials, lists
    them in best_trials.md / .json and leaves a TensorBoard run per trial; the second resumes
    the finished search and runs no new trial."""
    main(argv)
    summary = json.loads((out / "best_trials.json").read_text())
    assert summary["trials_completed"] == trials
    ids = [row["trial_id"] for row in summary["best"]]
    assert len(set(ids)) == trials
    assert all(row["score"] is not None for row in summary["best"])
    table = (out / "best_trials.md").read_text()
    for rank, trial_id in enumerate(ids, 1):
        assert f"| {rank} | {trial_id} |" in table
    for trial_id in ids:
        assert any((out / "logs" / trial_id).rglob("events.out.tfevents*")), trial_id
    dirs = _trial_dirs(out)
    assert len(dirs) == trials
    main(argv)  # the same command again: the search is resumed, and it is finished
    assert _trial_dirs(out) == dirs
    assert json.loads((out / "best_trials.json").read_text())["trials_completed"] == trials
    return summary
