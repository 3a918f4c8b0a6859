"""The thesis cells' "best rate per seed" pick, and its promised tie-break (lower rate wins)."""

from pathlib import Path

import pytest
from fakeruns import cell_raw

from aeexp.analysis.cells import best_per_seed
from aeexp.config import run as config
from aeexp.store.rundir import Run


def run(seed: int, rate: float, metric: str, value: float) -> Run:
    """Return a completed Adam run of one seed and learning rate, scoring ``value``."""
    cfg = config.validate(cell_raw("sigmoid", "mse", "adam", seed=seed, learning_rate=rate))
    return Run(cfg, {"status": "completed", metric: value}, Path(f"/runs/{seed}-{rate}"))


@pytest.mark.parametrize("metric", ["ssim_thesis", "final_val_loss"])  # higher and lower is better
@pytest.mark.parametrize("reverse", [False, True])
def test_a_tie_goes_to_the_lower_learning_rate_in_any_order(metric, reverse):
    grid = [run(0, rate, metric, 0.5) for rate in (1e-2, 1e-4, 1e-3)]
    grid += [run(1, rate, metric, 0.25) for rate in (3e-3, 3e-2)]
    if reverse:
        grid.reverse()
    values, picks = best_per_seed(grid, metric)
    assert values == (0.5, 0.25)
    assert [(p.config.seed, p.config.optimizer.learning_rate) for p in picks] == [
        (0, 1e-4),
        (1, 3e-3),
    ]


@pytest.mark.parametrize(("metric", "best"), [("ssim_thesis", 0.75), ("final_val_loss", 0.25)])
def test_the_better_score_wins_over_a_lower_rate(metric, best):
    grid = [run(0, 1e-4, metric, 0.5), run(0, 1e-1, metric, best), run(0, 1e-3, metric, 0.5)]
    values, picks = best_per_seed(grid, metric)
    assert values == (best,)
    assert picks[0].config.optimizer.learning_rate == 1e-1
