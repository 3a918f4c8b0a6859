"""The committed tune-vs-grid benchmark, recomputed from its runs CSVs, and the docs' words."""

import json
import re
from pathlib import Path

import docpages
import pandas
import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RUNS = BENCH / "tune_vs_grid_runs"
TABLE = (BENCH / "tune_vs_grid.md").read_text()
SEEDS = (0, 1, 2)
NUMBERS = {1: "one", 2: "two", 3: "three", 6: "six"}


def epochs(frame: pandas.DataFrame) -> pandas.Series:
    """Return each run's epochs trained: to its stop or divergence, else all 50."""
    return frame["pruned_epoch"].fillna(frame["diverged_epoch"]).fillna(50).astype(int)


def best(frame: pandas.DataFrame) -> tuple[float, float]:
    """Return the best completed ssim_mean and its learning rate."""
    done = frame[frame["status"] == "completed"]
    row = done.loc[done["ssim_mean"].idxmax()]
    return row["ssim_mean"], row["learning_rate"]


def cells(frame: pandas.DataFrame) -> dict[str, pandas.DataFrame]:
    """Return a runs CSV split by cell, named as the table names them."""
    keys = ["loss", "decoder_activation", "optimizer"]
    return {" / ".join(key): rows for key, rows in frame.groupby(keys)}


def table_rows() -> list[list[str]]:
    """Return the benchmark table's cell rows, split into columns."""
    rows = [line.strip("|").split("|") for line in TABLE.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in row] for row in rows[1:] if not row[0].strip().startswith("**")]


def test_every_row_recomputes_from_the_runs():
    grid = cells(pandas.read_csv(RUNS / "grid-runs.csv"))
    tunes = {s: cells(pandas.read_csv(RUNS / f"tune-seed{s}-runs.csv")) for s in SEEDS}
    rows = table_rows()
    assert len(rows) == 6 * len(SEEDS)
    for name, best_grid, lr_grid, seed, best_tune, lr_tune, gap, g_ep, t_ep, trials in rows:
        mine, theirs = grid[name], tunes[int(seed)][name]
        assert (float(best_grid), float(lr_grid)) == pytest.approx(best(mine), rel=5e-3)
        assert (float(best_tune), float(lr_tune)) == pytest.approx(best(theirs), rel=5e-3)
        assert float(gap) == pytest.approx(best(mine)[0] - best(theirs)[0], abs=1e-4)
        assert int(g_ep) == epochs(mine).sum() and int(t_ep) == epochs(theirs).sum()
        assert trials == f"{len(theirs)} ({(theirs['status'] == 'pruned').sum()})"


def test_each_searchs_verdict_recomputes():
    grid = cells(pandas.read_csv(RUNS / "grid-runs.csv"))
    grid_epochs = sum(epochs(rows).sum() for rows in grid.values())
    for seed in SEEDS:
        tune = cells(pandas.read_csv(RUNS / f"tune-seed{seed}-runs.csv"))
        ratio = sum(epochs(rows).sum() for rows in tune.values()) / grid_epochs
        within = sum(best(grid[c])[0] - best(tune[c])[0] <= 0.005 for c in grid)
        met = "yes" if within == 6 and ratio <= 1 / 3 else "NO"
        assert (
            f"- Sampler seed {seed}: epochs tune/grid = {ratio:.3f} (target <= 0.333); cells "
            f"within 0.005 SSIM of the grid's best: {within}/6;"
        ) in TABLE
        assert re.search(rf"Sampler seed {seed}: .* Target met: {met}\.", TABLE)


def test_the_grids_own_thirds_recompute():
    grid = cells(pandas.read_csv(RUNS / "grid-runs.csv"))
    counts = []
    for start in range(3):
        counts.append(
            sum(
                best(rows)[0] - rows.sort_values("learning_rate")["ssim_mean"].iloc[start::3].max()
                <= 0.005
                for rows in grid.values()
            )
        )
    assert f"its best: {', '.join(f'{n}/6' for n in counts)} cells" in TABLE


def test_the_docs_carry_the_benchmark():
    assert TABLE.strip() in docpages.text("docs/explanation/tuning-benchmark.md")


def readme() -> str:
    """Return the tuning pages with their line breaks folded, as prose is searched."""
    return docpages.prose("docs/explanation/tuning-benchmark.md", "docs/how-to/tune.md")


def test_the_readmes_words_on_the_searches_recompute():
    record = json.loads((BENCH / "tune_vs_grid.json").read_text())
    searches = record["searches"]
    epochs_share = [s["epochs_ratio"] for s in searches]
    wall_share = [s["tune_wall_seconds"] / s["grid_wall_seconds"] for s in searches]
    gaps = [row["gap"] for s in searches for row in s["rows"]]
    within = sum(s["cells_within_target"] for s in searches)
    met = sum(s["met"] for s in searches)
    thirds_met = sum(n == 6 for n in record["grid_thirds_within_target"])
    text = readme()
    assert (
        f"({min(epochs_share):.0%} to {max(epochs_share):.0%}) in {min(wall_share):.0%} to "
        f"{max(wall_share):.0%} of its wall time, and in {within} of the {len(gaps)} "
        f"cell-searches came within 0.005 SSIM of the grid's best, ahead of it in "
        f"{NUMBERS[sum(g < 0 for g in gaps)]}."
    ) in text
    assert f"{NUMBERS[met].capitalize()} search of three met the target" in text
    missed = sorted(6 - s["cells_within_target"] for s in searches if not s["met"])
    assert f"missed in {' and '.join(NUMBERS[n] for n in missed)} of the E_I1 cells" in text
    misses = {r["cell"] for s in searches for r in s["rows"] if r["gap"] > 0.005}
    assert misses == {"i_div1 / relu / adamax", "i_div1 / sigmoid / adamax"}
    assert f"fare no better: {NUMBERS[thirds_met]} of three meets it." in text
    grid_minutes = searches[0]["grid_wall_seconds"] / 60
    tune_minutes = [s["tune_wall_seconds"] / 60 for s in searches]
    assert (
        f"the grid {grid_minutes:.0f}, each search {min(tune_minutes):.0f} to "
        f"{max(tune_minutes):.0f}"
    ) in text
