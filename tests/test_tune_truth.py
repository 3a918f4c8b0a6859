"""The truth a tune pick is scored against (bench/tune_truth.py), against hand and pandas."""

import math
import sys
from pathlib import Path

import numpy as np
import pandas
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import tune_truth  # noqa: E402


def cell(rows: dict[int, list[float]], rates=(0.1, 0.2, 0.4)) -> tune_truth.CellTruth:
    """Return a cell's truth from {seed: values per rate}."""
    table = pandas.DataFrame.from_dict(rows, orient="index", columns=list(rates))
    return tune_truth.CellTruth(table.rename_axis(index="seed", columns="learning_rate"))


def test_regret_is_the_best_mean_less_the_picked_one():
    truth = cell({0: [0.5, 0.7, 0.6], 1: [0.6, 0.7, 0.4]})
    assert truth.best_rate() == 0.2
    assert truth.regret(0.2) == 0.0
    assert truth.regret(0.1) == pytest.approx(0.15) and truth.regret(0.4) == pytest.approx(0.2)


def test_a_tie_goes_to_the_lower_rate():
    assert cell({0: [0.5, 0.7, 0.7]}).best_rate() == 0.2


def test_the_regret_se_is_the_paired_one():
    """Seed effects shared by all rates cancel: the SE is that of the per-seed differences."""
    truth = cell({0: [0.50, 0.60, 0.1], 1: [0.70, 0.81, 0.1], 2: [0.30, 0.39, 0.1]})
    differences = np.array([0.10, 0.11, 0.09])
    assert truth.regret_se(0.1) == pytest.approx(differences.std(ddof=1) / math.sqrt(3))
    assert truth.regret_se(0.1) < 0.01 < np.std([0.5, 0.7, 0.3], ddof=1) / math.sqrt(3)


def test_near_bound_uses_two_standard_errors():
    truth = cell({0: [0.50, 0.61, 0.1], 1: [0.70, 0.81, 0.1], 2: [0.30, 0.41, 0.1]})
    assert truth.regret(0.1) == pytest.approx(0.11) and truth.regret_se(0.1) == pytest.approx(0)
    assert not truth.near_bound(0.1, (0.01, 0.02))  # exact: no SE, so never near
    noisy = cell({0: [0.50, 0.60, 0.1], 1: [0.70, 0.71, 0.1], 2: [0.30, 0.36, 0.1]})
    assert noisy.regret(0.1) == pytest.approx(0.0567, abs=1e-4)
    assert noisy.near_bound(0.1, (0.02,)) and not noisy.near_bound(0.1, (0.5,))


def test_an_off_grid_rate_is_scored_at_its_log_nearest():
    truth = cell({0: [0.5, 0.7, 0.6]}, rates=(0.01, 0.02, 0.03))
    assert truth.nearest(0.0141) == 0.01 and truth.nearest(0.0142) == 0.02  # sqrt(2) e-2
    assert truth.nearest(0.5) == 0.03 and truth.nearest(1e-9) == 0.01


def test_the_grid_pick_is_scored_on_the_other_seeds():
    """Seed 0 picks 0.4 (its own luck); the other seeds' means make that regret 0.3."""
    truth = cell({0: [0.5, 0.6, 0.9], 1: [0.5, 0.8, 0.5], 2: [0.5, 0.8, 0.5]})
    assert tune_truth.grid_picks(truth) == pytest.approx([0.3, 0.0, 0.0])


def test_only_whole_grid_seeds_make_grid_picks():
    truth = cell({0: [0.5, 0.6, 0.9], 5: [math.nan, 0.8, 0.5]})
    assert truth.full_seeds() == [0] and len(tune_truth.grid_picks(truth)) == 1


def test_within_counts_no_pick_as_a_miss():
    assert tune_truth.within(0.01, 0.01) and not tune_truth.within(0.0101, 0.01)
    assert not tune_truth.within(None, 0.02)


def test_the_committed_truth_recomputes_with_pandas():
    """Every cell's regrets, from the committed CSVs by plain groupby means."""
    truth = tune_truth.read_truth()
    runs = pandas.concat([pandas.read_csv(p) for p in tune_truth.RUNS])
    means = runs.groupby([*tune_truth.CELL, "learning_rate"])["ssim_mean"].mean()
    assert len(truth) == 6
    for key, mine in truth.items():
        theirs = means.loc[key]
        for rate in mine.rates:
            assert mine.regret(rate) == pytest.approx(theirs.max() - theirs.loc[rate], abs=1e-12)


def test_the_extra_seeds_are_the_thesis_tuned_points():
    """Seeds 5-31 pool with seeds 0-4 only if they are the same points: same run id scheme."""
    base, extra = (pandas.read_csv(p) for p in tune_truth.RUNS)
    assert not set(base["run_id"]) & set(extra["run_id"])
    points = ["loss", "decoder_activation", "optimizer", "learning_rate"]
    assert set(map(tuple, extra[points].values)) <= set(map(tuple, base[points].values))
    relu = extra["decoder_activation"] == "relu"
    assert set(extra[relu]["seed"]) == set(range(5, 16)) and set(base["seed"]) == set(range(5))
    assert set(extra[~relu]["seed"]) == set(range(5, 32))


def test_read_truth_refuses_a_run_twice(tmp_path):
    frame = pandas.read_csv(tune_truth.RUNS[0]).head(3)
    path = tmp_path / "runs.csv"
    pandas.concat([frame, frame]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="twice"):
        tune_truth.read_truth((path,))


def first_stage(extra: pandas.DataFrame) -> pandas.DataFrame:
    """Return the extra seeds' first 110 runs: seeds 5-15 at the rates chosen from 5 seeds."""
    sigmoid = extra["decoder_activation"] == "sigmoid"
    later = sigmoid & extra["learning_rate"].isin([0.05, 0.06])
    return extra[(extra["seed"] <= 15) & ~later]


def test_the_page_says_which_rates_the_extra_seeds_trained():
    """Within 0.015 of the best five-seed mean, plus Sigmoid's neighbours; sd 0.02 to 0.08."""
    import docpages

    base, extra = (pandas.read_csv(p) for p in tune_truth.RUNS)
    extra = first_stage(extra)
    spreads = []
    for key, rows in extra.groupby(tune_truth.CELL):
        cell = base[(base[tune_truth.CELL] == list(key)).all(axis=1)]
        means = cell.groupby("learning_rate")["ssim_mean"].mean()
        close = sorted(means.index[means.max() - means <= 0.015])
        trained = sorted(rows["learning_rate"].unique())
        if key[1] == "sigmoid":
            rates = sorted(means.index)
            assert len(close) == 2 and rates.index(close[1]) == rates.index(close[0]) + 1
            close = rates[rates.index(close[0]) - 1 : rates.index(close[1]) + 2]
        assert trained == close, key
        spreads += list(cell.groupby("learning_rate")["ssim_mean"].std().loc[trained])
    assert len(extra) == 110 and (round(min(spreads), 2), round(max(spreads), 2)) == (0.02, 0.08)
    page = docpages.prose("docs/explanation/tuning-benchmark.md")
    assert "the seed-to-seed standard deviation is 0.02 to 0.08" in page
    assert "mean is within 0.015 of the cell's best" in page and "(110 runs" in page


def test_the_second_stage_trained_sigmoids_rates_near_a_bound_to_32_seeds(tmp_path):
    """Chosen from the 16-seed truth: every rate within 2 SE of a bound, and the best."""
    import docpages

    base, extra = (pandas.read_csv(p) for p in tune_truth.RUNS)
    first = first_stage(extra)
    path = tmp_path / "first.csv"
    first.to_csv(path, index=False)
    cell = tune_truth.read_truth((tune_truth.RUNS[0], path))[("i_div1", "sigmoid", "adamax")]
    chosen = [r for r in cell.rates if r == cell.best_rate() or cell.near_bound(r, (0.01, 0.02))]
    assert chosen == [0.01, 0.02, 0.03, 0.04, 0.05, 0.06] and cell.best_rate() == 0.03
    second = extra.drop(first.index)
    assert set(second["decoder_activation"]) == {"sigmoid"} and len(second) == 118
    assert sorted(second["learning_rate"].unique()) == chosen
    now = tune_truth.read_truth()[("i_div1", "sigmoid", "adamax")]
    assert all(now.table[r].notna().sum() == 32 for r in chosen)
    page = docpages.prose("docs/explanation/tuning-benchmark.md")
    assert "trained seeds 16-31 there at its six top rates, 0.01 to 0.06" in page
    assert "(118 runs more: 32 seeds a rate; all 228 committed" in page and len(extra) == 228
    regrets = {r: (now.regret(r), now.regret_se(r)) for r in (0.01, 0.04)}
    assert not now.near_bound(0.04, (0.01, 0.02)) and now.near_bound(0.01, (0.02,))
    assert (
        f"0.04 lies clear of 0.02 (regret {regrets[0.04][0]:.3f}, standard error "
        f"{regrets[0.04][1]:.3f}), and only 0.01 ({regrets[0.01][0]:.3f}, "
        f"{regrets[0.01][1]:.3f}) and 0.02 ({now.regret(0.02):.3f} below 0.03"
    ) in page
    assert [r for r in now.rates if r != 0.03 and now.near_bound(r, (0.01, 0.02))] == [0.01, 0.02]


def test_the_pages_word_on_adadeltas_precision():
    import docpages

    cell = tune_truth.read_truth()[("i_div2", "relu", "adadelta")]
    others = [r for r in cell.rates if r != cell.best_rate()]
    assert all(cell.regret(r) < 0.01 for r in cell.rates)
    near = sum(cell.near_bound(r, (0.01,)) for r in others)
    assert cell.table.notna().sum().max() == 5
    assert (
        f"In the AdaDelta cell every rate's regret is below 0.01, but {near} of its other "
        f"{len(others)} rates lie within two standard errors of 0.01 (five seeds)"
    ) in docpages.prose("docs/explanation/tuning-benchmark.md")
