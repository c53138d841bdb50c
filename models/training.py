"""The shared fit harness: seeds, splits, callbacks, run config and history.

Every `models/<name>/fit.py` is a thin CLI over `fit`.
"""

import datetime
import os
import time

import keras
import numpy as np


def set_seed(seed):
    """Seed Python, numpy and the backend (keras.utils.set_random_seed)."""
    keras.utils.set_random_seed(int(seed))


def split_indices(n, fractions=(0.8, 0.2), seed=0):
    """Shuffle range(n) and cut it into parts of the given fractions (the last takes the rest)."""
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.cumsum([int(round(f * n)) for f in fractions[:-1]])
    return np.split(order, cuts)


def take(arrays, idx):
    """Index every array of a (nested) dict."""
    if isinstance(arrays, dict):
        return {k: take(v, idx) for k, v in arrays.items()}
    return arrays[idx]


def masked_stats(x, mask=None):
    """Mean and variance of features over real entries (for standardisation layers).

    Args:
        x: (N, ..., F) array. mask: (N, ...) bool or None.
    Returns:
        (mean, variance) lists of length F; variance floored so constant features pass through.
    """
    flat = x.reshape(-1, x.shape[-1]) if mask is None else x[mask.astype(bool)]
    mean = flat.mean(0)
    var = np.maximum(flat.var(0), 1e-6)
    return mean.tolist(), var.tolist()


def flat_weights(values, edges, max_weight=10.0):
    """Per-event weights that make the histogram of `values` flat over `edges` (mean 1).

    Used for flat-mass trainings: the selection sculpts the generated flat spectrum, and a
    regression learns that prior unless the events are reweighted. Weights are capped at
    `max_weight` times their mean (before the final renormalisation) so that sparse bins do
    not dominate.
    """
    return FlatWeights(values, edges, max_weight)(values)


class FlatWeights:
    """The weights of `flat_weights` as a function of the value, learnt from `values` once
    (so that streamed batches get the weights of the whole training set)."""

    def __init__(self, values, edges, max_weight=10.0):
        self.edges = np.asarray(edges, dtype=np.float64)
        counts, _ = np.histogram(values, self.edges)
        per_bin = 1.0 / np.maximum(counts, 1)
        mean = (counts * per_bin).sum() / max(counts.sum(), 1)
        self.table = np.minimum(per_bin / mean, max_weight)
        # bins are clipped at the edges, so values outside count in the first / last bin
        idx = self._bin(values)
        self.table = self.table / self.table[idx].mean()

    def _bin(self, values):
        return np.clip(np.digitize(values, self.edges) - 1, 0, len(self.edges) - 2)

    def __call__(self, values):
        return self.table[self._bin(values)].astype("float32")


@keras.saving.register_keras_serializable(package="hepformers")
class TimeBudget(keras.callbacks.Callback):
    """Stop training after `minutes` of wall time and keep the best epoch's weights.

    For long trainings on a fixed budget: the epoch running when the budget ends completes,
    then the weights of the epoch with the best `monitor` value are restored (EarlyStopping
    restores them only when it triggers itself).
    """

    def __init__(self, minutes, monitor="val_loss"):
        super().__init__()
        self.minutes = minutes
        self.monitor = monitor

    def on_train_begin(self, logs=None):
        self.start, self.best, self.best_weights = time.monotonic(), np.inf, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best:
            self.best, self.best_weights = value, self.model.get_weights()
        if time.monotonic() - self.start > 60 * self.minutes:
            print(f"time budget of {self.minutes} min used: stopping after epoch {epoch + 1}")
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def get_config(self):
        return {"minutes": self.minutes, "monitor": self.monitor}


def callbacks(
    model_name,
    out_dir,
    config,
    *,
    monitor="val_loss",
    log_root="runs",
    max_minutes=None,
    reduce_lr=True,
    run_config=None,
    resume_state=None,
    data=None,
    validation=None,
):
    """The standard callbacks (DESIGN.md convention 6), plus an optional `TimeBudget`, and
    given the `validation` (x, y, ...) data a `models.monitor.PhysicsMonitor` that logs the
    model's physics figure of merit to the TensorBoard run (when the model has one).

    `reduce_lr=False` leaves out ReduceLROnPlateau, for optimizers whose learning rate is a
    schedule (Keras cannot set the rate of a schedule). The last two are a `NonFiniteGuard`
    and the `RunBackup` (models/resume.py) that backs up every epoch in `<out_dir>/backup`
    and, given `resume_state`, restores the interrupted run; `data` is the training
    PyDataset whose epoch it sets.
    """
    from models import resume

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    budget = [TimeBudget(max_minutes, monitor)] if max_minutes else []
    plateau = [
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor,
            factor=0.5,
            patience=config.reduce_lr_patience,
            min_lr=config.min_learning_rate,
            verbose=1,
        )
    ]
    early = keras.callbacks.EarlyStopping(
        monitor=monitor,
        patience=config.early_stopping_patience,
        restore_best_weights=True,
        verbose=1,
    )
    checkpoint = resume.AtomicModelCheckpoint(
        os.path.join(out_dir, "checkpoint.keras"), monitor=monitor, save_best_only=True
    )
    guard = resume.NonFiniteGuard(monitor)
    tracked = budget + [early, *(plateau if reduce_lr else []), checkpoint]
    log_dir = os.path.join(log_root, model_name, stamp)
    physics = []
    key = monitor_key(model_name)
    if validation is not None and key is not None:
        from models.monitor import MAX_EVENTS, PhysicsMonitor

        x, y = validation[0], validation[1]
        physics = [PhysicsMonitor(key, x, y, log_dir, max_events=MAX_EVENTS.get(key, 10000))]
    # the monitor runs first: its val_fom_* values reach CSVLogger and the backup's history
    return (
        physics
        + tracked
        + [
            keras.callbacks.TensorBoard(log_dir=log_dir),
            keras.callbacks.CSVLogger(
                os.path.join(out_dir, "history.csv"), append=resume_state is not None
            ),
            guard,
            resume.RunBackup(
                os.path.join(out_dir, "backup"),
                run_config=run_config,
                state=resume_state,
                tracked=tracked,
                data=data,
                guard=guard,
            ),
        ]
    )


def monitor_key(model_name):
    from models.monitor import key_for

    return key_for(model_name)


class ArrayBatches(keras.utils.PyDataset):
    """In-memory training arrays as batches in a seeded order: epoch k's order depends only on
    (seed, k), so a resumed run sees the batches that the uninterrupted one saw (Keras' own
    shuffling continues one random stream over the epochs).

    Args:
        x, y: (nested dicts of) arrays with the events on axis 0.
        sample_weight: optional (N,) weights.
        batch_size: events per batch (the last batch takes the rest).
        seed: fixes every epoch's order.
    """

    def __init__(self, x, y, sample_weight=None, *, batch_size, seed=0):
        super().__init__()
        self.x, self.y, self.w = x, y, sample_weight
        first = y
        while isinstance(first, dict):
            first = next(iter(first.values()))
        self.n, self.batch_size = len(first), int(batch_size)
        self.seed, self.epoch, self._order = int(seed) & 0xFFFFFFFF, 0, (None, None)

    def __len__(self):
        return -(-self.n // self.batch_size)

    def on_epoch_end(self):
        self.epoch += 1

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(index)
        if self._order[0] != self.epoch:
            perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            self._order = (self.epoch, perm)
        idx = self._order[1][index * self.batch_size : (index + 1) * self.batch_size]
        batch = (take(self.x, idx), take(self.y, idx))
        return batch if self.w is None else batch + (np.asarray(self.w)[idx],)


def fit(
    model,
    train,
    val,
    config,
    *,
    model_name,
    out_dir,
    run_config,
    log_root="runs",
    verbose=2,
    sample_weight=None,
    max_minutes=None,
    reduce_lr=True,
    seed=None,
    restart=False,
    distributed=False,
    keep_start=False,
):
    """Train with the standard callbacks; writes `run_config.json` next to the model when
    the training succeeded.

    An unfinished run of the same configuration in `out_dir` (killed, interrupted) resumes
    from its last completed epoch and ends where an uninterrupted run would have
    (models/resume.py); a backup of another configuration is a user error unless `restart`.

    Args:
        model: a compiled keras.Model.
        train: (inputs dict, targets) tuple, or a `keras.utils.PyDataset` of batches (a
            streamed training set; batch size and weights come with its batches; its `epoch`
            attribute, if any, is set at every epoch begin).
        val: (inputs dict, targets) or (inputs, targets, weights) tuple.
        config: a model config with epochs, batch_size and the patience fields.
        model_name: used for the TensorBoard folder runs/<model_name>/<time>.
        out_dir: where checkpoints, history and run config go.
        run_config: dict written to run_config.json (CLI arguments, config, data files).
        sample_weight: optional (N_train,) per-event weights.
        max_minutes: optional wall-time budget (`TimeBudget`).
        reduce_lr: include ReduceLROnPlateau (False for learning-rate schedules).
        seed: fixes the order of the training arrays in every epoch (default: the run
            config's args.seed, else 0).
        restart: discard an unfinished run's backup and start afresh.
        distributed: a data-parallel run (models/distribute.py): no physics monitor (its
            predictions would be a collective step that every process must join).
        keep_start: a fine-tune (`--init-from`): the starting weights' validation loss is
            measured first, and if no epoch beats it the starting weights are kept (a too
            large learning rate can only make a fine-tune worse than where it began).
    Returns:
        the keras History (of all epochs, those before an interruption included).
    Raises:
        UserError: a backup of another run or a damaged one; a loss, monitored value or
            weights that became non-finite (the best finite epoch stays in checkpoint.keras).
    """
    from models import resume

    os.makedirs(out_dir, exist_ok=True)
    state = resume.prepare(os.path.join(out_dir, "backup"), run_config, restart=restart)
    if state is not None:  # the epochs before the interruption, once each
        resume.write_history(os.path.join(out_dir, "history.csv"), state["history"])
    if not isinstance(train, keras.utils.PyDataset):
        if seed is None:
            seed = (run_config.get("args") or {}).get("seed") or 0
        train = ArrayBatches(
            train[0], train[1], sample_weight, batch_size=config.batch_size, seed=seed
        )
    cbs = callbacks(
        model_name,
        out_dir,
        config,
        log_root=log_root,
        max_minutes=max_minutes,
        reduce_lr=reduce_lr,
        run_config=run_config,
        resume_state=state,
        data=train,
        validation=val if isinstance(val, tuple) and not distributed else None,
    )
    start = None
    if keep_start and state is None and isinstance(val, tuple) and not distributed:
        start = (model.get_weights(), _validation_loss(model, val, config.batch_size))
        print(f"starting weights: val_loss {start[1]:.5g}")
    # batches come in the dataset's own seeded order (streams also read their chunks in
    # batch order: Keras' batch-order shuffling would make every batch load another chunk)
    history = model.fit(
        train,
        shuffle=False,
        validation_data=val,
        epochs=config.epochs,
        callbacks=cbs,
        verbose=verbose,
    )
    guard = next(c for c in cbs if isinstance(c, resume.NonFiniteGuard))
    if guard.bad is not None:
        raise _non_finite(guard, cbs, out_dir)
    best = min((v for v in history.history.get("val_loss", []) if np.isfinite(v)), default=None)
    if start is not None and best is not None and not best < start[1]:
        model.set_weights(start[0])
        print(
            f"no epoch beat the starting weights' val_loss {start[1]:.5g} (best {best:.5g}): "
            "keeping the starting weights (a lower --learning-rate may help)"
        )
    # written once the training succeeded, so it describes the model next to it (the
    # backup keeps its own copy while a run is unfinished)
    resume.write_json(os.path.join(out_dir, "run_config.json"), run_config)
    if state is not None:
        rows = state["history"]
        history.epoch = [r["epoch"] for r in rows] + history.epoch
        keys = set(history.history) | {k for r in rows for k in r if k != "epoch"}
        history.history = {k: [r.get(k) for r in rows] + history.history.get(k, []) for k in keys}
    # BackupAndRestore keeps its folder only while a run is unfinished
    return history


def _validation_loss(model, val, batch_size):
    """The compiled loss of `model` on the (x, y[, w]) validation tuple, as fit reports it."""
    weights = val[2] if len(val) > 2 else None
    logs = model.evaluate(
        val[0], val[1], sample_weight=weights, batch_size=batch_size, verbose=0, return_dict=True
    )
    return float(logs["loss"])


def _non_finite(guard, cbs, out_dir):
    """The user error of a training that went non-finite (the best finite weights are back)."""
    from data.errors import UserError

    epoch, what = guard.bad
    early = next(c for c in cbs if isinstance(c, keras.callbacks.EarlyStopping))
    if early.best_epoch < epoch and early.best is not None and np.isfinite(early.best):
        kept = (
            f"the best finite epoch ({early.best_epoch + 1}) is in "
            f"{os.path.join(out_dir, 'checkpoint.keras')}"
        )
    else:
        kept = "no epoch ended with finite values"
    return UserError(
        f"training stopped in epoch {epoch + 1}: the {what} (lower --learning-rate, or look "
        f"for NaN/inf in the inputs); {kept}; no model file was written"
    )


def load_trained(path, expected=None):
    """A trained `.keras` file loaded in safe mode, with one clear error for a missing, foreign
    or corrupt file (what every fit `--init-from` and every `python -m evaluate.<model>` use).

    Args:
        expected: None, or the model(s) the file must hold (`data.checks.MODEL_NAMES` values,
            e.g. "TPMT"); a file of another model is named as such.
    """
    import models
    from data import checks
    from data.errors import UserError

    if not os.path.exists(path):
        raise UserError(f"no such model file: {path}")
    if expected is not None:
        checks.model_file(path, expected)
    models.register()  # `python -m models.<name>.fit` starts without (see models/__init__.py)
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as err:  # keras raises assorted errors for foreign/corrupt files
        raise UserError(f"cannot load {path} as a Keras model ({type(err).__name__})") from None


def init_from(model, path, expected, architecture):
    """Copy the weights of the trained `.keras` file `path` (a model of `expected`, see
    `load_trained`) into `model` (a fit's `--init-from`); `architecture` names what the file
    must match in the one-line error otherwise (e.g. "preset default")."""
    from data.errors import UserError

    start = load_trained(path, expected)
    try:
        model.set_weights(start.get_weights())
    except ValueError:
        raise UserError(f"{path} does not have the architecture of {architecture}") from None
    return model


def save_model(model, path):
    """`model.save(path)` atomically: a temporary file in the same folder, then a rename, so a
    kill never leaves a half-written `.keras` (nor destroys the previous one)."""
    from models import resume

    resume.save_model(model, path)


def apply_hyperparameters(config, path, rank=1):
    """`config` with the fields that a search's best trial set (`python -m tuning.<model>`
    writes OUT/best_trials.json; its hyperparameters are named after config fields).

    Raises:
        UserError: a missing or foreign file, or a name that is not a field of the config.
    """
    import dataclasses
    import json

    from data.errors import UserError

    try:
        with open(path) as f:
            rows = json.load(f)["best"]
        values = rows[rank - 1]["hyperparameters"]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise UserError(f"{path} is not a search's best_trials.json with a trial {rank}") from None
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UserError(f"{path}: {', '.join(unknown)} are not {type(config).__name__} fields")
    # tuple fields are searched as "a,b,c" strings (tuning.search.tuple_choice)
    parsed = {
        k: tuple(int(x) for x in v.split(",")) if isinstance(fields[k], tuple) else v
        for k, v in values.items()
    }
    return dataclasses.replace(config, **parsed)
