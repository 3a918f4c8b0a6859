"""``aeexp report backends``: pairing JAX runs with their TensorFlow twins, verdicts, the file.

The fast tests use hand-made runs on both sides. The end-to-end test trains real JAX runs
(the make target's sweep on 600 images, one epoch, three seeds) in a process of its own and
gives them hand-made TensorFlow twins, as the make target will find in thesis-optimizers.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from fakeruns import cell_raw, fake_run
from test_cli import assert_one_line_error

from aeexp import cli
from aeexp.analysis import verdicts
from aeexp.config import run as config
from aeexp.store import rundir as store
from aeexp.studies import backends

REPO = Path(__file__).resolve().parents[1]
SWEEP = REPO / "configs" / "sweeps" / "thesis-cells-jax.yaml"
SSIM = {"ssim_thesis": 0.80, "ssim_thesis_viridis": 0.70, "ssim_mean": 0.75, "ssim_median": 0.77}


def metrics(offset: float, seed: int) -> dict:
    wobble = 0.001 * (seed - 2)  # a small spread over seeds, the same on both sides
    return {key: value + offset + wobble for key, value in SSIM.items()} | {"psnr_mean": 20.0}


def write_pair(root: Path, raw: dict, seed: int, jax_offset: float, twin: bool = True) -> None:
    """Write one JAX run and (unless ``twin`` is False) its TensorFlow twin."""
    raw = {**raw, "seed": seed}
    fake_run(
        root / "jax", {**raw, "train": {"backend": "jax"}}, "cells", **metrics(jax_offset, seed)
    )
    if twin:
        fake_run(root / "tf", raw, "thesis-optimizers", **metrics(0.0, seed))


def report(root: Path) -> tuple[str, list[dict]]:
    result = CliRunner().invoke(
        cli.main,
        ["report", "backends", str(root / "tf"), str(root / "jax"), "--out", str(root / "out")],
    )
    assert result.exit_code == 0, result.output
    with open(root / "out" / backends.VERDICTS_CSV) as handle:
        return (root / "out" / "REPORT.md").read_text(), list(csv.DictReader(handle))


def test_twins_are_found_by_run_id_and_judged_per_cell_and_metric(tmp_path):
    same, apart = cell_raw("sigmoid", "mse", "adam"), cell_raw("relu", "i_div2", "adadelta")
    for seed in range(5):
        write_pair(tmp_path, same, seed, jax_offset=0.0005)
        write_pair(tmp_path, apart, seed, jax_offset=-0.05)
    # A TensorFlow run of another configuration is no twin of anything.
    fake_run(tmp_path / "tf", cell_raw("relu", "mse", "adagrad"), "thesis-optimizers", **SSIM)
    text, rows = report(tmp_path)
    assert len(rows) == 2 * len(backends.JUDGED)
    by_cell = {(r["cell"], r["metric"]): r for r in rows}
    for metric in backends.JUDGED:
        assert by_cell[("ReLU-Sigmoid, MSE, Adam", metric)]["verdict"] == verdicts.EQUIVALENT
        assert by_cell[("ReLU-ReLU, E_I2, AdaDelta", metric)]["verdict"] == verdicts.DIFFERENT
        assert float(by_cell[("ReLU-ReLU, E_I2, AdaDelta", metric)]["gap"]) == pytest.approx(-0.05)
    assert "4 equivalent, 4 different, 0 inconclusive" in text
    assert "| ReLU-Sigmoid, MSE, Adam | 5 (0) | 5 (0) |" in text  # the context table's counts


def test_a_jax_run_without_a_twin_is_named_and_a_side_of_one_is_not_testable(tmp_path):
    raw = cell_raw("sigmoid", "i_div2", "nadam")
    write_pair(tmp_path, raw, 0, 0.0)
    write_pair(tmp_path, raw, 1, 0.0, twin=False)
    text, rows = report(tmp_path)
    assert "1 JAX runs have no TensorFlow twin there" in text
    assert {r["verdict"] for r in rows} == {verdicts.NOT_TESTABLE}


def test_folders_without_jax_runs_or_without_twins_are_one_line(tmp_path):
    raw = cell_raw("sigmoid", "mse", "adam")
    fake_run(tmp_path / "tf", raw, "thesis-optimizers", **SSIM)
    fake_run(tmp_path / "jax", {**raw, "seed": 9, "train": {"backend": "jax"}}, "cells", **SSIM)
    invoke = CliRunner().invoke
    result = invoke(cli.main, ["report", "backends", str(tmp_path / "tf"), str(tmp_path / "tf")])
    assert_one_line_error(result, "no JAX runs")
    result = invoke(cli.main, ["report", "backends", str(tmp_path / "tf"), str(tmp_path / "jax")])
    assert_one_line_error(result, "no TensorFlow run has the configuration of any JAX run")


def test_the_make_targets_sweep_is_the_six_thesis_cells_on_jax(tmp_path):
    planned = config_plan(SWEEP, tmp_path)
    assert len(planned.runs) == 30 and planned.backend == "jax"
    for run in planned.runs:
        cfg = run.config
        thesis = config.resolve(
            REPO / "configs" / "thesis" / f"{cfg.loss.name}_relu-{cfg.model.decoder_activation}"
            f"_{cfg.optimizer.name}.yaml"
        )
        assert cfg.optimizer == thesis.optimizer and cfg.train.epochs == thesis.train.epochs


def config_plan(path: Path, out: Path):
    from aeexp.config import sweep as plan

    return plan.plan_sweep(path, out=out)


@pytest.mark.slow  # trains 18 small JAX runs in a child process: ~1 minute
def test_end_to_end_on_real_jax_runs_and_hand_made_tensorflow_twins(tmp_path, mnist_path):
    pytest.importorskip("jax")
    sweep = yaml.safe_load(SWEEP.read_text())
    sweep["grid"] = [{**block, "seed": [0, 1, 2]} for block in sweep["grid"]]
    small = tmp_path / "cells.yaml"
    small.write_text(yaml.safe_dump(sweep))
    limits = ["data.train_limit=600", "data.test_limit=300", "train.epochs=1"]
    command = [sys.executable, "-m", "aeexp", "sweep", str(small), "--quiet"]
    command += [part for limit in limits for part in ("--set", limit)]
    command += ["--out", str(tmp_path / "jax")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "AEEXP_DATA": str(mnist_path)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: some run diverged, a result
    jax_runs = store.load_runs(tmp_path / "jax")
    assert len(jax_runs) == 18
    for run in jax_runs:  # the twin: the same config on TensorFlow, its SSIMs 0.001 apart
        raw = run.config.resolved()
        raw["train"]["backend"] = "tensorflow"
        for key in ("name", "output"):
            raw.pop(key)
        shifted = {k: run.metrics[k] + 0.001 for k in SSIM if k in run.metrics}
        fake_run(tmp_path / "tf", raw, "thesis-optimizers", **shifted)
    text, rows = report(tmp_path)
    assert len(rows) == 6 * len(backends.JUDGED)
    assert "18 runs" in text and "no TensorFlow twin" not in text
    for row in rows:
        if row["verdict"] != verdicts.NOT_TESTABLE:  # a diverged cell has nothing to judge
            assert float(row["gap"]) == pytest.approx(-0.001, abs=1e-9)
            # A shift of 0.001 is never "different"; one epoch on 600 images leaves a
            # spread over three seeds that may not prove equivalence either.
            assert row["verdict"] in (verdicts.EQUIVALENT, verdicts.INCONCLUSIVE)
