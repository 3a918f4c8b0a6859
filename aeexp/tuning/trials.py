"""A tuner's trials as the summary, the figure and the best-points sweep read them, ranked.

Apart from the driver that makes them, so that the figure and the sweep writer read trials
without importing the loop that runs the studies (which imports them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aeexp.tuning.search import Cell


@dataclass(frozen=True)
class Rerun:
    """A trial's point trained again on another seed, to confirm its value (``confirm``)."""

    seed: int
    run_id: str
    value: float | None  # the metric; None unless the run completed
    epochs: int  # epochs its run trained
    metrics: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Trial:
    """One trial as the summary, the figure and the sweep file see it."""

    cell: Cell
    number: int
    params: dict[str, Any]
    run_id: str  # "" for a trial killed while it was being asked: it has no run
    state: str  # Optuna's: COMPLETE, PRUNED, FAIL (RUNNING only if it could not finish)
    status: str  # the run's: completed, pruned, diverged, failed
    value: float | None  # the metric; a pruned run's as it stood when stopped
    epochs: int  # epochs its run trained
    # Its run's metrics.json as read when collected ({} if none), so nothing reads it again.
    metrics: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    reruns: tuple[Rerun, ...] = ()  # its point on further seeds, if it was confirmed

    @property
    def score(self) -> float | None:
        """Return the mean of its value and its reruns' (None if any has none), else its value."""
        values = [self.value, *(rerun.value for rerun in self.reruns)]
        if any(value is None for value in values):
            return None
        return sum(values) / len(values)  # type: ignore[arg-type]

    @property
    def tier(self) -> int:
        """Return its rank class: 0 confirmed with a score, 1 not confirmed, 2 failed to confirm."""
        if not self.reruns:
            return 1
        return 0 if self.score is not None else 2


def ranked(trials: Sequence[Trial], maximize: bool) -> list[Trial]:
    """Return the completed trials with a value, best first, one per run (ties: lower number).

    Trials confirmed on further seeds come first, by the mean over their seeds; then the
    trials not confirmed, by their value; last those a rerun of which did not complete.
    """
    done = [t for t in trials if t.state == "COMPLETE" and t.value is not None]

    def order(trial: Trial) -> tuple[int, float, int]:
        """Return the sort key: tier, then the score (or value) best first, then the number."""
        score = trial.score if trial.tier == 0 else trial.value
        return trial.tier, -score if maximize else score, trial.number  # type: ignore[operator]

    done.sort(key=order)
    unique: dict[str, Trial] = {}
    for trial in done:
        unique.setdefault(trial.run_id, trial)
    return list(unique.values())
