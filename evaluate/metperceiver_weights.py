"""`python -m evaluate.metperceiver_weights`: what a MET model does with the pileup.

For generated PU200 events (they carry the truth flag `PFCand_fromPU`) it prints, per class of
candidate (charged / neutral x hard scatter / pileup), the scalar pT per event and the pT-weighted
mean weight that the model's per-candidate output gives it, and, next to the model's MET, the
MET of reference weightings of the same candidates: all (PF), PUPPI, the truth (1 for the hard
scatter, 0 for pileup) and vertexing for the charged with the truth for the neutrals. The
weights come from the layer named `decoder` (Perceiver, weights decoder) or `weight` (DeepMET).

Example:
    python -m evaluate.metperceiver_weights --model saved_models/metperceiver/metperceiver.keras \\
        --input cache/ttbarpu_test/test_0000.root --events 200
"""

import argparse
import json

import numpy as np

from data import checks
from data.errors import UserError, cli

WEIGHT_LAYERS = ("decoder", "weight")  # the per-candidate weights of the Perceiver / DeepMET
EXPECTED = ("MET Perceiver", "DeepMET")
CLASSES = ("charged hs", "charged pu", "neutral hs", "neutral pu")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.metperceiver_weights", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", required=True, help="a MET Perceiver (weights decoder) or DeepMET")
    p.add_argument(
        "--input",
        nargs="+",
        required=True,
        help="generated PU200 ROOT files (globs, manifests); the events are read from the first",
    )
    p.add_argument("--events", type=int, default=200, help="events read (default 200)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--json", default=None, help="also write the figures to this file")
    return p.parse_args(argv)


def class_masks(cands, mask, hs):
    """Boolean (n, N) masks of the four candidate classes (`CLASSES` order)."""
    charged = cands[..., 4] > 0
    return dict(
        zip(
            CLASSES,
            (
                charged & (hs > 0),
                charged & (hs == 0) & mask,
                ~charged & (hs > 0),
                ~charged & (hs == 0) & mask,
            ),
        )
    )


def weight_table(cands, mask, hs, weights):
    """Per class: events-averaged scalar pT (GeV) and pT-weighted mean weight."""
    pt = np.hypot(cands[..., 0], cands[..., 1]) * mask
    out = {}
    for name, sel in class_masks(cands, mask, hs).items():
        total = float(pt[sel].sum())
        out[name] = {
            "pt_per_event": total / len(cands),
            "weight_pt_mean": float((weights[sel] * pt[sel]).sum() / total) if total else np.nan,
        }
    return out


def reference_mets(cands, mask, hs, puppi):
    """MET (n, 2) of reference weightings of the candidates (see the module doc)."""
    from data.metperceiver import met_of

    charged = cands[..., 4] > 0
    vertexed = charged & (cands[..., 3] == 0)  # charged from the primary vertex
    ways = {
        "pf": np.ones_like(hs),
        "puppi": puppi,
        "truth": hs,
        "vertexing + neutral truth": np.where(charged, vertexed, hs),
    }
    return {name: met_of(cands * w[..., None], mask) for name, w in ways.items()}


def run(model, paths, events, batch_size):
    import keras

    from data import metperceiver as dm
    from evaluate.metperceiver_metrics import summary

    names = {x.name for x in model.layers}
    layer = next((n for n in WEIGHT_LAYERS if n in names), None)
    if layer is None:
        raise UserError(f"{model.name} has no per-candidate weights (no layer {WEIGHT_LAYERS})")
    n_feat = int(model.input["cands"].shape[-1])
    max_cands = int(model.input["cands"].shape[1])
    d = dm.load(
        paths[0],
        features=dm.DEEPMET_FEATURES,
        max_cands=max_cands,
        entries=(0, events),
        with_hs=True,
    )
    x = {"cands": d["cands"][..., :n_feat], "mask": d["mask"]}
    sub = keras.Model(model.input, {"w": model.get_layer(layer).output, "met": model.output["met"]})
    pred = sub.predict(x, batch_size=batch_size, verbose=0)
    w = np.reshape(np.asarray(pred["w"]), d["mask"].shape)
    puppi = d["cands"][..., dm.DEEPMET_FEATURES.index("puppiWeight")]
    mets = {"model": np.asarray(pred["met"], np.float64)}
    mets.update(reference_mets(d["cands"], d["mask"], d["hs"], puppi))
    return {
        "events": len(w),
        "weights": weight_table(d["cands"], d["mask"], d["hs"], w),
        "met": {k: summary(v, d["met_gen"].astype(np.float64)) for k, v in mets.items()},
    }


def report(res):
    lines = [f"{res['events']} events; pT-weighted mean weight of the model per candidate class"]
    lines.append(f"{'class':12s} {'pT/event [GeV]':>15s} {'weight':>8s}")
    for name, r in res["weights"].items():
        lines.append(f"{name:12s} {r['pt_per_event']:15.1f} {r['weight_pt_mean']:8.3f}")
    lines.append("")
    lines.append(f"{'MET':26s} {'bias_x':>7s} {'res_x':>7s} {'bias_para':>9s} {'res_para':>8s}")
    for name, s in res["met"].items():
        lines.append(
            f"{name:26s} {s['bias_x']:7.2f} {s['res_x']:7.2f} {s['bias_para']:9.2f} "
            f"{s['res_para']:8.2f}"
        )
    return "\n".join(lines)


@cli
def main(argv=None):
    args = parse_args(argv)
    checks.positive(args.events, "--events")
    checks.positive(args.batch_size, "--batch-size")
    checks.model_file(args.model, EXPECTED)
    from data import io
    from models.training import load_trained

    paths = io.expand_paths(args.input)
    import models  # noqa: F401  registers the toolkit's classes

    models.register()
    res = run(load_trained(args.model, EXPECTED), paths, args.events, args.batch_size)
    print(report(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
