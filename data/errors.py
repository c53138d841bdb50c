"""User errors and the CLI wrapper that turns them into one line and exit status 2."""

import functools
import os
import sys


class UserError(Exception):
    """A problem with what the user asked for or gave us (bad path, missing branch, bad value).

    CLIs print its message on one line and exit with status 2; tracebacks are for bugs only.
    """


def cli(main):
    """Decorate a CLI `main(argv=None)` so that a `UserError` prints one line and exits 2."""

    @functools.wraps(main)
    def wrapper(argv=None):
        # TensorFlow's C++ start-up chatter would bury the one-line messages of the CLIs; oneDNN's
        # reordered float sums are off too, so reruns give the same numbers.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        try:
            return main(argv)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper
