"""Dilepton ttbar sample: truth chain, selection, b matching, ROOT columns, L-GATr loader, CLI."""

import numpy as np
import pytest

from data import io
from data.errors import UserError
from data.generate import ttbar_dilepton
from data.generate.ditau_output import to_root_columns
from data.generate.pythia import flatten_batch, make_pythia

N_EVENTS = 150


def _p4(c, rows=slice(None)):
    """(n, 2, 4) four-vectors of a two-per-event column collection."""
    pt, eta, phi, m = (np.asarray(c[f])[rows].reshape(-1, 2) for f in ("pt", "eta", "phi", "mass"))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)], -1)


def _rel(a, b):
    return np.abs(a - b).max(-1) / np.abs(b[..., 3])


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    cols = ttbar_dilepton.generate(N_EVENTS, 7, batch_size=200)
    path = str(tmp_path_factory.mktemp("ttbar") / "ttbar.root")
    io.write_events(path, to_root_columns(cols))
    return cols, path


@pytest.fixture(scope="module")
def loaded(sample):
    from data import lgatr

    return lgatr.load(sample[1])


def test_truth_chain_in_the_record():
    rec = flatten_batch(make_pythia(ttbar_dilepton.settings(), 11).nextBatch(100, "skip"))
    t = ttbar_dilepton.truth_indices(rec)
    assert t["valid"].all()
    p = rec.p4
    assert np.all(rec.id[t["top"]] == [6, -6]) and np.all(rec.id[t["w"]] == [24, -24])
    assert np.all(rec.id[t["b"]] == [5, -5])
    # t = W + b at the top-decay vertex; W (the copy that decays) = l + nu, exactly
    top_sum = p[t["w_vertex"]] + p[t["b"]]
    assert _rel(top_sum, p[t["top"]]).max() < 1e-4
    w_sum = p[t["lep"][:, ::-1]] + p[t["nu"]]  # W+ -> l+ nu, W- -> l- nubar
    assert _rel(w_sum, p[t["w"]]).max() < 1e-4
    assert np.all(rec.id[t["lep"]] * [1, -1] > 0)  # (l-, l+): positive id first


def test_columns_truth_and_selection(sample):
    cols, _ = sample
    n = len(cols["event"])
    assert n == N_EVENTS
    for name in ("GenTop", "GenW", "GenB", "GenLep", "GenNu"):
        assert np.all(cols[name]["_counts"] == 2), name
    assert np.all(cols["GenTop"]["pdgId"].reshape(-1, 2) == [6, -6])
    assert np.all(cols["GenNu"]["pdgId"].reshape(-1, 2) * [1, -1] > 0)
    top, w, b = _p4(cols["GenTop"]), _p4(cols["GenW"]), _p4(cols["GenB"])
    lep, nu = _p4(cols["GenLep"]), _p4(cols["GenNu"])
    assert _rel(lep[:, ::-1] + nu, w).max() < 1e-4
    # stored W is the decaying copy: t = W + b up to the b's shower recoil (module doc)
    assert np.median(_rel(w + b, top)) < 0.01
    m_top = np.sqrt(top[..., 3] ** 2 - (top[..., :3] ** 2).sum(-1))
    assert abs(np.median(m_top) - ttbar_dilepton.TOP_MASS) < 5.0
    # two OS leptons (e or mu) above thresholds, >= 2 jets
    charges = np.concatenate([cols["Muon"]["charge"], cols["Electron"]["charge"]])
    n_lep = cols["Muon"]["_counts"] + cols["Electron"]["_counts"]
    assert np.all(n_lep == 2) and charges.sum() == 0
    for name in ("Muon", "Electron"):
        assert np.all(np.abs(cols[name]["eta"]) < 2.4) and np.all(cols[name]["pt"] > 15.0)
    assert np.all(cols["Jet"]["_counts"] >= 2)
    assert np.all(cols["Jet"]["pt"] > 30.0) and np.all(np.abs(cols["Jet"]["eta"]) < 2.4)


def test_b_matching(sample):
    cols, _ = sample
    both = cols["TTbar_bPairing"] == 0
    gen_b = np.split(cols["Jet"]["genBIdx"], np.cumsum(cols["Jet"]["_counts"])[:-1])
    per_quark = np.mean([np.isin(k, g) for g in gen_b for k in (0, 1)])
    print(f"\nb matching: both b matched in {both.mean():.1%} of events, per quark {per_quark:.1%}")
    assert both.mean() > 0.5
    for e in np.nonzero(both)[0][:50]:
        assert gen_b[e][cols["TTbar_bJetIdx"][e]] == 0
        assert gen_b[e][cols["TTbar_bbarJetIdx"][e]] == 1
    fallback = ~both
    assert np.all(
        np.sort(np.stack([cols["TTbar_bJetIdx"], cols["TTbar_bbarJetIdx"]], 1)[fallback], 1)
        == [0, 1]
    )


def test_loader_shapes_order_and_padding(sample, loaded):
    from data import lgatr

    cols, _ = sample
    x, meta = loaded["inputs"], loaded["meta"]
    n, t = N_EVENTS, 5 + lgatr.MAX_JETS
    assert x["fourvectors"].shape == (n, t, 4) and x["mask"].shape == (n, t)
    assert x["scalars"].shape == (n, t, len(lgatr.SCALAR_FEATURES))
    assert loaded["targets"]["tops"].shape == (n, 2, 4)
    assert len(lgatr.tokens()) == t
    four, mask, sc = x["fourvectors"], x["mask"], x["scalars"]
    assert mask[:, :7].all()  # 5 fixed tokens and >= 2 jets
    assert np.array_equal(mask[:, 5:].sum(1), np.minimum(cols["Jet"]["_counts"], 7))
    assert np.all(four[~mask] == 0) and np.all(sc[~mask] == 0)
    assert np.all(sc[:, :5, :5] == np.eye(5)) and np.all(sc[mask][:, :6].sum(-1) == 1)
    np.testing.assert_allclose(four[:, 0], meta["lep_neg"], rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(four[:, 1], meta["lep_pos"], rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(four[:, 2], meta["b"], rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(four[:, 3], meta["bbar"], rtol=1e-6, atol=1e-3)
    # l- token points along the generated l- (QED FSR moves it little)
    gen_lep = _p4(cols["GenLep"])
    cos = (four[:, 0, :3] * gen_lep[:, 0, :3]).sum(-1) / (
        np.linalg.norm(four[:, 0, :3], axis=-1) * np.linalg.norm(gen_lep[:, 0, :3], axis=-1)
    )
    assert np.median(cos) > 0.999
    # MET token: (px, py, 0, |pT|)
    met = four[:, 4].astype(np.float64)
    assert np.all(met[:, 2] == 0)
    np.testing.assert_allclose(met[:, 3], np.hypot(met[:, 0], met[:, 1]), rtol=1e-5)
    np.testing.assert_allclose(met[:, 3], cols["MET_pt"], rtol=1e-5)
    np.testing.assert_allclose(met[:, 0], meta["met_x"], rtol=1e-5, atol=1e-3)
    # targets are the generated tops
    np.testing.assert_allclose(loaded["targets"]["tops"], _p4(cols["GenTop"]), rtol=1e-5)
    assert np.all(meta["m_tt"] > 2 * 150.0)


def test_loader_missing_branch_and_mapping(sample, tmp_path):
    from data import lgatr

    cols, _ = sample
    renamed = {("PuppiMET_pt" if k == "MET_pt" else k): v for k, v in cols.items()}
    path = str(tmp_path / "renamed.root")
    io.write_events(path, to_root_columns(renamed))
    with pytest.raises(UserError, match="MET_pt"):
        lgatr.load(path)
    out = lgatr.load(path, mapping={"MET_pt": "PuppiMET_pt"})
    assert out["inputs"]["fourvectors"].shape[0] == N_EVENTS
    no_b = {k: v for k, v in cols.items() if k != "TTbar_bJetIdx"}
    path = str(tmp_path / "no_b.root")
    io.write_events(path, to_root_columns(no_b))
    with pytest.raises(UserError, match="TTbar_bJetIdx"):
        lgatr.load(path)


def test_same_seed_same_arrays():
    a = ttbar_dilepton.generate(30, 3, batch_size=100)
    b = ttbar_dilepton.generate(30, 3, batch_size=100)
    c = ttbar_dilepton.generate(30, 4, batch_size=100)
    for k, v in a.items():
        if isinstance(v, dict):
            for f in v:
                np.testing.assert_array_equal(v[f], b[k][f])
        else:
            np.testing.assert_array_equal(v, b[k])
    assert not np.array_equal(a["MET_pt"], c["MET_pt"])


def test_cli(tmp_path, capsys):
    from data.generate.__main__ import main

    out = tmp_path / "tt.root"
    main(["ttbar-dilepton", "--events", "20", "--seed", "2", "--out", str(out)])
    assert "wrote 20 events" in capsys.readouterr().out
    assert len(io.read_branches(str(out), ["MET_pt"])["MET_pt"]) == 20
    for argv, words in (
        (["--events", "0"], "--events"),
        (["--out", str(tmp_path / "no" / "such" / "x.root")], "cannot write"),
        (["--process", "h125"], "--process"),
    ):
        with pytest.raises(SystemExit) as err:
            main(["ttbar-dilepton", *argv])
        assert err.value.code == 2
        assert words in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["ditau", "--with-taus", "--events", "1"])
    assert err.value.code == 2
