"""Real processes: two sweeps on one folder at once, and Ctrl-C in a Ray sweep."""

import csv
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from aeexp.store import ledger
from aeexp.store import rundir as store

GRID = """
name: shared
config: {{data.path: '{data}', data.train_limit: 512, data.test_limit: 200, train.epochs: 2}}
grid:
  optimizer.learning_rate: {rates}
"""


def sweep(path, out, *extra):
    command = [sys.executable, "-m", "aeexp", "sweep", str(path), "--out", str(out), "--quiet"]
    return [*command, "--max-group", "1", *extra]


def trained_now(stdout):
    """Return N from 'runs.csv: M runs (N trained now, K already complete)'."""
    return int(re.search(r"\((\d+) trained now", stdout).group(1))


@pytest.mark.slow
def test_two_sweeps_on_one_folder_train_every_run_exactly_once(tmp_path, mnist_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(GRID.format(data=mnist_path, rates="[0.001, 0.002, 0.003, 0.004]"))
    second.write_text(GRID.format(data=mnist_path, rates="[0.003, 0.004, 0.005]"))
    out = tmp_path / "out"
    processes = [
        subprocess.Popen(sweep(p, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for p in (first, second)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    # Five distinct runs; the two overlapping ones were trained by one sweep or the other.
    assert sum(trained_now(stdout) for stdout, _ in outputs) == 5
    with open(out / "shared" / ledger.RUNS_CSV) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 and len({r["run_id"] for r in rows}) == 5
    assert {r["status"] for r in rows} == {"completed"}


@pytest.mark.slow
def test_ctrl_c_stops_a_ray_sweep_with_one_line_and_nothing_half_written(tmp_path, mnist_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        GRID.format(data=mnist_path, rates="[0.001, 0.002, 0.003, 0.004, 0.005, 0.006]")
    )
    out = tmp_path / "out"
    experiment = out / "shared"
    process = subprocess.Popen(
        sweep(path, out, "--executor", "ray"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        done = (
            [p for p in experiment.glob("*") if store.is_complete(p)] if experiment.is_dir() else []
        )
        if done:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, (stdout, stderr)
    assert stderr.strip().splitlines()[-1].startswith("aeexp: interrupted")
    assert "Traceback" not in stderr
    left = [p.name for p in experiment.iterdir() if p.name.startswith(".tmp-")]
    assert not left, (left, stderr)
    finished = [p for p in experiment.iterdir() if p.is_dir() and p.name[0] != "."]
    assert all(store.is_complete(p) for p in finished)
    resumed = subprocess.run(sweep(path, out), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0
    assert trained_now(resumed.stdout) == 6 - len(finished)
