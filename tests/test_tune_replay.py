"""The offline replay of ``aeexp tune`` (bench/tune_replay.py): faithful, and what it committed."""

import json
import sys
from dataclasses import replace
from pathlib import Path

import docpages
import pandas
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

pytest.importorskip("optuna")
tune_replay = pytest.importorskip("tune_replay")

RUNS = REPO / "bench" / "tune_vs_grid_runs"
COMMITTED = tune_replay.SETTINGS[0]


@pytest.fixture(scope="module")
def grid():
    return tune_replay.read_grid(RUNS)


def test_the_replay_asks_what_the_real_searches_asked(grid):
    """The first batch of each cell needs no results: replayed, it is the real one, bit for bit."""
    for seed in (0, 1, 2):
        search = replace(tune_replay.read_search(COMMITTED, len(grid)), seed=seed)
        real = pandas.read_csv(RUNS / f"tune-seed{seed}-runs.csv")
        for cell in search.cells:
            key = tune_replay.grid_key(cell)
            replayed = tune_replay.replay_cell(search, cell, grid[key], trials=2, batch=2)
            rows = real[(real["loss"] == key[0]) & (real["decoder_activation"] == key[1])]
            assert set(replayed.rates) <= set(rows["learning_rate"]), (seed, cell.label)


def test_the_grid_is_read_whole(grid):
    runs = pandas.read_csv(RUNS / "grid-runs.csv")
    assert sum(len(g.curves) for g in grid.values()) == len(runs) == 118
    assert all(len(curve) == 50 for g in grid.values() for curve in g.curves)
    assert all((g.rates[1:] > g.rates[:-1]).all() for g in grid.values())


def test_the_committed_replays_regenerate(grid):
    """Three searches of the committed setting, replayed now, are the committed ones."""
    committed = json.loads((REPO / "bench" / "tune_replay.json").read_text())
    search = tune_replay.read_search(COMMITTED, len(grid))
    for seed in range(3):
        again = tune_replay.replay(replace(search, seed=seed), grid, 8, 2)
        assert again == committed["replays"][COMMITTED.name][seed]


def test_the_summary_is_its_replays():
    committed = json.loads((REPO / "bench" / "tune_replay.json").read_text())
    assert committed["searches"] == 100
    for row in committed["summaries"]:
        replays = committed["replays"][row["setting"]]
        assert len(replays) == 100
        assert row["met"] == sum(r["met"] for r in replays)
        assert row["met"] <= min(row["cells_within"].values())
        low, high = tune_replay.wilson(row["met"], 100)
        assert row["interval"] == [low, high] and low <= row["met"] / 100 <= high


def test_the_docs_carry_the_replay_table():
    table = (REPO / "bench" / "tune_replay.md").read_text()
    assert table.strip() in docpages.text("docs/explanation/tuning-benchmark.md")


def readme() -> str:
    """Return the tuning pages with their line breaks folded, as prose is searched."""
    return docpages.prose("docs/explanation/tuning-benchmark.md", "docs/how-to/tune.md")


def summaries() -> dict[str, dict]:
    committed = json.loads((REPO / "bench" / "tune_replay.json").read_text())
    return {row["setting"]: row for row in committed["summaries"]}


def test_the_readmes_words_on_the_replay_recompute():
    from scipy.stats import binomtest

    rows, text = summaries(), readme()
    mine = rows[COMMITTED.name]
    low, high = mine["interval"]
    real = json.loads((REPO / "bench" / "tune_vs_grid.json").read_text())["searches"]
    p_value = binomtest(sum(s["met"] for s in real), len(real), mine["met"] / 100).pvalue
    assert (
        f"a search meets the target {mine['met']} times in 100 ({low:.0%} to {high:.0%}); the "
        f"three real searches, one of which met it, are consistent with that (binomial test, "
        f"p = {p_value:.2f})"
    ) in text
    assert f"does better than {max(r['met'] for r in rows.values())} in 100" in text
    costly = [rows[name]["epochs_median"] for name in COSTLY]
    assert f"spend {min(costly):.0%} to {max(costly):.0%} of the grid's epochs" in text
    for name in COSTLY:
        for cell in ("i_div1 / relu / adamax", "i_div1 / sigmoid / adamax"):
            assert rows[name]["cells_within"][cell] >= mine["cells_within"][cell]
    assert mine["met"] < max(r["met"] for r in rows.values()) <= 25
    unpruned = rows["no pruning, 16 trials"]
    assert unpruned["cells_within"]["i_div1 / sigmoid / adamax"] == 100
    assert f"{unpruned['epochs_median']:.0%} of the grid's epochs" in text
    late = rows["pruning from epoch 15"]["cells_within"]["i_div1 / sigmoid / adamax"]
    early = mine["cells_within"]["i_div1 / sigmoid / adamax"]
    assert (
        f"grid best in {late} of 100 searches when pruning starts at epoch 15, in {early} when "
        "it starts at epoch 5"
    ) in text
    committed = tune_replay.bench.yamlio.read_yaml(tune_replay.bench.SEARCH)["pruner"]
    assert (tune_replay.WARM_15["n_warmup_steps"], committed["n_warmup_steps"]) == (15, 5)
    steady = [mine["cells_within"][c] for c in STEADY]
    assert f"within 0.005 of the grid's best in {min(steady)} to {max(steady)} searches" in text


COSTLY = ("24 trials", "no pruning", "no pruning, 16 trials")
STEADY = ("mse / relu / adagrad", "mse / sigmoid / adam", "i_div2 / sigmoid / nadam")


def test_the_readmes_yardstick_and_plateau_recompute(grid):
    text = readme()
    relu = grid[("i_div1", "relu", "adamax")]
    rates = [round(r, 6) for r in relu.rates]
    close = [r for r, v in zip(rates, relu.values, strict=True) if relu.best - v <= 0.005]
    at = dict(zip(rates, relu.values, strict=True))
    assert close == [0.0009]
    assert (
        f"only the grid's 0.0009 is within 0.005 of its best ({relu.best:.4f}), its neighbours "
        f"at 0.00085 and 0.00095 are {at[0.00085]:.4f} and {at[0.00095]:.4f}"
    ) in text
    sigmoid = grid[("i_div1", "sigmoid", "adamax")]
    by_rate = dict(zip([round(r, 6) for r in sigmoid.rates], sigmoid.curves, strict=True))
    value = dict(zip([round(r, 6) for r in sigmoid.rates], sigmoid.values, strict=True))
    plateau = by_rate[0.03][0]
    assert max(sigmoid.values) == value[0.03]

    def leaves(rate: float) -> int:
        return next(e for e, loss in enumerate(by_rate[rate], 1) if loss < plateau - 0.0005)

    assert f"loss of {plateau:.4f} that the rates leave at different epochs" in text
    assert (
        f"the best rate, 0.03, leaves it (falls 0.0005 below) at epoch {leaves(0.03)}, while "
        f"0.01, which ends {value[0.03] - value[0.01]:.3f} lower, leaves at epoch {leaves(0.01)}"
    ) in text
