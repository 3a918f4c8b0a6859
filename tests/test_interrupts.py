"""Ctrl-C at any moment: one line and exit 130, even when it lands inside the garbage collector.

A SIGINT handler that raises lands wherever Python is. Inside a garbage collector's callback
or a ``__del__`` the KeyboardInterrupt cannot propagate, so Python printed "Exception ignored
in ..." with a traceback before aeexp's line. These tests make the signal land there on
purpose: a gc callback sends SIGINT to the process and runs on, so the handler runs inside it.
"""

import gc
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_cli import invoke

from aeexp.execute import interrupts
from aeexp.execute.local import LocalExecutor
from aeexp.store import rundir as store

REPO = Path(__file__).resolve().parents[1]


def _signal_inside_gc(phase: str, info: dict) -> None:
    """A gc callback: send SIGINT, then run on, so that the handler runs inside the callback."""
    if phase == "start":
        gc.callbacks.remove(_signal_inside_gc)
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # bytecode after the signal: the handler runs in here
            pass


def signal_after(train):
    """Return ``train`` followed by a collection that Ctrl-C lands inside."""

    def then_signal(self):
        result = train(self)
        gc.callbacks.append(_signal_inside_gc)
        gc.collect()
        return result

    return then_signal


def test_a_signal_inside_the_garbage_collector_is_recorded_quietly(capfd):
    with pytest.raises(KeyboardInterrupt), interrupts.watching():
        gc.callbacks.append(_signal_inside_gc)
        gc.collect()
        assert interrupts.requested()  # recorded, and nothing raised inside the collector
        interrupts.check()
    assert capfd.readouterr().err == ""


def test_a_second_ctrl_c_stops_at_once():
    with pytest.raises(KeyboardInterrupt), interrupts.watching():
        signal.raise_signal(signal.SIGINT)  # recorded
        signal.raise_signal(signal.SIGINT)  # raised here: the user insists
        pytest.fail("the second Ctrl-C did not raise")


def test_a_ctrl_c_after_the_last_safe_point_still_wins():
    with pytest.raises(KeyboardInterrupt), interrupts.watching():
        signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nested_watching_shares_the_outer_handler():
    with interrupts.watching():
        outer = signal.getsignal(signal.SIGINT)
        with interrupts.watching():
            assert signal.getsignal(signal.SIGINT) is outer
        assert signal.getsignal(signal.SIGINT) is outer
    with interrupts.watching():
        assert not interrupts.requested()


SWEEP = """name: ctrl-c
config: {{data.path: '{data}', data.train_limit: 300, data.test_limit: 100, train.epochs: 2,
         train.batch_size: 100}}
grid: {{optimizer.learning_rate: [0.001, 0.002, 0.003]}}
"""


def test_a_sweep_interrupted_inside_the_collector_prints_one_line(
    tmp_path, mnist_path, monkeypatch
):
    """After the first group, Ctrl-C lands inside a collection: one line, exit 130."""
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.format(data=mnist_path))
    monkeypatch.setattr(LocalExecutor, "next_result", signal_after(LocalExecutor.next_result))
    result = invoke("sweep", path, "--out", tmp_path / "out", "--max-group", 1, "--quiet")
    assert result.exit_code == 130, result.output
    assert result.stderr.splitlines() == [
        "aeexp: interrupted; complete runs are kept, rerun to resume"
    ], result.stderr
    runs = [p for p in (tmp_path / "out" / "ctrl-c").iterdir() if p.is_dir()]
    assert [store.is_complete(p) for p in runs] == [True], runs


# The real process patches itself with this module's own signal_after, then runs the CLI.
CHILD = """
import sys
from test_interrupts import signal_after
from aeexp.cli import main
from aeexp.execute.local import LocalExecutor

LocalExecutor.next_result = signal_after(LocalExecutor.next_result)
sys.argv = ["aeexp", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_the_real_process_interrupted_inside_the_collector(tmp_path, mnist_path):
    """The same through a real process's stderr: nothing from Python before aeexp's line."""
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.format(data=mnist_path))
    command = [sys.executable, "-c", textwrap.dedent(CHILD), "sweep", str(path),
               "--out", str(tmp_path / "out"), "--max-group", "1", "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 130, done.stderr[-3000:]
    assert done.stderr.splitlines() == [
        "aeexp: interrupted; complete runs are kept, rerun to resume"
    ], done.stderr[-3000:]
