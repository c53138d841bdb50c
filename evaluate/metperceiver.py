"""`python -m evaluate.metperceiver`: the MET Perceiver against PUPPI MET, PF MET and DeepMET.

Reads held-out PU200 events (data/generate/ttbar_pu.py or ntuples with the same branches) in
chunks, predicts MET with the Perceiver and (if given) the DeepMET-style model, rebuilds PF MET
and PUPPI MET from the candidates (evaluate/baselines/puppi_met.py), and writes DIR/metrics.json
(per method `perceiver`, `puppi`, `pf`, `deepmet`: bias_x, res_x, res_para, res_perp, ... in GeV,
overall, versus generated MET and versus pileup vertices) and plots.

Example:
    python -m evaluate.metperceiver --model saved_models/metperceiver/metperceiver.keras \\
        --deepmet saved_models/metperceiver/deepmet.keras \\
        --input 'cache/ttbarpu_test/test.manifest.json' --out evaluation/metperceiver
"""

import argparse
import json
import os
import sys

import numpy as np

from data import checks, schemas
from data.errors import UserError, cli

DEFAULT_MODEL = "saved_models/metperceiver/metperceiver.keras"
DEFAULT_DEEPMET = "saved_models/metperceiver/deepmet.keras"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.metperceiver", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="the Perceiver .keras file")
    p.add_argument(
        "--deepmet",
        default=None,
        help=f"the DeepMET .keras file (default {DEFAULT_DEEPMET} if it exists; 'none' to skip)",
    )
    p.add_argument("--input", nargs="+", required=True, help="ROOT files, globs or manifests")
    p.add_argument("--out", default="evaluation/metperceiver", help="output folder")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--chunk-events", type=int, default=2000, help="events read at a time")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    schemas.add_arguments(p, mapping=False)
    return p.parse_args(argv)


def _model_spec(model):
    """(max_cands, n_features) of a MET model's `cands` input."""
    shape = model.input["cands"].shape if isinstance(model.input, dict) else None
    if shape is None or len(shape) != 3:
        raise UserError(f"{model.name} is not a MET model (no 'cands' input)")
    return int(shape[1]), int(shape[2])


def predict_chunk(models, path, entries, batch_size):
    """MET (n, 2) of every model on one chunk; the candidates are read once per `max_cands`
    (every model's features are a prefix of `DEEPMET_FEATURES`)."""
    from data import metperceiver as dm

    specs = {name: _model_spec(m) for name, m in models.items()}
    out = {}
    for max_cands in sorted({c for c, _ in specs.values()}):
        names = [n for n, (c, _) in specs.items() if c == max_cands]
        n_feat = max(specs[n][1] for n in names)
        d = dm.load(
            path,
            features=dm.DEEPMET_FEATURES[:n_feat],
            max_cands=max_cands,
            entries=entries,
            with_truth=False,
        )
        for name in names:
            x = {"cands": d["cands"][..., : specs[name][1]], "mask": d["mask"]}
            pred = models[name].predict(x, batch_size=batch_size, verbose=0)
            if "met" not in pred:
                raise UserError(f"{models[name].name} has no 'met' output")
            out[name] = np.asarray(pred["met"], np.float64)
    return out


def baseline_chunk(path, entries):
    """Generated MET, PF MET, PUPPI MET (n, 2) and nPU of a chunk."""
    import awkward as ak

    from data import io
    from evaluate.baselines.puppi_met import pf_met, puppi_met

    b = ("PFCand_px", "PFCand_py", "PFCand_puppiWeight", "GenMET_pt", "GenMET_phi", "nPU")
    a = io.read_branches(path, b, entries=entries)
    counts = ak.to_numpy(ak.num(a["PFCand_px"]))
    px, py = (ak.to_numpy(ak.flatten(a[k])).astype(np.float64) for k in b[:2])
    w = ak.to_numpy(ak.flatten(a["PFCand_puppiWeight"]))
    pt, phi = ak.to_numpy(a["GenMET_pt"]), ak.to_numpy(a["GenMET_phi"])
    gen = np.stack([pt * np.cos(phi), pt * np.sin(phi)], axis=1)
    return gen, pf_met(px, py, counts), puppi_met(px, py, w, counts), ak.to_numpy(a["nPU"])


def run(models, paths, chunk_events, batch_size, progress=True):
    """Predictions of every method over all events: (dict name -> (n, 2), gen (n, 2), nPU)."""
    from tqdm import tqdm

    from data import stream

    chunks = stream.make_chunks(paths, chunk_events)
    parts = {name: [] for name in ("pf", "puppi", *models)}
    gens, npus = [], []
    for c in tqdm(chunks, desc="evaluate", unit="chunk", disable=not progress, file=sys.stderr):
        gen, pf, pu, npu = baseline_chunk(c.path, (c.start, c.stop))
        gens.append(gen), npus.append(npu)
        parts["pf"].append(pf), parts["puppi"].append(pu)
        for name, met in predict_chunk(models, c.path, (c.start, c.stop), batch_size).items():
            parts[name].append(met)
    preds = {k: np.concatenate(v) for k, v in parts.items()}
    return preds, np.concatenate(gens), np.concatenate(npus)


@cli
def main(argv=None):
    args = parse_args(argv)
    if args.batch_size <= 0 or args.chunk_events <= 0:
        raise UserError("--batch-size and --chunk-events must be positive")
    deepmet = args.deepmet
    if deepmet is None and os.path.exists(DEFAULT_DEEPMET):
        deepmet = DEFAULT_DEEPMET
    checks.model_file(args.model, "MET Perceiver")
    if deepmet and deepmet != "none":
        checks.model_file(deepmet, "DeepMET", "--deepmet")
    checks.writable_dir(args.out)
    from data import io
    from models.training import load_trained

    paths = io.expand_paths(args.input)
    schemas.only_own_files(args.schema, "the MET Perceiver", paths[0])
    import models as _models  # noqa: F401  registers the toolkit's classes

    models = {"perceiver": load_trained(args.model, "MET Perceiver")}
    if deepmet and deepmet != "none":
        models["deepmet"] = load_trained(deepmet, "DeepMET")
    for m in models.values():
        _model_spec(m)
    preds, gen, npu = run(models, paths, args.chunk_events, args.batch_size, not args.quiet)
    from evaluate.metperceiver_metrics import evaluate

    metrics = evaluate(preds, gen, npu)
    metrics["inputs"] = paths
    metrics["input_args"] = args.input
    metrics["models"] = {
        "perceiver": args.model,
        **({"deepmet": deepmet} if "deepmet" in models else {}),
    }
    metrics["events"] = int(len(gen))
    metrics["mean_npu"] = float(np.mean(npu))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    from evaluate import metperceiver_plots

    metperceiver_plots.plot_all(args.out, preds, gen, npu, metrics)
    _print_summary(metrics, list(preds))


def _print_summary(metrics, methods):
    keys = ("bias_x", "res_x", "bias_para", "res_para", "res_perp")
    print(f"{'method':>10} " + " ".join(f"{k:>10}" for k in keys) + "   (GeV)")
    for m in methods:
        print(f"{m:>10} " + " ".join(f"{metrics[m][k]:>10.2f}" for k in keys))


if __name__ == "__main__":
    main()
