"""`data.ditau.mirror` equals loading the same events rotated by pi about the x axis."""

import numpy as np

from data import io
from data.ditau import load, mirror
from data.generate.ditau_output import to_root_columns


def _rotated_columns(cols):
    """(eta, phi) -> (-eta, -phi) of every object, MET and covariance, in the file columns."""
    out = {}
    for name, value in cols.items():
        if isinstance(value, dict):
            value = dict(value)
            for f in ("eta", "phi", "visEta", "visPhi"):
                if f in value:
                    value[f] = -value[f]
            out[name] = value
        else:
            out[name] = value
    out["MET_phi"] = -cols["MET_phi"]
    out["GenMET_phi"] = -cols["GenMET_phi"]
    out["MET_covXY"] = -cols["MET_covXY"]
    return out


def test_mirror_matches_rotated_events(h125_sample, tmp_path):
    cols, path = h125_sample
    rotated = str(tmp_path / "rotated.root")
    io.write_events(rotated, to_root_columns(_rotated_columns(cols)))
    a, b = load(path)["inputs"], load(rotated)["inputs"]
    m = mirror(a)
    for k in a:
        np.testing.assert_allclose(m[k], b[k], atol=2e-5, err_msg=k)


def test_mirror_twice_is_identity(h125_sample):
    a = load(h125_sample[1])["inputs"]
    twice = mirror(mirror(a))
    for k in a:
        np.testing.assert_array_equal(twice[k], a[k])
