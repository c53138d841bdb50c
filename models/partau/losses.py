"""ParTau losses and metrics (ML-Tau `MultiParTau_module.py`, reference note section 2.4).

Targets (the `y` dict of a ParTau dataset, one entry per model output):

- ``tau_id``: int (B,) 0/1 (or one-hot (B, 2)); output (B, 2) logits.
- ``charge``: float (B,) 1 = positive tau, 0 = negative, -1 = not a tau; output (B, 1) logit.
- ``decay_mode``: int (B,) class 0..5, -1 = not a tau; output (B, 6) logits.
- ``kinematics``: float (B, 6) = [log(pT_gen/pT_reco), deta, sin dphi, cos dphi,
  log(m_gen/m_reco), is_tau]; output (B, 5).

The tau-only losses (charge, decay mode, kinematics) are masked: their per-sample values are 0
for jets that are not taus and are rescaled by B / max(n_taus, 1), so that Keras'
``sum_over_batch_size`` reduction (sum of w_i * l_i over the batch, divided by B) gives the
weighted mean over the true taus only, sum_taus(w_i * l_i) / n_taus, as in ML-Tau. A batch
without taus gives loss 0 and zero gradients. Garbage or NaN targets of non-tau jets are
replaced before any arithmetic, so they never leak into values or gradients.
"""

import keras
from keras import ops

TASKS = ("tau_id", "charge", "decay_mode", "kinematics")
TASK_WEIGHTS = {"tau_id": 1.0, "charge": 1.0, "decay_mode": 1.0, "kinematics": 2.0}
KINEMATIC_TERMS = ("log_pt", "deta", "chord", "log_m")
NUM_DECAY_MODES = 6


# ---------------------------------------------------------------- helpers


def huber(x, delta=1.0):
    """Elementwise Huber loss of a residual x, as torch `HuberLoss(delta)`:
    0.5 x^2 for |x| < delta, delta (|x| - delta / 2) otherwise."""
    a = ops.abs(x)
    q = ops.minimum(a, delta)
    return 0.5 * q * q + delta * (a - q)


def _flat(x):
    """(B,) or (B, 1) -> (B,)."""
    return ops.reshape(x, (-1,))


def mask_to_taus(values, valid):
    """Zero the non-tau entries of per-sample `values` (B,) and rescale by B / max(n_valid, 1).

    With Keras' `sum_over_batch_size` reduction, `sum(w * out) / B` is then the weighted mean of
    `values` over the valid entries only, and 0 (with zero gradients) when none is valid.
    """
    values = ops.where(valid, values, ops.zeros_like(values))
    n_valid = ops.sum(ops.cast(valid, values.dtype))
    batch = ops.cast(ops.shape(values)[0], values.dtype)
    return values * (batch / ops.maximum(n_valid, 1.0))


def _safe_sqrt(x):
    """sqrt with a zero (not infinite) gradient at 0."""
    positive = x > 0
    return ops.where(positive, ops.sqrt(ops.where(positive, x, ops.ones_like(x))), 0.0)


def _tau_id_labels(y_true, y_pred):
    """Labels as a one-hot (B, C) float, from int (B,) / (B, 1) labels or a one-hot (B, C)."""
    num_classes = y_pred.shape[-1]
    if len(y_true.shape) == 2 and y_true.shape[-1] == num_classes and num_classes != 1:
        return ops.cast(y_true, y_pred.dtype)
    labels = ops.cast(_flat(y_true), "int32")
    return ops.one_hot(labels, num_classes, dtype=y_pred.dtype)


# ---------------------------------------------------------------- pure per-sample functions


def tau_id_loss(y_true, y_pred, label_smoothing=0.1):
    """Categorical cross-entropy with label smoothing (torch `CrossEntropyLoss(label_smoothing)`).

    Args:
        y_true: (B,) int labels 0/1, or (B, 2) one-hot.
        y_pred: (B, 2) logits.
        label_smoothing: target = (1 - eps) one_hot + eps / 2.
    Returns:
        (B,) per-jet loss.
    """
    onehot = _tau_id_labels(y_true, y_pred)
    num_classes = y_pred.shape[-1]
    if label_smoothing:
        onehot = onehot * (1.0 - label_smoothing) + label_smoothing / num_classes
    return ops.categorical_crossentropy(onehot, y_pred, from_logits=True)


def charge_loss(y_true, y_pred):
    """Binary cross-entropy with logits on true taus, masked (see `mask_to_taus`).

    Args:
        y_true: (B,) or (B, 1) float: 1 positive tau, 0 negative tau, -1 not a tau.
        y_pred: (B, 1) logit of a positive charge.
    Returns:
        (B,) masked and rescaled per-jet loss.
    """
    target = _flat(y_true)
    logit = _flat(y_pred)
    valid = target >= 0
    target = ops.where(valid, target, ops.zeros_like(target))
    bce = ops.binary_crossentropy(target, logit, from_logits=True)
    return mask_to_taus(bce, valid)


def decay_mode_loss(y_true, y_pred):
    """Sparse cross-entropy on the 6 decay-mode logits for true taus, masked.

    Args:
        y_true: (B,) or (B, 1) int class 0..5, -1 not a tau.
        y_pred: (B, 6) logits.
    Returns:
        (B,) masked and rescaled per-jet loss.
    """
    labels = ops.cast(_flat(y_true), "int32")
    valid = labels >= 0
    labels = ops.where(valid, labels, ops.zeros_like(labels))
    ce = ops.sparse_categorical_crossentropy(labels, y_pred, from_logits=True)
    return mask_to_taus(ce, valid)


def kinematics_terms(y_true, y_pred, delta=1.0):
    """The four per-jet kinematic terms, unmasked, and the tau mask.

    Args:
        y_true: (B, 6) = [log pT ratio, deta, sin dphi, cos dphi, log m ratio, is_tau].
        y_pred: (B, 5) the same five regressions.
        delta: Huber delta.
    Returns:
        (terms, valid): terms a dict of (B,) tensors `log_pt` (Huber), `deta` (Huber),
        `chord` (sqrt(dsin^2 + dcos^2)), `log_m` (Huber); valid a (B,) bool tensor. Non-tau
        rows use zero targets (their values are meaningless, always masked later).
    """
    valid = y_true[:, 5] > 0.5
    target = ops.where(valid[:, None], y_true[:, :5], ops.zeros_like(y_pred))
    d = y_pred - target
    chord2 = ops.square(d[:, 2]) + ops.square(d[:, 3])
    terms = {
        "log_pt": huber(d[:, 0], delta),
        "deta": huber(d[:, 1], delta),
        "chord": _safe_sqrt(chord2),
        "log_m": huber(d[:, 4], delta),
    }
    return terms, valid


def kinematics_loss(y_true, y_pred, delta=1.0, mass_weight=0.2):
    """(Huber log-pT + Huber deta + chord + mass_weight * Huber log-m) / (3 + mass_weight),
    masked to true taus (ML-Tau: 0.2 and 3.2).

    Args:
        y_true: (B, 6), see `kinematics_terms`.
        y_pred: (B, 5).
    Returns:
        (B,) masked and rescaled per-jet loss.
    """
    t, valid = kinematics_terms(y_true, y_pred, delta)
    total = t["log_pt"] + t["deta"] + t["chord"] + mass_weight * t["log_m"]
    return mask_to_taus(total / (3.0 + mass_weight), valid)


# ---------------------------------------------------------------- Loss classes


class _ParTauLoss(keras.losses.Loss):
    def __init__(self, name, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)


@keras.saving.register_keras_serializable(package="hepformers")
class TauIDLoss(_ParTauLoss):
    """Tau-vs-jet cross-entropy with label smoothing on (B, 2) logits; see `tau_id_loss`."""

    def __init__(self, label_smoothing=0.1, name="tau_id_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        return tau_id_loss(y_true, y_pred, self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="hepformers")
class ChargeLoss(_ParTauLoss):
    """Charge BCE with logits on true taus (target -1 = not a tau); see `charge_loss`."""

    def __init__(self, name="charge_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return charge_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="hepformers")
class DecayModeLoss(_ParTauLoss):
    """Decay-mode sparse cross-entropy on true taus (target -1 = not a tau)."""

    def __init__(self, name="decay_mode_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return decay_mode_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="hepformers")
class KinematicsLoss(_ParTauLoss):
    """Huber/chord kinematic loss on true taus; see `kinematics_loss`. Log the terms with
    `KinematicsTerm`."""

    def __init__(self, delta=1.0, mass_weight=0.2, name="kinematics_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.delta = delta
        self.mass_weight = mass_weight

    def call(self, y_true, y_pred):
        return kinematics_loss(y_true, y_pred, self.delta, self.mass_weight)

    def get_config(self):
        return {**super().get_config(), "delta": self.delta, "mass_weight": self.mass_weight}


def task_losses(tasks=TASKS, *, label_smoothing=0.1, delta=1.0, mass_weight=0.2):
    """One Loss per task, for `model.compile(loss=task_losses(...), loss_weights=...)`.

    Args:
        tasks: task (output) names, a subset of `TASKS`.
        label_smoothing: tau-ID label smoothing.
        delta: Huber delta of the kinematic loss.
        mass_weight: weight of the log-mass term of the kinematic loss.
    Returns:
        dict task name -> keras.losses.Loss.
    """
    makers = {
        "tau_id": lambda: TauIDLoss(label_smoothing=label_smoothing),
        "charge": ChargeLoss,
        "decay_mode": DecayModeLoss,
        "kinematics": lambda: KinematicsLoss(delta=delta, mass_weight=mass_weight),
    }
    unknown = [t for t in tasks if t not in makers]
    if unknown:
        raise ValueError(f"unknown ParTau task(s) {unknown}; expected a subset of {TASKS}")
    return {t: makers[t]() for t in tasks}


def task_loss_weights(tasks=TASKS, weights=None):
    """Loss weights for `tasks` (default `TASK_WEIGHTS`: 1, 1, 1, 2 for kinematics)."""
    weights = TASK_WEIGHTS if weights is None else weights
    return {t: float(weights[t]) for t in tasks}


# ---------------------------------------------------------------- metrics


class _MaskedMean(keras.metrics.Metric):
    """Weighted mean of a per-jet quantity over the valid (true-tau) jets."""

    def __init__(self, name, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def _values(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), self.dtype)
        values, valid = self._values(y_true, y_pred)
        values = ops.where(valid, ops.cast(values, self.dtype), 0.0)
        w = ops.cast(valid, self.dtype)
        if sample_weight is not None:
            w = w * ops.cast(_flat(ops.convert_to_tensor(sample_weight)), self.dtype)
        self.total.assign_add(ops.sum(values * w))
        self.count.assign_add(ops.sum(w))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="hepformers")
class ChargeAccuracy(_MaskedMean):
    """Charge accuracy on true taus: (logit > 0) == (target == 1), targets -1 ignored."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def _values(self, y_true, y_pred):
        target = ops.cast(_flat(y_true), self.dtype)
        correct = ops.equal(_flat(y_pred) > 0, target > 0.5)
        return ops.cast(correct, self.dtype), target >= 0


@keras.saving.register_keras_serializable(package="hepformers")
class DecayModeAccuracy(_MaskedMean):
    """Decay-mode accuracy (argmax of the 6 logits) on true taus, targets -1 ignored."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def _values(self, y_true, y_pred):
        labels = ops.cast(_flat(y_true), "int32")
        correct = ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), labels)
        return ops.cast(correct, self.dtype), labels >= 0


@keras.saving.register_keras_serializable(package="hepformers")
class KinematicsTerm(_MaskedMean):
    """One term of the kinematic loss, averaged over true taus (for TensorBoard).

    Args:
        term: one of `KINEMATIC_TERMS` ("log_pt", "deta", "chord", "log_m").
        delta: Huber delta.
    """

    def __init__(self, term="log_pt", delta=1.0, name=None, dtype=None):
        if term not in KINEMATIC_TERMS:
            raise ValueError(f"term must be one of {KINEMATIC_TERMS}, got {term!r}")
        super().__init__(name=name or term, dtype=dtype)
        self.term = term
        self.delta = delta

    def _values(self, y_true, y_pred):
        terms, valid = kinematics_terms(ops.cast(y_true, self.dtype), y_pred, self.delta)
        return terms[self.term], valid

    def get_config(self):
        return {**super().get_config(), "term": self.term, "delta": self.delta}


@keras.saving.register_keras_serializable(package="hepformers")
class TauIDAUC(keras.metrics.AUC):
    """ROC AUC of the tau-ID score softmax(logits)[:, 1] against int (B,) or one-hot labels."""

    def __init__(self, num_thresholds=200, name="auc", dtype=None):
        super().__init__(num_thresholds=num_thresholds, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        score = ops.softmax(ops.cast(y_pred, "float32"), axis=-1)[:, 1]
        labels = _tau_id_labels(y_true, ops.cast(y_pred, "float32"))[:, 1]
        return super().update_state(labels, score, sample_weight=sample_weight)

    def get_config(self):
        return {"num_thresholds": self.num_thresholds, "name": self.name, "dtype": self.dtype}


def task_metrics(tasks=TASKS, *, delta=1.0):
    """TensorBoard metrics per task, for `model.compile(weighted_metrics=task_metrics())`:
    tau-ID AUC, charge and decay-mode accuracy on taus, and the four kinematic terms. Keras
    prefixes the output name: `tau_id_auc`, `charge_accuracy`, `decay_mode_accuracy`,
    `kinematics_log_pt`, `kinematics_deta`, `kinematics_chord`, `kinematics_log_m`."""
    makers = {
        "tau_id": lambda: [TauIDAUC()],
        "charge": lambda: [ChargeAccuracy()],
        "decay_mode": lambda: [DecayModeAccuracy()],
        "kinematics": lambda: [KinematicsTerm(t, delta=delta) for t in KINEMATIC_TERMS],
    }
    return {t: makers[t]() for t in tasks if t in makers}
