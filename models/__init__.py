"""hepformers models. Importing this package registers every custom layer, loss and metric, so
`keras.models.load_model(path)` works on the toolkit's `.keras` files after `import models`."""

from models import lgatr, tpmt  # noqa: F401
