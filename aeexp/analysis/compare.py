"""``aeexp compare``: groups of runs side by side, with the config keys that tell them apart.

A side is a folder (a run, a sweep, a tree of them), a runs CSV (a sweep's runs.csv or a
report's committed ``<sweep>-runs.csv``) or a filter ``key=value[,key=value]`` over the runs
under a root folder or in a root runs CSV, e.g. ``loss.name=mse,model.decoder_activation=sigmoid``.
Each metric gets each side's mean, standard deviation over its completed runs and 95% t
interval, the difference from the first side, and Welch's test when both sides have two
runs or more (Holm-corrected over the table's tests).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from aeexp.analysis import stats, tables
from aeexp.errors import UserError, clip, unknown_name_message, valid_and_closest
from aeexp.io import paths, yamlio
from aeexp.registry import vocab
from aeexp.registry.vocab import Status
from aeexp.store import runs_csv

if TYPE_CHECKING:
    import pandas

# A runs CSV records a sweep's grid keys, not its base config (e.g. train.backend), so sides
# read from one may differ in what it does not say.
CSV_CAVEAT = (
    "The config keys the sides record do not differ; a runs CSV records only its grid's "
    "keys, so the sides may differ in their base configs (e.g. train.backend)."
)
CSV_NOTE = (
    "A runs CSV records only its grid's keys, so the sides may also differ in their base "
    "configs (e.g. train.backend)."
)


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its label and its runs (one DataFrame row each)."""

    label: str
    runs: pandas.DataFrame
    recorded_only: bool = False  # read from a runs CSV: only the grid's config keys are known
    source: str = ""  # the folder or CSV its runs come from (a filter's: the root)

    def values(self, metric: str) -> list[float]:
        """Return ``metric`` over the side's completed runs; a value not a number is missing."""
        done = self.runs[self.runs["status"] == Status.COMPLETED]
        found = (
            tables.recorded_number(row["path"], metric, _recorded(row, metric))
            for _, row in done.iterrows()
        )
        return [v for v in found if v is not None]


def _is_blank(value: Any) -> bool:
    """Return whether a DataFrame cell is the NaN pandas fills in for a run without the key."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _recorded(row: pandas.Series, metric: str) -> Any:
    """Return what a run recorded as ``metric``: None if nothing, a mapping gathered back.

    The DataFrame spreads a mapping over dotted columns (``ssim_mean.gray``); gathering it
    lets the one number rule see, and warn about, what the run really holds.
    """
    value = row.get(metric)
    if not _is_blank(value):
        return value
    prefix = f"{metric}."
    nested = {
        key.removeprefix(prefix): inner
        for key, inner in row.items()
        if isinstance(key, str) and key.startswith(prefix) and not _is_blank(inner)
    }
    return nested or None


def check_metrics(metrics: Sequence[str]) -> None:
    """Raise UserError for a name that is not a metric (a typo, or a column like ``status``)."""
    for metric in metrics:
        if metric not in vocab.METRICS:
            raise UserError(f"compare: {unknown_name_message('metric', metric, vocab.METRICS)}")


def _top_level_parts(spec: str) -> list[str]:
    """Split ``spec`` at the commas outside brackets, so a YAML list stays one condition."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(spec):
        depth += (char in "[{") - (char in "]}")
        if char == "," and depth <= 0:
            parts.append(spec[start:index])
            start = index + 1
    return [*parts, spec[start:]]


def _parse_filter(spec: str) -> dict[str, Any]:
    """Return a filter's conditions, each a key and one scalar value (parsed as YAML)."""
    conditions = {}
    for part in _top_level_parts(spec):
        key, sep, text = part.partition("=")
        if not sep or not key.strip():
            raise UserError(f"compare: {clip(spec, 80)!r} is neither a folder nor key=value")
        try:
            value = yamlio.load_yaml(text)
        except yaml.YAMLError:
            raise UserError(f"compare: {clip(part, 80)!r}: the value is not valid YAML") from None
        if isinstance(value, list | dict):
            # A run's value is one value; "any of" would be several sides, so say so.
            raise UserError(
                f"compare: {clip(part, 80)!r}: a filter value must be a single value, not a "
                f"{'list' if isinstance(value, list) else 'mapping'}; give each value its own side"
            )
        conditions[key.strip()] = value
    return conditions


def _filtered(spec: str, pool: pandas.DataFrame, where: str = "under the root") -> pandas.DataFrame:
    """Return the runs of ``pool`` that meet every condition of the filter ``spec``."""
    mask = [True] * len(pool)
    for key, value in _parse_filter(spec).items():
        if key not in pool:
            raise UserError(
                f"compare: {clip(key, 80)}: unknown column{valid_and_closest(key, pool)}"
            )
        # Cell by cell in Python: a cell may hold a list (an odd metrics.json), which
        # pandas's vectorised == would try to align with instead of compare.
        mask = [m and _equals(cell, value) for m, cell in zip(mask, pool[key], strict=True)]
    chosen = pool[mask]
    if chosen.empty:
        raise UserError(f"compare: no run {where} matches {clip(spec, 120)}")
    return chosen


def _equals(cell: Any, value: Any) -> bool:
    """Return whether a DataFrame cell equals a filter's scalar value (a list never does)."""
    if isinstance(cell, list | dict):
        return False
    return bool(cell == value)


def load_side(spec: str, root: Path | None, pool_cache: dict) -> Side:
    """Return the runs one side names: a folder, or a filter over the runs under ``root``."""
    from aeexp.store.ledger import load_runs

    if paths.is_folder(spec) or runs_csv.names_csv(spec):  # a long filter is neither
        csv = runs_csv.locate(spec) is not None
        return Side(spec, load_runs(spec), recorded_only=csv, source=spec)
    if "=" not in spec:
        what = "file" if spec.lower().endswith(runs_csv.SUFFIX) else "folder"
        raise UserError(f"compare: {clip(spec, 120)}: no such {what} (or give key=value)")
    if root is None:
        raise UserError("compare: a filter needs --root, the folder whose runs it selects")
    if "pool" not in pool_cache:
        pool_cache["pool"] = load_runs(root)
    runs = _filtered(spec, pool_cache["pool"])
    return Side(spec, runs, recorded_only=_recorded_only(root), source=str(root))


def _recorded_only(root: Path) -> bool:
    """Return whether ``root``'s runs come from a runs CSV, which records only grid keys."""
    return runs_csv.locate(root) is not None


def differing_keys(sides: Sequence[Side]) -> dict[str, list[str]]:
    """Return each config column whose values differ between sides: the values per side."""
    shared = set.intersection(*(set(s.runs.columns) for s in sides))
    differ = {}
    for column in sorted(c for c in shared if _is_config_key(c)):
        per_side = [sorted({_text(v) for v in s.runs[column]}) for s in sides]
        if any(values != per_side[0] for values in per_side[1:]):
            differ[column] = [", ".join(values) for values in per_side]
    return differ


def _is_config_key(column: str) -> bool:
    """Return whether a DataFrame column is a config key (not an id, a path or a metric)."""
    return column == "seed" or column.split(".")[0] in (
        "data",
        "model",
        "loss",
        "optimizer",
        "train",
    )


def _text(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return str(value)


@dataclass(frozen=True)
class MetricRow:
    """One metric across the sides."""

    metric: str
    intervals: list[stats.Interval | None]
    stds: list[float]
    differences: list[float]
    p_values: list[float]


def metric_rows(sides: Sequence[Side], metrics: Sequence[str]) -> list[MetricRow]:
    """Return every metric's statistics per side; p-values Holm-adjusted over the table."""
    rows, raw = [], []
    for metric in metrics:
        values = [side.values(metric) for side in sides]
        intervals = [stats.t_interval(v) if v else None for v in values]
        stds = [_std(v) for v in values]
        base = intervals[0]
        differences = [
            i.mean - base.mean if i is not None and base is not None else math.nan
            for i in intervals
        ]
        p_values = [math.nan] + [stats.welch_p(values[0], v) for v in values[1:]]
        raw.extend(p_values[1:])
        rows.append(MetricRow(metric, intervals, stds, differences, p_values))
    adjusted = iter(stats.holm(raw))
    return [
        MetricRow(
            r.metric,
            r.intervals,
            r.stds,
            r.differences,
            [math.nan] + [next(adjusted) for _ in r.p_values[1:]],
        )
        for r in rows
    ]


def _std(values: Sequence[float]) -> float:
    import numpy as np

    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


@dataclass(frozen=True)
class Comparison:
    """Sides, the config keys that tell them apart, and the metrics' statistics."""

    sides: list[Side]
    differing: dict[str, list[str]]
    rows: list[MetricRow]

    def render(self) -> str:
        """Return the comparison as Markdown tables."""
        from aeexp.analysis.tables import to_markdown

        labels = [
            f"{chr(65 + i)}: {clip(s.label, 60)} ({len(s.runs)} runs)"
            for i, s in enumerate(self.sides)
        ]
        parts = ["\n".join(f"- {label}" for label in labels), ""]
        # Sides from one sweep share its base config; sides from two may differ there.
        sources = {s.source for s in self.sides}
        partial = any(s.recorded_only for s in self.sides) and len(sources) > 1
        if self.differing:
            header = ["config key", *(chr(65 + i) for i in range(len(self.sides)))]
            body = [[key, *values] for key, values in self.differing.items()]
            parts += [to_markdown(header, body), ""]
            parts += [CSV_NOTE, ""] if partial else []
        else:
            parts += [CSV_CAVEAT if partial else "The sides' configurations do not differ.", ""]
        header = ["metric", "A: mean [95% CI] (sd, n)"]
        for i in range(1, len(self.sides)):
            header.append(f"{chr(65 + i)}: mean [95% CI] (sd, n)")
            header.append(f"{chr(65 + i)} - A (Welch p, Holm)")
        body = []
        for row in self.rows:
            line = [row.metric, _cell(row.intervals[0], row.stds[0])]
            for i in range(1, len(self.sides)):
                line.append(_cell(row.intervals[i], row.stds[i]))
                line.append(_difference(row.differences[i], row.p_values[i]))
            body.append(line)
        parts.append(to_markdown(header, body))
        return "\n".join(parts)


def _cell(interval: stats.Interval | None, std: float) -> str:
    if interval is None:
        return "no completed run"
    if interval.n < 2:
        return f"{interval.mean:.4g} (n=1)"
    return (
        f"{interval.mean:.4g} [{interval.low:.4g}, {interval.high:.4g}] ({std:.2g}, {interval.n})"
    )


def _difference(difference: float, p_value: float) -> str:
    if math.isnan(difference):
        return ""
    test = "no test" if math.isnan(p_value) else f"p = {p_value:.2g}"
    return f"{difference:+.4g} ({test})"


def restricted(side: Side, where: str | None) -> Side:
    """Return ``side`` keeping only its runs that meet the filter ``where`` (if any)."""
    if where is None:
        return side
    label = clip(side.label, 120)
    runs = _filtered(where, side.runs, f"of {label}")
    return Side(side.label, runs, side.recorded_only, side.source)


def compare(
    *specs: str,
    root: str | Path | None = None,
    metrics: Sequence[str] = vocab.COMPARE_METRICS,
    where: str | None = None,
) -> Comparison:
    """Compare two or more sides; the arguments' types unchecked: :func:`aeexp.api.compare`."""
    if len(specs) < 2:
        raise UserError("compare: give at least two sides (folders or key=value filters)")
    check_metrics(metrics)  # before any run is read: the mistake is in the command
    if where is not None:
        _parse_filter(where)  # likewise
    cache: dict = {}
    loaded = (load_side(spec, Path(root) if root else None, cache) for spec in specs)
    sides = [restricted(side, where) for side in loaded]
    return Comparison(sides, differing_keys(sides), metric_rows(sides, metrics))
