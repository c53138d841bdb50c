"""Interrupted trainings: a backup that resumes only the same run, atomic saves, and a guard
against non-finite losses.

The fit harness (`models/training.py`) backs up the whole training state into `<out>/backup/`
after every completed epoch (`RunBackup`): the model and optimizer weights, the random states
(numpy, Python, Keras seed generators), the state of the other callbacks (EarlyStopping,
ReduceLROnPlateau, ModelCheckpoint, TimeBudget: counters, best values and best weights) and the
history so far. `backup/state.json` is written last, by rename, so a kill at any moment leaves
either the previous epoch's backup or the new one, never a half-written one. `backup/
run_config.json` holds the comparable parts of the run's configuration (`comparable`): a rerun
resumes the backup only if they are equal, and otherwise names what differs (`prepare`).
Together with a data order that depends only on (seed, epoch) (`training.ArrayBatches`,
`data.stream.ChunkStream`), a resumed run ends where an uninterrupted one does.
"""

import csv
import glob
import json
import os
import random
import shutil
import time

import keras
import numpy as np

STATE_VERSION = 1
# run-config entries that do not change the training (verbosity, where it goes, how it was
# started): a rerun that changes only these resumes
IGNORED = ("args.quiet", "args.progress", "args.restart", "args.out", "command")


def _user_error(message):
    from data.errors import UserError

    return UserError(message)


# --- atomic writes -------------------------------------------------------------------------


def _tmp_name(path, suffix):
    folder, base = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{base}.{os.getpid()}.tmp{suffix}")


def save_model(model, path):
    """`model.save(path)` through a temporary file in the same folder and a rename, so that
    `path` is always either the previous file or the complete new one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = ".weights.h5" if path.endswith(".weights.h5") else os.path.splitext(path)[1]
    tmp = _tmp_name(path, suffix)
    try:
        if suffix == ".weights.h5":
            model.save_weights(tmp)
        else:
            model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj, indent=2):
    """Write JSON through a temporary file, fsync and rename."""
    tmp = _tmp_name(path, ".json")
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=indent, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@keras.saving.register_keras_serializable(package="hepformers")
class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that writes through a temporary file and a rename, and never saves an
    epoch whose loss or monitored value is not finite."""

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        if not all(_finite(logs.get(k)) for k in ("loss", self.monitor)):
            return
        path = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, batch, logs, path):
            save_model(self.model, path)

    def get_config(self):
        return {
            "filepath": self.filepath,
            "monitor": self.monitor,
            "save_best_only": self.save_best_only,
        }


def _finite(value):
    return value is None or bool(np.all(np.isfinite(value)))


# --- non-finite losses ---------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="hepformers")
class NonFiniteGuard(keras.callbacks.Callback):
    """Stop training after the first epoch whose loss, monitored value or weights are not
    finite; `bad` then holds (epoch, what). The harness turns it into a user error."""

    def __init__(self, monitor="val_loss"):
        super().__init__()
        self.monitor = monitor
        self.bad = None

    def on_train_begin(self, logs=None):
        self.bad = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for key in ("loss", self.monitor):
            if not _finite(logs.get(key)):
                self.bad = (epoch, f"{key} is {logs[key]}")
                break
        else:
            if not all(np.isfinite(w).all() for w in self.model.get_weights()):
                self.bad = (epoch, "weights are not finite")
        if self.bad is not None:
            self.model.stop_training = True

    def get_config(self):
        return {"monitor": self.monitor}


# --- run configuration ---------------------------------------------------------------------


def comparable(run_config):
    """The parts of a run config that must match for a rerun to resume: everything but
    `IGNORED`, normalised through JSON, plus the size and modification time of every data
    file in `run_config["files"]`."""
    cfg = json.loads(json.dumps(run_config, default=str))
    for dotted in IGNORED:
        *parents, leaf = dotted.split(".")
        node = cfg
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    stats = {}
    for path in run_config.get("files") or []:
        if isinstance(path, str) and os.path.isfile(path):
            st = os.stat(path)
            stats[path] = {"bytes": st.st_size, "modified_ns": st.st_mtime_ns}
    cfg["file_stats"] = stats
    return cfg


def differences(old, new, prefix=""):
    """Human-readable `key: old -> new` lines for two nested JSON-like values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{name}: (none) -> {_short(new[key])}")
            elif key not in new:
                out.append(f"{name}: {_short(old[key])} -> (none)")
            else:
                out += differences(old[key], new[key], name)
        return out
    return [] if old == new else [f"{prefix}: {_short(old)} -> {_short(new)}"]


def _short(value, width=60):
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def prepare(backup_dir, run_config, *, restart=False):
    """Decide whether a fit resumes: the backup's state dict, or None for a fresh start.

    `restart` deletes any backup. A backup of another run (other data files, preset,
    options or seed) or an unreadable one raises a user error that says what differs and
    how to start afresh (`--restart`). A backup folder with no completed epoch is removed.
    """
    if restart or not os.path.isdir(backup_dir):
        shutil.rmtree(backup_dir, ignore_errors=True)
        return None
    state_path = os.path.join(backup_dir, "state.json")
    if not os.path.exists(state_path):
        if os.path.exists(os.path.join(backup_dir, "latest.weights.h5")):
            raise _user_error(
                f"{backup_dir} holds an unfinished run saved without its configuration, so "
                "it cannot be checked against this one: rerun with --restart to start afresh"
            )
        shutil.rmtree(backup_dir)  # killed before its first epoch ended: nothing to resume
        return None
    damaged = (
        f"the backup of an interrupted run in {backup_dir} is damaged ({{}}): rerun with "
        "--restart to start afresh"
    )
    try:
        with open(state_path) as f:
            state = json.load(f)
        with open(os.path.join(backup_dir, "run_config.json")) as f:
            saved = json.load(f)
        missing = [
            state[k] for k in ("weights", "arrays") if not os.path.exists(_in(backup_dir, state[k]))
        ]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise _user_error(damaged.format(type(err).__name__)) from None
    if state.get("version") != STATE_VERSION or missing:
        raise _user_error(
            damaged.format(f"missing {', '.join(missing)}" if missing else "unknown format")
        )
    diff = differences(saved, comparable(run_config))
    if diff:
        more = f" and {len(diff) - 3} more" if len(diff) > 3 else ""
        raise _user_error(
            f"{backup_dir} holds an unfinished run with other settings ({'; '.join(diff[:3])}"
            f"{more}): rerun its command to resume it, or add --restart to start afresh"
        )
    return state


def _in(folder, name):
    return os.path.join(folder, os.path.basename(name))


def write_history(path, rows):
    """history.csv of the completed epochs, in CSVLogger's layout (which then appends)."""
    keys = sorted({k for row in rows for k in row if k != "epoch"})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch"] + keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "NA") for k in ["epoch"] + keys})


# --- the backup callback -------------------------------------------------------------------

# attributes of the standard callbacks that make up their state between epochs
_STATE = {
    keras.callbacks.EarlyStopping: ("wait", "stopped_epoch", "best", "best_epoch"),
    keras.callbacks.ReduceLROnPlateau: ("wait", "cooldown_counter", "best"),
    keras.callbacks.ModelCheckpoint: ("best",),
}


def _seed_variables(model):
    """The model's random-seed state variables (dropout etc.): not in `save_weights`."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights and "seed" in v.path]


def _global_seed_generator():
    try:
        from keras.src.random.seed_generator import global_seed_generator

        return global_seed_generator()
    except Exception:  # a Keras without it: nothing to keep
        return None


@keras.saving.register_keras_serializable(package="hepformers")
class RunBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that keeps the whole training state and writes it atomically.

    Args:
        backup_dir: the backup folder (`<out>/backup`).
        run_config: the run config; its `comparable` parts go to `run_config.json`.
        state: what `prepare` returned (None: start afresh).
        tracked: the other callbacks whose state is kept (EarlyStopping, ReduceLROnPlateau,
            ModelCheckpoint, TimeBudget).
        data: the training PyDataset; its `epoch` is set at every epoch begin, so that the
            order of epoch k depends only on (seed, k).
        guard: a `NonFiniteGuard`; an epoch it flags is not backed up.
    """

    def __init__(self, backup_dir, run_config=None, state=None, tracked=(), data=None, guard=None):
        super().__init__(backup_dir)
        self.run_config, self.state, self.tracked = run_config, state, list(tracked)
        self.data, self.guard = data, guard
        self.rows = list(state["history"]) if state else []

    def on_train_begin(self, logs=None):
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.state is None:
            write_json(
                os.path.join(self.backup_dir, "run_config.json"), comparable(self.run_config or {})
            )
            self._begin = time.monotonic()
            return
        s = self.state
        try:
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(_in(self.backup_dir, s["weights"]))
            with np.load(_in(self.backup_dir, s["arrays"])) as z:
                arrays = {k: z[k] for k in z.files}
            for i, v in enumerate(_seed_variables(self.model)):
                v.assign(arrays[f"seed_{i}"])
            self._restore_callbacks(s["callbacks"], arrays)
        except Exception as err:  # h5py / numpy / shape errors of a damaged or foreign backup
            raise _user_error(
                f"the backup of an interrupted run in {self.backup_dir} cannot be loaded "
                f"({type(err).__name__}): rerun with --restart to start afresh"
            ) from None
        rng = s["rng"]
        np.random.set_state(
            (rng["numpy"][0], np.array(rng["numpy"][1], np.uint32), *rng["numpy"][2:])
        )
        random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
        glob_gen = _global_seed_generator()
        if glob_gen is not None and "keras_global" in arrays:
            glob_gen.state.assign(arrays["keras_global"])
        self._begin = time.monotonic() - s.get("elapsed", 0.0)
        epoch = s["epoch"]
        self._current_epoch = epoch
        # a run that had decided to stop (early stopping, time budget) runs no further epoch
        self.model._initial_epoch = self.params["epochs"] if s.get("stopped") else epoch
        print(f"resuming the interrupted run in {self.backup_dir} after epoch {epoch}")

    def _restore_callbacks(self, saved, arrays):
        if [c["type"] for c in saved] != [type(c).__name__ for c in self.tracked]:
            raise ValueError("other callbacks")
        for i, (cb, values) in enumerate(zip(self.tracked, saved)):
            for key, value in values.items():
                if key == "elapsed":
                    cb.start = time.monotonic() - value
                elif key == "n_best_weights":
                    cb.best_weights = (
                        None if value is None else [arrays[f"cb{i}_w{j}"] for j in range(value)]
                    )
                elif key != "type":
                    setattr(cb, key, value)

    def on_epoch_begin(self, epoch, logs=None):
        if self.data is not None and hasattr(self.data, "epoch"):
            self.data.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch, **{k: _plain(v) for k, v in (logs or {}).items()}})
        if self.guard is not None and self.guard.bad is not None:
            return  # a non-finite epoch is never backed up
        self._current_epoch = epoch + 1
        self._save_model()

    def _save_model(self):
        folder, tag = self.backup_dir, f"epoch{self._current_epoch:04d}"
        os.makedirs(folder, exist_ok=True)
        arrays = {f"seed_{i}": v.numpy() for i, v in enumerate(_seed_variables(self.model))}
        glob_gen = _global_seed_generator()
        if glob_gen is not None:
            arrays["keras_global"] = keras.ops.convert_to_numpy(glob_gen.state.value)
        saved = []
        for i, cb in enumerate(self.tracked):
            values = {"type": type(cb).__name__}
            for kind, keys in _STATE.items():
                if isinstance(cb, kind):
                    values.update({k: _plain(getattr(cb, k, None)) for k in keys})
            if hasattr(cb, "start") and hasattr(cb, "minutes"):  # TimeBudget
                values.update(elapsed=time.monotonic() - cb.start, best=_plain(cb.best))
            if hasattr(cb, "best_weights"):
                weights = cb.best_weights
                values["n_best_weights"] = None if weights is None else len(weights)
                arrays.update({f"cb{i}_w{j}": w for j, w in enumerate(weights or [])})
            saved.append(values)
        # new files first, then state.json by rename (the commit), then drop the old files
        self.model.save_weights(os.path.join(folder, f"{tag}.weights.h5"))
        np.savez(os.path.join(folder, f"{tag}.npz"), **arrays)
        np_state = np.random.get_state()
        py_state = random.getstate()
        state = {
            "version": STATE_VERSION,
            "epoch": self._current_epoch,
            "stopped": bool(self.model.stop_training),
            "elapsed": time.monotonic() - self._begin,
            "weights": f"{tag}.weights.h5",
            "arrays": f"{tag}.npz",
            "callbacks": saved,
            "rng": {
                "numpy": [np_state[0], np_state[1].tolist(), *map(_plain, np_state[2:])],
                "python": [py_state[0], list(py_state[1]), py_state[2]],
            },
            "history": self.rows,
        }
        write_json(os.path.join(folder, "state.json"), state, indent=None)
        for old in glob.glob(os.path.join(folder, "epoch*")):
            if not os.path.basename(old).startswith(tag + "."):
                os.remove(old)

    def on_train_end(self, logs=None):
        self.model._initial_epoch = None  # a later fit of the same model starts at 0
        super().on_train_end(logs)

    def get_config(self):
        return {"backup_dir": self.backup_dir}


def _plain(value):
    """A JSON-safe Python scalar of a log or callback value."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    arr = np.asarray(value)
    if arr.ndim == 0:
        return arr.item()
    return arr.tolist()
