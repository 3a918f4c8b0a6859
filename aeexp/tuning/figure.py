"""The tuning figure: per cell, each trial's metric against its searched value."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeexp.errors import is_finite_number
from aeexp.tuning.search import Search
from aeexp.tuning.space import Space

if TYPE_CHECKING:
    from aeexp.tuning.trials import Trial

# Statuses whose run has a metric to draw: a pruned run's is its value when it was stopped.
_DRAWN = ("completed", "pruned")


def _numeric(space: Space) -> bool:
    """Return whether a space's values can be placed on a number line."""
    return space.is_range or all(is_finite_number(v) for v in space.values)


def _x(space: Space, value: Any) -> float:
    """Return where a searched value goes on the x axis: itself, or a choice's position."""
    return float(value) if _numeric(space) else float(space.values.index(value))


def write_figure(search: Search, trials: Sequence[Trial], path: Path) -> Path:
    """Draw one panel per cell (pruned trials hollow, diverged ones as crosses); return ``path``."""
    from aeexp import plots
    from aeexp.tuning.trials import ranked

    panels = []
    spaces = [cell.plotted for cell in search.cells]
    for cell, space in zip(search.cells, spaces, strict=True):
        mine = [t for t in trials if t.cell.index == cell.index and t.run_id]
        points = [
            (_x(space, t.params[space.key]), t.value if t.status in _DRAWN else None, t.status)
            for t in mine
        ]
        best = ranked(mine, search.metric.maximize)[:1]
        index = next((i for i, t in enumerate(mine) if t in best), None)
        title = f"cell {cell.index}: {cell.label}"
        if best and best[0].tier == 0:  # the star is drawn at its first seed's value
            title += f"; best by its mean over {1 + len(best[0].reruns)} seeds, {best[0].score:.3f}"
        panels.append((title, points, index))
    # A log axis when every panel's values are positive numbers drawn on a log scale.
    log_x = all(s.log or (_numeric(s) and min(s.values) > 0 and not s.is_range) for s in spaces)
    keys = {space.key for space in spaces}
    xlabel = next(iter(keys)) if len(keys) == 1 else "searched value"
    # The registry's labels say "over the test set"; a tuning metric is on the holdout.
    ylabel = search.metric.name + (" (test set)" if search.on_test_set else " (training holdout)")
    plots.search_trials(panels, xlabel, ylabel, path, log_x)
    return path
