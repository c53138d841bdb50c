"""Dilepton ttbar for L-GATr: Pythia8 events, CMS-like detector, two OS leptons and >= 2 jets.

Process (lgatr.md section 5, after the CMS card `TTbarToDilepton_mt172p5_TuneCP5`): gg/qqbar ->
ttbar at 13.6 TeV, m_t = 172.5 GeV, both W forced to e or mu (`--with-taus` adds tau). Pythia
rescales the cross section by the open branching fractions; events are unweighted.

Truth (`truth_indices`), each as (particle, antiparticle):

* tops: the last copies (`iBotCopyId`), i.e. the tops that decay;
* b quarks: the |id| = 5 daughters of those tops (status 23, before FSR);
* W: the last copies of the W daughters of the tops, i.e. the W that decay; the lepton and
  neutrino are their two daughters, so W = l + nu exactly. The W at the top-decay vertex
  (``w_vertex``) differs from it by the recoil of the b quark's first gluon emission, which
  Pythia's final-state shower gives to the W in t -> bW (`TimeShower:recoilToColoured`); hence
  t = W_vertex + b exactly, but t = W + b only up to that recoil (median 0.2% of E_t);
* leptons (l-, l+) and neutrinos (nu, nubar) at the W decay vertex (before QED FSR).

Reconstruction and columns: `ttbar_dilepton_reco`.
"""

import numpy as np

from data.generate.batches import collect, subseed
from data.generate.pythia import bottom_copy, daughters, make_pythia
from data.generate.ttbar_dilepton_reco import reconstruct

SAMPLE_CODE = 10  # separates the detector random stream from the di-tau samples' (0..4)
TOP_MASS = 172.5  # GeV, the CMS reference card (lgatr.md section 5)
PRODUCTION = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", f"6:m0 = {TOP_MASS}")
W_LEPTONS = (11, 13)
W_LEPTONS_WITH_TAUS = (11, 13, 15)


def settings(*, with_taus=False):
    """Pythia settings: ttbar production with both W decaying to e, mu (and tau)."""
    leptons = W_LEPTONS_WITH_TAUS if with_taus else W_LEPTONS
    return (*PRODUCTION, "24:onMode = off", f"24:onIfAny = {' '.join(map(str, leptons))}")


def _last_with_id(rec, pid):
    """Global index of the last particle with signed id `pid` per event (-1 if none)."""
    out = np.full(rec.n_events, -1, dtype=np.int64)
    where = np.nonzero(rec.id == pid)[0]
    out[rec.event[where]] = where
    return out


def _pick(rec, pairs, ids):
    """From (n, 2) daughter pairs, the one whose |id| is in `ids` (-1 where neither is)."""
    hit = np.isin(np.abs(rec.id[np.maximum(pairs, 0)]), ids) & (pairs >= 0)
    return np.where(hit[:, 0], pairs[:, 0], np.where(hit[:, 1], pairs[:, 1], -1))


def truth_indices(rec):
    """Global indices of the generated ttbar decay chain (see the module doc).

    Args:
        rec: `FlatRecord` of a batch.
    Returns:
        dict of (n_events, 2) int arrays, columns (particle, antiparticle): `top` (t, tbar),
        `w` (W+, W-, last copies), `w_vertex` (W+, W- at the top vertex), `b` (b, bbar at the
        top vertex), `b_last` (their last copies, before hadronisation), `lep` (l-, l+),
        `nu` (nu, nubar); and `valid` (n_events,) bool where the whole chain was found.
    """
    top = np.stack([bottom_copy(rec, _last_with_id(rec, pid)) for pid in (6, -6)], 1)
    dau = daughters(rec, np.maximum(top, 0).ravel())
    dau = np.where((top >= 0).ravel()[:, None], dau, -1)
    w_vertex = _pick(rec, dau, (24,)).reshape(-1, 2)
    b = _pick(rec, dau, (5,)).reshape(-1, 2)
    w = bottom_copy(rec, w_vertex.ravel()).reshape(-1, 2)
    wdau = daughters(rec, np.maximum(w, 0).ravel())
    wdau = np.where((w >= 0).ravel()[:, None], wdau, -1)
    lep = _pick(rec, wdau, W_LEPTONS_WITH_TAUS).reshape(-1, 2)
    nu = _pick(rec, wdau, (12, 14, 16)).reshape(-1, 2)
    # W+ (from t) -> l+ nu and W- (from tbar) -> l- nubar: leptons are ordered (l-, l+)
    lep = lep[:, ::-1]
    valid = np.all((top >= 0) & (w >= 0) & (b >= 0) & (lep >= 0) & (nu >= 0), axis=1)
    return {
        "top": top,
        "w": w,
        "w_vertex": w_vertex,
        "b": b,
        "b_last": bottom_copy(rec, b.ravel()).reshape(-1, 2),
        "lep": lep,
        "nu": nu,
        "valid": valid,
    }


def generate(
    n_events, seed, *, with_taus=False, worker=0, batch_size=250, progress=None, timing=None
):
    """Generate `n_events` selected dilepton ttbar events.

    Args:
        n_events: number of events that pass the selection (generation continues until then).
        seed: random seed; (seed, worker) fixes everything.
        with_taus: also let the W decay to tau (leptonic tau decays then give the leptons).
        worker: index of this worker (separate random streams per worker).
        batch_size: events per Pythia batch.
        progress: optional callable(n) called with the number of newly selected events.
        timing: optional `data.generate.batches.Timing` to fill.
    Returns:
        dict of columns (see `ttbar_dilepton_reco.reconstruct`), exactly `n_events` long.
    """
    rng = np.random.default_rng([seed, worker, SAMPLE_CODE + int(with_taus)])
    instance = {}

    def next_batch(point):
        if not instance:  # inside the timed call: Pythia's init counts as Pythia time
            instance["py"] = make_pythia(settings(with_taus=with_taus), subseed(seed, worker, 0))
        return instance["py"].nextBatch(batch_size, "skip")

    def reco(rec):
        return reconstruct(rec, instance["py"], rng, truth_indices(rec))

    return collect(next_batch, reco, n_events, worker=worker, timing=timing, progress=progress)
