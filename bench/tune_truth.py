"""The truth a tuner's pick is scored against: each thesis cell's expected test SSIM per rate.

A pick's **regret** is the best expected test ``ssim_mean`` over the grid's learning rates
minus the expected test ``ssim_mean`` at the rate picked, expectations over fresh seeds. The
expectations are the seed means of ``make reproduce``'s thesis-tuned runs (every grid rate,
seeds 0-4, trained on all 60,000 training images, scored on the 10,000 test images), pooled
with ``configs/sweeps/thesis-tuned-seeds.yaml`` (seeds 5-15 at the top rates of the two E_I1
cells, whose five seeds are too few to score a pick to 0.01). The test set scores; tuners
choose on ``data.holdout`` (the last 10,000 training images), so no pick saw the test set.

Runs at one seed share their initial weights and shuffles across rates (one lock-step group),
so a regret is the mean of per-seed differences against the best rate, and its standard
error is theirs: far smaller than either mean's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas

REPO = Path(__file__).resolve().parents[1]
RUNS = (
    REPO / "results" / "thesis" / "thesis-tuned-runs.csv",
    REPO / "bench" / "tune_truth" / "thesis-tuned-seeds-runs.csv",
)
METRIC = "ssim_mean"
CELL = ["loss", "decoder_activation", "optimizer"]
DELTAS = (0.01, 0.02)  # the regrets a user would call negligible, and acceptable


@dataclass(frozen=True)
class CellTruth:
    """One cell's test SSIM per (seed, rate): a seed by rate table, NaN where not trained."""

    table: pandas.DataFrame  # index seed, columns learning rate (ascending)

    @property
    def rates(self) -> np.ndarray:
        """Return the grid's learning rates, ascending."""
        return self.table.columns.to_numpy(float)

    def means(self, leave_out: int | None = None) -> pandas.Series:
        """Return each rate's mean over its seeds (without seed ``leave_out``)."""
        table = self.table if leave_out is None else self.table.drop(index=leave_out)
        return table.mean(axis=0)

    def best_rate(self, leave_out: int | None = None) -> float:
        """Return the rate of the highest mean (the lower rate on a tie)."""
        means = self.means(leave_out)
        return float(means.index[int(np.argmax(means.to_numpy()))])

    def regret(self, rate: float, leave_out: int | None = None) -> float:
        """Return the best rate's mean minus this grid rate's mean."""
        means = self.means(leave_out)
        return float(means.max() - means[rate])

    def regret_se(self, rate: float) -> float:
        """Return the standard error of ``regret(rate)`` from the per-seed differences."""
        diffs = (self.table[self.best_rate()] - self.table[rate]).dropna()
        return float(diffs.std(ddof=1) / math.sqrt(len(diffs))) if len(diffs) > 1 else math.nan

    def near_bound(self, rate: float, bounds: tuple[float, ...]) -> bool:
        """Return whether ``regret(rate)`` lies within two standard errors of a bound."""
        regret, se = self.regret(rate), self.regret_se(rate)
        return any(abs(regret - bound) < 2 * se for bound in bounds)

    def nearest(self, rate: float) -> float:
        """Return the grid rate nearest ``rate`` in log space (how an off-grid pick is scored)."""
        return float(self.rates[int(np.argmin(np.abs(np.log(self.rates) - math.log(rate))))])

    def full_seeds(self) -> list[int]:
        """Return the seeds trained at every rate: those a whole-grid pick can be made on."""
        return [int(s) for s, row in self.table.iterrows() if row.notna().all()]


def read_truth(paths: tuple[Path, ...] = RUNS) -> dict[tuple[str, str, str], CellTruth]:
    """Return each cell's truth from the runs CSVs (only completed runs count)."""
    runs = pandas.concat([pandas.read_csv(p) for p in paths], ignore_index=True)
    if runs["run_id"].duplicated().any():
        raise ValueError("a run appears twice in the truth's runs CSVs")
    if (runs["status"] != "completed").any():
        raise ValueError("the truth needs every run completed: a diverged rate has no mean")
    return {
        tuple(key): CellTruth(rows.pivot(index="seed", columns="learning_rate", values=METRIC))
        for key, rows in runs.groupby(CELL)
    }


def grid_picks(truth: CellTruth) -> list[float]:
    """Return the regret of the grid's single-seed pick, one per whole-grid seed.

    The author's procedure: train every rate on one seed and keep the best. Each seed's pick
    is scored against the other seeds' means, so the pick's own noise is not also its truth.
    """
    return [
        truth.regret(float(truth.table.loc[seed].idxmax()), leave_out=seed)
        for seed in truth.full_seeds()
    ]


def within(regret: float | None, delta: float) -> bool:
    """Return whether a pick's regret is at most ``delta`` (no pick never is)."""
    return regret is not None and regret <= delta + 1e-12  # float noise on a tie with the best


def wilson(successes: int, total: int) -> tuple[float, float]:
    """Return the 95% Wilson interval of a proportion."""
    from scipy.stats import binomtest

    interval = binomtest(successes, total).proportion_ci(0.95, method="wilson")
    return interval.low, interval.high
