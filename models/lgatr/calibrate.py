"""Calibrate the top pT response of a trained L-GATr or plain transformer.

    python -m models.lgatr.calibrate --model saved_models/lgatr/lgatr_uncalibrated.keras \
        --input CALIBRATION_FILES... --out saved_models/lgatr/lgatr.keras

Why: the (P84 - P16) / 2 width of (pT_pred - pT_true) / pT_true scales with the overall scale
of the predictions, so a network whose pT sits 8% high is judged 8% wider than the same
network at response 1. A regression trained with an MSE on (px, py, pz, E) settles at a
response that wanders from epoch to epoch (1.04-1.18 for L-GATr, 0.92-1.09 for the plain
transformer in their validation logs). The default correction is one factor: the median of
pT_true / pT_pred on calibration events, so that the median response is 1 there. With
`--bins K` it is made as for jet and MET response corrections: in K quantile bins of predicted
pT, the median of pT_true / pT_pred gives the ratio r_k at the bin's median predicted pT. This
narrows the distribution further but pulls the response towards the mean pT (above 1 at low
true pT, below it at high), so it is an option, not the default. The calibrated pT is
pT * r(pT), linear between knots, at fixed rapidity, azimuth and mass
(`layers.TopPtCalibration`, stored in the model so that `keras.models.load_model` users get
calibrated tops). Use events that neither training nor
evaluation uses, and calibrate every network that is compared in the same way.
A fit's `--init-from` copies the network weights only: calibrate again after a fine-tune.
"""

import argparse
import json
import os
import sys

import numpy as np

from data import checks
from data.errors import UserError, cli

BINS = 1  # quantile bins of predicted pT (1: one global factor)
MIN_EVENTS = 200  # tops per bin; fewer bins when the sample is small
TRUE_PT_EDGES = (0, 50, 100, 150, 200, 300, 400, 600, np.inf)  # GeV, response table


def derive_knots(pt_pred, pt_true, bins=BINS, min_events=MIN_EVENTS):
    """Knots (pT_k, r_k) of the ratio pT_cal / pT_pred.

    Args:
        pt_pred, pt_true: (N,) predicted and true top pT (GeV), tops and antitops pooled.
        bins: quantile bins of pt_pred (fewer if a bin would hold under `min_events`); 1 gives
            one factor for all pT (two knots with the same ratio).
    Returns:
        (knots_pt, knots_ratio): lists; the calibrated pT, pT * r(pT), increases through them
        (knots that would fold it, statistical wiggles at low pT, are dropped).
    Raises:
        UserError: fewer than 2 knots (too few events).
    """
    ok = np.isfinite(pt_pred) & np.isfinite(pt_true) & (pt_pred > 0) & (pt_true > 0)
    pt_pred, pt_true = pt_pred[ok], pt_true[ok]
    bins = min(bins, len(pt_pred) // min_events)
    if bins < 1:
        raise UserError(
            f"{len(pt_pred)} tops: the calibration needs at least {min_events} "
            f"(python -m data.generate ttbar-dilepton --events N --seed S --out F.root)"
        )
    if bins == 1:
        r = float(np.median(pt_true / pt_pred))
        lo = float(pt_pred.min())
        return [lo, max(float(pt_pred.max()), lo + 1.0)], [r, r]
    edges = np.quantile(pt_pred, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, pt_pred, side="right") - 1, 0, bins - 1)
    knots_pt, knots_ratio = [], []
    for b in range(bins):
        sel = which == b
        x = float(np.median(pt_pred[sel]))
        r = float(np.median(pt_true[sel] / pt_pred[sel]))
        if not knots_pt or (x > knots_pt[-1] and x * r > knots_pt[-1] * knots_ratio[-1]):
            knots_pt.append(x)
            knots_ratio.append(r)
    if len(knots_pt) < 2:
        raise UserError("the calibration found fewer than 2 increasing knots")
    return knots_pt, knots_ratio


def calibration_layer(model):
    """The model's `TopPtCalibration` layer, or None."""
    from models.lgatr.layers import TopPtCalibration

    found = [layer for layer in model.layers if isinstance(layer, TopPtCalibration)]
    return found[0] if found else None


def without_calibration(model):
    """`model` without its `TopPtCalibration` (itself if it has none), same layers and weights."""
    import keras

    layer = calibration_layer(model)
    if layer is None:
        return model
    return keras.Model(model.input, {"tops": layer.input}, name=model.name)


def with_calibration(model, knots_pt, knots_ratio):
    """`model` with its tops passed through `TopPtCalibration` (replacing any it has)."""
    import keras

    from models.lgatr.layers import TopPtCalibration

    base = without_calibration(model)
    layer = TopPtCalibration(knots_pt, knots_ratio, name="top_pt_calibration")
    return keras.Model(base.input, {"tops": layer(base.outputs[0])}, name=base.name)


def top_pt(tops):
    """(N, 2, 4) four-vectors -> (2N,) pT, tops then antitops."""
    tops = np.asarray(tops, np.float64)
    return np.concatenate(
        [np.hypot(tops[:, 0, 0], tops[:, 0, 1]), np.hypot(tops[:, 1, 0], tops[:, 1, 1])]
    )


def response_table(pt_pred, pt_true, edges=TRUE_PT_EDGES):
    """Rows (lo, hi, n, median pT_pred / pT_true, (P84 - P16) / 2) per true-pT bin."""
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (pt_true >= lo) & (pt_true < hi)
        if sel.sum() > 1:
            u = pt_pred[sel] / pt_true[sel]
            p16, p50, p84 = np.percentile(u, [16, 50, 84])
            rows.append((float(lo), float(hi), int(sel.sum()), float(p50), float((p84 - p16) / 2)))
    return rows


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m models.lgatr.calibrate", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", required=True, help="L-GATr or plain transformer .keras")
    p.add_argument(
        "--input", nargs="+", required=True, help="dilepton ttbar ROOT files / manifests"
    )
    p.add_argument("--out", required=True, help="calibrated .keras to write")
    p.add_argument(
        "--bins",
        type=int,
        default=BINS,
        help="quantile bins of predicted pT (default 1: one factor)",
    )
    p.add_argument("--min-events", type=int, default=MIN_EVENTS, help="tops per bin at least")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return p.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    checks.positive(args.bins, "--bins")
    checks.positive(args.batch_size, "--batch-size")
    checks.positive(args.min_events, "--min-events")
    checks.new_keras_file(args.out, args.overwrite)
    expected = ("L-GATr", "plain transformer")
    checks.model_file(args.model, expected)
    from data import io
    from data.lgatr import load
    from models.training import load_trained, save_model

    files = io.expand_paths(args.input)
    d = load(files, require_truth=True)
    if d["targets"] is None:
        raise UserError(f"{files[0]} has no generator truth (GenTop_*): cannot calibrate on it")
    base = without_calibration(load_trained(args.model, expected))
    true = top_pt(d["targets"]["tops"])
    pred = top_pt(base.predict(d["inputs"], batch_size=args.batch_size, verbose=0)["tops"])
    knots_pt, knots_ratio = derive_knots(pred, true, bins=args.bins, min_events=args.min_events)
    calibrated = with_calibration(base, knots_pt, knots_ratio)
    pred_cal = pred * np.interp(pred, knots_pt, knots_ratio)  # what the layer computes
    before, after = response_table(pred, true), response_table(pred_cal, true)
    print(
        f"{len(true)} tops from {len(files)} files; median pT/pT_true, (P84-P16)/2 before -> after:"
    )
    for (lo, hi, n, r0, w0), (_, _, _, r1, w1) in zip(before, after):
        print(f"  {lo:4.0f}-{hi:4.0f} GeV  n={n:6d}  {r0:.3f} {w0:.3f} -> {r1:.3f} {w1:.3f}")
    save_model(calibrated, args.out)
    with open(os.path.splitext(args.out)[0] + "_calibration.json", "w") as f:
        json.dump(
            {
                "model": args.model,
                "input": files,
                "events": int(len(true) // 2),
                "knots_pt": knots_pt,
                "knots_ratio": knots_ratio,
                "response_before": before,
                "response_after": after,
                "command": "python -m models.lgatr.calibrate "
                + " ".join(sys.argv[1:] if argv is None else argv),
            },
            f,
            indent=1,
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
