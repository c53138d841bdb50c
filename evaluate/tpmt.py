"""`python -m evaluate.tpmt`: TPMT against FastMTT, the collinear and the visible mass.

Writes DIR/predictions.root, DIR/metrics.json, PNG plots and the model card DIR/README.md.

A TPMT with the quantile head (5 output columns) also gives a per-event 68% interval
[m_tpmt_q16, m_tpmt_q84]; metrics.json then holds its coverage (the fraction of events with m_true
inside, goal 0.68) per process and channel. A model saved before the quantile head (3 columns)
still evaluates: its m_tpmt_q16 / m_tpmt_q84 branches are NaN and no coverage is reported.

`--no-products` evaluates TPMT without its tau decay-product tokens (every event's products
zeroed and masked), as it runs on standard NanoAOD, which keeps no PF candidates; metrics.json
then has "products": false. The baselines never use the products.

Example:
    python -m evaluate.tpmt --model saved_models/tpmt/tpmt.keras \
        --input h125.root dy.root flat_test.root --out saved_models/tpmt
"""

import argparse
import json
import os
import time

import numpy as np

from data import checks
from data.ditau import CHANNELS, PROCESSES
from data.errors import UserError, cli

METHODS = ("tpmt", "fastmtt", "collinear", "vis")
PROCESS_NAMES = {**{v: k for k, v in PROCESSES.items()}, -1: "unknown"}
CHANNEL_NAMES = {v: k for k, v in CHANNELS.items()}
FLAT_EDGES = np.arange(30.0, 310.0, 20.0)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m evaluate.tpmt", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="saved_models/tpmt/tpmt.keras")
    p.add_argument("--input", nargs="+", required=True, help="ROOT files with generator truth")
    p.add_argument("--out", default="evaluation/tpmt")
    p.add_argument("--channel", default="all")
    p.add_argument("--drop-nonfinite", action="store_true")
    p.add_argument("--no-fastmtt", action="store_true", help="skip FastMTT (slow on big files)")
    p.add_argument(
        "--hypothesis",
        default="nominal",
        help="parametric models: the hypothesised mass, a number (GeV) or 'nominal' (125 for "
        "h125 and ttbar, 91.19 for dy, 350 for bsm350, the generated mass for flat)",
    )
    p.add_argument(
        "--scan",
        nargs=3,
        type=float,
        metavar=("LO", "HI", "STEP"),
        default=None,
        help="parametric models: also scan the hypothesis from LO to HI (GeV) per process",
    )
    p.add_argument(
        "--no-products",
        action="store_true",
        help="zero and mask every tau decay-product token before the TPMT prediction (the "
        "model as it runs on NanoAOD, which has no PF candidates)",
    )
    from data import schemas

    schemas.add_arguments(p, working_points=True)
    return p.parse_args(argv)


NOMINAL_MASS = {1: 125.0, 2: 91.1876, 3: 125.0, 4: 350.0}  # process code -> hypothesis (GeV)


def hypotheses(d, hypothesis):
    """(N, 1) hypothesised masses for a parametric TPMT (see --hypothesis)."""
    proc = d["meta"]["process"]
    if hypothesis != "nominal":
        try:
            value = float(hypothesis)
        except ValueError:
            raise UserError(f"--hypothesis must be a mass or 'nominal', got {hypothesis}") from None
        if not value > 0:
            raise UserError(f"--hypothesis must be positive, got {value}")
        return np.full((len(proc), 1), value, "float32")
    h = np.array([NOMINAL_MASS.get(int(c), np.nan) for c in proc])
    if d["meta"]["m_true"] is not None:
        h = np.where(proc == 0, d["meta"]["m_true"], h)  # flat: the generated mass
    if not np.isfinite(h).all():
        raise UserError("no nominal hypothesis for these events: pass --hypothesis MASS")
    return h[:, None].astype("float32")


def without_products(inputs):
    """TPMT inputs with no decay-product tokens: products (N, P, F) zero, product_mask (N, P)
    all False, the rest unchanged (what the loader gives for a file without PF candidates)."""
    return {
        **inputs,
        "products": np.zeros_like(inputs["products"]),
        "product_mask": np.zeros_like(inputs["product_mask"], dtype=bool),
    }


def load_tpmt(path):
    """Load a TPMT `.keras` file in safe mode with a clear error."""
    import models  # noqa: F401  registers the toolkit's layers
    from models.training import load_trained

    return load_trained(path, "TPMT")


def predict_all(model, d, *, run_fastmtt=True, hypothesis="nominal"):
    """Masses and tau pT from every method, with the wall time each method took."""
    from evaluate.baselines.collinear import collinear_mass
    from evaluate.baselines.fastmtt import fastmtt
    from models.tpmt.model import is_parametric, predict_named

    legs = d["meta"]["legs"]
    leg = [
        {
            k: legs[src][:, i]
            for k, src in (
                ("pt", "pt"),
                ("eta", "eta"),
                ("phi", "phi"),
                ("mass", "mass"),
                ("kind", "kind"),
                ("decay_mode", "decayMode"),
            )
        }
        for i in (0, 1)
    ]
    n = len(d["meta"]["channel"])
    out, seconds = {}, {}
    inputs = d["inputs"]
    if is_parametric(model):
        inputs = {**inputs, "mass_hypothesis": hypotheses(d, hypothesis)}
    t = time.perf_counter()
    pred = predict_named(model, inputs)
    seconds["tpmt"] = time.perf_counter() - t
    out["m_tpmt"], out["tau1_pt_pred"], out["tau2_pt_pred"] = (
        pred["m_tautau"],
        pred["tau1_pt"],
        pred["tau2_pt"],
    )
    for q in ("q16", "q84"):  # NaN for a model without the quantile head (3 output columns)
        out[f"m_tpmt_{q}"] = pred.get(f"m_tautau_{q}", np.full(n, np.nan, "float32"))
    t = time.perf_counter()
    coll = collinear_mass(leg[0], leg[1], d["meta"]["met_x"], d["meta"]["met_y"])
    seconds["collinear"] = time.perf_counter() - t
    out["m_collinear"], out["m_vis"] = coll.mass, coll.m_vis
    out["collinear_physical"] = coll.physical
    if run_fastmtt:
        t = time.perf_counter()
        fm = fastmtt(leg[0], leg[1], d["meta"]["met_x"], d["meta"]["met_y"], d["meta"]["met_cov"])
        seconds["fastmtt"] = time.perf_counter() - t
        out["m_fastmtt"] = fm.mass
        # FastMTT's own uncertainty: quantiles of its likelihood over the scan (not timed)
        q = fastmtt(
            leg[0],
            leg[1],
            d["meta"]["met_x"],
            d["meta"]["met_y"],
            d["meta"]["met_cov"],
            quantiles=(0.16, 0.84),
        ).mass_quantiles
        out["m_fastmtt_q16"], out["m_fastmtt_q84"] = q[:, 0], q[:, 1]
    else:
        out["m_fastmtt"] = np.full(n, np.nan)
        out["m_fastmtt_q16"] = out["m_fastmtt_q84"] = np.full(n, np.nan)
    out["m_true"] = d["meta"]["m_true"]
    out["tau1_pt_true"], out["tau2_pt_true"] = d["targets"]["tau_pt"].T
    out["tau1_pt_reco"], out["tau2_pt_reco"] = legs["pt"].T
    out["process"] = d["meta"]["process"].astype(np.int32)
    hyp = inputs.get("mass_hypothesis")
    out["m_hypothesis"] = hyp[:, 0] if hyp is not None else np.full(n, np.nan, "float32")
    out["channel"] = d["meta"]["channel"].astype(np.int32)
    return out, seconds


def has_quantiles(p):
    """True when the TPMT predictions carry a 68% interval (a model with the quantile head)."""
    return bool(np.isfinite(p["m_tpmt_q16"]).any() and np.isfinite(p["m_tpmt_q84"]).any())


def interval_coverage(lo, hi, true):
    """Coverage of per-event intervals [lo, hi] of `true`, over events with finite values.

    Returns:
        dict coverage_68 (fraction of events with lo <= true <= hi), half_width (median of
        (hi - lo) / (2 true), to set beside the resolution), n (events used).
    """
    lo, hi, true = (np.asarray(a, float) for a in (lo, hi, true))
    ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(true) & (true > 0)
    if not ok.any():
        return {"coverage_68": float("nan"), "half_width": float("nan"), "n": 0}
    inside = (lo[ok] <= true[ok]) & (true[ok] <= hi[ok])
    return {
        "coverage_68": float(inside.mean()),
        "half_width": float(np.median((hi[ok] - lo[ok]) / (2 * true[ok]))),
        "n": int(ok.sum()),
    }


def compute_metrics(p):
    """Response per process and channel, H-Z separation, flat-mass response, per method.

    With TPMT quantiles (see `has_quantiles`), each per_process_channel[...]["tpmt"] also holds
    `coverage_68` and `half_width` (see `interval_coverage`), and `flat_coverage` holds them in
    bins of the true mass of the flat sample; without, those keys are absent. FastMTT's entries
    hold the same two keys for the 16%/84% quantiles of its likelihood scan.
    """
    from evaluate import metrics

    quantiles = has_quantiles(p)
    res = {"per_process_channel": {}, "separation": {}, "flat_response": {}}
    for proc in np.unique(p["process"]):
        for ch in [None, *np.unique(p["channel"])]:
            sel = (p["process"] == proc) & ((p["channel"] == ch) if ch is not None else True)
            if sel.sum() < 20:
                continue
            ch_name = CHANNEL_NAMES[int(ch)] if ch is not None else "all"
            key = f"{PROCESS_NAMES[int(proc)]}/{ch_name}"
            row = {}
            for m in METHODS:
                r = metrics.response(p[f"m_{m}"][sel], p["m_true"][sel])
                r["core"] = metrics.gaussian_core(p[f"m_{m}"][sel] / p["m_true"][sel])
                row[m] = r
            for m in ("tpmt", "fastmtt"):
                if m == "tpmt" and not quantiles or f"m_{m}_q16" not in p:
                    continue
                cov = interval_coverage(
                    p[f"m_{m}_q16"][sel], p[f"m_{m}_q84"][sel], p["m_true"][sel]
                )
                if cov["n"]:
                    row[m]["coverage_68"] = cov["coverage_68"]
                    row[m]["half_width"] = cov["half_width"]
            res["per_process_channel"][key] = row
    h, z = p["process"] == 1, p["process"] == 2
    for ch in [None, 0, 1, 2]:
        chsel = (p["channel"] == ch) if ch is not None else np.ones_like(h)
        if (h & chsel).sum() >= 20 and (z & chsel).sum() >= 20:
            res["separation"][CHANNEL_NAMES.get(ch, "all") if ch is not None else "all"] = {
                m: metrics.window_separation(p[f"m_{m}"][h & chsel], p[f"m_{m}"][z & chsel])
                for m in METHODS
            }
    flat = p["process"] == 0
    if flat.sum() >= 50:
        res["flat_response"] = {
            m: metrics.binned_response(p[f"m_{m}"][flat], p["m_true"][flat], FLAT_EDGES)
            for m in METHODS
        }
        if quantiles:
            res["flat_coverage"] = []
            for lo, hi in zip(FLAT_EDGES[:-1], FLAT_EDGES[1:]):
                b = flat & (p["m_true"] >= lo) & (p["m_true"] < hi)
                cov = interval_coverage(p["m_tpmt_q16"][b], p["m_tpmt_q84"][b], p["m_true"][b])
                res["flat_coverage"].append({"lo": float(lo), "hi": float(hi), **cov})
    # the vector-boson flat sample: the same response for Z-like tau spin correlations
    flatz = p["process"] == PROCESSES["flatz"]
    if flatz.sum() >= 50:
        res["flatz_response"] = {
            m: metrics.binned_response(p[f"m_{m}"][flatz], p["m_true"][flatz], FLAT_EDGES)
            for m in METHODS
        }
    genuine = p["process"] != 3
    for i in (1, 2):
        res[f"tau{i}_pt"] = {
            "tpmt": metrics.response(p[f"tau{i}_pt_pred"][genuine], p[f"tau{i}_pt_true"][genuine]),
            "reco": metrics.response(p[f"tau{i}_pt_reco"][genuine], p[f"tau{i}_pt_true"][genuine]),
        }
    return res


def hypothesis_scan(model, d, lo, hi, step):
    """Median TPMT mass and response per process as the hypothesis is scanned.

    Returns:
        dict process name -> list of {hypothesis, median_m, median_response}.
    """
    from models.tpmt.model import predict_named

    if not (0 < lo < hi and step > 0):
        raise UserError(f"--scan needs 0 < LO < HI and STEP > 0, got {lo} {hi} {step}")
    proc = d["meta"]["process"]
    out = {}
    for h in np.arange(lo, hi + 0.5 * step, step):
        x = {**d["inputs"], "mass_hypothesis": np.full((len(proc), 1), h, "float32")}
        m = predict_named(model, x)["m_tautau"]
        for code in np.unique(proc):
            sel = proc == code
            out.setdefault(PROCESS_NAMES[int(code)], []).append(
                {
                    "hypothesis": float(h),
                    "median_m": float(np.median(m[sel])),
                    "median_response": float(np.median(m[sel] / d["meta"]["m_true"][sel])),
                }
            )
    return out


@cli
def main(argv=None):
    args = parse_args(argv)
    checks.model_file(args.model, "TPMT")
    checks.writable_dir(args.out)
    from data import io, schemas
    from data.ditau import detector_passes, load
    from evaluate import tpmt_report
    from models.tpmt.model import is_parametric

    model = load_tpmt(args.model)
    if args.scan and not is_parametric(model):
        raise UserError(f"--scan needs a parametric TPMT; {args.model} takes no mass hypothesis")
    parts, seconds, scans = [], {}, []
    for path in io.expand_paths(args.input):
        d = load(
            path,
            channel=args.channel,
            drop_nonfinite=args.drop_nonfinite,
            require_truth=True,
            **schemas.reading_options(args),
        )
        if d["targets"] is None:
            raise UserError(f"{path} has no generator truth (GenTau_*): cannot evaluate on it")
        if args.no_products:
            d = {**d, "inputs": without_products(d["inputs"])}
        out, sec = predict_all(
            model, d, run_fastmtt=not args.no_fastmtt, hypothesis=args.hypothesis
        )
        if args.scan:
            scans.append(hypothesis_scan(model, d, *args.scan))
        parts.append(out)
        for k, v in sec.items():
            seconds[k] = seconds.get(k, 0.0) + v
        passes = " (detector pass 0 of each event only)" * (detector_passes(path) > 1)
        print(f"{path}: {len(out['m_true'])} events{passes}")
    p = {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
    os.makedirs(args.out, exist_ok=True)
    io.write_events(
        os.path.join(args.out, "predictions.root"),
        {k: (v.astype(np.int32) if v.dtype == bool else v) for k, v in p.items()},
    )
    res = compute_metrics(p)
    n = len(p["m_true"])
    res["events_per_second"] = {k: n / v for k, v in seconds.items() if v > 0}
    res["n_events"] = n
    res["inputs"] = args.input
    res["model"] = args.model
    res["products"] = not args.no_products
    res["hypothesis"] = args.hypothesis if is_parametric(model) else None
    if scans:
        res["hypothesis_scan"] = {k: v for s_ in scans for k, v in s_.items()}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(res, f, indent=2)
    tpmt_report.plots(p, res, args.out)
    tpmt_report.model_card(res, args, os.path.join(args.out, "README.md"))
    print(f"wrote {args.out}/predictions.root, metrics.json, plots and README.md")


if __name__ == "__main__":
    main()
