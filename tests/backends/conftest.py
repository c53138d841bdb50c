import os

# The suite compiles many tiny models once each: XLA's CPU backend optimisation costs more than
# it saves there (JAX: lgatr case 76 s -> 24 s). Set before any test module imports Keras.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")


def pytest_report_header(config):
    import keras

    return f"keras {keras.__version__}, backend {keras.backend.backend()}"
