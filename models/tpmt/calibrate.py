"""Calibrate the mass response of a flat-mass TPMT on a flat sample (numerical inversion).

    python -m models.tpmt.calibrate --model saved_models/tpmt/tpmt_uncalibrated.keras \
        --input FLAT_FILES... --out saved_models/tpmt/tpmt.keras

Why: a regression trained on a flat-mass sample returns a central value of the posterior of m
given the event, under the flat prior. With a multiplicative resolution sigma that posterior
leans to high masses (its density in u = m_obs / m carries a 1/u Jacobian), so at fixed true
mass the median response sits above 1 by about sigma^2 per leg: +3 to +7% for sigma ~ 0.17,
as measured. Experiments calibrate jet energies the same way: in bins of the true mass, the
median prediction x_k and the median true mass y_k of the bin give the points of the
response curve, and the calibrated mass is y(m_pred), linear between points. Medians are
unchanged by increasing maps, so median(m_cal | m_true) = m_true wherever the curve is
sampled: the calibrated flat response is 1 by construction on the calibration sample, and
is checked on fresh samples (`evaluate.tpmt`). One curve per channel, stored in the model
as a `MassCalibration` layer, so `keras.models.load_model` users get calibrated masses.
Use a flat sample that no training or evaluation uses; resonant models are not calibrated
(their prior is the physics they are trained for).
"""

import argparse
import json
import os
import sys

import numpy as np

from data import checks
from data.errors import UserError, cli

EDGES = tuple(range(30, 310, 15))  # GeV, true-mass bins of the flat sample (30-300)
MIN_EVENTS = 100  # per bin and channel; fewer and the bin is merged into its neighbour


def derive_knots(m_pred, m_true, channel, edges=EDGES, min_events=MIN_EVENTS):
    """Response-curve knots per channel.

    Args:
        m_pred, m_true: (N,) predicted and true masses (GeV).
        channel: (N,) 0 tauh-tauh, 1 mu-tauh, 2 e-tauh.
        edges: true-mass bin edges; bins with fewer than `min_events` merge into the next.
    Returns:
        (knots_x, knots_y): 3 lists of increasing masses (median prediction, median truth).
    Raises:
        UserError: a channel with fewer than 2 usable bins (not a flat sample, or too small).
    """
    knots_x, knots_y = [], []
    for ch in range(3):
        sel = channel == ch
        mp, mt = m_pred[sel], m_true[sel]
        xs, ys, lo = [], [], edges[0]
        for hi in edges[1:]:
            in_bin = (mt >= lo) & (mt < hi)
            if in_bin.sum() < min_events and hi != edges[-1]:
                continue  # merged with the next bin
            if in_bin.sum() >= min_events:
                xs.append(float(np.median(mp[in_bin])))
                ys.append(float(np.median(mt[in_bin])))
            lo = hi
        # an increasing map is needed: drop knots that would fold it (statistical wiggles)
        keep_x, keep_y = [], []
        for x, y in zip(xs, ys):
            if not keep_x or (x > keep_x[-1] and y > keep_y[-1]):
                keep_x.append(x)
                keep_y.append(y)
        if len(keep_x) < 2:
            raise UserError(
                f"channel {ch}: fewer than 2 true-mass bins with {min_events} events; the "
                "calibration needs a flat-mass sample spanning "
                f"{edges[0]}-{edges[-1]} GeV (python -m data.generate ditau --process flat)"
            )
        knots_x.append(keep_x)
        knots_y.append(keep_y)
    return knots_x, knots_y


def calibration_layer(model):
    """The model's `MassCalibration` layer, or None."""
    from models.tpmt.layers import MassCalibration

    found = [layer for layer in model.layers if isinstance(layer, MassCalibration)]
    return found[0] if found else None


def with_calibration(model, knots_x, knots_y):
    """A TPMT whose output goes through `MassCalibration` (replacing any calibration it has);
    it shares the layers and weights of `model`."""
    from data.ditau import LEG_FEATURES
    from models.tpmt.layers import MassCalibration, MassQuantiles
    from models.tpmt.model import rewire

    layer = MassCalibration(
        knots_x,
        knots_y,
        muon_index=LEG_FEATURES.index("is_muon"),
        electron_index=LEG_FEATURES.index("is_electron"),
        name="mass_calibration",
    )

    def make_call(inputs):
        def call(lay, *args, **kwargs):
            out = lay(*args, **kwargs)
            if isinstance(lay, MassQuantiles):  # the output layer
                return layer([out, inputs["legs"]])
            return out

        return call

    return rewire(without_calibration(model), make_call)


def without_calibration(model):
    """`model` without its `MassCalibration` layer (itself if it has none), same weights."""
    from models.tpmt.layers import MassCalibration
    from models.tpmt.model import rewire

    if calibration_layer(model) is None:
        return model

    def call(lay, *args, **kwargs):
        if isinstance(lay, MassCalibration):
            return args[0][0]  # its input [mass outputs, legs]: the outputs pass unchanged
        return lay(*args, **kwargs)

    return rewire(model, lambda inputs: call)


def response_table(m_pred, m_true, channel, edges=EDGES):
    """Rows (channel, lo, hi, n, median m_pred / m_true) per true-mass bin."""
    rows = []
    for ch in range(3):
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = (channel == ch) & (m_true >= lo) & (m_true < hi)
            if sel.any():
                rows.append(
                    (ch, lo, hi, int(sel.sum()), float(np.median(m_pred[sel] / m_true[sel])))
                )
    return rows


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m models.tpmt.calibrate", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", required=True, help="flat-mass TPMT .keras (uncalibrated)")
    p.add_argument("--input", nargs="+", required=True, help="flat-mass ROOT files / manifests")
    p.add_argument("--out", required=True, help="calibrated .keras to write")
    p.add_argument("--min-events", type=int, default=MIN_EVENTS, help="per bin and channel")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return p.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    checks.positive(args.min_events, "--min-events")
    checks.new_keras_file(args.out, args.overwrite)
    checks.model_file(args.model, "TPMT")
    from data import ditau, io

    files = io.expand_paths(args.input)
    d = ditau.load(files, require_truth=True)
    from evaluate.tpmt import load_tpmt
    from models.tpmt.model import is_parametric, predict_named

    model = load_tpmt(args.model)
    if is_parametric(model):
        raise UserError("a parametric TPMT takes the hypothesis as input: not calibrated here")
    base = without_calibration(model)
    m_true = d["meta"]["m_true"].astype("float64")
    channel = d["meta"]["channel"].astype(int)
    m_pred = predict_named(base, d["inputs"])["m_tautau"].astype("float64")
    knots_x, knots_y = derive_knots(m_pred, m_true, channel, min_events=args.min_events)
    calibrated = with_calibration(base, knots_x, knots_y)
    m_cal = predict_named(calibrated, d["inputs"])["m_tautau"].astype("float64")
    before = response_table(m_pred, m_true, channel)
    after = response_table(m_cal, m_true, channel)
    names = list(ditau.CHANNELS)
    print(f"{len(m_true)} events from {len(files)} files; median m/m_true before -> after:")
    for (ch, lo, hi, n, r0), (_, _, _, _, r1) in zip(before, after):
        print(f"  {names[ch]:>10} {lo:3d}-{hi:3d} GeV  n={n:5d}  {r0:.3f} -> {r1:.3f}")
    calibrated.save(args.out)
    with open(os.path.splitext(args.out)[0] + "_calibration.json", "w") as f:
        json.dump(
            {
                "model": args.model,
                "input": files,
                "events": int(len(m_true)),
                "channels": names,
                "knots_x": knots_x,
                "knots_y": knots_y,
                "response_before": before,
                "response_after": after,
            },
            f,
            indent=1,
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
