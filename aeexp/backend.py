"""Import TensorFlow once, quietly.

TensorFlow's C++ core writes start-up notices to file descriptor 2 before its logging is
configured, so TF_CPP_MIN_LOG_LEVEL cannot silence them; a CLI should not print them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration of the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow():
    """Return the ``tensorflow`` module, imported without start-up noise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        with _stderr_silenced():
            import tensorflow
        # Python-side warnings (retracing notices) are for TF developers, not our users.
        tensorflow.get_logger().setLevel("ERROR")
    return sys.modules["tensorflow"]


def import_keras():
    """Return the ``keras`` module, with TensorFlow imported quietly first."""
    import_tensorflow()
    import keras

    return keras
