"""ScoutTau figures of merit: L1 rates from zero-bias events and di-tau working points.

A working point (WP) is (score cut, charge cut, delta-vz cut). A pair of tau candidates of one
event passes when both scores are above the score cut, their vertices are within the delta-vz
cut, and (unless the charge cut is None) their charges are opposite with both charge
confidences |2 p(tau+) - 1| above the charge cut. An event fires when any pair passes; its rate
is the firing fraction of zero-bias events x 31,039 kHz (met_l1.md). The di-tau efficiency is
the fraction of signal events with two generated hadronic taus in acceptance whose two matched
candidates form a passing pair. The grid search takes, for every (charge, delta-vz) cut, the
loosest score cut whose rate is at most the target, and keeps the WP of highest efficiency.
"""

import numpy as np

ZERO_BIAS_KHZ = 31039.0  # LHC filled-bunch crossing rate (met_l1.md): zero-bias events / s
TARGET_KHZ = 50.0
CHARGE_CUTS = (None, 0.0, 0.25, 0.5, 0.75)
DVZ_CUTS = (0.1, 0.2, 0.3, 0.5, np.inf)  # cm
ACCEPTANCE = {"pt_min": 5.0, "pt_max": np.inf, "eta_max": 2.4}


def rate_khz(n_pass, n_events):
    """L1 rate in kHz of a selection passed by `n_pass` of `n_events` zero-bias events."""
    if n_events <= 0:
        raise ValueError("a rate needs at least one zero-bias event")
    return float(n_pass) / float(n_events) * ZERO_BIAS_KHZ


def pairs(event, score, charge, vz):
    """Every unordered pair of candidates of the same event.

    Args:
        event: (n,) int event index (any order); score: (n,) class score; charge: (n,) signed
            charge score in [-1, 1] (sign: the charge, size: the confidence); vz: (n,) cm.
    Returns:
        dict of (n_pairs,) arrays: event, score (the lower of the two), charge_conf (the lower
        confidence if the charges are opposite, else -1), dvz (|vz_i - vz_j|), i, j.
    """
    event = np.asarray(event, np.int64)
    order = np.argsort(event, kind="stable")
    ev = event[order]
    starts = np.flatnonzero(np.diff(ev, prepend=-1))
    sizes = np.diff(np.append(starts, len(ev)))
    ii, jj = [], []
    for k in np.unique(sizes[sizes > 1]):  # one vectorised pass per group size
        a, b = np.triu_indices(k, 1)
        s = starts[sizes == k][:, None]
        ii.append((s + a).ravel())
        jj.append((s + b).ravel())
    i = order[np.concatenate(ii)] if ii else np.zeros(0, np.int64)
    j = order[np.concatenate(jj)] if jj else np.zeros(0, np.int64)
    return pair_values(event, score, charge, vz, i, j)


def pair_values(event, score, charge, vz, i, j):
    """The `pairs` dict of the given candidate index pairs (i, j)."""
    score, charge, vz = (np.asarray(a, np.float64) for a in (score, charge, vz))
    opposite = charge[i] * charge[j] < 0
    conf = np.minimum(np.abs(charge[i]), np.abs(charge[j]))
    return {
        "event": np.asarray(event, np.int64)[i],
        "score": np.minimum(score[i], score[j]),
        "charge_conf": np.where(opposite, conf, -1.0),
        "dvz": np.abs(vz[i] - vz[j]),
        "i": i,
        "j": j,
    }


def pair_ok(p, charge_cut, dvz_cut):
    """Pairs meeting the charge and delta-vz cuts (the score cut is applied separately)."""
    ok = p["dvz"] < dvz_cut
    if charge_cut is not None:
        ok &= p["charge_conf"] > charge_cut
    return ok


def event_max_score(p, n_events, charge_cut, dvz_cut):
    """(n_events,) highest pair score among the pairs meeting the cuts (-inf: none)."""
    best = np.full(n_events, -np.inf)
    ok = pair_ok(p, charge_cut, dvz_cut)
    np.maximum.at(best, p["event"][ok], p["score"][ok])
    return best


def score_cut_for_rate(event_max, target_khz=TARGET_KHZ, floor=-np.inf):
    """The loosest score cut (pass: score > cut), not below `floor`, with a zero-bias rate
    <= `target_khz` (pairs below the floor may be left out of `event_max`)."""
    n = len(event_max)
    allowed = int(np.floor(target_khz / ZERO_BIAS_KHZ * n + 1e-9))
    ranked = np.sort(event_max)[::-1]
    return max(float(ranked[allowed]) if allowed < n else -np.inf, floor)


def signal_pairs(taus, event, score, charge, vz, n_events, **acceptance):
    """The matched candidate pair of every signal event with two accepted hadronic taus.

    Args:
        taus: `data.scouttau.gen_taus` dict with `matched` (candidate index or -1).
        event, score, charge, vz: per-candidate arrays as for `pairs`.
        acceptance: pt_min, pt_max, eta_max of both taus (defaults `ACCEPTANCE`).
    Returns:
        (pair dict of the events whose two taus are both matched, number of denominator
        events).
    """
    acc = {**ACCEPTANCE, **acceptance}
    pt, eta = np.asarray(taus["pt"]), np.asarray(taus["eta"])
    inside = (pt > acc["pt_min"]) & (pt < acc["pt_max"]) & (np.abs(eta) < acc["eta_max"])
    tev = np.asarray(taus["event"], np.int64)
    n_had = np.bincount(tev, minlength=n_events)
    n_in = np.bincount(tev[inside], minlength=n_events)
    denom = (n_had == 2) & (n_in == 2)
    sel = np.flatnonzero(denom[tev])
    sel = sel[np.argsort(tev[sel], kind="stable")].reshape(-1, 2)
    m = np.asarray(taus["matched"])[sel]
    both = (m >= 0).all(axis=1)
    p = pair_values(event, score, charge, vz, m[both, 0], m[both, 1])
    return p, int(denom.sum())


def ditau_efficiency(sig_pairs, n_denominator, score_cut, charge_cut, dvz_cut):
    ok = pair_ok(sig_pairs, charge_cut, dvz_cut) & (sig_pairs["score"] > score_cut)
    return float(ok.sum()) / max(n_denominator, 1)


def grid_search(zb_pairs, n_zb, sig_pairs, n_sig, *, target_khz=TARGET_KHZ,
                charge_cuts=CHARGE_CUTS, dvz_cuts=DVZ_CUTS, floor=-np.inf):  # fmt: skip
    """The WP of highest di-tau efficiency at a zero-bias rate <= `target_khz` (score cuts
    not below `floor`).

    Returns:
        dict: score_cut, charge_cut, dvz_cut, efficiency, rate_khz (on these samples) and
        grid (every scanned WP with its efficiency and rate).
    """
    grid = []
    for qc in charge_cuts:
        for dc in dvz_cuts:
            emax = event_max_score(zb_pairs, n_zb, qc, dc)
            cut = score_cut_for_rate(emax, target_khz, floor)
            grid.append(
                {
                    "score_cut": cut,
                    "charge_cut": qc,
                    "dvz_cut": dc,
                    "efficiency": ditau_efficiency(sig_pairs, n_sig, cut, qc, dc),
                    "rate_khz": rate_khz(int((emax > cut).sum()), n_zb),
                }
            )
    best = max(grid, key=lambda g: g["efficiency"])  # first of equals: the earliest scanned
    return {**best, "grid": grid}


def apply_wp(wp, zb_pairs, n_zb, sig_pairs, n_sig):
    """Efficiency and zero-bias rate of a fixed WP on (other) samples."""
    emax = event_max_score(zb_pairs, n_zb, wp["charge_cut"], wp["dvz_cut"])
    return {
        "efficiency": ditau_efficiency(
            sig_pairs, n_sig, wp["score_cut"], wp["charge_cut"], wp["dvz_cut"]
        ),
        "rate_khz": rate_khz(int((emax > wp["score_cut"]).sum()), n_zb),
    }


def single_tau_efficiency(taus, score, charge, wp, pt_bins, eta_max=ACCEPTANCE["eta_max"]):
    """Per visible-pT bin: the fraction of hadronic taus (|eta| < eta_max) whose candidate
    passes the WP's per-candidate cuts (score, and charge confidence when it has a cut)."""
    m = np.asarray(taus["matched"])
    ok = np.zeros(len(m), bool)
    hit = m >= 0
    passed = np.asarray(score)[m[hit]] > wp["score_cut"]
    if wp["charge_cut"] is not None:
        passed &= np.abs(np.asarray(charge))[m[hit]] > wp["charge_cut"]
    ok[hit] = passed
    return binned_fraction(taus, ok, pt_bins, eta_max)


def binned_fraction(taus, ok, pt_bins, eta_max=ACCEPTANCE["eta_max"]):
    """[(lo, hi, fraction, n)] of `ok` over taus with |eta| < eta_max per visible-pT bin."""
    pt, eta = np.asarray(taus["pt"]), np.asarray(taus["eta"])
    out = []
    for lo, hi in zip(pt_bins[:-1], pt_bins[1:]):
        s = (pt >= lo) & (pt < hi) & (np.abs(eta) < eta_max)
        out.append(
            {
                "lo": float(lo),
                "hi": float(hi),
                "n": int(s.sum()),
                "fraction": float(ok[s].mean()) if s.any() else float("nan"),
            }  # fmt: skip
        )
    return out
