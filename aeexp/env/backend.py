"""The backends' registry; choose the Keras backend (TensorFlow or JAX) and import it once, quietly.

Each backend is one entry of :data:`ENGINES` (its engine module, its Keras backend, the
framework it needs) and one module whose ``ENGINE`` satisfies
:class:`aeexp.engines.base.Engine`. Nothing is imported until an engine is asked for, and
asking (:func:`engine`) changes no process state; :func:`start` makes the engine's Keras
backend this process's.

Keras reads ``KERAS_BACKEND`` when it is first imported and keeps that backend for the
life of the process, so a run's backend must be chosen before anything imports Keras:
:func:`use` does that, and refuses (one line) a backend other than the one Keras already
runs. TensorFlow's C++ core writes start-up notices to file descriptor 2 before its logging
is configured, so TF_CPP_MIN_LOG_LEVEL cannot silence them; a CLI should not print them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, NamedTuple

from aeexp.env.extras import install_hint
from aeexp.errors import UserError


class EngineEntry(NamedTuple):
    """Where a backend's engine lives and what it needs, known without importing either."""

    module: str  # imported when the engine is first asked for; its ENGINE is the Engine
    keras_backend: str  # what KERAS_BACKEND becomes: the models are Keras models on it
    framework: str  # the module that must be importable; also the extra that installs it


# The backends a run may train on (``train.backend``), one entry each; the first is the
# default, under which every run id and number committed before JAX existed stays as it was.
# The config schema's choices are these names: adding a backend is its module and an entry.
ENGINES: dict[str, EngineEntry] = {
    "tensorflow": EngineEntry("aeexp.engines.tensorflow", "tensorflow", "tensorflow"),
    "jax": EngineEntry("aeexp.engines.jax", "jax", "jax"),
}
BACKENDS = tuple(ENGINES)
DEFAULT_BACKEND = BACKENDS[0]
# Determinism on a GPU: XLA's deterministic implementations (scatter, reductions, GEMMs;
# it also turns autotuning off, so a rerun picks the same kernels). Ignored on a CPU.
JAX_XLA_FLAGS = ("--xla_gpu_deterministic_ops=true",)
# float32 matrix products in float32: on Ampere and later GPUs JAX's default is TF32, with
# a 10-bit mantissa, which would change the science, not only the last bits.
JAX_MATMUL_PRECISION = "highest"


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


def installed(backend: str) -> bool:
    """Return whether ``backend``'s framework can be imported here."""
    module = ENGINES[backend].framework
    return module in sys.modules or importlib.util.find_spec(module) is not None


def require(backend: str) -> None:
    """Raise a one-line UserError unless ``backend``'s framework is installed."""
    if not installed(backend):
        raise UserError(
            f"train.backend {backend} needs {ENGINES[backend].framework}, which is not "
            f"installed: {install_hint(ENGINES[backend].framework)}"
        )


def loaded_keras_backend() -> str | None:
    """Return the backend of the Keras this process imported, or None if it imported none."""
    keras = sys.modules.get("keras")
    if keras is None or not hasattr(keras, "backend"):
        return None
    return keras.backend.backend()


def default_backend() -> str:
    """Return the backend Keras gets when no run chose one.

    ``KERAS_BACKEND`` if set, else TensorFlow's where it is installed, else JAX's: so a
    report or ``aeexp data`` works on a machine with only one of them.
    """
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen in _FRAMEWORKS:
        return chosen
    usable = next((b for b in BACKENDS if installed(b)), DEFAULT_BACKEND)
    return ENGINES[usable].keras_backend


def prefer(backend: str) -> None:
    """Make ``backend`` Keras's if nothing here imported Keras yet; refuse it if not installed.

    A sweep's driver calls this before it loads data (the Keras source imports Keras). It
    may never train (Ray's workers do), so a Keras already running another backend here is
    no error until this process trains: :func:`use` refuses it then.
    """
    if backend not in ENGINES:
        raise UserError(f"unknown backend {backend!r} (valid: {', '.join(ENGINES)})")
    require(backend)
    if loaded_keras_backend() is None:
        os.environ["KERAS_BACKEND"] = ENGINES[backend].keras_backend


def use(backend: str) -> None:
    """Make ``backend`` this process's Keras backend, or refuse if Keras already runs another.

    Call it before anything imports Keras; a second call with the same backend is harmless.
    """
    prefer(backend)
    loaded = loaded_keras_backend()
    if loaded is not None and loaded != ENGINES[backend].keras_backend:
        raise UserError(
            f"train.backend {backend}: this process already imported Keras with the {loaded} "
            f"backend, and a process keeps its first; train {backend} runs in another process"
        )


def import_tensorflow() -> ModuleType:
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


def _grow_gpu_memory(tf: ModuleType) -> None:
    """Let each GPU's memory grow as needed, so several runs (or workers) can share one GPU.

    TensorFlow otherwise reserves nearly all of a GPU's memory for the first process. This
    must happen before the GPU is first used; on a machine without a GPU it does nothing.
    """
    for gpu in tf.config.list_physical_devices("GPU"):
        # RuntimeError: the caller already initialised the GPU; leave its choice.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)


def _jax_environment() -> None:
    """Set what JAX reads once, when its first device starts: flags and memory policy."""
    flags = os.environ.get("XLA_FLAGS", "").split()
    names = {flag.split("=")[0] for flag in flags}
    flags += [flag for flag in JAX_XLA_FLAGS if flag.split("=")[0] not in names]
    os.environ["XLA_FLAGS"] = " ".join(flags)
    # Like TensorFlow's memory growth above: several workers may share one GPU.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def import_jax() -> ModuleType:
    """Return the ``jax`` module, with aeexp's determinism settings applied."""
    if "jax" not in sys.modules:
        _jax_environment()
    import jax

    jax.config.update("jax_default_matmul_precision", JAX_MATMUL_PRECISION)
    return jax


# Keras's backends and the import of each one's framework, quietly, before Keras itself.
_TENSORFLOW = "tensorflow"
_FRAMEWORKS: dict[str, Callable[[], ModuleType]] = {
    _TENSORFLOW: import_tensorflow,
    "jax": import_jax,
}


def import_keras() -> ModuleType:
    """Return the ``keras`` module on the chosen backend, its framework imported quietly first."""
    if loaded_keras_backend() is None:
        backend = default_backend()
        os.environ["KERAS_BACKEND"] = backend
        _FRAMEWORKS[backend]()
    import keras

    if keras.backend.backend() != _TENSORFLOW:
        _without_tensorflow()
    return keras


def _without_tensorflow() -> None:
    """Keep Keras on JAX from importing TensorFlow where TensorFlow happens to be installed.

    Keras probes for TensorFlow while saving a model (is this a tf.TensorShape?) and reading
    files (tf.io.gfile), importing it, with its start-up noise and half a gigabyte, if it is
    there. No TensorFlow object exists in a JAX run, so the probes may say "not installed".
    """
    from keras.src.utils import module_utils

    for lazy in (module_utils.tensorflow, module_utils.gfile):
        if getattr(lazy, "_available", True) is None:  # not probed yet; leave a newer Keras be
            lazy._available = False


def engine(backend: str) -> Any:
    """Return ``backend``'s engine (an :class:`aeexp.engines.base.Engine`), changing nothing.

    Its module is imported on the first call; no framework comes with it.
    """
    if backend not in ENGINES:
        raise UserError(f"unknown backend {backend!r} (valid: {', '.join(ENGINES)})")
    return importlib.import_module(ENGINES[backend].module).ENGINE


def start(backend: str) -> Any:
    """Return ``backend``'s engine, after making its Keras backend this process's (:func:`use`)."""
    use(backend)
    return engine(backend)


def loaded_engine() -> Any:
    """Return the engine of the Keras backend this process runs (importing Keras if needed)."""
    keras_backend = import_keras().backend.backend()
    return start(next(n for n, e in ENGINES.items() if e.keras_backend == keras_backend))


def devices(backend: str = DEFAULT_BACKEND) -> list[dict[str, str]]:
    """Return every device ``backend`` sees: its type, name and, for a GPU, its model."""
    return engine(backend).devices()


def gpu_names(backend: str = DEFAULT_BACKEND) -> list[str]:
    """Return the models of the accelerators ``backend`` sees (empty on a CPU-only machine)."""
    return [d.get("model", d["name"]) for d in devices(backend) if d["type"] != "CPU"]


class LazyModule:
    """A module imported on the first use of one of its names, by ``load``.

    An engine names its framework at the top (``tf = LazyModule(import_tensorflow)``) and
    uses it as the module itself, yet importing the engine imports no framework.
    """

    def __init__(self, load: Callable[[], ModuleType]) -> None:
        self._load = load
        self._module: ModuleType | None = None

    def __getattr__(self, name: str) -> Any:
        if self._module is None:
            self._module = self._load()
        return getattr(self._module, name)
