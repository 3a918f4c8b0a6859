"""The committed tune-vs-grid benchmark, recomputed from its runs CSVs, and the docs' words."""

import json
from pathlib import Path

import docpages
import numpy as np
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


def truth_means() -> pandas.Series:
    """Return each (cell, rate)'s mean test ssim_mean from the truth's runs CSVs."""
    paths = (REPO / "results" / "thesis" / "thesis-tuned-runs.csv", TRUTH_SEEDS)
    runs = pandas.concat([pandas.read_csv(p) for p in paths])
    return runs.groupby(["loss", "decoder_activation", "optimizer", "learning_rate"])[
        "ssim_mean"
    ].mean()


TRUTH_SEEDS = BENCH / "tune_truth" / "thesis-tuned-seeds-runs.csv"


def regret(means: pandas.Series, name: str, rate: float) -> float:
    """Return a pick's regret: the cell's best mean less the mean at the log-nearest rate."""
    rates = means.loc[tuple(name.split(" / "))]
    nearest = rates.index[np.argmin(np.abs(np.log(rates.index.to_numpy()) - np.log(rate)))]
    return rates.max() - rates.loc[nearest]


def test_every_row_recomputes_from_the_runs():
    grid = cells(pandas.read_csv(RUNS / "grid-runs.csv"))
    tunes = {s: cells(pandas.read_csv(RUNS / f"tune-seed{s}-runs.csv")) for s in SEEDS}
    means = truth_means()
    rows = table_rows()
    assert len(rows) == 6 * len(SEEDS)
    for (
        name,
        best_grid,
        lr_grid,
        seed,
        best_tune,
        lr_tune,
        gap,
        g_reg,
        t_reg,
        g_ep,
        t_ep,
        trials,
    ) in rows:
        mine, theirs = grid[name], tunes[int(seed)][name]
        assert (float(best_grid), float(lr_grid)) == pytest.approx(best(mine), rel=5e-3)
        assert (float(best_tune), float(lr_tune)) == pytest.approx(best(theirs), rel=5e-3)
        assert float(gap) == pytest.approx(best(mine)[0] - best(theirs)[0], abs=1e-4)
        assert float(g_reg) == pytest.approx(regret(means, name, best(mine)[1]), abs=1e-4)
        assert float(t_reg) == pytest.approx(regret(means, name, best(theirs)[1]), abs=1e-4)
        assert int(g_ep) == epochs(mine).sum() and int(t_ep) == epochs(theirs).sum()
        assert trials == f"{len(theirs)} ({(theirs['status'] == 'pruned').sum()})"


def test_each_searchs_line_recomputes():
    grid = cells(pandas.read_csv(RUNS / "grid-runs.csv"))
    grid_epochs = sum(epochs(rows).sum() for rows in grid.values())
    means = truth_means()
    for seed in SEEDS:
        tune = cells(pandas.read_csv(RUNS / f"tune-seed{seed}-runs.csv"))
        ratio = sum(epochs(rows).sum() for rows in tune.values()) / grid_epochs
        regrets = [regret(means, name, best(rows)[1]) for name, rows in tune.items()]
        low, high = (sum(r <= d + 1e-12 for r in regrets) for d in (0.01, 0.02))
        assert (
            f"- Sampler seed {seed}: epochs tune/grid = {ratio:.3f} (target <= 0.333); cells "
            f"whose pick has regret <= 0.01: {low}/6, <= 0.02: {high}/6;"
        ) in TABLE


def test_the_docs_carry_the_benchmark():
    assert TABLE.strip() in docpages.text("docs/explanation/tuning-benchmark.md")


def readme() -> str:
    """Return the tuning pages with their line breaks folded, as prose is searched."""
    return docpages.prose("docs/explanation/tuning-benchmark.md", "docs/how-to/tune.md")


def test_the_pages_words_on_the_real_searches_recompute():
    record = json.loads((BENCH / "tune_vs_grid.json").read_text())
    searches = record["searches"]
    assert record["args"]["reuse_grid"] and record["args"]["batch"] == 2
    epochs_share = [s["epochs_ratio"] for s in searches]
    wall_share = [s["tune_wall_seconds"] / s["grid_wall_seconds"] for s in searches]
    assert all(s["cells_within"]["0.01"] == 6 for s in searches) and len(searches) == 3
    replay = json.loads((BENCH / "tune_replay.json").read_text())
    every = next(s for s in replay["summaries"] if s["setting"] == "defaults")["all_cells"]
    text = readme()
    assert (
        "All three real searches picked within 0.01 of the best rate in every cell (6 of 6 "
        f"each), at {min(epochs_share):.0%} to {max(epochs_share):.0%} of the grid's epochs and "
        f"{min(wall_share):.0%} to {max(wall_share):.0%} of its wall time"
    ) in text
    share = every["0.01"] / 100
    assert (
        f"with {every['0.01']} in 100 replayed searches within 0.01 in every cell, three of "
        f"three comes up about two times in five ({share:.2f} cubed is {share**3:.2f})"
    ) in text and round(share**3 * 5) == 2
    grid_minutes = searches[0]["grid_wall_seconds"] / 60
    assert f"the one recorded when it was trained, {grid_minutes:.0f} minutes on 2 cores" in text
