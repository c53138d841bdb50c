"""MET figures of merit (seed 003): bias E[Delta O] and resolution (P84 - P16) / 2 of the MET x
and y components and of the components parallel and perpendicular to the generated MET, with
Delta O = O_reco - O_gen, in GeV; also in bins of generated MET and of pileup vertices."""

import numpy as np

from evaluate.metrics import quantile_resolution

GEN_MET_EDGES = (0.0, 25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, np.inf)
NPU_EDGES = (0, 180, 190, 200, 210, 220, 10_000)


def components(pred, gen):
    """Residuals (n, 4): x, y, parallel and perpendicular to the generated MET direction."""
    d = np.asarray(pred, np.float64) - np.asarray(gen, np.float64)
    norm = np.maximum(np.linalg.norm(gen, axis=1), 1e-9)
    ux, uy = gen[:, 0] / norm, gen[:, 1] / norm
    para = d[:, 0] * ux + d[:, 1] * uy
    perp = -d[:, 0] * uy + d[:, 1] * ux
    return np.stack([d[:, 0], d[:, 1], para, perp], axis=1)


def summary(pred, gen):
    """dict: bias_* and res_* for x, y, para, perp (GeV), and the event count."""
    r = components(pred, gen)
    out = {"events": int(len(r))}
    for k, name in enumerate(("x", "y", "para", "perp")):
        out[f"bias_{name}"] = float(np.mean(r[:, k])) if len(r) else float("nan")
        out[f"res_{name}"] = quantile_resolution(r[:, k])
    return out


def response(pred, gen):
    """Mean response R = <MET_reco . u_gen> / <|MET_gen|>: the share of the generated MET that a
    method recovers along its direction, averaged over all events."""
    gen = np.asarray(gen, np.float64)
    mean_gen = max(float(np.mean(np.linalg.norm(gen, axis=1))), 1e-9)
    # the residual along u_gen is MET_reco . u_gen - |MET_gen|, so R = 1 + its mean / <|MET_gen|>
    return float(1.0 + np.mean(components(pred, gen)[:, 2]) / mean_gen)


def response_corrected(pred, gen):
    """`summary` of pred / R: every method scaled to the same mean response (1), so that their
    resolutions compare at zero overall bias along the generated MET, as CMS quotes recoil
    resolutions divided by the response. A diagnostic: no method sees the truth when it runs."""
    r = response(pred, gen)
    return {"response": r, **summary(np.asarray(pred, np.float64) / r, gen)}


def binned(pred, gen, values, edges):
    """`summary` in bins of `values` (list of dicts with lo, hi)."""
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (values >= lo) & (values < hi)
        if sel.sum() < 10:
            continue
        out.append({"lo": float(lo), "hi": float(hi), **summary(pred[sel], gen[sel])})
    return out


def evaluate(predictions, gen, n_pu):
    """metrics.json content: per method the summary and the binned tables."""
    gen_pt = np.linalg.norm(gen, axis=1)
    metrics = {}
    for name, pred in predictions.items():
        metrics[name] = {
            **summary(pred, gen),
            "response_corrected": response_corrected(pred, gen),
            "vs_gen_met": binned(pred, gen, gen_pt, GEN_MET_EDGES),
            "vs_npu": binned(pred, gen, n_pu, NPU_EDGES),
        }
    return metrics
