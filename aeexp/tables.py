"""SSIM tables in the thesis's layout, read from run directories, side by side with the thesis."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from aeexp import config as config_lib
from aeexp import optimizers, results
from aeexp.config import RunConfig
from aeexp.errors import UserError
from aeexp.vocab import (
    DECODERS,
    PUBLISHED_COMPARABLE,
    THESIS_LOSSES,
    THESIS_METRIC,
    THESIS_SSIM,
    decoder_label,
    higher_is_better,
    is_completed,
    loss_header,
    loss_key,
)


@dataclass(frozen=True)
class Run:
    """A finished run as tables see it: its config, metrics and directory."""

    config: RunConfig
    metrics: dict[str, Any]
    path: Path


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
    def optimizer_label(self) -> str:
        """Return e.g. ``Adam`` or ``Adagrad lr=0.0065`` when the rate is not the default."""
        name = self.config.optimizer.name
        spec = optimizers.OPTIMIZERS[name]
        lr = self.config.optimizer.params["learning_rate"]
        suffix = "" if lr == spec.defaults["learning_rate"] else f" lr={lr:g}"
        return spec.label + suffix


def _read_run(run_dir: Path) -> Run:
    """Read one run directory, or raise ValueError saying what is damaged."""
    config_path, metrics_path = run_dir / results.CONFIG, run_dir / results.METRICS
    for path in (config_path, metrics_path):
        if not path.is_file():
            raise ValueError(f"no {path.name}")
        if path.stat().st_size == 0:
            raise ValueError(f"{path.name} is empty")
    try:
        raw = config_lib.read_yaml(config_path)
        cfg = config_lib.validate(raw, results.CONFIG)
    except (UserError, ValueError) as error:  # ValueError: bytes that are not UTF-8 text
        raise ValueError(str(error).replace(str(config_path), results.CONFIG)) from None
    try:
        metrics = results.read_json(metrics_path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{results.METRICS} is not valid JSON ({error})") from None
    if not isinstance(metrics, dict):
        raise ValueError(f"{results.METRICS} holds a {type(metrics).__name__}, not an object")
    return Run(cfg, metrics, run_dir)


def _run_dirs(folder: Path) -> list[Path]:
    """Return every directory under ``folder`` holding a config.yaml or a metrics.json.

    Hidden directories (a sweep's staging folders) and everything under them are left out.
    """
    found = set()
    for name in (results.CONFIG, results.METRICS):
        for path in folder.rglob(name):
            relative = path.parent.relative_to(folder).parts
            if not any(part.startswith(".") for part in relative):
                found.add(path.parent)
    return sorted(found)


def warn_skipped(run_dir: Path, reason: str) -> None:
    """Say on one stderr line that a damaged run directory is left out, and why."""
    click.echo(f"aeexp: warning: skipping {run_dir}: {' '.join(reason.split())}", err=True)


def load_runs(folder: str | Path) -> list[Run]:
    """Read every complete run directory under ``folder`` (an experiment or a parent of several).

    A run directory whose config.yaml or metrics.json is missing, empty, unreadable or
    invalid is damaged data, not a reason to stop: it is skipped with one warning line.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    found = []
    for run_dir in _run_dirs(folder):
        try:
            found.append(_read_run(run_dir))
        except ValueError as error:
            warn_skipped(run_dir, str(error))
    if not found:
        raise UserError(f"{folder}: no complete runs found")
    return found


def _without_seed(cfg: RunConfig) -> str:
    return cfg.model_copy(update={"seed": 0}).run_id


def config_stats(runs: Iterable[Run], metric: str) -> list[ConfigStats]:
    """Group runs that differ only in seed and collect ``metric`` over their seeds."""
    grouped: dict[str, list[Run]] = {}
    for run in runs:
        grouped.setdefault(_without_seed(run.config), []).append(run)
    stats = []
    for members in grouped.values():
        members.sort(key=lambda r: r.config.seed)
        values = tuple(
            float(r.metrics[metric])
            for r in members
            if is_completed(r.metrics) and r.metrics.get(metric) is not None
        )
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
    buckets: dict[tuple[str, str], list[ConfigStats]] = {}
    for stat in config_stats(runs, metric):
        row = decoder_label(stat.config)
        if by == "optimizer":
            row = f"{row} / {optimizers.OPTIMIZERS[stat.config.optimizer.name].label}"
        buckets.setdefault((row, loss_key(stat.config)), []).append(stat)
    chosen = {key: best(group, metric) for key, group in buckets.items()}
    return {key: stat for key, stat in chosen.items() if stat is not None}


def _row_order(rows: Iterable[str]) -> list[str]:
    preferred = list(DECODERS.values())
    return sorted(
        set(rows),
        key=lambda r: (
            next((i for i, p in enumerate(preferred) if r.startswith(p)), len(preferred)),
            r,
        ),
    )


def _column_order(columns: Iterable[str]) -> list[str]:
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


def _thesis_row_key(row: str) -> str | None:
    base = row.split(" / ")[0]
    return {label: decoder for decoder, label in DECODERS.items()}.get(base)


def check_comparable(metric: str) -> None:
    """Raise UserError unless ``metric`` is the one the thesis published, so comparable."""
    if metric != THESIS_METRIC:
        raise UserError(
            f"--compare thesis needs --metric {THESIS_METRIC}: the thesis published only "
            f"its ten-image SSIM, so a difference with {metric} means nothing"
        )


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
    chosen = cells(runs, metric, by)
    rows = _row_order(r for r, _ in chosen)
    columns = _column_order(c for _, c in chosen)
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
    published = THESIS_SSIM.get((_thesis_row_key(row) or "", column))
    if published is None:
        return ["", ""]
    value, optimizer = published
    thesis = f"{value:.3f} {optimizers.OPTIMIZERS[optimizer].label}"
    diff = f"{stat.mean - value:+.3f}" if stat else ""
    return [thesis, diff]


def long_rows(
    runs: Sequence[Run], metric: str = "ssim_thesis", by: str = "best", compare: bool = False
) -> list[dict]:
    """Return one machine-readable row per cell; with ``compare``, the thesis's value too."""
    if compare:
        check_comparable(metric)
    rows = []
    for (row, column), stat in sorted(cells(runs, metric, by).items()):
        line = {
            "decoder": row,
            "loss": column,
            "optimizer": stat.config.optimizer.name,
            "learning_rate": stat.config.optimizer.params["learning_rate"],
            "metric": metric,
            "mean": stat.mean,
            "std": stat.std,
            "n": stat.n,
        }
        if compare:
            published = THESIS_SSIM.get((_thesis_row_key(row) or "", column))
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
    """Return the table for the runs under ``folder`` in the requested format."""
    if compare:
        check_comparable(metric)  # Before reading any run: the mistake is in the command.
    runs = load_runs(folder)
    if fmt == "csv":
        return to_csv(long_rows(runs, metric, by, compare))
    header, body = layout(runs, metric, by, compare)
    return to_latex(header, body) if fmt == "latex" else to_markdown(header, body)


def _history(run: Run) -> tuple[list[float], list[float]]:
    with open(run.path / results.HISTORY) as handle:
        rows = list(csv.DictReader(handle))
    return [float(r["loss"]) for r in rows], [float(r["val_loss"]) for r in rows]


def write_figures(folder: str | Path, metric: str, out: str | Path) -> list[Path]:
    """Write the sweep's charts: metric bars per loss, decoder and optimizer; best histories."""
    from aeexp import plots

    runs, out = load_runs(folder), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per_optimizer = cells(runs, metric, by="optimizer")
    groups = [
        (r, c)
        for r in _row_order({k[0].split(" / ")[0] for k in per_optimizer})
        for c in _column_order({k[1] for k in per_optimizer})
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
        [THESIS_SSIM.get((_thesis_row_key(r) or "", c), (None,))[0] for r, c in groups]
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
        for r in _row_order({k[0] for k in chosen})
        for c in _column_order({k[1] for k in chosen})
        if (r, c) in chosen
    ]:
        stat = chosen[(row, column)]
        best_run = next((r for r in stat.runs if (r.path / results.HISTORY).is_file()), None)
        if best_run is not None:
            seed = best_run.config.seed
            title = f"{row}, {loss_header(column)}, {stat.optimizer_label} (seed {seed})"
            panels.append((title, *_history(best_run)))
    histories = out / f"{metric}_best_loss_histories.png"
    if panels:
        plots.history_grid(panels, histories)
    return [bars, histories] if panels else [bars]
