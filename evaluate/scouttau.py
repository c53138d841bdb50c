"""`python -m evaluate.scouttau`: soft-tau ID at Level-1 against the NNPuppiTau-like baseline.

    python -m evaluate.scouttau --model saved_models/scouttau/scouttau.keras \
        --input 'cache/scouttau_test/lowmass.manifest.json' \
        --zerobias 'cache/scouttau_test/zerobias.manifest.json' --out saved_models/scouttau \
        [--baseline saved_models/scouttau/nnpuppitau.keras] \
        [--tune-input FILES --tune-zerobias FILES]

Writes DIR/metrics.json and plots. For the transformer (CLUE candidates) and the baseline
(seeded-cone candidates): `ditau_eff_at_50khz`, `eff_vis_pt_5_20` and `working_point` (see
`evaluate.scouttau_metrics`). With --tune-input/--tune-zerobias the working point is chosen on
those samples and measured on --input/--zerobias (the honest figure); without them it is chosen
and measured on the same events. Also: the reconstruction efficiency and fake candidates of
CLUE, anti-kT and the seeded cone (no ID), ID efficiency versus visible tau pT, the pT
regression, the charge and the pileup flags.
"""

import argparse
import json
import os
import sys

import numpy as np

from data import checks, schemas
from data.errors import UserError, cli
from evaluate import scouttau_metrics as sm

PT_BINS = (5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 60.0, 100.0)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.scouttau", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", required=True, help="ScoutTau transformer .keras")
    p.add_argument(
        "--baseline",
        default=None,
        help="NNPuppiTau-like .keras (default: nnpuppitau.keras next to --model)",
    )
    p.add_argument("--input", nargs="+", required=True, help="signal (lowmass) ROOT files")
    p.add_argument("--zerobias", nargs="+", required=True, help="zero-bias ROOT files")
    p.add_argument("--tune-input", nargs="+", default=None, help="signal files for the WP search")
    p.add_argument("--tune-zerobias", nargs="+", default=None, help="zero-bias files for the WP")
    p.add_argument("--clustering", default="clue", choices=("clue", "antikt"))
    p.add_argument(
        "--inputs",
        default=None,
        choices=("puppi", "pf"),
        help="the transformer's inputs (default: from its run_config.json, else puppi)",
    )
    p.add_argument(
        "--score-floor",
        type=float,
        default=0.5,
        help="zero-bias candidates below this score never enter a pair (speed; the chosen "
        "score cut must lie above it)",
    )
    p.add_argument("--target-khz", type=float, default=sm.TARGET_KHZ)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-plots", action="store_true")
    schemas.add_arguments(p, mapping=False)
    return p.parse_args(argv)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def transformer_candidates(model, files, *, clustering, inputs, with_truth=True):
    """CLUE candidates of `files` with the transformer's outputs: score, charge (signed score
    2 p(tau+) - 1), pt_reg (GeV), vz, event and, with truth, the matching."""
    from data import scouttau

    d = scouttau.load(files, clustering=clustering, with_truth=with_truth, inputs=inputs)
    n = len(d["cands"]["pt"])
    out = {
        "event": d["cands"]["event"],
        "vz": d["cands"]["vz"],
        "pt": d["cands"]["pt"],
        "n_events": d["n_events"],
    }
    if n:
        y = model.predict(
            {"constituents": d["constituents"], "mask": d["mask"]}, batch_size=4096, verbose=0
        )
        out["score"] = sigmoid(y["tau_id"][:, 0])
        out["charge"] = 2.0 * sigmoid(y["charge"][:, 0]) - 1.0
        out["pt_reg"] = d["cands"]["pt"] * np.exp(y["pt"][:, 0])
        out["pu_score"] = sigmoid(y["pileup"])
    else:
        out.update(score=np.zeros(0), charge=np.zeros(0), pt_reg=np.zeros(0))
    if with_truth:
        out.update(_truth(d), mask=d["mask"], constituent_pu=d["constituent_pu"])
    return out


def _truth(d):
    return {k: d[k] for k in ("is_tau", "tau_charge", "tau_vis_pt", "gen_taus")}


def baseline_candidates(model, files, with_truth=True):
    """Seeded-cone candidates with the NNPuppiTau-like score; charge: the sign of the core's
    charge sum; vz: the seed track's z0."""
    from data import nnpuppitau, scouttau

    arrays = scouttau.read(files, with_truth=with_truth)
    d = nnpuppitau.nnpuppitau_candidates(arrays)
    n = len(d["pt"])
    score = (
        sigmoid(model.predict(d["inputs"], batch_size=4096, verbose=0)[:, 0]) if n else np.zeros(0)
    )
    out = {
        "event": d["event"],
        "vz": d["z0"],
        "pt": d["pt"],
        "score": score,
        "charge": np.sign(d["charge"]).astype(np.float64),
        "n_events": len(arrays["PV_z"]),
    }
    if with_truth:
        out.update(_truth(d))
    return out


def _pairs_sets(sig, zb, floor):
    sig_p, n_sig = sm.signal_pairs(
        sig["gen_taus"], sig["event"], sig["score"], sig["charge"], sig["vz"], sig["n_events"]
    )
    k = zb["score"] > floor
    zb_p = sm.pairs(zb["event"][k], zb["score"][k], zb["charge"][k], zb["vz"][k])
    return sig_p, n_sig, zb_p, zb["n_events"]


def method_metrics(test_sig, test_zb, tune=None, target_khz=sm.TARGET_KHZ, floor=0.5):
    """WP search (on `tune` = (sig, zb) when given, else on the test samples) and the test
    figures at that WP."""
    sig_p, n_sig, zb_p, n_zb = _pairs_sets(test_sig, test_zb, floor)
    if tune is not None:
        t_sig_p, t_n_sig, t_zb_p, t_n_zb = _pairs_sets(*tune, floor)
    else:
        t_sig_p, t_n_sig, t_zb_p, t_n_zb = sig_p, n_sig, zb_p, n_zb
    search = sm.grid_search(t_zb_p, t_n_zb, t_sig_p, t_n_sig, target_khz=target_khz, floor=floor)
    wp = {k: search[k] for k in ("score_cut", "charge_cut", "dvz_cut")}
    test = sm.apply_wp(wp, zb_p, n_zb, sig_p, n_sig)
    # for comparison at exactly the target rate: the same charge / dvz cuts, the score cut
    # re-chosen on the test zero bias (optimistic, the honest figure is the one above)
    emax = sm.event_max_score(zb_p, n_zb, wp["charge_cut"], wp["dvz_cut"])
    matched_cut = sm.score_cut_for_rate(emax, target_khz, floor)
    matched = sm.ditau_efficiency(sig_p, n_sig, matched_cut, wp["charge_cut"], wp["dvz_cut"])
    taus = test_sig["gen_taus"]
    eff_5_20 = sm.single_tau_efficiency(
        taus, test_sig["score"], test_sig["charge"], wp, (5.0, 20.0)
    )
    out = {
        "ditau_eff_at_50khz": test["efficiency"],
        "eff_vis_pt_5_20": eff_5_20[0]["fraction"],
        "working_point": {**wp, "dvz_cut": _json_float(wp["dvz_cut"])},
        "rate_khz": test["rate_khz"],
        "ditau_eff_rate_matched": matched,
        "rate_matched_score_cut": matched_cut,
        "score_floor": floor,
        "floor_binding": bool(search["score_cut"] <= floor),
        "wp_chosen_on": "tune samples" if tune is not None else "test samples",
        "tune_efficiency": search["efficiency"],
        "tune_rate_khz": search["rate_khz"],
        "ditau_denominator_events": n_sig,
        "eff_vs_vis_pt": sm.single_tau_efficiency(
            taus, test_sig["score"], test_sig["charge"], wp, PT_BINS
        ),
        "grid": [{**g, "dvz_cut": _json_float(g["dvz_cut"])} for g in search["grid"]],
    }
    from evaluate.metrics import auc

    if test_sig["is_tau"].any() and (~test_sig["is_tau"]).any():
        out["auc"] = float(auc(test_sig["score"], test_sig["is_tau"]))
    hit = test_sig["is_tau"]
    if hit.any():
        right = np.sign(test_sig["charge"][hit]) == np.sign(test_sig["tau_charge"][hit])
        out["charge_misid"] = float(1.0 - right.mean())
    return out


def _json_float(x):
    return None if x is None or not np.isfinite(x) else float(x)


RECO_KEYS = {("clue", "puppi"): "clue", ("antikt", "puppi"): "antikt", ("clue", "pf"): "clue_pf"}


def reco_metrics(sig, zb):
    """No-ID candidates of one clustering (signal and zero-bias candidate dicts with event,
    n_events and, for the signal, is_tau and gen_taus): efficiency per visible-pT bin, fake
    candidates per signal event, candidates per zero-bias event."""
    taus = sig["gen_taus"]
    ok = np.asarray(taus["matched"]) >= 0
    return {
        "eff_vs_vis_pt": sm.binned_fraction(taus, ok, PT_BINS),
        "eff_vis_pt_5_20": sm.binned_fraction(taus, ok, (5.0, 20.0))[0]["fraction"],
        "fakes_per_event": float((~sig["is_tau"]).sum()) / max(sig["n_events"], 1),
        "zerobias_cands_per_event": len(zb["event"]) / max(zb["n_events"], 1),
    }


def clustered(files, clustering, inputs, with_truth=True):
    """Unscored candidates of `data.scouttau.load` in the form `reco_metrics` takes."""
    from data import scouttau

    d = scouttau.load(files, clustering=clustering, inputs=inputs, with_truth=with_truth)
    out = {"event": d["cands"]["event"], "n_events": d["n_events"]}
    if with_truth:
        out.update(_truth(d))
    return out


def regression_metrics(sig):
    """pT response of matched taus: raw candidate pT and the transformer's regressed pT."""
    from evaluate.metrics import quantile_resolution

    hit = sig["is_tau"]
    true = sig["tau_vis_pt"][hit]
    out = {}
    for name, pred in (("raw", sig["pt"][hit]), ("regressed", sig["pt_reg"][hit])):
        r = pred / true
        out[name] = {
            "median_response": float(np.median(r)),
            "resolution": float(quantile_resolution(r) / np.median(r)),
        }
    m = sig["mask"]
    from evaluate.metrics import auc

    pu = sig["constituent_pu"][m]
    if pu.any() and (~pu).any():
        out["pileup_flag_auc"] = float(auc(sig["pu_score"][m], pu))
        out["pileup_fraction_of_constituents"] = float(pu.mean())
    return out


def _run_inputs(model_path):
    """The --inputs a model was trained with (its run_config.json), "puppi" if unknown."""
    stem = os.path.splitext(os.path.basename(model_path))[0]
    path = os.path.join(os.path.dirname(model_path), stem, "run_config.json")
    try:
        with open(path) as f:
            return json.load(f)["args"].get("inputs", "puppi")
    except (OSError, ValueError, KeyError):
        return "puppi"


def main_impl(args):
    from data import io
    from models.training import load_trained

    if (args.tune_input is None) != (args.tune_zerobias is None):
        raise UserError("give both --tune-input and --tune-zerobias, or neither")
    if not args.target_khz > 0:
        raise UserError(f"--target-khz must be positive, got {args.target_khz}")
    baseline_path = args.baseline or os.path.join(
        os.path.dirname(args.model) or ".", "nnpuppitau.keras"
    )
    files = {k: io.expand_paths(getattr(args, k)) for k in ("input", "zerobias")}
    schemas.only_own_files(args.schema, "ScoutTau", files["input"][0])
    tune_files = None
    if args.tune_input:
        tune_files = {
            "input": io.expand_paths(args.tune_input),
            "zerobias": io.expand_paths(args.tune_zerobias),
        }
    for group in (files, tune_files or {}):
        for path in {p for paths in group.values() for p in paths}:
            io.num_entries(path)  # a missing or broken file is named before minutes of work
    model = load_trained(args.model, "ScoutTau")
    baseline = load_trained(baseline_path, "NNPuppiTau")
    print("scoring the transformer's candidates", file=sys.stderr)
    inputs = args.inputs or _run_inputs(args.model)
    how = {"clustering": args.clustering, "inputs": inputs}
    tr_sig = transformer_candidates(model, files["input"], **how)
    tr_zb = transformer_candidates(model, files["zerobias"], **how, with_truth=False)
    print("scoring the baseline's candidates", file=sys.stderr)
    nn_sig = baseline_candidates(baseline, files["input"])
    nn_zb = baseline_candidates(baseline, files["zerobias"], with_truth=False)
    tr_tune = nn_tune = None
    if tune_files:
        tr_tune = (
            transformer_candidates(model, tune_files["input"], **how),
            transformer_candidates(model, tune_files["zerobias"], **how, with_truth=False),
        )
        nn_tune = (
            baseline_candidates(baseline, tune_files["input"]),
            baseline_candidates(baseline, tune_files["zerobias"], with_truth=False),
        )
    metrics = {
        "transformer": method_metrics(tr_sig, tr_zb, tr_tune, args.target_khz, args.score_floor),
        "nnpuppitau": method_metrics(nn_sig, nn_zb, nn_tune, args.target_khz, args.score_floor),
        "transformer_inputs": inputs,
        "regression": regression_metrics(tr_sig),
        "signal_events": int(tr_sig["n_events"]),
        "zerobias_events": int(tr_zb["n_events"]),
        "target_khz": args.target_khz,
        "zero_bias_khz": sm.ZERO_BIAS_KHZ,
        "clustering": args.clustering,
        "inputs": files,
        "tune_inputs": tune_files,
        "model": args.model,
        "baseline": baseline_path,
    }
    print("clustering without ID: CLUE, anti-kT, seeded cone, CLUE on PF", file=sys.stderr)
    # the scored candidates serve again; only the other clusterings are read anew
    metrics["reco"] = {"seeded_cone": reco_metrics(nn_sig, nn_zb)}
    for (clustering, inp), key in RECO_KEYS.items():
        if (clustering, inp) == (args.clustering, inputs):
            metrics["reco"][key] = reco_metrics(tr_sig, tr_zb)
        else:
            sig = clustered(files["input"], clustering, inp)
            zb = clustered(files["zerobias"], clustering, inp, with_truth=False)
            metrics["reco"][key] = reco_metrics(sig, zb)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    if not args.no_plots:
        from evaluate.scouttau_plots import plot_all

        plot_all(metrics, args.out)
    for name in ("transformer", "nnpuppitau"):
        m = metrics[name]
        print(
            f"{name}: di-tau eff at {args.target_khz:g} kHz {m['ditau_eff_at_50khz']:.3f} "
            f"(test rate {m['rate_khz']:.1f} kHz), eff 5-20 GeV {m['eff_vis_pt_5_20']:.3f}, "
            f"WP {m['working_point']}"
        )
    print(f"wrote {os.path.join(args.out, 'metrics.json')}")
    return metrics


def check_args(args):
    """Argument checks that need no data and no backend (run before any work)."""
    if (args.tune_input is None) != (args.tune_zerobias is None):
        raise UserError("give both --tune-input and --tune-zerobias, or neither")
    if not args.target_khz > 0:
        raise UserError(f"--target-khz must be positive, got {args.target_khz}")
    checks.model_file(args.model, "ScoutTau")
    if args.baseline is not None:
        checks.model_file(args.baseline, "NNPuppiTau", "--baseline")
    checks.writable_dir(args.out)


@cli
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    import models  # noqa: F401  registers the toolkit's classes

    main_impl(args)


if __name__ == "__main__":
    main()
