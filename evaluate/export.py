"""Export a trained `.keras` model to ONNX, for ONNX Runtime inside a C++ framework.

    python -m evaluate.export saved_models/tpmt/tpmt.keras --format onnx --out tpmt.onnx

Every model of the toolkit converts (TensorFlow graph -> tf2onnx, opset 17); the ONNX graph
takes the Keras model's named inputs (masks as bool or float, as the model declares them) with
a free batch dimension and returns its named outputs. After writing, the command runs the ONNX
file in ONNX Runtime on random inputs with padding and compares with Keras (`--no-check` skips
that).

Exact GELU: TensorFlow writes it with `Erfc`, which tf2onnx cannot convert. The export rewrites
each `Erfc` as `1 - Erf` (ONNX has `Erf`), so the ONNX model computes the same exact GELU as
the Keras one; no retraining with the tanh approximation is needed.
"""

import argparse
import os
import sys

import numpy as np

from data.errors import UserError, cli

OPSET = 17
# ONNX Runtime against Keras: float32 sums in another order; relative to the output scale
CHECK_RTOL = 1e-4


def _erfc_handler(ctx, node, name, args):
    """tf2onnx handler: Erfc(x) -> 1 - Erf(x), built from ONNX Erf, Neg and Add."""
    from tf2onnx import utils

    dtype = ctx.get_dtype(node.input[0])
    node.type = "Erf"
    neg = ctx.insert_new_node_on_output("Neg", node.output[0], name=utils.make_name(node.name))
    one = ctx.make_const(
        utils.make_name("one"), np.array(1.0, dtype=utils.map_onnx_to_numpy_type(dtype))
    )
    ctx.insert_new_node_on_output(
        "Add", neg.output[0], name=utils.make_name(node.name), inputs=[neg.output[0], one.output[0]]
    )


def _rename_io(path, inputs, outputs):
    """Give the ONNX graph's inputs and outputs the Keras names ("met:0" -> "met")."""
    import onnx

    proto = onnx.load(path)
    rename = {**inputs, **outputs}
    for v in [*proto.graph.input, *proto.graph.output]:
        v.name = rename.get(v.name, v.name)
    for node in proto.graph.node:
        node.input[:] = [rename.get(x, x) for x in node.input]
        node.output[:] = [rename.get(x, x) for x in node.output]
    onnx.save(proto, path)


def input_specs(model):
    """(name, shape with free batch, dtype) of each named input of a Keras model."""
    return [(x.name, (None, *x.shape[1:]), str(x.dtype)) for x in model.inputs]


def output_names(model):
    """The model's output names, in the order of its flattened outputs."""
    if isinstance(model.output, dict):
        return list(model.output)
    return list(model.output_names)


def _model_inputs(model, inputs):
    """A {name: array} dict in the structure the model was built with (dict or single input)."""
    return inputs if isinstance(model.input, dict) else inputs[model.inputs[0].name]


def to_onnx(model, path):
    """Convert `model` to an ONNX file at `path` (written atomically). Returns the output names."""
    import tensorflow as tf
    import tf2onnx

    specs = input_specs(model)
    names = output_names(model)
    signature = [tf.TensorSpec(shape, dtype, name=name) for name, shape, dtype in specs]

    @tf.function(input_signature=signature)
    def serve(*args):
        feed = {name: a for (name, _, _), a in zip(specs, args, strict=True)}
        out = model(_model_inputs(model, feed), training=False)
        if isinstance(out, dict):
            return [out[k] for k in names]  # a list keeps the order of `names` in the graph
        return list(out) if isinstance(out, list | tuple) else [out]

    # freeze by hand: tf2onnx's from_function would take the function's captured constants
    # (Normalization's mean and variance) for graph inputs
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    frozen = convert_variables_to_constants_v2(
        serve.get_concrete_function(), lower_control_flow=False, aggressive_inlining=True
    )
    graph_inputs = [f"{name}:0" for name, _, _ in specs]
    graph_outputs = [t.name for t in frozen.outputs]
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(),
            input_names=graph_inputs,
            output_names=graph_outputs,
            opset=OPSET,
            custom_op_handlers={"Erfc": (_erfc_handler, [])},
            output_path=tmp,
        )
        _rename_io(
            tmp,
            dict(zip(graph_inputs, [s[0] for s in specs], strict=True)),
            dict(zip(graph_outputs, names, strict=True)),
        )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return names


def example_inputs(model, batch=8, seed=0):
    """Random inputs of the model's shapes: standard-normal features, physical four-vectors
    (E >= |p|, for inputs named "fourvectors"), and masks with the last entries of each row
    padded, their features zero as the loaders write them."""
    rng = np.random.default_rng(seed)
    out, masks = {}, {}
    for name, shape, dtype in input_specs(model):
        shape = (batch, *shape[1:])
        if "mask" in name:
            n = shape[1]
            keep = rng.integers(1, n + 1, size=batch)
            m = np.arange(n)[None, :] < keep[:, None]
            out[name] = m if dtype == "bool" else m.astype(dtype)
            masks[name] = m
        elif name == "fourvectors":
            p = 10.0 * rng.normal(size=(*shape[:-1], 3))
            e = np.sqrt((p**2).sum(-1, keepdims=True) + rng.uniform(0, 1, size=(*shape[:-1], 1)))
            out[name] = np.concatenate([p, e], -1).astype(dtype)
        else:
            out[name] = rng.normal(size=shape).astype(dtype)
    for name, x in out.items():  # zero the padded slots of the inputs that a mask covers
        mask = masks.get(f"{name.removesuffix('s')}_mask", masks.get("mask"))
        if name not in masks and mask is not None and x.ndim == 3 and x.shape[1] == mask.shape[1]:
            x[~mask] = 0
    return out


def keras_outputs(model, inputs):
    """The model's outputs as a {name: array} dict (in the export's output order)."""
    out = model.predict(_model_inputs(model, inputs), verbose=0)
    names = output_names(model)
    if not isinstance(out, dict):
        out = dict(zip(names, out if isinstance(out, list) else [out], strict=True))
    return {k: np.asarray(out[k]) for k in names}


def onnx_outputs(path, inputs):
    """Run an exported file in ONNX Runtime on the same {name: array} inputs."""
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    feed = {k: v for k, v in inputs.items() if k in {i.name for i in sess.get_inputs()}}
    return dict(zip(names, sess.run(names, feed), strict=True))


def max_relative_difference(ref, other):
    """max |a - b| / max(|a|) per output: relative to each output's scale."""
    return {
        k: float(np.max(np.abs(ref[k] - other[k])) / max(np.max(np.abs(ref[k])), 1e-12))
        for k in ref
    }


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.export", description=__doc__.split("\n")[0]
    )
    p.add_argument("model", help="a trained .keras file")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime comparison")
    return p.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    from data import checks

    if not os.path.isfile(args.model):
        raise UserError(f"no such model file: {args.model}")
    checks.writable_file(args.out)
    from models.training import load_trained

    model = load_trained(args.model)
    try:
        names = to_onnx(model, args.out)
    except Exception as err:  # the converter raises assorted errors for unsupported graphs
        raise UserError(f"cannot convert {args.model} to ONNX: {err}") from None
    print(f"wrote {args.out} (inputs {[s[0] for s in input_specs(model)]}, outputs {names})")
    if args.no_check:
        return 0
    inputs = example_inputs(model)
    diff = max_relative_difference(keras_outputs(model, inputs), onnx_outputs(args.out, inputs))
    worst = max(diff.values())
    print(
        "ONNX Runtime vs Keras, max relative difference: "
        + ", ".join(f"{k} {v:.1e}" for k, v in diff.items())
    )
    if worst > CHECK_RTOL:
        os.remove(args.out)
        raise UserError(f"ONNX Runtime differs from Keras by {worst:.1e} (> {CHECK_RTOL}); removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
