"""Physics figures of merit on the validation set, logged to TensorBoard every epoch.

`PhysicsMonitor` predicts the validation inputs after each epoch, computes the model's own
figure of merit with one of the functions below (numpy only, so any backend works) and writes
the scalars and a figure (response or ROC) next to the Keras TensorBoard logs, under
`<log_dir>/physics`; the scalars also go into the epoch logs (so `history.csv` has them) as
`val_fom_<name>`, and the learning rate as `learning_rate`.

| model | scalars |
|---|---|
| TPMT | m response (median m_pred / m_true), m resolution ((P84 - P16) / 2 / median) |
| ParTau | tau-ID AUC, decay-mode accuracy on true taus |
| MET Perceiver | MET x/y resolution (GeV), response along the generated MET |
| L-GATr | top pT response and relative resolution |
| ScoutTau | tau-ID AUC, efficiency at a 1% non-tau candidate rate (a fixed-rate proxy) |
"""

import io
import os

import keras
import numpy as np


def _res(x):
    q16, q50, q84 = np.percentile(x, [16, 50, 84])
    return q50, 0.5 * (q84 - q16)


def auc(score, label):
    """Area under the ROC curve from ranks (ties averaged)."""
    score, label = np.asarray(score, np.float64), np.asarray(label).astype(bool)
    n_pos, n_neg = label.sum(), (~label).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    for v in np.unique(score[order][np.diff(score[order], prepend=np.nan) == 0]):
        ranks[score == v] = ranks[score == v].mean()
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _hist(values, xlabel, lo, hi):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.hist(np.clip(values, lo, hi), bins=50, range=(lo, hi), histtype="step")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("entries")
    fig.tight_layout()
    return fig


def _roc(score, label):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label = np.asarray(label).astype(bool)
    cuts = np.quantile(score, np.linspace(0, 1, 101))
    eff = [(score[label] > c).mean() for c in cuts]
    fake = [(score[~label] > c).mean() for c in cuts]
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(eff, np.maximum(fake, 1e-5))
    ax.set_yscale("log")
    ax.set_xlabel("signal efficiency")
    ax.set_ylabel("background efficiency")
    fig.tight_layout()
    return fig


def tpmt_fom(pred, y):
    """pred (N, >=3) columns tau1_pt, tau2_pt, m; y (N, 3) the same targets."""
    r = np.asarray(pred)[:, 2] / np.asarray(y)[:, 2]
    med, half = _res(r)
    fig = _hist(r, r"$m_{pred} / m_{true}$", 0.0, 2.0)
    return {"m_response": med, "m_resolution": half / med}, fig


def lgatr_fom(pred, y):
    """pred {"tops": (N, 2, 4)}; y (N, 2, 4) generated top, antitop (px, py, pz, E)."""
    t = pred["tops"] if isinstance(pred, dict) else pred
    y = np.asarray(y["tops"] if isinstance(y, dict) else y)
    pt_pred, pt_true = np.hypot(t[..., 0], t[..., 1]), np.hypot(y[..., 0], y[..., 1])
    rel = (pt_pred / np.maximum(pt_true, 1e-3)).ravel()
    med, half = _res(rel - 1.0)
    fig = _hist(rel, r"top $p_T^{pred} / p_T^{true}$", 0.0, 3.0)
    return {"top_pt_response": 1.0 + med, "top_pt_resolution": half}, fig


def partau_fom(pred, y):
    """pred / y dicts by task; tau_id logits (N, 2) and labels (N,), decay_mode (N, 6), -1 = no
    tau. A single-task model's array output is its one task of `y`."""
    if not isinstance(pred, dict):
        pred = {next(iter(y)): pred}
    out, fig = {}, None
    if "tau_id" in pred:
        z = np.asarray(pred["tau_id"], np.float64)
        score, label = z[:, 1] - z[:, 0], np.asarray(y["tau_id"]).reshape(-1) == 1
        out["tau_id_auc"] = auc(score, label)
        fig = _roc(score, label)
    if "decay_mode" in pred:
        t = np.asarray(y["decay_mode"]).reshape(-1)
        ok = t >= 0
        if ok.any():
            out["decay_mode_accuracy"] = float((pred["decay_mode"][ok].argmax(1) == t[ok]).mean())
    return out, fig


def metperceiver_fom(pred, y):
    """pred {"met": (N, 2)}; y {"met": (N, 2)} generated MET (x, y) in GeV."""
    met, gen = np.asarray(pred["met"], np.float64), np.asarray(y["met"], np.float64)
    d = met - gen
    gen_pt = np.maximum(np.linalg.norm(gen, axis=1), 1e-3)
    para = (met * gen).sum(1) / gen_pt
    fig = _hist(d[:, 0], r"$MET_x^{pred} - MET_x^{gen}$ [GeV]", -100, 100)
    return {
        "met_x_resolution": _res(d[:, 0])[1],
        "met_y_resolution": _res(d[:, 1])[1],
        "met_response": float(np.median(para) / np.median(gen_pt)),
    }, fig


def scouttau_fom(pred, y, fake_rate=0.01):
    """pred / y dicts with tau_id logits and labels (N, 1), or the arrays themselves (the
    NNPuppiTau-like network)."""
    score = np.asarray(pred["tau_id"] if isinstance(pred, dict) else pred, np.float64)
    label = np.asarray(y["tau_id"] if isinstance(y, dict) else y).reshape(-1) > 0.5
    score = score.reshape(-1)
    out = {"tau_id_auc": auc(score, label)}
    if label.any() and (~label).any():
        cut = np.quantile(score[~label], 1.0 - fake_rate)
        out["eff_at_1pct_fake"] = float((score[label] > cut).mean())
    return out, _roc(score, label)


# validation events predicted again each epoch (the MET Perceiver's events are ~9k candidates)
MAX_EVENTS = {"metperceiver": 2000}


def key_for(model_name):
    """The `FIGURES_OF_MERIT` key of a fit's model name (tpmt, lgatr_plain, partau_multi,
    metperceiver_deepmet, scouttau_pf, nnpuppitau, ...), None if there is none."""
    if model_name.startswith("nnpuppitau"):
        return "scouttau"
    return next((k for k in FIGURES_OF_MERIT if model_name.startswith(k)), None)


FIGURES_OF_MERIT = {
    "tpmt": tpmt_fom,
    "lgatr": lgatr_fom,
    "partau": partau_fom,
    "metperceiver": metperceiver_fom,
    "scouttau": scouttau_fom,
}


class PhysicsMonitor(keras.callbacks.Callback):
    """Log a model's physics figure of merit on validation data to TensorBoard every epoch.

    Args:
        model_name: key of `FIGURES_OF_MERIT`.
        x, y: validation inputs and targets (as given to `fit`); at most `max_events` are used.
        log_dir: the TensorBoard run folder (scalars and images go to `<log_dir>/physics`).
        batch_size: prediction batch size.

    Not registered for serialisation: it holds the validation arrays, and callbacks are not
    part of a saved model.
    """

    def __init__(self, model_name, x, y, log_dir, batch_size=1024, max_events=20000):
        super().__init__()
        if model_name not in FIGURES_OF_MERIT:
            raise ValueError(f"no figure of merit for {model_name!r}")
        n = len(next(iter(x.values())) if isinstance(x, dict) else x)
        keep = slice(0, min(n, max_events))
        self.model_name, self.log_dir, self.batch_size = model_name, log_dir, batch_size
        self.x = _take(x, keep)
        self.y = _take(y, keep)
        self._writer = None

    def _write(self, epoch, scalars, fig):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "physics"))
        with self._writer.as_default(step=epoch):
            for k, v in scalars.items():
                tf.summary.scalar(k, v)
            if fig is not None:
                buf = io.BytesIO()
                fig.savefig(buf, format="png", dpi=80)
                image = tf.image.decode_png(buf.getvalue(), channels=4)[None]
                tf.summary.image(f"{self.model_name}_validation", image)
        self._writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        import matplotlib.pyplot as plt

        pred = self.model.predict(self.x, batch_size=self.batch_size, verbose=0)
        scalars, fig = FIGURES_OF_MERIT[self.model_name](pred, self.y)
        scalars = {k: float(v) for k, v in scalars.items()}
        lr = self.model.optimizer.learning_rate
        scalars["learning_rate"] = float(keras.ops.convert_to_numpy(lr))
        self._write(epoch, scalars, fig)
        if fig is not None:
            plt.close(fig)
        if logs is not None:
            logs.update({f"val_fom_{k}": v for k, v in scalars.items() if k != "learning_rate"})
            logs.setdefault("learning_rate", scalars["learning_rate"])

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _take(a, keep):
    if isinstance(a, dict):
        return {k: _take(v, keep) for k, v in a.items()}
    return None if a is None else np.asarray(a)[keep]
