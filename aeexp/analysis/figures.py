"""The sweep's charts: a metric's bars per loss, decoder and optimizer; each cell's best history."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aeexp.analysis.tables import cells, ci_half_width, column_order, row_order, thesis_row_key
from aeexp.registry.published import PUBLISHED_COMPARABLE, THESIS_SSIM
from aeexp.registry.vocab import loss_header
from aeexp.store import rundir as store
from aeexp.store.rundir import Run


def _history(run: Run) -> tuple[list[float], list[float]] | None:
    """Return a run's loss histories, or None with a warning if its history.csv is unusable."""
    try:
        rows = store.read_history(run.path)
        if not rows:
            raise ValueError(f"{store.HISTORY} has no epochs")
    except ValueError as error:
        store.warn_skipped(run.path, f"{error}; its loss history is not drawn")
        return None
    return [row["loss"] for row in rows], [row["val_loss"] for row in rows]


def check_destination(out: str | Path) -> None:
    """Raise a one-line UserError now if the figures' folder cannot be created or written."""
    store.ensure_writable(Path(out))


def write_figures(runs: Sequence[store.Run], metric: str, out: str | Path) -> list[Path]:
    """Write the runs' charts: metric bars per loss, decoder and optimizer; best histories."""
    from aeexp import plots

    out = Path(out)
    store.ensure_writable(out)
    per_optimizer = cells(runs, metric, by="optimizer")
    groups = [
        (r, c)
        for r in row_order({k[0].split(" / ")[0] for k in per_optimizer})
        for c in column_order({k[1] for k in per_optimizer})
    ]
    names = sorted({key[0].split(" / ")[1] for key in per_optimizer})
    series = {
        name: [
            (s.mean, ci_half_width(s))
            if (s := per_optimizer.get((f"{r} / {name}", c)))
            else (0.0, 0.0)
            for r, c in groups
        ]
        for name in names
    }
    bars = out / f"{metric}_bars.png"
    # The thesis published its ten-image SSIM; either colormap variant is compared with it.
    published = (
        [THESIS_SSIM.get((thesis_row_key(r) or "", c), (None,))[0] for r, c in groups]
        if metric in PUBLISHED_COMPARABLE
        else None
    )
    plots.grouped_bars(
        [f"{r}\n{loss_header(c)}" for r, c in groups],
        series,
        metric,
        f"{metric}: mean and 95% t interval over seeds"
        + ("; black line: published" if published else ""),
        bars,
        published,
    )
    panels = []
    chosen = cells(runs, metric)
    for row, column in [
        (r, c)
        for r in row_order({k[0] for k in chosen})
        for c in column_order({k[1] for k in chosen})
        if (r, c) in chosen
    ]:
        stat = chosen[(row, column)]
        # The first seed with a readable history; a damaged one is warned about and passed.
        with_history = (r for r in stat.runs if (r.path / store.HISTORY).is_file())
        found = next(((r, h) for r in with_history if (h := _history(r)) is not None), None)
        if found is not None:
            best_run, history = found
            seed = best_run.config.seed
            title = f"{row}, {loss_header(column)}, {stat.optimizer_label} (seed {seed})"
            panels.append((title, *history))
    histories = out / f"{metric}_best_loss_histories.png"
    if panels:
        plots.history_grid(panels, histories)
    return [bars, histories] if panels else [bars]
