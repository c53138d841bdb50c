"""Minimum-bias library and pileup overlay (data/generate/pileup.py)."""

import os

import numpy as np
import pytest

from data.errors import UserError
from data.generate import pileup
from data.generate.pythia import NEUTRINOS

# shared with tests/data/test_ttbar_pu.py: the same (size, seed) in the same session cache, so
# the minimum-bias Pythia init (a few seconds) runs once per session
LIB_EVENTS, LIB_SEED = 30, 5


def shared_cache(tmp_path_factory):
    return str(tmp_path_factory.getbasetemp() / "minbias-cache")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return pileup.load_library(shared_cache(tmp_path_factory), LIB_EVENTS, LIB_SEED, progress=False)


def _synthetic_library(sizes=(2, 3, 5), seed=0):
    """A hand-made library whose events have distinct sizes (so each copy can be identified)."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    px, py, pz = (rng.normal(0, 2, n).astype(np.float32) for _ in range(3))
    e = (np.sqrt(px.astype(np.float64) ** 2 + py**2 + pz**2) + 0.2).astype(np.float32)
    return pileup.Library(
        px=px,
        py=py,
        pz=pz,
        e=e,
        vz=rng.normal(0, 0.01, n).astype(np.float32),
        pdg=rng.choice([211, -211, 22, 2212], n).astype(np.int32),
        charge=rng.choice([-1, 0, 1], n).astype(np.int8),
        offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
    )


def _hard(counts=(3, 2), seed=1):
    rng = np.random.default_rng(seed)
    n = sum(counts)
    hv = np.repeat(rng.normal(0, 5, len(counts)), counts)
    return (
        dict(
            px=rng.normal(0, 30, n),
            py=rng.normal(0, 30, n),
            pz=rng.normal(0, 80, n),
            e=rng.uniform(100, 200, n),
            vz=hv + rng.normal(0, 1e-3, n),
            pdg=rng.choice([11, -13, 211, 22], n).astype(np.int64),
            charge=rng.choice([-1, 0, 1], n).astype(np.int8),
            vertex_z=hv,
        ),
        np.array(counts),
    )


def _events(counts):
    return np.repeat(np.arange(len(counts)), counts)


# --- library -------------------------------------------------------------------------------


def test_library_content(library, tmp_path_factory):
    assert library.n_events == LIB_EVENTS
    off = library.offsets
    assert off[0] == 0 and off[-1] == len(library.px) and np.all(np.diff(off) > 0)
    for k in ("px", "py", "pz", "e", "vz", "pdg", "charge"):
        assert len(getattr(library, k)) == off[-1], k
    for k in ("px", "py", "pz", "e", "vz"):
        assert np.all(np.isfinite(getattr(library, k))), k
    assert not np.isin(np.abs(library.pdg), NEUTRINOS).any()
    p = np.sqrt(library.px.astype(np.float64) ** 2 + library.py**2 + library.pz**2)
    assert np.all(library.e >= p * (1 - 1e-5))
    pdg, q = library.pdg, library.charge
    assert np.all(q[pdg == 22] == 0) and np.all(q[pdg == 211] == 1) and np.all(q[pdg == -211] == -1)
    assert (pdg == 22).sum() > 0 and (np.abs(pdg) == 211).sum() > 0
    assert np.median(np.abs(library.vz)) < 0.01  # z0 relative to the interaction, cm
    # cached at the documented place, written atomically (no temporary file left over)
    path = pileup.library_path(shared_cache(tmp_path_factory), LIB_EVENTS, LIB_SEED)
    assert os.path.exists(path)
    assert [f for f in os.listdir(os.path.dirname(path)) if "tmp" in f] == []


def test_library_seeded(library):
    """The same seed gives the same events (a shorter run reproduces the first events)."""
    short = pileup.generate_library(2, LIB_SEED)
    n = short.offsets[-1]
    np.testing.assert_array_equal(short.offsets, library.offsets[:3])
    for k in ("px", "py", "pz", "e", "vz", "pdg", "charge"):
        np.testing.assert_array_equal(getattr(short, k), getattr(library, k)[:n], err_msg=k)


def test_load_library_rejects_empty(tmp_path):
    with pytest.raises(UserError, match="at least 1 event"):
        pileup.load_library(str(tmp_path), 0, 1)


# --- vertex z ------------------------------------------------------------------------------


def test_vertex_z_distribution():
    z = pileup.vertex_z(np.random.default_rng(3), 200_000)
    assert np.all(np.abs(z) < pileup.Z_MAX_CM)
    assert abs(z.mean()) < 0.05
    assert z.std() == pytest.approx(5.3, abs=0.05)


def test_vertex_z_truncation_redraws():
    class Rng:
        """Returns out-of-range values on the first draw, in-range ones after."""

        calls = 0

        def normal(self, loc, scale, size):
            self.calls += 1
            if self.calls == 1:
                return np.array([30.0, -1.0, -25.0, 24.9])[:size]
            return np.full(size, 3.0)

    z = pileup.vertex_z(Rng(), 4)
    np.testing.assert_array_equal(z, [3.0, -1.0, 3.0, 24.9])


# --- overlay -------------------------------------------------------------------------------


def test_overlay_hard_unchanged_and_first():
    hard, hc = _hard()
    lib = _synthetic_library()
    out, counts, n_pu = pileup.overlay(hard, hc, lib, 4.0, np.random.default_rng(2))
    assert n_pu.sum() > 0
    sizes = np.diff(lib.offsets)
    first = np.cumsum(counts) - counts
    hard_first = np.cumsum(hc) - hc
    for k in range(len(hc)):
        sl = slice(first[k], first[k] + hc[k])
        hsl = slice(hard_first[k], hard_first[k] + hc[k])
        for f, v in hard.items():
            np.testing.assert_array_equal(out[f][sl], v[hsl], err_msg=f)
        assert not out["is_pu"][sl].any() and np.all(out["interaction"][sl] == 0)
        rest = slice(first[k] + hc[k], first[k] + counts[k])
        assert out["is_pu"][rest].all() and np.all(out["interaction"][rest] >= 1)
        inter = out["interaction"][rest]
        assert np.all(np.diff(inter) >= 0) and set(inter) == set(range(1, n_pu[k] + 1))
        # each interaction is one whole library event
        per = np.bincount(inter, minlength=n_pu[k] + 1)[1:]
        assert np.isin(per, sizes).all()
        assert counts[k] == hc[k] + per.sum()
    # hard-scatter four-momentum conserved exactly in the output
    ev = _events(counts)
    hard_ev = _events(hc)
    for f in ("px", "py", "pz", "e"):
        got = np.bincount(ev[~out["is_pu"]], weights=out[f][~out["is_pu"]], minlength=len(hc))
        want = np.bincount(hard_ev, weights=hard[f], minlength=len(hc))
        np.testing.assert_array_equal(got, want, err_msg=f)


def test_overlay_pileup_is_rotated_mirrored_copy():
    lib = _synthetic_library()
    sizes = np.diff(lib.offsets)
    hard, hc = _hard()
    out, counts, n_pu = pileup.overlay(hard, hc, lib, 6.0, np.random.default_rng(4))
    ev = _events(counts)
    flips = set()
    seen = 0
    for k in range(len(hc)):
        for i in range(1, n_pu[k] + 1):
            sel = (ev == k) & (out["interaction"] == i)
            src = int(np.nonzero(sizes == sel.sum())[0][0])
            a, b = lib.offsets[src], lib.offsets[src + 1]
            lpx, lpy, lpz = (
                np.asarray(getattr(lib, f)[a:b], np.float64) for f in ("px", "py", "pz")
            )
            px, py, pz = out["px"][sel], out["py"][sel], out["pz"][sel]
            # pt and |pz| multisets and the total pT magnitude are preserved
            np.testing.assert_allclose(
                np.sort(np.hypot(px, py)), np.sort(np.hypot(lpx, lpy)), rtol=1e-6
            )
            np.testing.assert_array_equal(np.sort(np.abs(pz)), np.sort(np.abs(lpz)))
            assert np.hypot(px.sum(), py.sum()) == pytest.approx(
                np.hypot(lpx.sum(), lpy.sum()), rel=1e-6
            )
            # one azimuthal rotation for the whole interaction
            dphi = np.angle(np.exp(1j * (np.arctan2(py, px) - np.arctan2(lpy, lpx))))
            assert np.ptp(np.angle(np.exp(1j * (dphi - dphi[0])))) < 1e-5
            # one z mirror for the whole interaction, applied to pz and the vertex offsets
            sign = np.sign(pz / lpz)
            assert len(set(sign)) == 1
            flips.add(sign[0])
            np.testing.assert_array_equal(out["e"][sel], lib.e[a:b])
            np.testing.assert_array_equal(out["pdg"][sel], lib.pdg[a:b])
            np.testing.assert_array_equal(out["charge"][sel], lib.charge[a:b])
            vzv = out["vertex_z"][sel]
            assert np.all(vzv == vzv[0]) and abs(vzv[0]) < pileup.Z_MAX_CM
            np.testing.assert_allclose(out["vz"][sel], vzv + sign * lib.vz[a:b], atol=1e-9)
            seen += 1
    assert seen == n_pu.sum() > 5
    assert flips == {-1.0, 1.0}


def test_overlay_real_library(library):
    """Pythia library: counts = hard + drawn event sizes, each one a copy of a library event."""
    hard, hc = _hard()
    out, counts, n_pu = pileup.overlay(hard, hc, library, 3.0, np.random.default_rng(9))
    assert len(out["px"]) == counts.sum()
    ev = _events(counts)
    lib_pt = [
        np.sort(np.hypot(library.px[a:b], library.py[a:b]).astype(np.float64))
        for a, b in zip(library.offsets[:-1], library.offsets[1:])
    ]
    total = hc.copy()
    for k in range(len(hc)):
        for i in range(1, n_pu[k] + 1):
            sel = (ev == k) & (out["interaction"] == i)
            pt = np.sort(np.hypot(out["px"][sel], out["py"][sel]))
            assert any(len(p) == len(pt) and np.allclose(p, pt, rtol=1e-5) for p in lib_pt)
            total[k] += sel.sum()
    np.testing.assert_array_equal(counts, total)
    assert not np.isin(np.abs(out["pdg"]), NEUTRINOS).any()


def test_overlay_mu_zero_is_hard_event():
    hard, hc = _hard()
    for lib in (None, _synthetic_library()):
        out, counts, n_pu = pileup.overlay(hard, hc, lib, 0, np.random.default_rng(1))
        np.testing.assert_array_equal(counts, hc)
        np.testing.assert_array_equal(n_pu, 0)
        for f, v in hard.items():
            np.testing.assert_array_equal(out[f], v, err_msg=f)
        assert not out["is_pu"].any() and np.all(out["interaction"] == 0)


def test_overlay_needs_library():
    hard, hc = _hard()
    with pytest.raises(ValueError, match="library"):
        pileup.overlay(hard, hc, None, 5.0, np.random.default_rng(1))


def test_overlay_poisson_mean():
    hard, hc = _hard(counts=(1,) * 2000)
    _, _, n_pu = pileup.overlay(hard, hc, _synthetic_library(), 7.0, np.random.default_rng(5))
    assert n_pu.mean() == pytest.approx(7.0, abs=0.25)
    assert n_pu.var() == pytest.approx(7.0, rel=0.15)


def test_overlay_seeded():
    hard, hc = _hard()
    lib = _synthetic_library()
    a = pileup.overlay(hard, hc, lib, 5.0, np.random.default_rng(8))
    b = pileup.overlay(hard, hc, lib, 5.0, np.random.default_rng(8))
    c = pileup.overlay(hard, hc, lib, 5.0, np.random.default_rng(80))
    np.testing.assert_array_equal(a[1], b[1])
    for f in a[0]:
        np.testing.assert_array_equal(a[0][f], b[0][f], err_msg=f)
    assert len(a[0]["px"]) != len(c[0]["px"]) or not np.array_equal(a[0]["px"], c[0]["px"])
