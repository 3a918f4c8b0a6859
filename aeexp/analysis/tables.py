"""SSIM tables in the thesis's layout, side by side with the thesis: cells, statistics, renderers.

The renderers take runs (:func:`aeexp.store.runs_csv.load_runs`); :func:`render` reads a
folder for the command line.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import numbers
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aeexp.config.run import RunConfig
from aeexp.errors import UserError, shorten
from aeexp.registry import optimizers
from aeexp.registry.datasets import DATASETS, DEFAULT_DATASET
from aeexp.registry.losses import loss_key
from aeexp.registry.published import THESIS_LOSSES, THESIS_METRIC, THESIS_SSIM
from aeexp.registry.vocab import (
    DECODERS,
    decoder_label,
    higher_is_better,
    is_completed,
    loss_header,
)
from aeexp.store import rundir as store
from aeexp.store import runs_csv
from aeexp.store.rundir import Run


@dataclass(frozen=True)
class ConfigStats:
    """One configuration (all but the seed) and a metric over its seeds."""

    runs: tuple[Run, ...]
    values: tuple[float, ...]
    metric: str | None = None  # What ``values`` measure; ``best`` ranks by its direction.

    @property
    def config(self) -> RunConfig:
        """Return the first seed's config, which speaks for all."""
        return self.runs[0].config

    @property
    def n(self) -> int:
        """Return the number of seeds with a value."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """Return the mean over seeds (NaN if none finished)."""
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        """Return the sample standard deviation over seeds (0 for one seed)."""
        return float(np.std(self.values, ddof=1)) if self.n > 1 else 0.0

    @property
    def learning_rate(self) -> float:
        """Return the configuration's learning rate."""
        return self.config.optimizer.learning_rate

    @property
    def optimizer_label(self) -> str:
        """Return e.g. ``Adam`` or ``Adagrad lr=0.0065`` when the rate is not the default."""
        name = self.config.optimizer.name
        spec = optimizers.OPTIMIZERS[name]
        lr = self.config.optimizer.learning_rate
        suffix = "" if lr == spec.defaults["learning_rate"] else f" lr={lr:g}"
        return spec.label + suffix


def _without_seed(cfg: RunConfig) -> str:
    return cfg.model_copy(update={"seed": 0}).run_id


def as_number(value: object) -> float | None:
    """Return ``value`` as a float if it is a finite real number (not a bool), else None."""
    # numbers.Real also admits NumPy's scalars, which a DataFrame hands back.
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


@functools.cache
def _warn_not_a_number(run_dir: str, metric: str, shown: str) -> None:
    """Say once per run and key that a recorded value is not a number (reports re-read runs)."""
    # A run read from a runs CSV is named by the file and line, which hold the value.
    source = run_dir if runs_csv.is_row_label(run_dir) else f"{run_dir}: {store.METRICS}"
    print(
        f"aeexp: warning: {source} has {metric} = {shown}, not a finite number; counted as missing",
        file=sys.stderr,
    )


def recorded_number(run_dir: Path | str, metric: str, value: object) -> float | None:
    """Return a recorded metric as a float; None if absent, None with a warning if not a number.

    The one rule for a metric value read back from a run: a hand-edited or foreign
    ``metrics.json`` may hold any JSON there, and one odd run must not stop a table.
    """
    if value is None:
        return None
    number = as_number(value)
    if number is None:
        _warn_not_a_number(str(run_dir), shorten(metric), shorten(value))
    return number


def metric_value(run: Run, metric: str) -> float | None:
    """Return ``metric`` of a completed run, or None (not completed, absent or not a number)."""
    if not is_completed(run.metrics):
        return None
    return recorded_number(run.path, metric, run.metrics.get(metric))


def config_stats(runs: Iterable[Run], metric: str) -> list[ConfigStats]:
    """Group runs that differ only in seed and collect ``metric`` over their seeds."""
    grouped: dict[str, list[Run]] = {}
    for run in runs:
        grouped.setdefault(_without_seed(run.config), []).append(run)
    stats = []
    for members in grouped.values():
        members.sort(key=lambda r: r.config.seed)
        found = (metric_value(r, metric) for r in members)
        values = tuple(v for v in found if v is not None)
        stats.append(ConfigStats(tuple(members), values, metric))
    return stats


def best(stats: Iterable[ConfigStats], metric: str | None = None) -> ConfigStats | None:
    """Return the configuration with the best mean for ``metric`` (default: the stats' own)."""
    finished = [s for s in stats if s.n]
    if not finished:
        return None
    metric = metric or finished[0].metric
    if metric is None:
        raise ValueError("best() needs the metric: the stats do not say which they measure")
    pick = max if higher_is_better(metric) else min
    return pick(finished, key=lambda s: s.mean)  # Ties: the first, for max and min alike.


def cells(runs: Sequence[Run], metric: str, by: str = "best") -> dict[tuple[str, str], ConfigStats]:
    """Return the chosen configuration per (row, loss column): the best, or per optimizer."""
    dataset_of(runs)  # the best of two datasets' runs means nothing: refused
    buckets: dict[tuple[str, str], list[ConfigStats]] = {}
    for stat in config_stats(runs, metric):
        row = decoder_label(stat.config)
        if by == "optimizer":
            row = f"{row} / {optimizers.OPTIMIZERS[stat.config.optimizer.name].label}"
        buckets.setdefault((row, loss_key(stat.config)), []).append(stat)
    chosen = {key: best(group, metric) for key, group in buckets.items()}
    return {key: stat for key, stat in chosen.items() if stat is not None}


def row_order(rows: Iterable[str]) -> list[str]:
    """Return table rows in the thesis's order (ReLU-ReLU, ReLU-Sigmoid), then the others."""
    preferred = list(DECODERS.values())
    return sorted(
        set(rows),
        key=lambda r: (
            next((i for i, p in enumerate(preferred) if r.startswith(p)), len(preferred)),
            r,
        ),
    )


def column_order(columns: Iterable[str]) -> list[str]:
    """Return loss columns in the thesis's order (MSE, E_I1, E_I2), then the others by name."""
    columns = set(columns)
    return [c for c in THESIS_LOSSES if c in columns] + sorted(columns - set(THESIS_LOSSES))


def format_value(stat: ConfigStats, digits: int = 3, style: str = "std") -> str:
    """Return ``mean ± std (n)`` or, with style ``ci``, ``mean [95% CI] (n)``; or the value."""
    if stat.n > 1 and style == "ci":
        from aeexp.analysis import stats

        interval = stats.t_interval(stat.values)
        return (
            f"{stat.mean:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}] "
            f"({stat.n})"
        )
    if stat.n > 1:
        return f"{stat.mean:.{digits}f} ± {stat.std:.{digits}f} ({stat.n})"
    return f"{stat.mean:.{digits}f}"


def ci_half_width(stat: ConfigStats) -> float:
    """Return the half-width of the 95% t interval of the mean over seeds (0 for one seed)."""
    from aeexp.analysis import stats

    return stats.t_interval(stat.values).half_width if stat.n else 0.0


def thesis_row_key(row: str) -> str | None:
    """Return the decoder activation of a thesis row (``relu`` for ReLU-ReLU), else None."""
    base = row.split(" / ")[0]
    return {label: decoder for decoder, label in DECODERS.items()}.get(base)


def check_comparable(metric: str) -> None:
    """Raise UserError unless ``metric`` is the one the thesis published, so comparable."""
    if metric != THESIS_METRIC:
        raise UserError(
            f"--compare thesis needs --metric {THESIS_METRIC}: the thesis published only "
            f"its ten-image SSIM, so a difference with {metric} means nothing"
        )


def dataset_of(runs: Sequence[Run]) -> str:
    """Return the one ``data.name`` the runs share; a table of two datasets is refused."""
    names = sorted({run.config.data.name for run in runs})
    if len(names) > 1:
        raise UserError(
            f"the runs come from {len(names)} datasets ({', '.join(names)}): a table "
            "compares runs on one; point at one dataset's runs"
        )
    return names[0] if names else DEFAULT_DATASET


def check_thesis_dataset(runs: Sequence[Run], needs: str = "--compare thesis") -> None:
    """Raise UserError unless the runs trained on the thesis's own dataset (MNIST)."""
    name = dataset_of(runs)
    if not DATASETS[name].thesis:
        thesis = next(n for n, entry in DATASETS.items() if entry.thesis)
        raise UserError(
            f"{needs} needs runs on {thesis}: these trained on {name}, and the "
            f"thesis published numbers for {DATASETS[thesis].title} only"
        )


def caption(runs: Sequence[Run]) -> str | None:
    """Return the line naming the dataset above a table, or None for MNIST (the default)."""
    name = dataset_of(runs)
    return None if name == DEFAULT_DATASET else f"Dataset: {DATASETS[name].title} ({name})"


def layout(
    runs: Sequence[Run],
    metric: str = "ssim_thesis",
    by: str = "best",
    compare: bool = False,
    style: str = "std",
) -> tuple[list[str], list[list[str]]]:
    """Return the header and rows of the table in the thesis's layout."""
    if compare:
        check_comparable(metric)
        check_thesis_dataset(runs)
    chosen = cells(runs, metric, by)
    rows = row_order(r for r, _ in chosen)
    columns = column_order(c for _, c in chosen)
    header = ["decoder"]
    for column in columns:
        header.append(loss_header(column))
        if compare:
            header += [f"{loss_header(column)} thesis", f"{loss_header(column)} Δ"]
    body = []
    for row in rows:
        line = [row]
        for column in columns:
            stat = chosen.get((row, column))
            line.append(f"{format_value(stat, style=style)} {stat.optimizer_label}" if stat else "")
            if compare:
                line += _comparison(row, column, stat)
        body.append(line)
    return header, body


def _comparison(row: str, column: str, stat: ConfigStats | None) -> list[str]:
    published = THESIS_SSIM.get((thesis_row_key(row) or "", column))
    if published is None:
        return ["", ""]
    value, optimizer = published
    thesis = f"{value:.3f} {optimizers.OPTIMIZERS[optimizer].label}"
    diff = f"{stat.mean - value:+.3f}" if stat else ""
    return [thesis, diff]


def long_rows(
    runs: Sequence[Run], metric: str = "ssim_thesis", by: str = "best", compare: bool = False
) -> list[dict]:
    """Return one machine-readable row per cell; with ``compare``, the thesis's value too.

    Rows of a dataset other than MNIST start with its ``dataset`` column.
    """
    if compare:
        check_comparable(metric)
        check_thesis_dataset(runs)
    name = dataset_of(runs)
    first = {} if name == DEFAULT_DATASET else {"dataset": name}
    rows = []
    for (row, column), stat in sorted(cells(runs, metric, by).items()):
        line = first | {
            "decoder": row,
            "loss": column,
            "optimizer": stat.config.optimizer.name,
            "learning_rate": stat.config.optimizer.learning_rate,
            "metric": metric,
            "mean": stat.mean,
            "std": stat.std,
            "n": stat.n,
        }
        if compare:
            published = THESIS_SSIM.get((thesis_row_key(row) or "", column))
            line["thesis"] = published[0] if published else ""
            line["difference"] = stat.mean - published[0] if published else ""
        rows.append(line)
    return rows


def to_markdown(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """Render a Markdown pipe table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def to_latex(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """Render a LaTeX tabular (booktabs)."""

    def escape(text: str) -> str:
        return text.replace("_", r"\_").replace("±", r"$\pm$").replace("Δ", r"$\Delta$")

    lines = [
        r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(escape(h) for h in header) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(escape(c) for c in row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def to_csv(rows: Sequence[dict]) -> str:
    """Render long rows as CSV."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def render(
    folder: str | Path,
    metric: str = "ssim_thesis",
    fmt: str = "md",
    by: str = "best",
    compare: bool = False,
) -> str:
    """Return the table for the runs under ``folder`` (or in a runs CSV) in the format asked."""
    if compare:
        check_comparable(metric)  # Before reading any run: the mistake is in the command.
    runs = runs_csv.load_runs(folder)
    if fmt == "csv":
        return to_csv(long_rows(runs, metric, by, compare))
    header, body = layout(runs, metric, by, compare)
    table = to_latex(header, body) if fmt == "latex" else to_markdown(header, body)
    above = caption(runs)
    if above is None:
        return table
    return f"% {above}\n{table}" if fmt == "latex" else f"{above}\n\n{table}"
