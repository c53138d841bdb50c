"""Random-Forest feature importance, H vs Z: the table builder and the CLI end to end."""

import csv
import json
import os

import numpy as np
import pytest

from data.ditau import (
    JET_FEATURES,
    LEG_FEATURES,
    MET_FEATURES,
    PRODUCT_FEATURES,
)
from data.generate.__main__ import run as generate_run
from evaluate.feature_importance import SENTINEL, build_table, main


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    d = tmp_path_factory.mktemp("fi")
    h, z = str(d / "h125.root"), str(d / "dy.root")
    generate_run("h125", 120, 21, h, progress=False)
    generate_run("dy", 80, 22, z, progress=False)
    return h, z


def _hand_built():
    """Three events: leg 1 a muon, leg 2 a tau_h with products; 0, 1 and 3 jets."""
    n, p, j = 3, 4, 3
    legs = np.zeros((n, 2, len(LEG_FEATURES)), np.float32)
    prods = np.zeros((n, p, len(PRODUCT_FEATURES)), np.float32)
    pmask = np.zeros((n, p), bool)
    col = {f: k for k, f in enumerate(PRODUCT_FEATURES)}
    # event 0: two charged products of leg 2 (pT 20, 10), one photon (pT 10)
    pmask[0, :3] = True
    prods[0, :3, col["log_pt"]] = np.log([20.0, 10.0, 10.0])
    prods[0, :3, col["charge"]] = [1, -1, 0]
    prods[0, 2, col["is_photon"]] = 1
    prods[0, :3, col["leg"]] = 1
    prods[0, 1, col["deta_leg"]] = 0.03
    prods[0, 1, col["dphi_leg"]] = 0.04
    jets = np.zeros((n, j, len(JET_FEATURES)), np.float32)
    jets[..., 0] = np.log(30.0)
    jmask = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 1]], bool)
    jets *= jmask[..., None]
    met = np.zeros((n, len(MET_FEATURES)), np.float32)
    lab = dict(
        pt=np.full((n, 2), 40.0),
        eta=np.array([[0.0, 0.3]] * n),
        phi=np.array([[0.0, 0.4]] * n),
        mass=np.array([[0.105, 1.0]] * n),
        kind=np.array([[3, 1]] * n),
        decayMode=np.array([[-1, 10]] * n),
    )
    return dict(
        inputs=dict(
            legs=legs, products=prods, product_mask=pmask, jets=jets, jet_mask=jmask, met=met
        ),
        meta=dict(
            legs=lab,
            met_x=np.array([30.0, 0.0, 3.0]),
            met_y=np.array([40.0, 0.0, 4.0]),
            met_cov=np.repeat(np.eye(2)[None] * 25.0, n, 0),
        ),
    )


def test_table_from_hand_built_input():
    names, x, used = build_table(_hand_built())
    t = dict(zip(names, x.T))
    u = dict(zip(names, used))
    assert len(set(names)) == len(names) and np.isfinite(x).all()
    np.testing.assert_array_equal(t["n_jets"], [0, 1, 3])  # counts the mask
    np.testing.assert_allclose(t["jet1_log_pt"], [SENTINEL, np.log(30.0), np.log(30.0)])
    np.testing.assert_array_equal(t["jet2_eta"], [SENTINEL, SENTINEL, 0.0])
    np.testing.assert_array_equal(t["leg2_n_products"], [3, 0, 0])
    np.testing.assert_array_equal(t["leg1_n_products"], [0, 0, 0])  # the muon has none
    np.testing.assert_array_equal(t["leg2_n_charged"], [2, 0, 0])
    np.testing.assert_array_equal(t["leg2_n_photons"], [1, 0, 0])
    np.testing.assert_allclose(t["leg2_charged_pt_frac"], [0.75, SENTINEL, SENTINEL])
    np.testing.assert_allclose(t["leg2_products_pt_over_leg"][0], 1.0)
    np.testing.assert_allclose(t["leg2_products_dr_max"][0], 0.05, rtol=1e-5)
    np.testing.assert_allclose(t["leg2_prod1_log_pt"], [np.log(20.0), SENTINEL, SENTINEL])
    np.testing.assert_allclose(t["leg1_prod1_log_pt"], SENTINEL)
    np.testing.assert_allclose(t["dr_legs"], 0.5)
    np.testing.assert_allclose(t["met_significance"], [100.0, 0.0, 1.0])  # |MET|^2 / 25
    np.testing.assert_allclose(t["m_jj"][:2], SENTINEL)
    assert u["leg1_log_pt"] and u["met_cov_par"] and u["jet3_log_mass"] and u["leg2_prod1_charge"]
    assert not (u["n_jets"] or u["dr_legs"] or u["m_collinear"] or u["leg2_n_products"])


@pytest.mark.e2e  # a whole CLI run: the e2e CI step
def test_cli_end_to_end(samples, tmp_path, capsys):
    h, z = samples
    out = str(tmp_path / "fi")
    res = main(["--input", h, z, "--out", out, "--trees", "20", "--repeats", "2", "--seed", "3"])
    for name in ("importance.csv", "importance.json", "importance.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    with open(os.path.join(out, "importance.json")) as f:
        js = json.load(f)
    assert 0.0 <= js["auc_test"] <= 1.0 and js["auc_test"] == res["auc_test"]
    assert js["n_signal"] > 0 and js["n_background"] > 0
    with open(os.path.join(out, "importance.csv")) as f:
        rows = list(csv.DictReader(f))
    variables = {r["variable"]: r for r in rows}
    for i in (1, 2):
        for feat in LEG_FEATURES:
            assert variables[f"leg{i}_{feat}"]["used_by_tpmt"] == "True"
    for feat in MET_FEATURES:
        assert f"met_{feat}" in variables
    assert sorted(int(r["rank"]) for r in rows) == list(range(1, len(rows) + 1))
    assert [r["variable"] for r in js["ranking"]][:10] == [r["variable"] for r in rows][:10]
    printed = capsys.readouterr().out
    assert "ROC AUC" in printed and "TPMT does not use" in printed


def test_signal_background_form(samples, tmp_path):
    h, z = samples
    out = str(tmp_path / "fi")
    main(["--signal", h, "--background", z, "--out", out, "--trees", "5", "--repeats", "1"])
    assert os.path.exists(os.path.join(out, "importance.csv"))


@pytest.mark.parametrize(
    "args, words",
    [
        (["--input", "/nonexistent/h.root", "/nonexistent/z.root"], "no such file"),
        (["--input", "H"], "two files"),
        (["--input", "NOTROOT", "H"], "not a readable ROOT file"),
        (["--signal", "H"], "--background"),
    ],
)
def test_bad_input_exits_2(samples, tmp_path, capsys, args, words):
    bad = tmp_path / "bad.root"
    bad.write_text("not a ROOT file\n")
    subs = {"H": samples[0], "NOTROOT": str(bad)}
    args = [subs.get(a, a) for a in args]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--out", str(tmp_path / "fi")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err
