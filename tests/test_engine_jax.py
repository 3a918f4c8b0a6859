"""The JAX engine: determinism, group == alone (looped and vmapped), divergence, bookkeeping.

The checks run in a child process (``jaxchecks.py``): this session's Keras runs on
TensorFlow, and a process keeps its first backend. A second child runs them on one CPU
(``taskset -c 0``): the bits must not depend on how many CPUs the process may use.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
# A child process trains some 40 small groups (~25 s): with the slow set, which CI runs, and
# again in the venv without TensorFlow (.ci/jax-without-tensorflow).
pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
SCENARIOS = ("again", "pair", "pair_same_stack", "trio", "trio_reordered")


def run_checks(mnist_path: Path, *args: str, prefix: tuple[str, ...] = ()) -> dict:
    """Run tests/jaxchecks.py in a child process (its Keras on JAX); return what it measured."""
    command = [*prefix, sys.executable, str(HERE / "jaxchecks.py"), str(mnist_path), *args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def checks(mnist_path):
    return run_checks(mnist_path)


@pytest.mark.parametrize("path", ["loop", "stacked"])
def test_a_member_ends_where_it_ends_alone_bit_for_bit(checks, path):
    """Alone, again, in groups of 2 and 3, sharing a stack or not, first or last."""
    alone = checks[path]["alone"]
    for scenario in SCENARIOS:
        found = checks[path][scenario]
        assert found["digest"] == alone["digest"], scenario
        assert found["loss"] == alone["loss"] and found["val_loss"] == alone["val_loss"]


def test_a_cpu_loops_members_unless_told_to_stack(checks):
    assert checks["width_default"] == 1


@pytest.mark.parametrize("path", ["loop", "stacked"])
def test_diverging_member_is_frozen_and_its_neighbour_goes_on_as_alone(checks, path):
    diverging, beside = checks[path]["diverging"], checks[path]["beside_diverging"]
    assert diverging["diverged_epoch"] == 1 and len(diverging["loss"]) == 1
    assert beside["diverged_epoch"] is None and len(beside["loss"]) == 3
    # In the stacked path the two share a stack: the frozen slot leaves no trace.
    assert beside["digest"] == checks[path]["sane_alone"]["digest"]


@pytest.mark.parametrize("path", ["loop", "stacked"])
def test_a_stopped_member_keeps_its_epochs_and_its_neighbour_goes_on_as_alone(checks, path):
    """aeexp tune's pruner on JAX: frozen after epoch 1, history kept, the others' bits kept."""
    stopped, beside = checks[path]["stopped"], checks[path]["beside_stopped"]
    assert stopped["stopped_epoch"] == 1 and len(stopped["loss"]) == 1
    assert beside["stopped_epoch"] is None and len(beside["loss"]) == 3
    assert beside["digest"] == checks[path]["target_alone_3"]["digest"]


def test_epoch_loss_is_the_sample_weighted_mean(checks):
    """With lr 0 nothing changes, so the epoch loss is the loss over the training set."""
    found = checks["lr0"]
    assert found["loss"] == pytest.approx(found["expected_loss"], rel=1e-5)
    assert found["val_loss"] == pytest.approx(found["expected_val_loss"], rel=1e-5)


def test_training_reduces_the_loss_and_never_imports_tensorflow(checks):
    assert checks["training_reduces_loss"]
    assert not checks["tensorflow_imported"]


@pytest.mark.slow  # a second child: ~30 s
@pytest.mark.skipif(
    shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2,
    reason="needs taskset and two CPUs",
)
def test_bits_do_not_depend_on_how_many_cpus_the_process_has(checks, mnist_path):
    one_cpu = run_checks(mnist_path, prefix=("taskset", "-c", str(min(os.sched_getaffinity(0)))))
    for path in ("loop", "stacked"):
        for scenario, found in checks[path].items():
            assert one_cpu[path][scenario]["digest"] == found["digest"], (path, scenario)
