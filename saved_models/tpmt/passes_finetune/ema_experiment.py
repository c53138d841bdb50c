"""Experiment (session 13, TPMT card "Session 13"): fine-tune the shipped flat TPMT network with an
exponential moving average of its weights (Adam use_ema, momentum 0.999), no callbacks.

Run from the repository root: python saved_models/tpmt/passes_finetune/ema_experiment.py EPOCHS
[PASSES [OUT]] (needs cache/flat_pass from the card's generation command; PASSES: detector passes
read, default 4; OUT default cache/ema/tpmt.keras), then calibrate and evaluate OUT like the other
fine-tunes. The card's runs: `4` (all passes) and `16 1 cache/ema1/tpmt.keras` (pass 0 only, as
many steps).
"""

import glob
import sys
import time

import keras

import models  # noqa: F401  (registers the custom layers)
from models import training
from models.tpmt.config import get_config
from models.tpmt.fit import training_stream
from models.tpmt.losses import TPMTLoss

epochs = int(sys.argv[1])
files = sorted(glob.glob("cache/flat_pass/flat_00*.root"))
reading = {
    "schema": "auto",
    "mapping": {},
    "smearings": int(sys.argv[2]) if len(sys.argv) > 2 else 4,
}
training.set_seed(7)
train, val, _, _ = training_stream(
    files, reading, channel="all", drop_nonfinite=False, chunk_events=5000, batch_size=1024,
    seed=5, flat_weights=True, mirrored=True,
)  # fmt: skip
m = training.load_trained("saved_models/tpmt/tpmt_uncalibrated.keras", "TPMT")
c = get_config("cpu-scale")
m.compile(
    optimizer=keras.optimizers.Adam(2e-4, use_ema=True, ema_momentum=0.999),
    loss=TPMTLoss(c.lambda_tau, c.lambda_m, c.lambda_q),
)


def val_loss():
    logs = m.evaluate(*val[:2], sample_weight=val[2], batch_size=2048, verbose=0, return_dict=True)
    return logs["loss"]


print("start", val_loss(), flush=True)
t = time.time()
m.fit(train, shuffle=False, epochs=epochs, verbose=2)  # ends with the averaged weights
print("ema val", val_loss(), "minutes", (time.time() - t) / 60, flush=True)
training.save_model(m, sys.argv[3] if len(sys.argv) > 3 else "cache/ema/tpmt.keras")
