"""``aeexp report backends``: pairing JAX runs with their TensorFlow twins, verdicts, the file.

The fast tests use hand-made runs on both sides; the paired ones (``--paired``) use
hand-made shared-init twins whose per-seed differences are known, recomputed with SciPy.
The end-to-end test trains real JAX runs (the make target's sweep on 600 images, one
epoch, three seeds) in a process of its own and gives them hand-made TensorFlow twins, as
the make target will find in thesis-optimizers.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from fakeruns import MACHINE, cell_raw, fake_run
from scipy import stats as scipy_stats
from test_cli import assert_one_line_error

from aeexp import cli
from aeexp.analysis import paired, verdicts
from aeexp.config import run as config
from aeexp.store import rundir as store
from aeexp.studies import backends

REPO = Path(__file__).resolve().parents[1]
SWEEP = REPO / "configs" / "sweeps" / "thesis-cells-jax.yaml"
SSIM = {"ssim_thesis": 0.80, "ssim_thesis_viridis": 0.70, "ssim_mean": 0.75, "ssim_median": 0.77}
GOLDEN = Path(__file__).parent / "golden" / "backends-report-unpaired.md"
SHARED = {"backend": "jax", "init": "shared"}


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


# --- The paired comparison (--paired): shared-init twins, judged seed by seed ---------------


def seed_value(seed: int) -> float:
    """Return a TensorFlow run's SSIM: far apart between seeds, as the seed's own variation."""
    return 0.5 + 0.03 * seed


def seed_difference(seed: int) -> float:
    """Return a seed's JAX − TF difference: small, and different for every seed."""
    return 0.001 * ((7 * seed) % 5) - 0.0015


def write_shared_pair(
    root: Path,
    raw: dict,
    seed: int,
    difference: float | None = None,
    twin: dict | None = None,
    **jax: object,
) -> None:
    """Write a shared-init JAX run and its TensorFlow twin, ``difference`` apart (JAX − TF).

    The difference defaults to :func:`seed_difference`; ``twin`` overrides the twin's
    metrics (``None`` values drop a metric), ``twin={}`` is no twin at all; ``jax`` overrides
    the JAX run's.
    """
    raw = {**raw, "seed": seed}
    step = seed_difference(seed) if difference is None else difference
    offsets = (0.0, 0.1, 0.2, 0.3)  # the metrics apart, so a swap of two would show
    base = {key: seed_value(seed) + off for key, off in zip(SSIM, offsets, strict=True)}
    moved = {key: value + step for key, value in base.items()}
    fake_run(root / "pjax", {**raw, "train": SHARED}, "paired-jax", **(moved | jax))
    if twin != {}:
        shared_tf = {**raw, "train": {"init": "shared"}}
        fake_run(root / "ptf", shared_tf, "paired-tf", **(base | (twin or {})))


def paired_report(root: Path) -> tuple[str, list[dict]]:
    """Run the report with --paired and return REPORT.md and paired-verdicts.csv's rows."""
    argv = ["report", "backends", str(root / "tf"), str(root / "jax")]
    argv += ["--paired", str(root / "ptf" / "paired-tf"), str(root / "pjax" / "paired-jax")]
    result = CliRunner().invoke(cli.main, [*argv, "--out", str(root / "out")])
    assert result.exit_code == 0, result.output
    with open(root / "out" / backends.PAIRED_VERDICTS_CSV) as handle:
        return (root / "out" / "REPORT.md").read_text(), list(csv.DictReader(handle))


def unpaired_study(root: Path) -> None:
    """Write the unpaired side: one cell, five seeds, JAX a little above TensorFlow."""
    for seed in range(5):
        write_pair(root, cell_raw("relu", "i_div1", "adamax"), seed, jax_offset=0.0005)


def write_seeds_with_gaps(root: Path, raw: dict) -> set[int]:
    """Write seeds 0-8 in a scrambled order with broken twins; return the seeds that pair."""
    for seed in (6, 2, 0, 8, 4, 1, 7, 3, 5):
        if seed == 5:  # no TensorFlow twin
            write_shared_pair(root, raw, seed, twin={})
        elif seed == 6:  # the twin diverged: its numbers are not a result
            write_shared_pair(root, raw, seed, twin={"status": "diverged"})
        elif seed == 7:  # the JAX run failed
            write_shared_pair(root, raw, seed, status="failed")
        else:
            write_shared_pair(root, raw, seed)
    return {0, 1, 2, 3, 4, 8}


def test_pairs_are_matched_by_seed_whatever_the_order_and_broken_twins_are_left_out(tmp_path):
    raw = cell_raw("relu", "i_div1", "adamax")
    seeds = write_seeds_with_gaps(tmp_path, raw)
    tf_runs = store.load_runs(tmp_path / "ptf" / "paired-tf")
    jax_runs = store.load_runs(tmp_path / "pjax" / "paired-jax")
    expected = sorted((seed_value(s) + seed_difference(s), seed_value(s)) for s in seeds)
    for order in (1, -1):  # listed forwards and backwards: the pairs stay the seeds' own
        (cell,) = backends.pair_cells(tf_runs[::order], jax_runs[::-order])
        jax_values, tf_values = cell.pairs("ssim_thesis")
        assert sorted(zip(jax_values, tf_values, strict=True)) == pytest.approx(expected)
    # A twin without the metric makes no pair for that metric only.
    write_shared_pair(tmp_path, raw, 9, twin={"ssim_mean": None})
    (cell,) = backends.pair_cells(
        store.load_runs(tmp_path / "ptf" / "paired-tf"),
        store.load_runs(tmp_path / "pjax" / "paired-jax"),
    )
    assert len(cell.pairs("ssim_mean")[0]) == 6 and len(cell.pairs("ssim_thesis")[0]) == 7


def test_a_paired_row_agrees_with_scipys_paired_tests_recomputed_from_the_runs(tmp_path):
    unpaired_study(tmp_path)
    raw = cell_raw("relu", "i_div1", "adamax")
    seeds = sorted(write_seeds_with_gaps(tmp_path, raw))
    text, rows = paired_report(tmp_path)
    assert len(rows) == len(backends.JUDGED)
    row = next(r for r in rows if r["metric"] == "ssim_mean")
    # Independently of aeexp: the values written above, differenced seed by seed.
    tf = np.array([seed_value(s) + 0.2 for s in seeds])
    jax = tf + np.array([seed_difference(s) for s in seeds])
    d = jax - tf
    assert int(row["n"]) == len(seeds) == 6
    assert float(row["gap"]) == pytest.approx(d.mean(), abs=1e-12)
    assert float(row["sd"]) == pytest.approx(d.std(ddof=1), rel=1e-9)
    assert float(row["diff_p"]) == pytest.approx(scipy_stats.ttest_rel(jax, tf).pvalue, rel=1e-6)
    above = scipy_stats.ttest_1samp(d, -verdicts.MARGIN, alternative="greater").pvalue
    below = scipy_stats.ttest_1samp(d, verdicts.MARGIN, alternative="less").pvalue
    assert float(row["tost_p"]) == pytest.approx(max(above, below), rel=1e-6)
    low, high = scipy_stats.t.interval(0.95, len(d) - 1, d.mean(), scipy_stats.sem(d))
    assert (float(row["ci_lo"]), float(row["ci_hi"])) == pytest.approx((low, high), rel=1e-9)
    # The seeds spread by 0.03 each, the differences by about 0.001: paired TOST decides.
    assert row["verdict"] == row["after_holm"] == verdicts.EQUIVALENT
    assert scipy_stats.ttest_ind(jax, tf, equal_var=False).pvalue > 0.9  # Welch sees nothing
    # Power and pairs needed: TOST at 6 pairs with this sd passes almost surely.
    assert float(row["power"]) > 0.99 and int(row["pairs_needed"]) == 2
    # The report shows the same row, first, above the unpaired table.
    assert text.index("## Paired verdicts (train.init: shared)") < text.index(
        "## Unpaired verdicts (default init)"
    )
    shown = f"| ReLU-ReLU, E_I1, Adamax | ssim_mean | 6 | {d.mean():+.4f} [{low:+.4f}, {high:+.4f}]"
    assert shown in text
    copied = sorted(p.name for p in (tmp_path / "out" / backends.PAIRED_DIR).iterdir())
    assert copied == []  # hand-made runs have no runs.csv to copy
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "REPORT.md",
        backends.PAIRED_DIR,
        backends.PAIRED_VERDICTS_CSV,
        backends.VERDICTS_CSV,
    ]


def test_an_undecided_paired_cell_says_how_many_pairs_would_decide_it(tmp_path):
    unpaired_study(tmp_path)
    raw = cell_raw("relu", "i_div2", "adadelta")
    steps = [0.012, -0.015, 0.02, -0.01]  # four pairs, sd 0.016: TOST cannot pass
    for seed, step in enumerate(steps):
        write_shared_pair(tmp_path, raw, seed, difference=step)
    text, rows = paired_report(tmp_path)
    row = next(r for r in rows if r["metric"] == "ssim_thesis")
    sd = float(np.std(steps, ddof=1))
    assert float(row["sd"]) == pytest.approx(sd)
    assert row["verdict"] == row["after_holm"] == verdicts.INCONCLUSIVE
    needed = int(row["pairs_needed"])
    assert 4 < needed == paired.pairs_needed(sd)
    assert f"ReLU-ReLU, E_I2, AdaDelta: ssim_thesis needs {needed} (has 4)" in text
    assert "0 equivalent, 0 different, 4 inconclusive; after Holm: 0 equivalent" in text


def test_holm_over_the_paired_family_withdraws_a_marginal_equivalence(tmp_path):
    unpaired_study(tmp_path)
    marginal, exact = cell_raw("relu", "i_div1", "adamax"), cell_raw("sigmoid", "mse", "adam")
    steps = [0.013, -0.014, 0.019, -0.011, 0.0]  # TOST p near 0.023 on each of four metrics
    for seed, step in enumerate(steps):
        write_shared_pair(tmp_path, marginal, seed, difference=step)
        write_shared_pair(tmp_path, exact, seed)
    text, rows = paired_report(tmp_path)
    by_cell = {(r["cell"], r["metric"]): r for r in rows}
    for metric in backends.JUDGED:
        row = by_cell[("ReLU-ReLU, E_I1, Adamax", metric)]
        d = np.array(steps)
        above = scipy_stats.ttest_1samp(d, -verdicts.MARGIN, alternative="greater").pvalue
        below = scipy_stats.ttest_1samp(d, verdicts.MARGIN, alternative="less").pvalue
        p = max(above, below)
        # Holm: the four near-zero p-values of the exact cell come first, then these four,
        # the first of them multiplied by 8 - 4 = 4, which lifts it above ALPHA.
        assert p < verdicts.ALPHA < 4 * p
        assert (row["verdict"], row["after_holm"]) == (verdicts.EQUIVALENT, verdicts.INCONCLUSIVE)
        assert by_cell[("ReLU-Sigmoid, MSE, Adam", metric)]["after_holm"] == verdicts.EQUIVALENT
    assert "Paired verdicts: 8 equivalent, 0 different, 0 inconclusive; after Holm: 4 " in text


def test_without_paired_the_report_is_byte_for_byte_what_it_was(tmp_path, monkeypatch):
    """The golden file was written by the code before --paired existed (commit 4fa37ac)."""
    monkeypatch.chdir(tmp_path)
    golden_study(Path("."))
    result = CliRunner().invoke(
        cli.main, ["report", "backends", "tf", "jax", "--out", "out"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert Path("out/REPORT.md").read_text() == GOLDEN.read_text()
    assert not Path("out", backends.PAIRED_VERDICTS_CSV).exists()
    assert not Path("out", backends.PAIRED_DIR).exists()
    # With --paired the unpaired part is the same text below the paired headline.
    for seed in range(3):
        write_shared_pair(Path("."), cell_raw("sigmoid", "mse", "adam"), seed)
    argv = ["report", "backends", "tf", "jax", "--paired", "ptf/paired-tf", "pjax/paired-jax"]
    assert CliRunner().invoke(cli.main, [*argv, "--out", "both"]).exit_code == 0
    both = Path("both/REPORT.md").read_text()
    unpaired = GOLDEN.read_text().split("## The rule\n\n")[1].replace("## Verdicts\n\n", "")
    assert both.split("## Unpaired verdicts (default init)\n\n")[1] == unpaired


def golden_study(root: Path) -> None:
    """Write the runs the unpaired golden report was made from (machine recorded: no drift)."""
    cells = [
        (cell_raw("sigmoid", "mse", "adam"), 0.0005),
        (cell_raw("relu", "i_div2", "adadelta"), -0.05),
    ]
    for index, (raw, offset) in enumerate(cells):
        for seed in range(4):
            spread = {"psnr_mean": 20.0 + seed, "machine": MACHINE}
            metrics_ = metrics(offset * (1 + 0.3 * seed), seed) | spread
            jax_raw = {**raw, "seed": seed, "train": {"backend": "jax"}}
            fake_run(root / "jax", jax_raw, "cells", **metrics_)
            if (index, seed) != (1, 3):  # one JAX run without its twin
                tf_metrics = metrics(0.0, seed) | spread | {"psnr_mean": 19.5 + seed}
                fake_run(root / "tf", {**raw, "seed": seed}, "thesis-optimizers", **tf_metrics)
    # A diverged JAX run and its twin: counted in the context table, in no sample.
    diverged = {**cells[0][0], "seed": 4}
    fake_run(root / "jax", {**diverged, "train": {"backend": "jax"}}, "cells", status="diverged")
    fake_run(root / "tf", diverged, "thesis-optimizers", **metrics(0.0, 4), machine=MACHINE)


@pytest.mark.parametrize(
    ("paired_args", "fragments"),
    [
        (["nowhere", "{jax}"], ["nowhere", "no such folder"]),
        (["{tf}", "{tf}"], ["--paired", "no JAX runs"]),
        (["{tf}", "{jax}"], ["--paired", "lack train.init: shared"]),
    ],
)
def test_a_bad_paired_folder_is_one_line_and_writes_nothing(tmp_path, paired_args, fragments):
    unpaired_study(tmp_path)
    folders = {"tf": tmp_path / "tf", "jax": tmp_path / "jax"}
    argv = ["report", "backends", str(folders["tf"]), str(folders["jax"]), "--paired"]
    argv += [part.format(**folders) for part in paired_args]
    result = CliRunner().invoke(cli.main, [*argv, "--out", str(tmp_path / "out")])
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists()
