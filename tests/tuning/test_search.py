"""Shared search plumbing: argument errors of every search CLI are one line and exit 2."""

import importlib

import pytest

MODELS = ("tpmt", "lgatr", "partau", "metperceiver", "scouttau")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    "argv, words",
    [
        (["--max-trials", "0"], "--max-trials"),
        (["--epochs", "-1"], "--epochs must be positive"),
        (["--seed", "-1"], "--seed must be"),
        (["--data", "/nonexistent.root"], "/nonexistent.root"),
        (["--objective", "loss"], "--objective must be a validation metric"),
    ],
)
def test_bad_arguments_are_one_line(model, argv, words, tmp_path, capsys):
    main = importlib.import_module(f"tuning.{model}").main
    argv = ["--data", "x.root", "--out", str(tmp_path / "s"), *argv]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines


def test_tuner_choice_is_checked(capsys):
    from tuning.lgatr import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--data", "x.root", "--tuner", "grid"])
    assert exit_info.value.code == 2
