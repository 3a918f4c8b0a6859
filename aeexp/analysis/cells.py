"""The thesis table, cell by cell: our estimates beside the published value, and a verdict.

For each of the thesis's cells (decoder x loss, its published SSIM and optimizer) and each
protocol variant (the gray colormap of the notebook's run order, the viridis of a fresh
session), two statistics estimate what the thesis measured once:

* **defaults**: the thesis's optimizer at Keras 2.2 defaults, over every seed of the
  defaults sweep;
* **tuned**: the author's tuning grid, its best point chosen on the tuning sweep's seed(s)
  by that variant's score, estimated over the other seeds (the ``thesis-tuned-seeds``
  sweep), so no estimate reuses the run that selected it.

Agreement rule. The published value P is one training run measured once. Our n seed values
(mean m, standard deviation s) and the protocol's spread p (the pooled standard deviation of
the ten-digit SSIM over other picks of the same digits, from the saved models) give a 95%
prediction interval for one more run measured with one pick of ten images:

    |P - m| <= t(0.975, n - 1) * sqrt(s^2 * (1 + 1/n) + p^2)

A statistic agrees when P lies inside it. A cell is reproduced under gray if a gray
statistic agrees (tuned first, as the thesis tuned, then defaults); else reproduced under
viridis only if a viridis statistic agrees; else not reproduced. With no saved models, p is
taken as 0 and the rule is the seed-only prediction interval (the report says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from aeexp import optimizers, vocab
from aeexp.analysis import stats, tables
from aeexp.analysis.protocol import VARIANTS, Meter, ProtocolNoise
from aeexp.analysis.tables import ConfigStats
from aeexp.store import Run
from aeexp.vocab import DECODERS

STATISTICS = {"tuned": "tuned", "defaults": "defaults"}  # the order the verdict tries them
REPRODUCED_GRAY = "reproduced under gray"
REPRODUCED_VIRIDIS = "reproduced under viridis only"
NOT_REPRODUCED = "not reproduced"
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Estimate:
    """One statistic of one cell under one protocol variant, against the published value."""

    statistic: str  # "defaults" or "tuned"
    variant: str  # "gray" or "viridis"
    stat: ConfigStats
    protocol: ProtocolNoise
    published: float
    seeds: tuple[int, ...]

    @property
    def interval(self) -> stats.Interval:
        """Return the t confidence interval of the mean over seeds."""
        return stats.t_interval(self.stat.values)

    @property
    def n(self) -> int:
        """Return the number of completed seeds."""
        return self.stat.n

    @property
    def seed_sd(self) -> float:
        """Return the standard deviation over seeds."""
        return self.stat.std

    @property
    def protocol_sd(self) -> float:
        """Return the protocol's pooled standard deviation, 0 if no model was measured."""
        sd = self.protocol.sd
        return 0.0 if math.isnan(sd) else sd

    @property
    def difference(self) -> float:
        """Return our mean minus the published value."""
        return self.stat.mean - self.published

    @property
    def tolerance(self) -> float:
        """Return the prediction interval's half-width (NaN below two seeds)."""
        n = self.n
        if n < 2:
            return math.nan
        spread = self.seed_sd**2 * (1 + 1 / n) + self.protocol_sd**2
        return stats.t_quantile(n) * math.sqrt(spread)

    @property
    def agrees(self) -> bool:
        """Return True if the published value lies in the prediction interval."""
        return self.n >= 2 and abs(self.difference) <= self.tolerance

    @property
    def distance(self) -> float:
        """Return |difference| in units of the tolerance (inf when there is none)."""
        return abs(self.difference) / self.tolerance if self.n >= 2 else math.inf

    def describe(self) -> str:
        """Return e.g. ``gray, tuned (Adamax lr=0.01, seeds 1-4)``."""
        seeds = seed_span(self.seeds)
        return f"{self.variant}, {self.statistic} ({self.stat.optimizer_label}, {seeds})"


@dataclass(frozen=True)
class Cell:
    """One cell of the thesis table and what our runs say about it."""

    decoder: str
    loss: str
    published: float
    optimizer: str
    estimates: tuple[Estimate, ...]
    tuned_candidates: tuple[ConfigStats, ...]  # the selection runs (seed 0), every grid point

    @property
    def label(self) -> str:
        """Return e.g. ``ReLU-Sigmoid E_I1``."""
        return f"{DECODERS[self.decoder]} {vocab.loss_header(self.loss)}"

    @property
    def optimizer_label(self) -> str:
        """Return the thesis's optimizer's label, e.g. ``Adamax``."""
        return optimizers.OPTIMIZERS[self.optimizer].label

    def estimate(self, statistic: str, variant: str) -> Estimate | None:
        """Return the estimate of ``statistic`` under ``variant``, if the runs allow one."""
        return next(
            (e for e in self.estimates if e.statistic == statistic and e.variant == variant), None
        )

    @property
    def verdict(self) -> tuple[str, Estimate | None]:
        """Return the verdict and the estimate it rests on (the closest one if none agrees)."""
        for variant, outcome in (("gray", REPRODUCED_GRAY), ("viridis", REPRODUCED_VIRIDIS)):
            for statistic in STATISTICS:
                found = self.estimate(statistic, variant)
                if found is not None and found.agrees:
                    return outcome, found
        testable = [e for e in self.estimates if e.n >= 2]
        if not testable:
            return NOT_MEASURED, None
        return NOT_REPRODUCED, min(testable, key=lambda e: (e.distance, e.describe()))


def seed_span(seeds: Sequence[int]) -> str:
    """Return ``seed 0``, ``seeds 1-4`` (consecutive) or ``seeds 0, 2, 3``."""
    seeds = sorted(seeds)
    if not seeds:
        return "no completed seed"
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def select(runs: Sequence[Run], decoder: str, loss: str, optimizer: str | None = None) -> list[Run]:
    """Return the runs of one cell (and optimizer, if given)."""
    return [
        r
        for r in runs
        if r.config.model.decoder_activation == decoder
        and vocab.loss_key(r.config) == loss
        and (optimizer is None or r.config.optimizer.name == optimizer)
    ]


def _completed_seeds(stat: ConfigStats) -> tuple[int, ...]:
    # The same test as config_stats's, so the seeds named are the seeds averaged.
    return tuple(
        r.config.seed for r in stat.runs if tables.metric_value(r, stat.metric or "") is not None
    )


def _without_seed(run: Run) -> str:
    return run.config.model_copy(update={"seed": 0, "name": "x"}).run_id


def tuned_pick(candidates: Sequence[ConfigStats], metric: str) -> ConfigStats | None:
    """Return the grid point with the best selection score; ties go to the lower rate."""
    ordered = sorted(candidates, key=lambda s: s.config.optimizer.params["learning_rate"])
    return tables.best(ordered, metric)


def build_cells(
    defaults: Sequence[Run],
    tuned: Sequence[Run],
    tuned_seeds: Sequence[Run],
    meter: Meter,
) -> list[Cell]:
    """Return every thesis cell with its estimates under both protocol variants."""
    cells = []
    for (decoder, loss), (published, optimizer) in vocab.THESIS_SSIM.items():
        estimates = []
        grid = select(tuned, decoder, loss, optimizer)
        for variant, metric in VARIANTS.items():
            own = tables.config_stats(select(defaults, decoder, loss, optimizer), metric)
            for stat in [s for s in own[:1] if s.n]:
                estimates.append(
                    Estimate(
                        "defaults",
                        variant,
                        stat,
                        meter.noise(stat.runs, variant),
                        published,
                        _completed_seeds(stat),
                    )
                )
            pick = tuned_pick(tables.config_stats(grid, metric), metric)
            if pick is None:
                continue
            selecting = {r.config.seed for r in pick.runs}
            key = _without_seed(pick.runs[0])
            later = [
                r for r in tuned_seeds if _without_seed(r) == key and r.config.seed not in selecting
            ]
            if later:
                (stat,) = tables.config_stats(later, metric)
                if stat.n:
                    estimates.append(
                        Estimate(
                            "tuned",
                            variant,
                            stat,
                            meter.noise(stat.runs, variant),
                            published,
                            _completed_seeds(stat),
                        )
                    )
        candidates = tuple(
            sorted(
                tables.config_stats(grid, "ssim_thesis"),
                key=lambda s: s.config.optimizer.params["learning_rate"],
            )
        )
        cells.append(Cell(decoder, loss, published, optimizer, tuple(estimates), candidates))
    return cells
