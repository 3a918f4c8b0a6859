"""Sweeps: grid expansion, validation, failure isolation, and resuming after SIGKILL."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from aeexp import cli, results, runner, sweep
from aeexp.errors import UserError


def write_sweep(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_grid_product_union_and_ranges():
    assert sweep.expand_grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    assert sweep.expand_grid([{"a": [1]}, {"b": [2, 3]}]) == [{"a": 1}, {"b": 2}, {"b": 3}]
    assert sweep.expand_values("lr", {"start": 0.9, "stop": 1.0, "step": 0.005}) == [
        round(0.9 + i * 0.005, 12) for i in range(21)
    ]
    assert len(sweep.expand_values("lr", {"start": 0.0005, "stop": 0.0095, "step": 0.0005})) == 19


@pytest.mark.parametrize(
    "grid", [{"a": []}, {"a": 3}, [], {"a": {"start": 0, "stop": 1, "step": 0}}]
)
def test_bad_grids_are_user_errors(grid):
    with pytest.raises(UserError):
        sweep.expand_grid(grid)


def test_plan_sections_dedupe_and_names(tmp_path):
    (tmp_path / "base.yaml").write_text("train: {epochs: 3}\n")
    path = write_sweep(
        tmp_path,
        """
name: demo
base: base.yaml
grid:
  optimizer: [{name: adagrad, learning_rate: 0.01}, {name: adam}, {name: adagrad}]
  seed: [0, 1]
""",
    )
    plan = sweep.plan(path, out=str(tmp_path / "out"))
    # {name: adagrad} resolves to learning_rate 0.01 as well: one run, not two.
    assert len(plan.runs) == 4
    assert plan.experiment_dir == tmp_path / "out" / "demo"
    assert {r.config.train.epochs for r in plan.runs} == {3}
    assert {r.config.name for r in plan.runs} == {"demo"}


def test_bad_point_is_named(tmp_path):
    path = write_sweep(tmp_path, "grid: {loss.name: [mse, msee], seed: [0]}\n")
    with pytest.raises(UserError, match=r"point 2 \(loss.name=msee, seed=0\).*did you mean"):
        sweep.plan(path)


def test_unknown_sweep_key(tmp_path):
    with pytest.raises(UserError, match="unknown key"):
        sweep.plan(write_sweep(tmp_path, "grd: {seed: [0]}\n"))


def test_failure_is_isolated_recorded_and_exit_1(tmp_path, monkeypatch):
    """One crashing run fails alone; the others complete; the sweep exits 1 naming it."""
    path = write_sweep(
        tmp_path, "name: f\ngrid: {optimizer.learning_rate: [0.001, 0.002, 0.003]}\n"
    )
    plan = sweep.plan(path, out=str(tmp_path / "out"))
    bad_id = plan.runs[1].config.run_id

    def fake_train_group(configs, dataset, quiet=False):
        if any(c.run_id == bad_id for c in configs):
            raise RuntimeError("boom")
        for cfg in configs:
            with results.staged_run_dir(runner.run_dir_of(cfg)) as staging:
                results.write_yaml(staging / results.CONFIG, cfg.resolved())
                results.write_json(staging / results.METRICS, {"status": "completed"})

    monkeypatch.setattr(runner, "train_group", fake_train_group)
    monkeypatch.setattr(runner, "load_dataset", lambda cfg: None)
    result = CliRunner().invoke(cli.main, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert bad_id in result.output and "failed" in result.output
    statuses = [sweep.run_status(r) for r in plan.runs]
    assert statuses == ["completed", "failed", "completed"]
    failed = results.read_json(plan.runs[1].run_dir / results.METRICS)
    assert failed["reason"] == "RuntimeError: boom"

    # Without --rerun-failed nothing is retrained; with it, the failed run is tried again.
    calls = []
    monkeypatch.setattr(runner, "train_group", lambda cfgs, ds, quiet=False: calls.append(cfgs))
    CliRunner().invoke(cli.main, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert calls == []
    CliRunner().invoke(
        cli.main, ["sweep", str(path), "--out", str(tmp_path / "out"), "--rerun-failed"]
    )
    assert [c.run_id for group in calls for c in group] == [bad_id]


TWELVE = """
name: twelve
config: {{data.path: {data}, data.train_limit: 512, data.test_limit: 200, train.epochs: 2}}
grid:
  loss.name: [mse, i_div1, i_div2]
  model.decoder_activation: [relu, sigmoid]
  seed: [0, 1]
"""


def sweep_command(path, out):
    return [
        sys.executable,
        "-m",
        "aeexp",
        "sweep",
        str(path),
        "--out",
        str(out),
        "--max-group",
        "2",
        "--quiet",
    ]


def complete_dirs(experiment):
    return sorted(p for p in experiment.iterdir() if p.is_dir() and results.is_complete(p))


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory, mnist_path):
    """Run a 12-run sweep, SIGKILL it midway, run it again to the end."""
    tmp = tmp_path_factory.mktemp("sigkill")
    path = write_sweep(tmp, TWELVE.format(data=mnist_path))
    out = tmp / "out"
    experiment = out / "twelve"
    process = subprocess.Popen(
        sweep_command(path, out),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if experiment.is_dir() and len(complete_dirs(experiment)) >= 4:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = {p.name: (p / results.METRICS).read_text() for p in complete_dirs(experiment)}
    resumed = subprocess.run(sweep_command(path, out), capture_output=True, text=True, timeout=600)
    return path, out, experiment, before, resumed


def test_sigkilled_sweep_resumes_without_loss_or_repeats(killed_and_resumed):
    path, out, experiment, before, resumed = killed_and_resumed
    assert 0 < len(before) < 12, "the kill should land midway"
    assert resumed.returncode == 0, resumed.stderr
    done = complete_dirs(experiment)
    assert len(done) == 12
    for name, text in before.items():  # Runs finished before the kill were not redone.
        assert (experiment / name / results.METRICS).read_text() == text
    assert not [p for p in experiment.iterdir() if p.name.startswith(".tmp-")]
    with open(experiment / sweep.RUNS_CSV) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and {r["status"] for r in rows} == {"completed"}
    assert {r["run_id"] for r in rows} == {p.name for p in done}
    assert f"{12 - len(before)} trained now" in resumed.stdout

    started = time.monotonic()
    again = subprocess.run(sweep_command(path, out), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "0 trained now, 12 already complete" in again.stdout
    assert time.monotonic() - started < 30  # Generous: no TensorFlow import, no training.


def test_table_thesis_layout_and_comparison(killed_and_resumed):
    _, _, experiment, _, _ = killed_and_resumed
    result = CliRunner().invoke(cli.main, ["table", str(experiment)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "| decoder | MSE | E_I1 | E_I2 |"
    assert lines[2].startswith("| ReLU-ReLU |") and lines[3].startswith("| ReLU-Sigmoid |")
    assert "(2) Adam" in lines[2]
    compared = CliRunner().invoke(cli.main, ["table", str(experiment), "--compare", "thesis"])
    assert "0.795 Adagrad" in compared.output and "0.880 Nadam" in compared.output
    as_csv = CliRunner().invoke(
        cli.main, ["table", str(experiment), "--format", "csv", "--metric", "ssim_mean"]
    )
    assert as_csv.output.splitlines()[0].startswith("decoder,loss,optimizer")
    assert len(as_csv.output.strip().splitlines()) == 7


def test_table_figures(killed_and_resumed, tmp_path):
    _, _, experiment, _, _ = killed_and_resumed
    result = CliRunner().invoke(cli.main, ["table", str(experiment), "--figures", str(tmp_path)])
    assert result.exit_code == 0
    for name in ("ssim_thesis_bars.png", "ssim_thesis_best_loss_histories.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_table_mean_and_std_are_over_seeds(killed_and_resumed):
    import numpy as np

    from aeexp import tables

    _, _, experiment, _, _ = killed_and_resumed
    runs = tables.load_runs(experiment)
    chosen = tables.cells(runs, "ssim_mean")
    stat = chosen[("ReLU-Sigmoid", "mse")]
    values = [
        json.loads((r.path / results.METRICS).read_text())["ssim_mean"]
        for r in runs
        if r.config.loss.name == "mse" and r.config.model.decoder_activation == "sigmoid"
    ]
    assert stat.n == 2
    assert stat.mean == pytest.approx(np.mean(values))
    assert stat.std == pytest.approx(np.std(values, ddof=1))
