"""One Engine Protocol: a backend is its module plus one registry entry; imports change nothing.

Importing any aeexp module imports no framework and switches no Keras backend (checked in a
fresh interpreter); both shipped engines satisfy the Protocol; and a stand-in engine, a thin
wrapper around TensorFlow's registered under another name, trains a group through the
runner by that one entry, with TensorFlow's numbers bit for bit.
"""

import subprocess
import sys
import typing
from pathlib import Path

import pytest

from aeexp.engines.base import Engine
from aeexp.env import backend

REPO = Path(__file__).resolve().parents[1]

IMPORT_EVERYTHING = """
import importlib, os, pkgutil, sys
import aeexp
# What choosing a backend sets (import ray sets RAY_CLIENT_MODE itself: Ray's, not aeexp's).
watched = ("KERAS_BACKEND", "XLA_FLAGS", "XLA_PYTHON_CLIENT_PREALLOCATE", "TF_CPP_MIN_LOG_LEVEL",
           "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
environment = {k: os.environ.get(k) for k in watched}
for info in pkgutil.walk_packages(aeexp.__path__, "aeexp."):
    if info.name != "aeexp.__main__":  # runs the CLI
        importlib.import_module(info.name)
loaded = [m for m in ("keras", "tensorflow", "jax", "jaxlib", "torch") if m in sys.modules]
assert not loaded, f"importing aeexp imported {loaded}"
changed = {k for k in watched if os.environ.get(k) != environment[k]}
assert not changed, f"importing aeexp changed the environment: {sorted(changed)}"
print("ok")
"""


def test_importing_every_aeexp_module_imports_no_framework_and_switches_no_backend():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("name", backend.BACKENDS)
def test_every_registered_engine_satisfies_the_protocol(name):
    engine = backend.engine(name)  # asking changes nothing: no framework is imported here
    members = {n for n in dir(Engine) if not n.startswith("_")} | set(typing.get_type_hints(Engine))
    missing = {n for n in members if not hasattr(engine, n)}
    assert not missing, f"{name}'s engine lacks {sorted(missing)}"
    assert engine.name == name


def test_an_unknown_backend_is_one_line():
    from aeexp.errors import UserError

    with pytest.raises(UserError, match="unknown backend 'torch'"):
        backend.engine("torch")


# --- A stand-in backend, plugged in by one registry entry -----------------------------------


class StandIn:
    """TensorFlow's engine under another name: what a new backend's module would export."""

    name = "tensorflow-standin"
    label = "TensorFlow (stand-in)"
    packages = ("tensorflow",)

    def __init__(self):
        self.built = 0

    def build_member(self, config):
        self.built += 1
        return self._wrapped.build_member(config)

    def __getattr__(self, attribute):  # everything else: TensorFlow's
        return getattr(self._wrapped, attribute)

    @property
    def _wrapped(self):
        from aeexp.engines import tensorflow

        return tensorflow.ENGINE


ENGINE = StandIn()


@pytest.fixture
def standin(monkeypatch):
    """Register the stand-in: one entry (this module is its engine module)."""
    entry = backend.EngineEntry(__name__, keras_backend="tensorflow", framework="tensorflow")
    monkeypatch.setitem(backend.ENGINES, StandIn.name, entry)
    ENGINE.built = 0
    return ENGINE


def test_a_stand_in_engine_plugs_in_by_one_registry_entry(standin, mnist_path):
    from aeexp.config import run as config
    from aeexp.data.dataset import load_dataset
    from aeexp.execute import runner

    tensorflow = config.validate(
        {
            "data": {"path": str(mnist_path), "train_limit": 300, "holdout": 100},
            "train": {"epochs": 1, "batch_size": 100},
        }
    )
    # train.backend's schema lists the names registered when aeexp was imported; a real new
    # backend is in ENGINES from the start (see docs/how-to/extend.md), so this one is set
    # on the validated config directly.
    train = tensorflow.train.model_copy(update={"backend": StandIn.name})
    other = tensorflow.model_copy(update={"train": train})
    assert backend.engine(StandIn.name) is standin
    dataset = load_dataset(tensorflow)
    (by_standin,) = runner.train_group([other], dataset)
    assert standin.built == 1
    (by_tensorflow,) = runner.train_group([tensorflow], dataset)
    assert (
        by_standin.files["history.csv"].split(b"\n")[1].split(b",")[1:3]
        == (by_tensorflow.files["history.csv"].split(b"\n")[1].split(b",")[1:3])
    )
    for metric in ("final_loss", "final_val_loss", "ssim_mean", "mse", "versions"):
        assert by_standin.metrics[metric] == by_tensorflow.metrics[metric], metric


def backend_name_comparisons(path: Path) -> list[int]:
    """Return the lines of ``path`` that compare something with a backend's name."""
    import ast

    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            names = {o.value for o in operands if isinstance(o, ast.Constant)}
            if names & set(backend.ENGINES):
                lines.append(node.lineno)
    return lines


def test_no_module_outside_the_registry_asks_which_backend_by_name():
    """The backend is chosen once, through ENGINES: nothing else tests it by string."""
    registry = REPO / "aeexp" / "env" / "backend.py"
    found = {
        str(path.relative_to(REPO)): lines
        for path in sorted((REPO / "aeexp").rglob("*.py"))
        if path != registry and (lines := backend_name_comparisons(path))
    }
    assert found == {}


def test_the_name_check_sees_a_comparison(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text('def f(cfg):\n    return cfg.train.backend == "jax"\n')
    assert backend_name_comparisons(planted) == [2]
