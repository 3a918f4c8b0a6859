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


def ranked(trials: Sequence[Trial], maximize: bool) -> list[Trial]:
    """Return the completed trials with a value, best first, one per run (ties: lower number)."""
    done = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    done.sort(key=lambda t: (-t.value if maximize else t.value, t.number))  # type: ignore[operator]
    unique: dict[str, Trial] = {}
    for trial in done:
        unique.setdefault(trial.run_id, trial)
    return list(unique.values())
