"""`python -m evaluate.lgatr`: L-GATr against the plain transformer and the analytic solution.

Writes DIR/predictions.root, DIR/metrics.json, PNG plots and the model card DIR/README.md.

Figures of merit per method and quantity, from d = (pred - true) / true (seed 004):
RB = mean(d), Res = sqrt(mean(d^2) - RB^2) as defined in the talk, and the robust pair
median(d), (P84 - P16) / 2 (`evaluate.metrics.relative_bias_resolution`). The top rapidity
is near zero, so for it d = pred - true (absolute); for the azimuth d = pred - true wrapped into
[-pi, pi). Top pT, rapidity and azimuth pool top and antitop.

The analytic method is `solve_dilepton` on the loader's b candidates (truth-matched jets, or the
two leading jets paired by min m_lb) with the `min_mtt` rule among real solutions and BDH's
closest approach where there is none; its figures are given on all events and on the subset
with a real solution.

Example:
    python -m evaluate.lgatr --model saved_models/lgatr/lgatr.keras \
        --plain saved_models/lgatr/plain.keras --input test.root --out saved_models/lgatr
"""

import argparse
import json
import os
import time

import numpy as np

from data import checks
from data.errors import UserError, cli

QUANTITIES = ("top_pt", "top_y", "top_phi", "m_tt", "pt_tt")
ABSOLUTE = ("top_y", "top_phi")  # compared as pred - true: near zero, or an angle


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m evaluate.lgatr", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="saved_models/lgatr/lgatr.keras", help="L-GATr .keras")
    p.add_argument("--plain", default=None, help="plain transformer .keras (optional)")
    p.add_argument("--input", nargs="+", required=True, help="ROOT files with generator truth")
    p.add_argument("--out", default="evaluation/lgatr", help="output folder")
    p.add_argument("--rule", default="min_mtt", help="analytic ambiguity rule")
    p.add_argument("--try-swap", action="store_true", help="analytic: also try b <-> bbar")
    p.add_argument("--drop-nonfinite", action="store_true", help="drop events with NaN/inf")
    p.add_argument("--batch-size", type=int, default=1024, help="prediction batch size")
    from data import schemas

    schemas.add_arguments(p, working_points=True)
    return p.parse_args(argv)


def load_keras(path, shapes, expected=("L-GATr", "plain transformer")):
    """Load a `.keras` file in safe mode and check its model and inputs against the loader's
    arrays."""
    checks.model_file(path, expected)
    import keras

    import models  # noqa: F401  registers the toolkit's layers
    import models.lgatr  # noqa: F401

    try:
        model = keras.models.load_model(path, safe_mode=True)
    except Exception as err:  # keras raises assorted errors for foreign or corrupt files
        raise UserError(f"cannot load {path} as a Keras model ({type(err).__name__})") from None
    names = {t.name.split(":")[0]: tuple(t.shape[1:]) for t in model.inputs}
    if names != shapes:
        raise UserError(f"{path} expects inputs {names}, the data give {shapes}")
    return model


def kinematics(p):
    """pt, rapidity, mass of (..., 4) (px, py, pz, E) arrays (NaN where undefined)."""
    p = np.asarray(p, np.float64)
    px, py, pz, e = np.moveaxis(p, -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = 0.5 * np.log((e + pz) / (e - pz))
    m2 = e**2 - px**2 - py**2 - pz**2
    return {
        "pt": np.hypot(px, py),
        "phi": np.arctan2(py, px),
        "y": np.where(np.isfinite(y), y, np.nan),
        "mass": np.sign(m2) * np.sqrt(np.abs(m2)),
    }


def observables(tops):
    """Per-event observables of (N, 2, 4) top, antitop four-momenta."""
    t, tt = kinematics(tops), kinematics(tops.sum(1))
    return {
        "top_pt": t["pt"],
        "top_y": t["y"],
        "top_phi": t["phi"],
        "top_mass": t["mass"],
        "m_tt": tt["mass"],
        "pt_tt": tt["pt"],
    }


def predict_models(models, x, batch_size):
    """(N, 2, 4) tops and wall seconds (after a warm-up batch) of each Keras model."""
    tops, seconds = {}, {}
    for name, model in models.items():
        model.predict({k: v[:batch_size] for k, v in x.items()}, batch_size=batch_size, verbose=0)
        t = time.perf_counter()
        tops[name] = np.asarray(model.predict(x, batch_size=batch_size, verbose=0)["tops"])
        seconds[name] = time.perf_counter() - t
    return tops, seconds


def predict_analytic(meta, rule, try_swap):
    """Analytic tops (N, 2, 4), the solver's flags and its wall seconds."""
    from evaluate.baselines.analytic_top import solve_dilepton

    t = time.perf_counter()
    try:
        r = solve_dilepton(
            meta["lep_pos"],
            meta["lep_neg"],
            meta["b"],
            meta["bbar"],
            meta["met_x"],
            meta["met_y"],
            rule=rule,
            try_swap=try_swap,
        )
    except ValueError as err:
        raise UserError(f"analytic solver: {err}") from None
    seconds = time.perf_counter() - t
    return np.stack([r["top"], r["antitop"]], 1), r, seconds


def seed_rb_res(pred, true, relative=True):
    """RB = mean(d), Res = sqrt(mean(d^2) - RB^2) of finite d = (pred - true) / true (seed 004)."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    ok = np.isfinite(pred) & np.isfinite(true) & ((np.abs(true) > 0) | (not relative))
    d = (pred[ok] - true[ok]) / (np.abs(true[ok]) if relative else 1.0)
    if not len(d):
        return {"rb": float("nan"), "res": float("nan"), "n": 0}
    rb = float(d.mean())
    return {"rb": rb, "res": float(np.sqrt(max(np.mean(d**2) - rb**2, 0.0))), "n": int(len(d))}


def figures(obs, true, sel=None):
    """Seed and robust RB / Res of every quantity for one method (optionally on a subset)."""
    from evaluate import metrics

    out = {}
    for q in QUANTITIES:
        p, t = obs[q], true[q]
        if sel is not None:
            s = np.concatenate([sel, sel]) if len(p) == 2 * len(sel) else sel
            p, t = p[s], t[s]
        if q == "top_phi":  # the wrapped difference, compared with a true value of 0
            p, t = (p - t + np.pi) % (2 * np.pi) - np.pi, np.zeros_like(t)
        relative = q not in ABSOLUTE
        robust = (
            metrics.relative_bias_resolution(p, t)
            if relative
            else {
                "rb": float(np.nanmedian(p - t)),
                "res": metrics.quantile_resolution(p - t),
                "n": int(np.isfinite(p - t).sum()),
            }
        )
        out[q] = {
            "seed": seed_rb_res(p, t, relative),
            "robust": {"median": robust["rb"], "res_quantile": robust["res"]},
        }
    return out


def _pooled(obs):
    """Top and antitop pooled for the per-top quantities: (N, 2) -> (2N,) (top block first)."""
    return {k: (v.T.ravel() if v.ndim == 2 else v) for k, v in obs.items()}


def compute_metrics(obs, analytic):
    """Figures for every method on all events and on the analytic real-solution subset."""
    true = obs["true"]
    has = analytic["has_solution"]
    res = {"all": {}, "analytic_solved": {}}
    for m, o in obs.items():
        if m == "true":
            continue
        res["all"][m] = figures(o, true)
        res["all"][m]["top_mass_quantiles"] = [
            float(q) for q in np.nanpercentile(o["top_mass"], [16, 50, 84])
        ]
        res["analytic_solved"][m] = figures(o, true, has)
    n = len(has)
    finite = np.all(np.isfinite(obs["analytic"]["m_tt"].reshape(n, -1)), 1)
    res["analytic"] = {
        "rule": analytic["rule"],
        "try_swap": analytic["try_swap"],
        "solution_efficiency": float(has.mean()),
        "fallback_rate": float(np.mean(analytic["fallback"])),
        "failed_rate": float(np.mean(~finite)),
        "mean_real_solutions_when_solved": float(analytic["n_solutions"][has].mean())
        if has.any()
        else float("nan"),
        "b_truth_matched_fraction": float(np.mean(analytic["b_pairing"] == 0)),
    }
    return res


def prediction_columns(tops, obs, analytic):
    """Flat branches: per method top / antitop (pt, eta, phi, mass), m_tt, pt_tt, y flags."""
    cols = {}
    for m, p in tops.items():
        px, py, pz, e = np.moveaxis(np.asarray(p, np.float64), -1, 0)
        pt = np.hypot(px, py)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.arcsinh(pz / pt)
        for i, obj in enumerate(("top", "antitop")):
            cols[f"{m}_{obj}_pt"] = pt[:, i]
            cols[f"{m}_{obj}_eta"] = eta[:, i]
            cols[f"{m}_{obj}_phi"] = np.arctan2(py[:, i], px[:, i])
            cols[f"{m}_{obj}_mass"] = obs[m]["top_mass"][:, i]
            cols[f"{m}_{obj}_y"] = obs[m]["top_y"][:, i]
        cols[f"{m}_m_tt"], cols[f"{m}_pt_tt"] = obs[m]["m_tt"], obs[m]["pt_tt"]
    cols["analytic_has_solution"] = analytic["has_solution"].astype(np.int32)
    cols["analytic_fallback"] = analytic["fallback"].astype(np.int32)
    cols["b_pairing"] = np.asarray(analytic["b_pairing"], np.int32)
    return cols


@cli
def main(argv=None):
    from data import io
    from data.lgatr import load
    from evaluate import lgatr_report

    args = parse_args(argv)
    if args.batch_size <= 0:
        raise UserError(f"--batch-size must be positive, got {args.batch_size}")
    checks.model_file(args.model, "L-GATr")
    if args.plain is not None:
        checks.model_file(args.plain, "plain transformer", "--plain")
    checks.writable_dir(args.out)
    from data import schemas

    reading = schemas.reading_options(args)
    d = load(args.input, drop_nonfinite=args.drop_nonfinite, require_truth=True, **reading)
    if d["targets"] is None:
        raise UserError(f"{args.input[0]} has no generator truth (GenTop_*): cannot evaluate it")
    x = d["inputs"]
    shapes = {k: tuple(v.shape[1:]) for k, v in x.items()}
    nets = {"lgatr": load_keras(args.model, shapes, "L-GATr")}
    if args.plain:
        nets["plain"] = load_keras(args.plain, shapes, "plain transformer")
    tops, seconds = predict_models(nets, x, args.batch_size)
    tops["analytic"], sol, seconds["analytic"] = predict_analytic(
        d["meta"], args.rule, args.try_swap
    )
    tops["true"] = np.asarray(d["targets"]["tops"], np.float64)
    obs = {m: observables(p) for m, p in tops.items()}
    analytic = dict(sol, rule=args.rule, try_swap=args.try_swap, b_pairing=d["meta"]["b_pairing"])
    res = compute_metrics({m: _pooled(o) for m, o in obs.items()}, analytic)
    n = len(tops["true"])
    res["events_per_second"] = {k: n / v for k, v in seconds.items() if v > 0}
    res["n_events"] = n
    res["inputs"] = args.input
    res["models"] = {k: v for k, v in (("lgatr", args.model), ("plain", args.plain)) if v}
    res["parameters"] = {k: int(v.count_params()) for k, v in nets.items()}
    res["training"] = lgatr_report.training_summaries(res["models"])
    res["calibration"] = lgatr_report.calibrations(res["models"])
    os.makedirs(args.out, exist_ok=True)
    io.write_events(
        os.path.join(args.out, "predictions.root"), prediction_columns(tops, obs, analytic)
    )
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(res, f, indent=2)
    plots = lgatr_report.plots(obs, args.out)
    lgatr_report.model_card(res, args, plots, os.path.join(args.out, "README.md"))
    print(f"{n} events; wrote {args.out}/predictions.root, metrics.json, plots and README.md")


if __name__ == "__main__":
    main()
