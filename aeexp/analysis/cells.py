"""The thesis table, cell by cell: draws of the author's procedure beside the published value.

For each of the thesis's cells (decoder x loss, its published SSIM and optimizer) and each
protocol variant (the gray colormap of the notebook's run order, the viridis of a fresh
session), two statistics estimate what the thesis measured once:

* **procedure** (primary): the author's procedure repeated. The published number is the
  best point of a learning-rate grid on one seed; the same grid runs on every seed here, and
  each seed's best point, picked by the score being judged, is one draw of what that
  procedure gives. Comparing the published maximum with one point's mean would compare a
  maximum with a mean.
* **defaults** (secondary): the thesis's optimizer at Keras 2.2 defaults, one value per seed.

Each is judged by :mod:`aeexp.analysis.verdicts` (equivalent, different, inconclusive).
The protocol's own spread (other picks of the same digits, from the saved models) is
reported beside the rule as context, never inside it: the published value and ours share
the same ten images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aeexp.analysis import stats, tables, verdicts
from aeexp.analysis.protocol import VARIANTS, Meter, ProtocolNoise
from aeexp.analysis.tables import ConfigStats
from aeexp.registry import losses, optimizers, vocab
from aeexp.registry.published import THESIS_SSIM
from aeexp.registry.vocab import DECODERS
from aeexp.store.rundir import Run

PRIMARY = "procedure"
SECONDARY = "defaults"
STATISTICS = (PRIMARY, SECONDARY)  # the order the report shows them
PRIMARY_VARIANT = "gray"


@dataclass(frozen=True)
class Estimate:
    """One statistic of one cell under one protocol variant, against the published value."""

    statistic: str  # PRIMARY or SECONDARY
    variant: str  # "gray" or "viridis"
    values: tuple[float, ...]  # one per seed
    runs: tuple[Run, ...]  # the run behind each value
    label: str  # what was trained, e.g. "Adamax, best of 19 rates" or "Adamax"
    protocol: ProtocolNoise
    published: float

    @property
    def seeds(self) -> tuple[int, ...]:
        """Return the seeds of the values."""
        return tuple(r.config.seed for r in self.runs)

    @property
    def n(self) -> int:
        """Return the number of values."""
        return len(self.values)

    @property
    def interval(self) -> stats.Interval:
        """Return the t confidence interval of the mean over seeds."""
        return stats.t_interval(self.values)

    @property
    def judgement(self) -> verdicts.Judgement:
        """Return the rule applied to these values against the published value."""
        return verdicts.judge(self.values, self.published)

    @property
    def protocol_sd(self) -> float:
        """Return the protocol's pooled standard deviation (NaN if no model was measured)."""
        return self.protocol.sd

    def describe(self) -> str:
        """Return e.g. ``gray, procedure (Adamax, best of 19 rates per seed, seeds 0-4)``."""
        return f"{self.variant}, {self.statistic} ({self.label}, {seed_span(self.seeds)})"


@dataclass(frozen=True)
class Cell:
    """One cell of the thesis table and what our runs say about it."""

    decoder: str
    loss: str
    published: float
    optimizer: str
    estimates: tuple[Estimate, ...]
    grid: tuple[ConfigStats, ...]  # every grid point over its seeds (ssim_thesis), by rate

    @property
    def label(self) -> str:
        """Return e.g. ``ReLU-Sigmoid E_I1``."""
        return f"{DECODERS[self.decoder]} {vocab.loss_header(self.loss)}"

    @property
    def optimizer_label(self) -> str:
        """Return the thesis's optimizer's label, e.g. ``Adamax``."""
        return optimizers.OPTIMIZERS[self.optimizer].label

    @property
    def stem(self) -> str:
        """Return e.g. ``i_div1_relu-sigmoid_adamax``, for file names."""
        return f"{self.loss}_{DECODERS[self.decoder].lower()}_{self.optimizer}"

    def estimate(self, statistic: str, variant: str) -> Estimate | None:
        """Return the estimate of ``statistic`` under ``variant``, if the runs allow one."""
        return next(
            (e for e in self.estimates if e.statistic == statistic and e.variant == variant), None
        )


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
        and losses.loss_key(r.config) == loss
        and (optimizer is None or r.config.optimizer.name == optimizer)
    ]


def best_per_seed(grid: Sequence[Run], metric: str) -> tuple[tuple[float, ...], tuple[Run, ...]]:
    """Return each seed's best score over the grid and the run that scored it.

    Ties go to the lower learning rate. A seed with no completed grid point has no value.
    """
    by_seed: dict[int, list[tuple[float, float, Run]]] = {}
    for run in grid:
        value = tables.metric_value(run, metric)
        if value is not None:
            rate = run.config.optimizer.learning_rate
            by_seed.setdefault(run.config.seed, []).append((value, rate, run))
    sign = 1.0 if vocab.higher_is_better(metric) else -1.0
    picks = [
        max(scored, key=lambda item: (sign * item[0], -item[1]))
        for _, scored in sorted(by_seed.items())
    ]
    return tuple(p[0] for p in picks), tuple(p[2] for p in picks)


def _grid_label(grid: Sequence[ConfigStats]) -> str:
    """Return e.g. ``Adamax, best of 19 rates per seed``."""
    name = optimizers.OPTIMIZERS[grid[0].config.optimizer.name].label
    return f"{name}, best of {len(grid)} rates per seed"


def _estimate(
    statistic: str, variant: str, stat_runs: tuple, label: str, meter: Meter, published: float
) -> Estimate:
    values, runs = stat_runs
    return Estimate(statistic, variant, values, runs, label, meter.noise(runs, variant), published)


def build_cells(defaults: Sequence[Run], tuned: Sequence[Run], meter: Meter) -> list[Cell]:
    """Return every thesis cell with its estimates under both protocol variants."""
    cells = []
    for (decoder, loss), (published, optimizer) in THESIS_SSIM.items():
        grid_runs = select(tuned, decoder, loss, optimizer)
        grid = tuple(
            sorted(tables.config_stats(grid_runs, "ssim_thesis"), key=lambda s: s.learning_rate)
        )
        estimates = []
        for variant, metric in VARIANTS.items():
            values, runs = best_per_seed(grid_runs, metric)
            if values:
                estimates.append(
                    _estimate(PRIMARY, variant, (values, runs), _grid_label(grid), meter, published)
                )
            own = tables.config_stats(select(defaults, decoder, loss, optimizer), metric)
            for stat in [s for s in own[:1] if s.n]:
                done = tuple(r for r in stat.runs if tables.metric_value(r, metric) is not None)
                label = stat.optimizer_label
                estimates.append(
                    _estimate(SECONDARY, variant, (stat.values, done), label, meter, published)
                )
        cells.append(Cell(decoder, loss, published, optimizer, tuple(estimates), grid))
    return cells
