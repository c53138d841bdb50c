"""A model's predictions as a friend tree: one entry per entry of the input `Events` trees.

    python -m evaluate.predict saved_models/tpmt/tpmt.keras --input events.root --out friend.root

The output `Events` tree has exactly as many entries as the input files together (in the order
given), so it can be read as a ROOT friend tree or merged with the input in uproot
(arrays of the two trees side by side). Branches by model (the `.keras` file says which
model it holds):

- TPMT: `m_tpmt`, `m_tpmt_q16`, `m_tpmt_q84`, `tau1_pt_tpmt`, `tau2_pt_tpmt`, `tpmt_selected`.
- L-GATr / plain transformer (P = `lgatr` / `plain`): `P_top_{pt,y,phi,mass}`,
  `P_antitop_{pt,y,phi,mass}`, `P_m_tt`, `P_selected`.
- MET Perceiver / DeepMET-style (P = `met_perceiver` / `deepmet`): `P_pt`, `P_phi`.
- ParTau (multi- or single-task), per jet of the input's Jet collection: `nPartauJet` (= `nJet`)
  and `PartauJet_{tau_score, charge, decay_mode, pt, eta, phi, mass}` for the model's tasks.
- ScoutTau / NNPuppiTau-like, per L1 candidate: `nScoutTau` / `nNNPuppiTau` and
  `_{score, pt, eta, phi, charge, vz}` (ScoutTau adds the regressed `_pt_reg`).

`FILL` (-999) marks what has no prediction: an event without a selected tau pair (TPMT) or
lepton pair and two b jets (L-GATr), a jet without candidates (ParTau); the `*_selected`
branches say which events were selected. No row is ever dropped or shifted.
"""

import argparse
import json
import os
import sys

import numpy as np

from data.errors import UserError, cli

FILL = -999.0
CHUNK = {"tpmt": 50_000, "partau": 20_000, "metperceiver": 2_000}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.predict", description=__doc__.split("\n")[0]
    )
    p.add_argument("model", help="a trained .keras file of the toolkit")
    p.add_argument("--input", nargs="+", required=True, help="ROOT files with an Events tree")
    p.add_argument("--out", required=True, help="the friend-tree .root file to write")
    p.add_argument("--batch-size", type=int, default=1024)
    from data import schemas

    schemas.add_arguments(p, working_points=True)
    return p.parse_args(argv)


def kind_of(model):
    """Which of the toolkit's models a loaded Keras model is (from its name)."""
    name = model.name
    if name == "tpmt":
        return "tpmt"
    if name in ("lgatr", "plain_transformer"):
        return "lgatr"
    if name in ("met_perceiver", "deepmet"):
        return "metperceiver"
    if name == "MultiParTau" or name.startswith("SingleParTau"):
        return "partau"
    if name in ("scouttau", "nnpuppitau"):
        return "scouttau"
    raise UserError(f"{name!r} is not one of the toolkit's models; evaluate.predict cannot run it")


def _filled(n, entry, values):
    """(n,) float32 column with `values` at rows `entry`, FILL elsewhere."""
    col = np.full(n, FILL, np.float32)
    col[entry] = values
    return col


def _selected(n, entry):
    col = np.zeros(n, bool)
    col[entry] = True
    return col


def _chunks(n, step):
    return [(s, min(s + step, n)) for s in range(0, n, step)] or [(0, 0)]


def predict_tpmt(model, path, n, batch_size, reading):
    from data import ditau
    from evaluate.tpmt import hypotheses
    from models.tpmt.model import is_parametric, predict_named

    cols = {k: np.full(n, FILL, np.float32) for k in ("m_tpmt", "m_tpmt_q16", "m_tpmt_q84")}
    cols.update(tau1_pt_tpmt=np.full(n, FILL, np.float32), tau2_pt_tpmt=np.full(n, FILL, "f4"))
    cols["tpmt_selected"] = np.zeros(n, bool)
    for entries in _chunks(n, CHUNK["tpmt"]):
        try:
            d = ditau.load(path, entries=entries, **reading)
        except UserError as err:
            if "has a all pair" in str(err) or "no event" in str(err):
                continue  # a chunk without any selected pair: all FILL
            raise
        inputs = d["inputs"]
        if is_parametric(model):
            inputs = {**inputs, "mass_hypothesis": hypotheses(d, "nominal")}
        pred = predict_named(model, inputs, batch_size=batch_size)
        e = d["meta"]["entry"]
        cols["m_tpmt"][e] = pred["m_tautau"]
        for q in ("q16", "q84"):
            if f"m_tautau_{q}" in pred:
                cols[f"m_tpmt_{q}"][e] = pred[f"m_tautau_{q}"]
        cols["tau1_pt_tpmt"][e], cols["tau2_pt_tpmt"][e] = pred["tau1_pt"], pred["tau2_pt"]
        cols["tpmt_selected"][e] = True
    return cols


def predict_lgatr(model, path, n, batch_size, reading):
    from data import lgatr
    from evaluate.lgatr import kinematics

    prefix = "lgatr" if model.name == "lgatr" else "plain"
    try:
        d = lgatr.load(path, **reading)
        tops = np.asarray(model.predict(d["inputs"], batch_size=batch_size, verbose=0)["tops"])
        e = d["meta"]["entry"]
    except UserError as err:
        if "no event" not in str(err):
            raise
        tops, e = np.zeros((0, 2, 4)), np.zeros(0, np.int64)  # nothing selected: all FILL
    cols = {}
    for i, which in enumerate(("top", "antitop")):
        k = kinematics(tops[:, i])
        k["phi"] = np.arctan2(tops[:, i, 1], tops[:, i, 0])
        for q in ("pt", "y", "phi", "mass"):
            cols[f"{prefix}_{which}_{q}"] = _filled(n, e, k[q])
    cols[f"{prefix}_m_tt"] = _filled(n, e, kinematics(tops.sum(1))["mass"])
    cols[f"{prefix}_selected"] = _selected(n, e)
    return cols


def predict_metperceiver(model, path, n, batch_size, reading):
    from evaluate.metperceiver import predict_chunk

    prefix = model.name
    met = np.zeros((n, 2))
    for entries in _chunks(n, CHUNK["metperceiver"]):
        if entries[1] > entries[0]:
            met[slice(*entries)] = predict_chunk({prefix: model}, path, entries, batch_size)[prefix]
    return {
        f"{prefix}_pt": np.hypot(met[:, 0], met[:, 1]).astype(np.float32),
        f"{prefix}_phi": np.arctan2(met[:, 1], met[:, 0]).astype(np.float32),
    }


def predict_partau(model, path, n, batch_size, reading):
    import awkward as ak

    from data import io, partau
    from evaluate.partau import interpret, raw_outputs

    n_jets = np.zeros(n, np.int64)
    fields = {}
    parts = []
    for entries in _chunks(n, CHUNK["partau"]):
        counts = ak.to_numpy(ak.num(io.read_branches(path, ("Jet_pt",), entries=entries)["Jet_pt"]))
        n_jets[slice(*entries)] = counts
        if counts.sum() == 0:
            continue
        d = partau.load(path, with_truth=False, entries=entries)
        pred = interpret(raw_outputs(model, d["inputs"], batch_size), d["jets"])
        row = np.concatenate([[0], np.cumsum(counts)])[d["jets"]["entry"]] + d["jets"]["index"]
        parts.append((int(counts.sum()), row, pred))
    total = int(n_jets.sum())
    offset = 0
    for size, row, pred in parts:
        values = {
            "tau_score": pred.get("score"),
            "charge": pred.get("charge"),
            "decay_mode": pred.get("decay_mode"),
            **({k: pred["p4"][k] for k in ("pt", "eta", "phi", "mass")} if "p4" in pred else {}),
        }
        for k, v in values.items():
            if v is not None:
                fields.setdefault(k, np.full(total, FILL, np.float32))[offset + row] = v
        offset += size
    return {"PartauJet": {k: ak.unflatten(v, n_jets) for k, v in fields.items()}}


def predict_scouttau(model, path, n, batch_size, reading):
    import awkward as ak

    from evaluate import scouttau as es

    if model.name == "nnpuppitau":
        c, collection = es.baseline_candidates(model, [path], with_truth=False), "NNPuppiTau"
        eta_phi = _nnpuppitau_eta_phi(path)
        c.update(eta_phi)
    else:
        config = _run_config(model)
        c = es.transformer_candidates(
            model,
            [path],
            clustering=config.get("clustering", "clue"),
            inputs=config.get("inputs", "puppi"),
            with_truth=False,
        )
        collection = "ScoutTau"
    event = np.asarray(c["event"], np.int64)
    order = np.argsort(event, kind="stable")
    counts = np.bincount(event, minlength=n)
    keys = ["score", "pt", "eta", "phi", "charge", "vz"] + (["pt_reg"] if "pt_reg" in c else [])
    return {
        collection: {
            k: ak.unflatten(np.asarray(c[k], np.float32)[order], counts) for k in keys if k in c
        }
    }


def _nnpuppitau_eta_phi(path):
    from data import nnpuppitau, scouttau

    d = nnpuppitau.nnpuppitau_candidates(scouttau.read([path], with_truth=False))
    return {k: d[k] for k in ("eta", "phi") if k in d}


def _run_config(model):
    """The fit arguments stored with a model (clustering, inputs), {} if unknown."""
    path = getattr(model, "_hepformers_path", "")
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
        with open(os.path.join(os.path.dirname(path), stem, "run_config.json")) as f:
            return json.load(f).get("args", {})
    except (OSError, ValueError):
        return {}


PREDICT = {
    "tpmt": predict_tpmt,
    "lgatr": predict_lgatr,
    "metperceiver": predict_metperceiver,
    "partau": predict_partau,
    "scouttau": predict_scouttau,
}


# models whose inputs standard NanoAOD / PFNano hold; the others read the toolkit's own files
READS_NANOAOD = ("tpmt", "lgatr")
NAMES = {"tpmt": "TPMT", "lgatr": "L-GATr", "metperceiver": "the MET Perceiver",
         "partau": "ParTau", "scouttau": "ScoutTau"}  # fmt: skip


def predict_files(model, paths, batch_size=1024, *, schema="auto", mapping=None, wp=None):
    """Friend-tree columns for the input files one after another (see the module docstring).

    schema, mapping, wp: how to read the files (data.schemas); NanoAOD and PFNano serve TPMT and
    L-GATr, whose loaders select objects with the working points `wp`.
    """
    import awkward as ak

    from data import io, schemas

    kind = kind_of(model)
    per_file = []
    for path in paths:
        n = io.num_entries(path)
        if kind in READS_NANOAOD:
            reading = {"schema": schema, "mapping": mapping, "working_points": wp}
        else:
            schemas.only_own_files(schema, NAMES[kind], path)
            if mapping:
                raise UserError(f"--mapping is read for TPMT and L-GATr, not {NAMES[kind]}")
            reading = {}
        if kind == "tpmt":
            _warn_without_products(model, path, schema)
        cols = PREDICT[kind](model, path, n, batch_size, reading)
        per_file.append(cols)
    out = {}
    for name, value in per_file[0].items():
        if isinstance(value, dict):
            out[name] = {k: ak.concatenate([c[name][k] for c in per_file]) for k in value}
        else:
            out[name] = np.concatenate([c[name] for c in per_file])
    return out


@cli
def main(argv=None):
    args = parse_args(argv)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    from data import checks

    checks.writable_file(args.out)
    checks.model_file(args.model, tuple(checks.MODEL_NAMES.values()))
    from data import io
    from models.training import load_trained

    paths = io.expand_paths(args.input)
    for path in paths:
        io.num_entries(path)  # missing / non-ROOT / tree-less files fail before the model loads
    from data import schemas

    reading = schemas.reading_options(args)
    model = load_trained(args.model)
    model._hepformers_path = args.model
    cols = predict_files(
        model,
        paths,
        args.batch_size,
        schema=reading["schema"],
        mapping=reading["mapping"],
        wp=reading["working_points"],
    )
    tmp = f"{args.out}.tmp-{os.getpid()}.root"
    try:
        io.write_events(tmp, cols)
        os.replace(tmp, args.out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    n = sum(io.num_entries(p) for p in paths)
    names = [k for k, v in cols.items() if not isinstance(v, dict)] + [
        f"{k}_{f}" for k, v in cols.items() if isinstance(v, dict) for f in v
    ]
    print(f"wrote {args.out}: {n} entries, branches {', '.join(names)}")
    print(summary(kind_of(model), cols, n))
    return 0


def summary(kind, cols, n):
    """One line: how many of the `n` events (or candidates) the model could use."""
    flags = [k for k in cols if k.endswith("selected")]
    if flags:
        used = int(np.sum(cols[flags[0]]))
        what = "a selected tau pair" if kind == "tpmt" else "a lepton pair and two b jets"
        return f"{NAMES[kind]}: {used} of {n} events have {what} (the others hold FILL = {FILL})"
    for name, value in cols.items():
        if isinstance(value, dict):
            count = int(sum(len(v) for v in next(iter(value.values()))))
            return f"{NAMES[kind]}: {count} {name} objects in {n} events"
    return f"{NAMES[kind]}: predictions for all {n} events"


def _warn_without_products(model, path, schema):
    """TPMT trained with decay products, given a file without them (NanoAOD): say so once."""
    from data import schemas

    if (
        schemas.resolve(schema, schemas.keys_of(path) if schema == "auto" else (), path)
        != "nanoaod"
    ):
        return
    if not any(type(layer).__name__ == "ProductDropout" for layer in model.layers):
        print(
            "warning: this TPMT was trained with tau decay-product tokens, which NanoAOD lacks: "
            "use a model trained with --product-dropout (saved_models/tpmt/tpmt_dropproducts.keras)"
        )


if __name__ == "__main__":
    sys.exit(main())
