"""Benchmark: CLUE against fastjet anti-kT on the PF candidates of PU200 events, per event.

    python -m evaluate.bench.clue_speed --input cache/ttbarpu_test/test_0000.root --events 50
    python -m evaluate.bench.clue_speed --input FILE.root --events 50 --json clue_speed.json
    python -m evaluate.bench.clue_speed --input cache/scouttau_test/zerobias_0000.root \
        --l1 pf --dc 0.2 --rhoc 3 --events 200   # ScoutTau's inputs and parameters

Both algorithms get every candidate of an event (PFCand_px, PFCand_py, PFCand_eta; massless):
`data.reco.clue.clue` on (eta, phi) with pT weights and periodic phi, and fastjet anti-kT
(`fastjet.ClusterSequence` on the event's awkward array of four-vectors, then `inclusive_jets`).
Only the clustering is timed: inputs are built before the clock starts, the two run interleaved
on the same event, one untimed warm-up call each first, and the best of `--repeats` per event is
kept. Both are single-threaded. Goal: CLUE no slower than anti-kT (ratio <= 1).

`--reference` also runs CLUEstering 1.x (`clusterer(dc, rhoc, outlier_factor)`) when it is
importable and reports the fraction of candidates with the same label as `clue`; CLUEstering 1.x
standardises the coordinates and has no periodic phi there, so both run on standardised
(eta, phi) without wrapping. Without the package the comparison is skipped.
"""

import argparse
import json
import sys
import time

import numpy as np

from data.errors import UserError, cli
from data.reco.clue import clue

BRANCHES = ("PFCand_px", "PFCand_py", "PFCand_eta")
DEFAULTS = dict(dc=0.1, rhoc=2.0, outlier_factor=2.0, radius=0.4)  # tau-like CLUE, AK4


def event_inputs(px, py, eta):
    """One event's candidates as both algorithms take them.

    Args:
        px, py, eta: (N,) candidate px, py (GeV) and pseudorapidity.
    Returns:
        dict: points (N, 2) (eta, phi), pt (N,) in GeV, p4 (awkward Momentum4D records).
    """
    import awkward as ak
    import vector

    vector.register_awkward()
    px, py, eta = (np.asarray(v, dtype=np.float64) for v in (px, py, eta))
    pt = np.hypot(px, py)
    fields = {"px": px, "py": py, "pz": pt * np.sinh(eta), "E": pt * np.cosh(eta)}
    return {
        "points": np.stack([eta, np.arctan2(py, px)], axis=1),
        "pt": pt,
        "p4": ak.zip(fields, with_name="Momentum4D"),
    }


def time_event(inputs, *, dc, rhoc, outlier_factor, radius, jet_min_pt=0.0, repeats=1):
    """Time CLUE and anti-kT on one event (best of `repeats`, interleaved).

    Returns:
        dict: candidates, clue_s, antikt_s, clusters (CLUE labels >= 0), outliers, jets.
    """
    import fastjet

    jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    clue_s = antikt_s = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        labels = clue(
            inputs["points"],
            inputs["pt"],
            dc=dc,
            rhoc=rhoc,
            outlier_factor=outlier_factor,
            periodic=(None, 2 * np.pi),
        )
        clue_s = min(clue_s, time.perf_counter() - t)
        t = time.perf_counter()
        jets = fastjet.ClusterSequence(inputs["p4"], jet_def).inclusive_jets(min_pt=jet_min_pt)
        antikt_s = min(antikt_s, time.perf_counter() - t)
    return {
        "candidates": len(inputs["pt"]),
        "clue_s": clue_s,
        "antikt_s": antikt_s,
        "clusters": int(labels.max()) + 1 if len(labels) else 0,
        "outliers": int(np.count_nonzero(labels < 0)),
        "jets": len(jets),
    }


def summarize(rows):
    """Per-event rows of `time_event` -> mean figures (ms/event, objects/event) and ratio."""
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return {
        "events": len(rows),
        "candidates": mean["candidates"],
        "clue_ms": 1e3 * mean["clue_s"],
        "antikt_ms": 1e3 * mean["antikt_s"],
        "clue_median_ms": 1e3 * float(np.median([r["clue_s"] for r in rows])),
        "antikt_median_ms": 1e3 * float(np.median([r["antikt_s"] for r in rows])),
        "ratio": mean["clue_s"] / mean["antikt_s"],
        "clusters": mean["clusters"],
        "outliers": mean["outliers"],
        "jets": mean["jets"],
    }


def format_table(s, args):
    """The summary of `summarize` as a text table."""
    lines = [
        f"{s['events']} events, {s['candidates']:.0f} candidates/event (mean)",
        f"CLUE dc={args.dc} rhoc={args.rhoc} GeV outlier_factor={args.outlier_factor}, "
        f"periodic phi; anti-kT R={args.radius}, jets pT > {args.jet_min_pt} GeV",
        f"{'':10}{'ms/event mean':>15}{'median':>10}{'objects/event':>16}",
        f"{'CLUE':10}{s['clue_ms']:15.2f}{s['clue_median_ms']:10.2f}{s['clusters']:16.1f}"
        f"  clusters ({s['outliers']:.0f} outliers)",
        f"{'anti-kT':10}{s['antikt_ms']:15.2f}{s['antikt_median_ms']:10.2f}{s['jets']:16.1f}  jets",
        f"ratio CLUE / anti-kT: {s['ratio']:.2f} (goal <= 1)",
    ]
    return "\n".join(lines)


def reference_agreement(inputs, *, dc, rhoc, outlier_factor):
    """Fraction of candidates with the same label from CLUEstering 1.x and `clue`, or None.

    Both run on standardised (eta, phi) without periodic phi (see the module docstring).
    """
    try:
        import CLUEstering
    except ImportError:
        return None
    x = inputs["points"]
    z = (x - x.mean(0)) / x.std(0)
    ours = clue(z, inputs["pt"], dc=dc, rhoc=rhoc, outlier_factor=outlier_factor)
    try:
        c = CLUEstering.clusterer(dc, rhoc, outlier_factor)
        c.read_data({"x0": z[:, 0], "x1": z[:, 1], "weight": inputs["pt"]})
        c.run_clue()
    except Exception as err:  # another major version: a different interface
        raise UserError(f"CLUEstering failed ({type(err).__name__}: {err}); is it 1.x?") from None
    return float(np.mean(np.asarray(c.cluster_ids) == ours))


def read_events(path, n, l1=None):
    """The first `n` events of `path` as lists of numpy arrays (px, py, eta) per event: the
    ttbar-pu PF candidates, or with `l1` ("puppi" or "pf") the ScoutTau L1 candidates that
    `data.scouttau.load` clusters."""
    from data.io import num_entries, read_branches

    n = min(n, num_entries(path))
    if l1:
        from data import scouttau

        arrays = scouttau.read(path, with_truth=False, entries=(0, n))
        c = (
            scouttau.puppi_candidates(arrays)
            if l1 == "puppi"
            else scouttau.puppi_candidates(arrays, weighted=False, min_pt=scouttau.PF_MIN_PT)
        )
        cut = np.searchsorted(c["event"], np.arange(1, n))
        px, py = c["pt"] * np.cos(c["phi"]), c["pt"] * np.sin(c["phi"])
        return list(zip(np.split(px, cut), np.split(py, cut), np.split(c["eta"], cut)))
    arrays = read_branches(path, list(BRANCHES), entries=(0, n))
    return [tuple(np.asarray(arrays[b][i]) for b in BRANCHES) for i in range(n)]


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="ROOT file with PFCand_* branches")
    parser.add_argument("--events", type=int, default=50, help="events to time (default 50)")
    parser.add_argument("--dc", type=float, default=DEFAULTS["dc"], help="CLUE dc (Delta R)")
    parser.add_argument("--rhoc", type=float, default=DEFAULTS["rhoc"], help="CLUE rhoc, GeV")
    parser.add_argument("--outlier-factor", type=float, default=DEFAULTS["outlier_factor"])
    parser.add_argument("--radius", type=float, default=DEFAULTS["radius"], help="anti-kT R")
    parser.add_argument("--jet-min-pt", type=float, default=0.0, help="counted jets, GeV")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per event; best kept")
    parser.add_argument("--reference", action="store_true", help="compare with CLUEstering")
    parser.add_argument("--json", help="write the summary and per-event rows here")
    parser.add_argument(
        "--l1",
        choices=("puppi", "pf"),
        default=None,
        help="time the ScoutTau L1 candidates of a scouttau file instead of PFCand_*",
    )
    from data import schemas

    schemas.add_arguments(parser, mapping=False)
    args = parser.parse_args(argv)
    schemas.check_own_inputs(args.schema, "CLUE", [args.input])
    if min(args.events, args.repeats) < 1:
        raise UserError("--events and --repeats must be at least 1")
    if min(args.dc, args.outlier_factor, args.radius) <= 0 or args.jet_min_pt < 0:
        raise UserError("--dc, --outlier-factor and --radius must be positive")
    from tqdm import tqdm

    events = read_events(args.input, args.events, args.l1)
    kw = dict(dc=args.dc, rhoc=args.rhoc, outlier_factor=args.outlier_factor)
    warm = event_inputs(*events[0])
    time_event(warm, **kw, radius=args.radius)  # untimed: imports, first-call costs
    rows, agreement = [], []
    for ev in tqdm(events, desc="events", file=sys.stderr, leave=False):
        inputs = event_inputs(*ev)
        rows.append(
            time_event(
                inputs, **kw, radius=args.radius, jet_min_pt=args.jet_min_pt, repeats=args.repeats
            )
        )
        if args.reference:
            agreement.append(reference_agreement(inputs, **kw))
    summary = summarize(rows)
    print(args.input)
    print(format_table(summary, args))
    if args.reference:
        if agreement[0] is None:
            print("CLUEstering is not importable: reference comparison skipped")
        else:
            summary["reference_agreement"] = float(np.mean(agreement))
            print(f"same label as CLUEstering 1.x: {summary['reference_agreement']:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "summary": summary, "events": rows}, f, indent=1)


if __name__ == "__main__":
    main()
