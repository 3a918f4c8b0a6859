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

            # Listing the GPUs loads CUDA, whose absence TensorFlow reports on fd 2 too.
            _grow_gpu_memory(tensorflow)
        # Python-side warnings (retracing notices) are for TF developers, not our users.
        tensorflow.get_logger().setLevel("ERROR")
    return sys.modules["tensorflow"]


def _grow_gpu_memory(tf) -> None:
    """Let each GPU's memory grow as needed, so several runs (or workers) can share one GPU.

    TensorFlow otherwise reserves nearly all of a GPU's memory for the first process. This
    must happen before the GPU is first used; on a machine without a GPU it does nothing.
    """
    for gpu in tf.config.list_physical_devices("GPU"):
        # RuntimeError: the caller already initialised the GPU; leave its choice.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)


def devices() -> list[dict[str, str]]:
    """Return every device TensorFlow sees: its type, name and, for a GPU, its model."""
    tf = import_tensorflow()
    found = []
    for device in tf.config.list_physical_devices():
        entry = {"type": device.device_type, "name": device.name}
        if device.device_type == "GPU":
            details = tf.config.experimental.get_device_details(device)
            entry["model"] = str(details.get("device_name", "unknown GPU"))
        found.append(entry)
    return found


def gpu_names() -> list[str]:
    """Return the models of the GPUs TensorFlow sees (empty on a CPU-only machine)."""
    return [d.get("model", d["name"]) for d in devices() if d["type"] == "GPU"]


def import_keras():
    """Return the ``keras`` module, with TensorFlow imported quietly first."""
    import_tensorflow()
    import keras

    return keras
