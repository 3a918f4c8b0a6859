"""The README's words on the committed tune-vs-grid benchmark, from its files."""

import re
from pathlib import Path

import pandas

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RUNS = BENCH / "tune_vs_grid_runs"


def cell(frame: pandas.DataFrame, loss: str, decoder: str) -> pandas.DataFrame:
    rows = frame[(frame["loss"] == loss) & (frame["decoder_activation"] == decoder)]
    return rows.sort_values("learning_rate")


def test_the_readme_states_what_the_benchmark_measured():
    table = (BENCH / "tune_vs_grid.md").read_text()
    readme = " ".join((REPO / "README.md").read_text().split())
    assert table.strip() in (REPO / "README.md").read_text()
    ratio = float(re.search(r"tune/grid = ([0-9.]+)", table)[1])
    grid_s, tune_s = map(float, re.search(r"wall: grid (\d+) s, tune (\d+) s", table).groups())
    assert f"trained {ratio:.0%} of the grid's epochs and took {tune_s / grid_s:.0%}" in readme
    assert "cells within 0.005 SSIM of the grid's best: 5/6" in table
    assert "| i_div1 / relu / adamax |" in table and "| +0.0141 |" in table


def test_the_missed_cells_noise_is_the_committed_runs():
    grid = cell(pandas.read_csv(RUNS / "grid-runs.csv"), "i_div1", "relu")
    tune = cell(pandas.read_csv(RUNS / "tune-runs.csv"), "i_div1", "relu")
    readme = " ".join((REPO / "README.md").read_text().split())
    best = grid[grid["learning_rate"] >= 0.00065 - 1e-12]
    assert len(grid) == 19 and (tune["status"] == "completed").sum() == 5
    assert f"by up to {best['ssim_mean'].diff().abs().max():.3f}" in readme
    at = dict(zip(grid["learning_rate"].round(6), grid["ssim_mean"], strict=True))
    assert f"{at[0.0007]:.4f} at 0.0007, {at[0.00075]:.4f} at 0.00075" in readme
