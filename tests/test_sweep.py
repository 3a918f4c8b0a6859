"""Sweeps: grid expansion, validation, failure isolation, and resuming after SIGKILL."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from aeexp import cli, results, runner, sweep
from aeexp.errors import UserError

REPO = Path(__file__).resolve().parents[1]


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
    "grid",
    [
        {"a": []},
        {"a": 3},
        [],
        {"a": {"start": 0, "stop": 1, "step": 0}},
        {"a": {"start": 0, "stop": float("inf"), "step": 1}},
        {"a": {"start": 0, "stop": 1, "step": float("nan")}},
        {"a": {"start": False, "stop": True, "step": 1}},
        {1: [0, 1]},
    ],
)
def test_bad_grids_are_user_errors(grid):
    with pytest.raises(UserError):
        sweep.expand_grid(grid)


def test_an_empty_range_is_a_user_error_naming_the_key(tmp_path):
    with pytest.raises(UserError, match=r"^grid\.seed: start 5 is past stop 0"):
        sweep.expand_values("seed", {"start": 5, "stop": 0, "step": 1})
    path = write_sweep(tmp_path, "grid: {seed: {start: 5, stop: 0, step: 1}}\n")
    with pytest.raises(UserError, match="grid.seed"):
        sweep.plan(path)


@pytest.mark.parametrize(
    ("grid", "override"),
    [
        ("seed: [0, 1]", "seed=7"),
        ("seed: [0, 1]", " seed = 7"),
        ("optimizer.learning_rate: [0.1]", "optimizer.lr=0.2"),
        ("optimizer: [{name: adam}]", "optimizer.learning_rate=0.2"),
        ("optimizer.learning_rate: [0.1]", "optimizer={name: sgd}"),
    ],
)
def test_set_of_a_key_the_grid_sets_is_refused(tmp_path, grid, override):
    path = write_sweep(tmp_path, f"grid: {{{grid}}}\n")
    with pytest.raises(UserError, match="the grid sets") as caught:
        sweep.plan(path, [override])
    assert repr(override) in str(caught.value)


def test_set_of_other_keys_applies_to_every_run(tmp_path):
    path = write_sweep(tmp_path, "grid: {seed: [0, 1], optimizer.learning_rate: [0.1]}\n")
    plan = sweep.plan(path, ["train.epochs=2", "optimizer.name=sgd"])
    assert {(r.config.train.epochs, r.config.optimizer.name) for r in plan.runs} == {(2, "sgd")}
    with pytest.raises(UserError, match="name comes from"):
        sweep.plan(path, ["name=other"])


def test_cli_sweep_set_of_a_grid_key_exits_2(tmp_path):
    path = write_sweep(tmp_path, "grid: {seed: [0, 1]}\n")
    result = CliRunner().invoke(cli.main, ["sweep", str(path), "--set", "seed=7", "--dry-run"])
    assert result.exit_code == 2
    assert "seed" in result.output and len(result.output.strip().splitlines()) == 1


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
    with pytest.raises(UserError, match="grd: unknown key.*did you mean 'grid'"):
        sweep.plan(write_sweep(tmp_path, "grd: {seed: [0]}\n"))


def test_committed_run_ids_do_not_move():
    """Planning the thesis sweeps gives exactly the run ids of the committed results."""
    for name in ("thesis-optimizers", "thesis-tuned"):
        plan = sweep.plan(REPO / "configs" / "sweeps" / f"{name}.yaml")
        with open(REPO / "results" / "thesis" / f"{name}-runs.csv") as handle:
            committed = [row["run_id"] for row in csv.DictReader(handle)]
        assert [run.config.run_id for run in plan.runs] == committed


def fake_complete(cfg, marker="trained"):
    """Write a complete run directory for ``cfg`` without training."""
    with results.staged_run_dir(runner.run_dir_of(cfg)) as staging:
        results.write_yaml(staging / results.CONFIG, cfg.resolved())
        results.write_json(staging / results.METRICS, {"status": "completed", "by": marker})


def test_isolation_skips_members_the_crashed_group_wrote(tmp_path, monkeypatch):
    """A group that wrote one member then crashed retrains the others alone, not that one."""
    path = write_sweep(tmp_path, "name: g\ngrid: {optimizer.learning_rate: [0.1, 0.2, 0.3]}\n")
    plan = sweep.plan(path, out=str(tmp_path / "out"))
    first, second, failed = plan.runs
    for run in (first, failed):  # Retried below with --rerun-failed; the group rewrites first.
        sweep.record_failure(run, "RuntimeError: earlier")
    alone = []

    def fake_train_group(configs, dataset, quiet=False):
        if len(configs) > 1:
            fake_complete(configs[0], "group")
            raise RuntimeError("crash after writing the first member")
        alone.append(configs[0].run_id)
        fake_complete(configs[0], "alone")

    monkeypatch.setattr(runner, "train_group", fake_train_group)
    monkeypatch.setattr(runner, "load_dataset", lambda cfg: None)
    sweep.execute(plan, max_group=3, rerun_failed=True, quiet=True)
    assert alone == [second.config.run_id, failed.config.run_id]
    assert results.read_json(first.run_dir / results.METRICS)["by"] == "group"
    assert [sweep.run_status(r) for r in plan.runs] == ["completed"] * 3


def test_every_data_setting_loads_once_before_any_group_trains(tmp_path, monkeypatch):
    path = write_sweep(tmp_path, "name: d\ngrid: {data.train_limit: [100, 200], seed: [0, 1]}\n")
    plan = sweep.plan(path, out=str(tmp_path / "out"))
    events = []

    def fake_train_group(configs, dataset, quiet=False):
        events.append(("train", dataset))
        for cfg in configs:
            fake_complete(cfg)

    monkeypatch.setattr(runner, "train_group", fake_train_group)
    monkeypatch.setattr(
        runner, "load_dataset", lambda cfg: events.append(("load", cfg.data.train_limit)) or cfg
    )
    sweep.execute(plan, max_group=1, quiet=True)
    assert events[:2] == [("load", 100), ("load", 200)]
    assert [kind for kind, _ in events[2:]] == ["train"] * 4


@pytest.mark.parametrize(
    ("grid", "expected"),
    [
        ("data.path: ['{data}', '{absent}']", "no such file or directory"),
        ("data.test_limit: [200, 20]", "data.test_limit=20: the thesis SSIM needs"),
    ],
)
def test_bad_data_in_any_group_stops_the_sweep_before_training(
    tmp_path, monkeypatch, mnist_path, grid, expected
):
    grid = grid.format(data=mnist_path, absent=tmp_path / "absent.npz")
    path = write_sweep(
        tmp_path, f"name: b\nconfig: {{data.path: '{mnist_path}'}}\ngrid: {{{grid}}}\n"
    )
    plan = sweep.plan(path, out=str(tmp_path / "out"))
    trained = []
    monkeypatch.setattr(runner, "train_group", lambda cfgs, ds, quiet=False: trained.append(cfgs))
    with pytest.raises(UserError, match=expected):
        sweep.execute(plan, max_group=30, quiet=True)
    assert trained == []


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

    again = subprocess.run(sweep_command(path, out), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "0 trained now, 12 already complete" in again.stdout


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
