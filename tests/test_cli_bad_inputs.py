"""Bad inputs to every CLI give one line on stderr, exit status 2 and write nothing (issue 13).

Each CLI's `main(argv)` runs in-process from an empty working folder (so a default output such
as runs/<model>/fit-<time> would show); `--help` and the tuning start-up run in fresh processes.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from data import io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAVED = os.path.join(ROOT, "saved_models")
PROC_OUT = "/proc/hepformers-test/out"  # writable to no one, root included
NANO = os.path.join(ROOT, "tests", "data", "files", "nanoAOD_2015_CMS_Open_Data_ttbar.root")
# a real CMS NanoAOD given to a CLI that needs generator truth or the toolkit's own files
NANO_WORDS = {
    "tpmt": "lacks branch Tau_genTauIdx, Muon_genTauIdx, Electron_genTauIdx, GenTau_pt",
    "lgatr": "lacks branch GenTop_pt",
    "partau": "ParTau reads the toolkit's own files (--schema hepformers)",
    "metperceiver": "the MET Perceiver reads the toolkit's own files",
    "scouttau": "ScoutTau reads the toolkit's own files",
}


@pytest.fixture(scope="module")
def truncated(tmp_path_factory):
    """The first 1000 bytes of a ROOT file written by the toolkit (a copy cut short)."""
    folder = tmp_path_factory.mktemp("truncated")
    whole = str(folder / "whole.root")
    io.write_events(whole, {"MET_pt": np.arange(50.0), "event": np.arange(50)})
    path = str(folder / "truncated.root")
    with open(whole, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read(1000))
    return path


@pytest.fixture(scope="module")
def five_events(tmp_path_factory):
    """5 generated h125 di-tau events with generator truth."""
    from data.generate.ditau import generate
    from data.generate.ditau_output import to_root_columns

    path = str(tmp_path_factory.mktemp("five") / "h125_5.root")
    io.write_events(path, to_root_columns(generate("h125", 5, 3)))
    return path


@pytest.fixture
def env(tmp_path, monkeypatch, truncated):
    """Placeholders of the argument tables, and an empty working folder."""
    work = tmp_path / "work"
    work.mkdir()
    card = tmp_path / "card"
    card.mkdir()
    (card / "README.md").write_text("# a model card\n")
    (card / "model.keras").write_bytes(b"shipped")
    afile = tmp_path / "a_file.txt"
    afile.write_text("not a folder")
    monkeypatch.chdir(work)
    return {
        "trunc": truncated,
        "out": str(tmp_path / "out"),
        "file": str(afile),
        "card": str(card),
        "saved": SAVED,
        "work": str(work),
        "tmp": str(tmp_path),
        "nano": NANO,
    }


def _snapshot(env):
    return sorted(
        os.path.relpath(os.path.join(d, f), env["tmp"])
        for d, _, files in os.walk(env["tmp"])
        for f in files + ["."]
    )


def _assert_user_error(main, argv, words, env, capsys):
    argv = [a.format(**env) for a in argv]
    before = _snapshot(env)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert words.format(**env) in lines[0], lines[0]
    assert _snapshot(env) == before, "something was written"


def _main(module):
    import importlib

    return importlib.import_module(module).main


FIT_CASES = {
    "truncated-data": (["--data", "{trunc}", "--out", "{out}"], "cannot read {trunc}: truncated"),
    "out-in-proc": (["--out", PROC_OUT], f"cannot write {PROC_OUT}"),
    "out-is-a-file": (["--out", "{file}"], "--out {file} is a file, not a folder"),
    "out-holds-a-card": (["--out", "{card}"], "holds a model card"),
    "seed": (["--seed", "-1", "--out", "{out}"], "--seed must be non-negative"),
    "learning-rate-nan": (["--learning-rate", "nan", "--out", "{out}"], "--learning-rate must"),
    "epochs-0": (["--epochs", "0", "--out", "{out}"], "--epochs must be positive"),
    "batch-size-0": (["--batch-size", "0", "--out", "{out}"], "--batch-size must be positive"),
    "events-with-data": (
        ["--data", "{trunc}", "--events", "100", "--out", "{out}"],
        "--events applies to the generated default sample",
    ),
    "events-huge": (["--events", "1000000000000", "--out", "{out}"], "--events must be at most"),
}
FITS = ("tpmt", "lgatr", "partau", "metperceiver", "scouttau")
FIT_EXTRA = [
    ("tpmt", "smearings-0", ["--smearings", "0", "--out", "{out}"], "--smearings must be at"),
    (
        "tpmt",
        "init-from-other-model",
        ["--init-from", "{saved}/lgatr/lgatr.keras", "--out", "{out}"],
        "holds an L-GATr model (inputs fourvectors, mask, scalars), not TPMT",
    ),
    (
        "lgatr",
        "init-from-other-model",
        ["--init-from", "{saved}/tpmt/tpmt.keras", "--out", "{out}"],
        "holds a TPMT model",
    ),
    (
        "metperceiver",
        "init-from-other-model",
        ["--init-from", "{saved}/metperceiver/deepmet.keras", "--out", "{out}"],
        "holds a DeepMET model (inputs cands, mask), not MET Perceiver",
    ),
    (
        "scouttau",
        "chunk-cache-and-no-chunk-cache",
        ["--chunk-cache", "{out}/c", "--no-chunk-cache", "--out", "{out}"],
        "--chunk-cache and --no-chunk-cache exclude each other",
    ),
]


@pytest.mark.parametrize(
    "model, argv, words",
    [pytest.param(m, *FIT_CASES[c], id=f"{m}-{c}") for m in FITS for c in FIT_CASES]
    + [pytest.param(m, a, w, id=f"{m}-{c}") for m, c, a, w in FIT_EXTRA]
    + [
        pytest.param(m, ["--data", "{nano}", "--out", "{out}"], NANO_WORDS[m], id=f"{m}-nanoaod")
        for m in FITS
    ],
)
def test_fit_bad_inputs(model, argv, words, env, capsys):
    _assert_user_error(_main(f"models.{model}.fit"), argv, words, env, capsys)


EVALUATE_MODELS = {
    "tpmt": ["--model", "{saved}/tpmt/tpmt.keras", "--no-fastmtt"],
    "lgatr": ["--model", "{saved}/lgatr/lgatr.keras"],
    "partau": ["--model", "{saved}/partau/partau_multi.keras"],
    "metperceiver": ["--model", "{saved}/metperceiver/metperceiver.keras", "--deepmet", "none"],
    "scouttau": ["--model", "{saved}/scouttau/scouttau.keras", "--zerobias", "{trunc}"],
}
OTHER_MODEL = {  # a shipped file of another model, and the start of the message naming it
    "tpmt": ("{saved}/lgatr/lgatr.keras", "holds an L-GATr model"),
    "lgatr": ("{saved}/tpmt/tpmt.keras", "holds a TPMT model"),
    "partau": ("{saved}/metperceiver/metperceiver.keras", "holds an MET Perceiver model"),
    "metperceiver": ("{saved}/scouttau/scouttau.keras", "holds a ScoutTau model"),
    "scouttau": ("{saved}/partau/partau_multi.keras", "holds a ParTau model"),
}
EVALUATE_CASES = {
    "truncated-input": (["--input", "{trunc}", "--out", "{out}"], "cannot read {trunc}: truncated"),
    "out-in-proc": (["--input", "{trunc}", "--out", PROC_OUT], f"cannot write {PROC_OUT}"),
    "out-is-a-file": (["--input", "{trunc}", "--out", "{file}"], "--out {file} is a file"),
}


def _evaluate_params():
    for m, model_args in EVALUATE_MODELS.items():
        for c, (argv, words) in EVALUATE_CASES.items():
            yield pytest.param(m, model_args + argv, words, id=f"{m}-{c}")
        other, words = OTHER_MODEL[m]
        argv = [other if a.endswith(".keras") else a for a in model_args]
        argv += ["--input", "{trunc}", "--out", "{out}"]
        yield pytest.param(m, argv, words, id=f"{m}-other-model")
        argv = model_args + ["--input", "{nano}", "--out", "{out}"]
        yield pytest.param(m, argv, NANO_WORDS[m], id=f"{m}-nanoaod")


@pytest.mark.parametrize("model, argv, words", list(_evaluate_params()))
def test_evaluate_bad_inputs(model, argv, words, env, capsys):
    _assert_user_error(_main(f"evaluate.{model}"), argv, words, env, capsys)


@pytest.mark.parametrize(
    "argv, words",
    [
        pytest.param(["--data", "{trunc}", "--out", "{out}"], "truncated", id="truncated-data"),
        pytest.param(["--data", "{five}", "--out", "{out}"], "only 4 usable training", id="5-ev"),
        pytest.param(["--data", "{five}", "--out", PROC_OUT], "cannot write", id="out-in-proc"),
        pytest.param(["--data", "{five}", "--out", "{file}"], "is a file", id="out-is-a-file"),
        pytest.param(["--data", "{five}", "--seed", "-1"], "--seed must be", id="seed"),
        pytest.param(["--data", "{five}", "--trials", "0"], "--trials and --epochs", id="trials"),
    ],
)
def test_tuning_bad_inputs(argv, words, env, five_events, capsys):
    env = {**env, "five": five_events}
    _assert_user_error(_main("tuning.tpmt"), argv, words, env, capsys)


@pytest.mark.parametrize(
    "argv, words",
    [
        pytest.param(["--events", "1000000000000"], "--events must be at most 1e+08", id="huge"),
        pytest.param(["--out", "/proc/x.root"], "cannot write /proc/x.root", id="out-in-proc"),
        pytest.param(["--out", "{tmp}"], "cannot write {tmp} (--out): it is a folder", id="dir"),
        pytest.param(["--out", "{file}/x.root"], "is a file, not a folder", id="under-a-file"),
        pytest.param(["--seed", "-1"], "--seed must be non-negative", id="seed"),
        pytest.param(["--smearings", "0"], "--smearings must be between 1 and 16", id="smear"),
    ],
)
def test_generate_bad_inputs(argv, words, env, capsys):
    _assert_user_error(_main("data.generate.__main__"), ["ditau", *argv], words, env, capsys)


@pytest.mark.parametrize(
    "argv, words",
    [
        pytest.param(["{trunc}", "--out", "{out}"], "cannot read {trunc}: truncated", id="trunc"),
        pytest.param(["{trunc}", "--out", "{file}"], "is a file", id="out-is-a-file"),
        pytest.param(["{trunc}", "--out", PROC_OUT], "cannot write", id="out-in-proc"),
    ],
)
def test_validate_bad_inputs(argv, words, env, capsys):
    _assert_user_error(_main("data.validate"), ["ditau", *argv], words, env, capsys)


CLIS = [
    "data.generate",
    "data.validate",
    *(f"models.{m}.fit" for m in FITS),
    *(f"evaluate.{m}" for m in EVALUATE_MODELS),
    "evaluate.export",
    "evaluate.predict",
    *(f"tuning.{m}" for m in ("tpmt", "lgatr", "partau", "metperceiver", "scouttau")),
]

HELP_SCRIPT = """
import runpy, sys
heavy = ("keras", "tensorflow", "keras_tuner", "jax", "torch")
for module in sys.argv[1:]:
    sys.argv = ["-m", "--help"]  # what `python -m MODULE --help` gives while Python finds MODULE
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        assert exit.code == 0, (module, exit.code)
    loaded = [name for name in heavy if name in sys.modules]
    print(module, "loads", ",".join(loaded) or "nothing")
"""


def test_help_loads_no_backend():
    """`--help` of every CLI answers before the deep-learning backend is imported."""
    r = subprocess.run(
        [sys.executable, "-c", HELP_SCRIPT, *CLIS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if " loads " in line]
    assert lines == [f"{m} loads nothing" for m in CLIS]


def test_tuning_error_in_a_fresh_process_is_one_line(tmp_path):
    """No TensorFlow start-up lines before the one-line error of `python -m tuning.tpmt`."""
    missing, search = str(tmp_path / "missing.root"), str(tmp_path / "search")
    r = subprocess.run(
        [sys.executable, "-m", "tuning.tpmt", "--data", missing, "--out", search],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: no such file: {missing}"]
