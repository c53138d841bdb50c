"""hepformers models. Importing this package registers every custom layer, loss and metric, so
`keras.models.load_model(path)` works on the toolkit's `.keras` files after `import models`."""

import os

# Quiet TensorFlow's C++ start-up chatter (it buries the CLIs' one-line messages) and keep
# oneDNN's reordered float sums off so reruns give the same numbers; set these yourself to
# override.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from models import lgatr, metperceiver, partau, scouttau, tpmt  # noqa: E402, F401
