"""`python -m evaluate.partau`: MultiParTau, SingleParTau and the HPS-like baseline on test jets.

Writes DIR/metrics.json (per method: auc, fake_rate_at_eff60 (background-jet efficiency at 60%
tau efficiency), dm_accuracy, charge_misid, pt_resolution and more), PNG plots and
DIR/predictions.root: an `Events` tree with one entry per input entry (input files in the order
given) whose `Jet_*` branches are aligned jet by jet with the input `Jet_*` collection.

Example:
    python -m evaluate.partau --model saved_models/partau/partau_multi.keras \
        --model saved_models/partau/partau_single_tau_id.keras \
        --input cache/fcctau_test/ztautau_seed901.root cache/fcctau_test/zqq_seed902.root \
        --out saved_models/partau
"""

import argparse
import json
import os

import numpy as np

from data import checks, schemas
from data.errors import UserError, cli
from evaluate import partau_metrics as pm

TASKS = ("tau_id", "charge", "decay_mode", "kinematics")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.partau", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--model",
        action="append",
        default=None,
        help="a trained .keras file (repeat for several; default saved_models/partau/"
        "partau_multi.keras)",
    )
    p.add_argument("--input", nargs="+", required=True, help="ROOT files with generator truth")
    p.add_argument("--out", default="evaluation/partau")
    p.add_argument("--batch-size", type=int, default=2048)
    schemas.add_arguments(p, mapping=False)
    return p.parse_args(argv)


def method_name(path):
    """`partau_multi.keras` -> `multi`, `partau_single_tau_id.keras` -> `single_tau_id`."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem[len("partau_") :] if stem.startswith("partau_") else stem


def raw_outputs(model, inputs, batch_size=2048):
    """Dict task -> raw model outputs, for a multi-task (dict outputs) or single-task model."""
    names = list(model.output_names)
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise UserError(f"model outputs {unknown} are not ParTau tasks {TASKS}")
    feed = {k: inputs[k] for k in ("features", "fourvectors", "mask")}
    out = model.predict(feed, batch_size=batch_size, verbose=0)
    if not isinstance(out, dict):
        out = dict(zip(names, out if isinstance(out, (list, tuple)) else [out]))
    return {k: np.asarray(v) for k, v in out.items()}


def interpret(raw, jets):
    """Per-jet predictions from raw outputs: score, charge (+1/-1), decay_mode, kinematics."""
    out = {}
    if "tau_id" in raw:
        z = raw["tau_id"].astype(np.float64)
        out["score"] = 1.0 / (1.0 + np.exp(z[:, 0] - z[:, 1]))  # softmax of the tau class
    if "charge" in raw:
        out["charge"] = np.where(raw["charge"].reshape(-1) > 0, 1, -1)
    if "decay_mode" in raw:
        out["decay_mode"] = raw["decay_mode"].argmax(1)
    if "kinematics" in raw:
        out["p4"] = pm.kinematics_from_regression(raw["kinematics"].astype(np.float64), jets)
    return out


def hps_predictions(data):
    from evaluate.baselines import hps

    fv = data["inputs"]["fourvectors"].astype(np.float64)
    x = data["inputs"]["features"]
    pdg = np.select([x[..., k] > 0.5 for k in range(8, 13)], [11, 13, 22, 211, 130], 0)
    j = data["jets"]
    jet_p4 = np.stack(
        [
            j["pt"] * np.cos(j["phi"]),
            j["pt"] * np.sin(j["phi"]),
            j["pt"] * np.sinh(j["eta"]),
            j["energy"],
        ],
        1,
    )
    mask = data["inputs"]["mask"]
    r = hps.reconstruct(fv, x[..., 7].astype(int), pdg, mask, jet_p4)
    t = r["tau_p4"]
    pt = np.hypot(t[:, 0], t[:, 1])
    p4 = dict(
        pt=pt, eta=np.arcsinh(t[:, 2] / np.maximum(pt, 1e-9)), phi=np.arctan2(t[:, 1], t[:, 0])
    )
    qk = hps.jet_charge(fv, x[..., 7], mask, jet_p4)
    return (
        dict(score=r["score"], charge=r["charge"], decay_mode=r["decay_mode"], p4=p4),
        np.where(qk >= 0, 1, -1),
    )


def evaluate(data, predictions, jet_charge):
    """metrics.json content: one block per method plus the reco jet and the jet charge."""
    t = data["targets"]
    lep = data["truth"]["decay_mode_code"] == 16
    keep = ~lep
    is_tau = t["tau_id"][keep] == 1
    dm_true = t["decay_mode"][keep]
    q_true = np.where(data["truth"]["tau_charge"] > 0, 1, -1)[keep]
    gen = {k: data["truth"][f"vis_{k}"][keep] for k in ("pt", "eta", "phi")}
    out = {}
    for name, p in predictions.items():
        out[name] = pm.tau_metrics(
            is_tau=is_tau,
            score=p["score"][keep] if "score" in p else None,
            dm_true=dm_true,
            dm_pred=p["decay_mode"][keep] if "decay_mode" in p else None,
            q_true=q_true,
            q_pred=p["charge"][keep] if "charge" in p else None,
            p4={k: v[keep] for k, v in p["p4"].items()} if "p4" in p else None,
            gen=gen,
        )
    jets = {k: data["jets"][k][keep] for k in ("pt", "eta", "phi")}
    out["reco_jet"] = pm.tau_metrics(is_tau=is_tau, p4=jets, gen=gen)
    out["jet_charge"] = pm.tau_metrics(is_tau=is_tau, q_true=q_true, q_pred=jet_charge[keep])
    out["jets"] = {
        "tau": int(is_tau.sum()),
        "background": int((~is_tau).sum()),
        "leptonic_tau_excluded": int(lep.sum()),
        "tau_per_class": np.bincount(dm_true[is_tau], minlength=6).tolist(),
    }
    return out


def write_predictions(path, data, predictions):
    """Per-jet predictions as jagged `Jet_<method>_*` branches aligned with the input."""
    import awkward as ak

    from data import io

    entry = data["jets"]["entry"]
    n_entries = data["n_entries"]
    counts = np.bincount(entry, minlength=n_entries)
    fields = {}
    for name, p in predictions.items():
        if "score" in p:
            fields[f"{name}_tauScore"] = p["score"].astype(np.float32)
        if "charge" in p:
            fields[f"{name}_charge"] = p["charge"].astype(np.int32)
        if "decay_mode" in p:
            fields[f"{name}_decayMode"] = p["decay_mode"].astype(np.int32)
        if "p4" in p:
            for k in ("pt", "eta", "phi"):
                fields[f"{name}_{k}"] = p["p4"][k].astype(np.float32)
    io.write_events(
        path,
        {"Jet": {k: ak.unflatten(v, counts) for k, v in fields.items()}},
    )


@cli
def main(argv=None):
    args = parse_args(argv)
    checks.positive(args.batch_size, "--batch-size")
    models = args.model or ["saved_models/partau/partau_multi.keras"]
    for path in models:
        checks.model_file(path, "ParTau")
    checks.writable_dir(args.out)
    from data import io, partau
    from models.training import load_trained

    paths = io.expand_paths(args.input)
    schemas.only_own_files(args.schema, "ParTau", paths[0])
    data = partau.load(paths, keep_leptonic=True)
    data["n_entries"] = sum(io.num_entries(p) for p in paths)
    predictions, names = {}, [method_name(m) for m in models]
    if len(set(names)) != len(names):
        raise UserError(f"two models share a name: {names}")
    for name, path in zip(names, models):
        model = load_trained(path, "ParTau")
        raw = raw_outputs(model, data["inputs"], args.batch_size)
        predictions[name] = interpret(raw, data["jets"])
    predictions["hps"], jet_charge = hps_predictions(data)
    metrics = evaluate(data, predictions, jet_charge)
    metrics["inputs"] = paths
    metrics["models"] = dict(zip(names, models))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    write_predictions(os.path.join(args.out, "predictions.root"), data, predictions)
    from evaluate import partau_plots

    partau_plots.plot_all(args.out, data, predictions, metrics)
    _print_summary(metrics, list(predictions))


def _print_summary(metrics, methods):
    keys = ("auc", "fake_rate_at_eff60", "dm_accuracy", "charge_misid", "pt_resolution")
    print(f"{'method':>22} " + " ".join(f"{k:>18}" for k in keys))
    for m in [*methods, "reco_jet", "jet_charge"]:
        row = metrics[m]
        print(
            f"{m:>22} "
            + " ".join(
                f"{row[k]:>18.4f}" if isinstance(row.get(k), float) else f"{'-':>18}" for k in keys
            )
        )


if __name__ == "__main__":
    main()
