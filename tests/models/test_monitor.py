"""Physics figures of merit on TensorBoard: hand-computed cases and a logged fit."""

import glob
import os

import keras
import numpy as np
import pytest

from models import monitor


def test_auc_hand_cases():
    label = np.array([0, 0, 1, 1])
    assert monitor.auc([0.1, 0.2, 0.8, 0.9], label) == 1.0
    assert monitor.auc([0.9, 0.8, 0.2, 0.1], label) == 0.0
    assert monitor.auc([0.5, 0.5, 0.5, 0.5], label) == 0.5
    assert monitor.auc([0.1, 0.6, 0.5, 0.9], label) == 0.75


def test_figures_of_merit_on_known_predictions():
    y = np.stack([np.full(400, 40.0), np.full(400, 30.0), np.linspace(50, 250, 400)], 1)
    scalars, fig = monitor.tpmt_fom(np.c_[y[:, :2], 1.1 * y[:, 2]], y)
    assert scalars["m_response"] == pytest.approx(1.1) and scalars["m_resolution"] < 1e-6
    assert fig is not None

    gen = np.random.default_rng(0).normal(0, 50, (1000, 2))
    noise = np.random.default_rng(1).normal(0, 10, (1000, 2))
    s, _ = monitor.metperceiver_fom({"met": gen + noise}, {"met": gen})
    assert s["met_x_resolution"] == pytest.approx(10, rel=0.15)

    tops = np.abs(np.random.default_rng(2).normal(50, 20, (300, 2, 4)))
    s, _ = monitor.lgatr_fom({"tops": tops}, tops)
    assert s["top_pt_response"] == pytest.approx(1.0) and s["top_pt_resolution"] == 0

    logits = np.array([[0.0, 2.0], [0.0, -2.0], [0.0, 1.0], [0.0, -1.0]])
    dm = np.eye(6)[[1, 0, 3, 0]]
    s, _ = monitor.partau_fom(
        {"tau_id": logits, "decay_mode": dm},
        {"tau_id": np.array([1, 0, 1, 0]), "decay_mode": np.array([1, -1, 2, -1])},
    )
    assert s == {"tau_id_auc": 1.0, "decay_mode_accuracy": 0.5}

    score = np.r_[np.linspace(1, 2, 50), np.linspace(-2, 0, 500)]
    s, _ = monitor.scouttau_fom({"tau_id": score[:, None]}, {"tau_id": (score > 0.5)[:, None]})
    assert s["tau_id_auc"] == 1.0 and s["eff_at_1pct_fake"] == 1.0


def test_monitor_logs_scalars_images_and_history(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = np.c_[np.full((64, 2), 30.0), 100 + 10 * x[:, :1]].astype("float32")
    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Dense(3)(inp))
    model.compile("adam", "mse")
    cb = monitor.PhysicsMonitor("tpmt", x, y, str(tmp_path))
    hist = model.fit(x, y, validation_data=(x, y), epochs=2, verbose=0, callbacks=[cb])
    assert len(hist.history["val_fom_m_resolution"]) == 2
    events = glob.glob(os.path.join(tmp_path, "physics", "events.out.tfevents.*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(os.path.dirname(events[0]), size_guidance={"tensors": 0}).Reload()
    tags = acc.Tags()["tensors"]
    assert {"m_response", "m_resolution", "learning_rate", "tpmt_validation"} <= set(tags)


def test_fit_harness_logs_the_figure_of_merit(tmp_path):
    import csv
    from types import SimpleNamespace

    from models import training

    keras.utils.set_random_seed(1)
    x = np.random.default_rng(1).normal(size=(80, 4)).astype("float32")
    y = np.c_[np.full((80, 2), 30.0), 100 + 10 * x[:, :1]].astype("float32")
    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Dense(3)(inp))
    model.compile("adam", "mse")
    config = SimpleNamespace(
        epochs=2,
        batch_size=16,
        reduce_lr_patience=2,
        min_learning_rate=1e-6,
        early_stopping_patience=3,
    )
    out, logs = tmp_path / "run", tmp_path / "logs"
    training.fit(
        model,
        (x[:60], y[:60]),
        (x[60:], y[60:]),
        config,
        model_name="tpmt",
        out_dir=str(out),
        run_config={"args": {"seed": 1}},
        log_root=str(logs),
        verbose=0,
    )
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert len(rows) == 2 and "val_fom_m_resolution" in rows[0]
    assert glob.glob(str(logs / "tpmt" / "*" / "physics" / "events.out.tfevents.*"))
    assert training.monitor_key("nnpuppitau") == "scouttau"
    assert training.monitor_key("lgatr_plain") == "lgatr" and training.monitor_key("x") is None
