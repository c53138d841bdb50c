"""ONNX export: every shipped model converts and ONNX Runtime matches Keras on padded inputs."""

import numpy as np
import pytest

from evaluate import export

SHIPPED = {
    "tpmt": "saved_models/tpmt/tpmt.keras",
    "lgatr": "saved_models/lgatr/lgatr.keras",
    "partau": "saved_models/partau/partau_multi.keras",
    "metperceiver": "saved_models/metperceiver/metperceiver.keras",
    "scouttau": "saved_models/scouttau/scouttau_pf.keras",  # exact GELU: Erfc rewritten
}


@pytest.mark.interop  # tf2onnx takes 15-100 s per model on 2 cores: its own CI step
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_onnx_matches_keras_with_padding(name, tmp_path):
    from models.training import load_trained

    model = load_trained(SHIPPED[name])
    path = str(tmp_path / f"{name}.onnx")
    names = export.to_onnx(model, path)
    inputs = export.example_inputs(model, batch=6, seed=3)
    masks = [v for k, v in inputs.items() if "mask" in k]
    assert masks and all((~m.astype(bool)).any() for m in masks)  # padding takes part
    ref = export.keras_outputs(model, inputs)
    got = export.onnx_outputs(path, inputs)
    assert list(got) == names == list(ref)
    for k in ref:
        assert got[k].shape == ref[k].shape
        assert np.all(np.isfinite(got[k]))
    diff = export.max_relative_difference(ref, got)
    assert max(diff.values()) < export.CHECK_RTOL, diff


def test_cli_writes_checked_file_and_rejects_bad_paths(tmp_path, capsys):
    out = tmp_path / "nn.onnx"
    assert export.main(["saved_models/scouttau/nnpuppitau.keras", "--out", str(out)]) == 0
    assert out.is_file() and "max relative difference" in capsys.readouterr().out
    for argv in (
        ["missing.keras", "--out", str(out)],
        ["saved_models/scouttau/nnpuppitau.keras", "--out", str(tmp_path)],
        ["saved_models/scouttau/nnpuppitau.keras", "--out", "/proc/nope/x.onnx"],
    ):
        with pytest.raises(SystemExit) as err:
            export.main(argv)
        assert err.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
