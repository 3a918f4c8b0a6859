"""A sweep's runs.csv read back as runs, for when no run directory is at hand (a clone).

``table``, ``compare`` and ``load_runs`` read it, e.g. a report's committed
``<sweep>-runs.csv``.

A runs.csv records each run's id, status, grid keys (dotted, e.g. ``loss.name``), the
descriptive columns every table needs (loss, decoder_activation, optimizer, learning_rate,
seed) and the metrics; not the sweep's base config. Each row becomes a :class:`store.Run`
whose config is the recorded keys over the defaults, so the tables group, label and rank CSV
runs with the code that reads run directories. A damaged or foreign CSV is one UserError
naming the file, the line and why; the file is read through the bounded reader and its rows
and columns are capped, so memory stays bounded whatever it holds.
"""

from __future__ import annotations

import csv
import functools
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from aeexp.config import run as config_lib
from aeexp.errors import UserError, clip, shorten
from aeexp.io import paths, readers, yamlio
from aeexp.registry import losses
from aeexp.registry.vocab import DEFAULT_MAX_RUNS, SUMMARY_METRICS, TABLE_METRICS, Status
from aeexp.store import rundir as store

if TYPE_CHECKING:
    import pandas

SUFFIX = ".csv"
# A sweep writes runs.csv; a report copies it beside itself as <sweep name>-runs.csv.
_RUNS_CSV_NAME = re.compile(r"^(?:.+-)?runs\.csv$")
# Twice the largest grid (runs of other sweeps of the same name share a runs.csv), and a
# column count far above the ~30 aeexp writes: together they bound the parsed cells, so a
# 64 MiB file of one-byte cells cannot cost gigabytes of Python objects.
MAX_ROWS = 2 * DEFAULT_MAX_RUNS
MAX_COLUMNS = 100
# ... and the cells of all rows: ~80 bytes each as Python strings, so at most ~80 MB, which
# keeps a 64 MiB file of tiny cells inside the CLI's memory (a real one has ~30 columns).
MAX_CELLS = 1_000_000
# The descriptive columns every runs.csv has, and the config key each one records.
DESCRIPTIVE = {
    "decoder_activation": "model.decoder_activation",
    "optimizer": "optimizer.name",
    "learning_rate": "optimizer.learning_rate",
    "seed": "seed",
}
REQUIRED = ("run_id", "status", "loss", *DESCRIPTIVE, *TABLE_METRICS)
_ROW_LABEL = re.compile(r"\.csv:\d+$", re.IGNORECASE)
_CONFIG_SECTIONS = ("data", "model", "loss", "optimizer", "train")
_STATUSES = frozenset(Status)


@dataclass(frozen=True)
class Recorded:
    """One row of a runs CSV: the run as tables read it, and the config keys it records."""

    run: store.Run
    keys: dict[str, Any]  # the recorded config keys, dotted
    extra: dict[str, str]  # columns aeexp does not interpret (e.g. a grid key over a mapping)


def row_label(path: Path, line: int) -> Path:
    """Return what names a CSV run where a run directory's path would: ``<csv>:<line>``."""
    return Path(f"{path}:{line}")


def is_row_label(name: str | Path) -> bool:
    """Return whether ``name`` is a :func:`row_label`, not a run directory."""
    return _ROW_LABEL.search(str(name)) is not None


def names_csv(path: str | Path) -> bool:
    """Return whether ``path`` names a CSV file rather than a folder (by its suffix)."""
    return str(path).lower().endswith(SUFFIX) and not paths.is_folder(path)


def locate(path: str | Path) -> Path | None:
    """Return the runs CSV ``path`` names, or None when it is a folder of run directories.

    A folder with no run directory under it stands for the one runs CSV it holds
    (``runs.csv`` or ``<name>-runs.csv``); several are ambiguous and refused, naming them.
    """
    if names_csv(path):
        return Path(path)
    if not paths.is_folder(path):
        return None
    found = _csvs_in(Path(path))
    if not found or store.holds_runs(Path(path)):
        return None  # run directories win: they record the whole config
    if len(found) > 1:
        listed = ", ".join(clip(p.name, 60) for p in found[:6])
        raise UserError(
            f"{clip(str(path), 200)}: holds {len(found)} runs CSVs ({listed}); name one of them"
        )
    return found[0]


def _csvs_in(folder: Path) -> list[Path]:
    """Return the regular files directly in ``folder`` named like a runs CSV, sorted."""
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if _RUNS_CSV_NAME.match(e.name) and e.is_file()]
    except OSError:
        return []  # store.load_runs names an unlistable folder
    return [folder / name for name in sorted(names)]


def checked_source(path: str) -> Path:
    """Return ``path`` if it is a folder or a CSV file that exists, else raise a UserError."""
    if str(path).lower().endswith(SUFFIX) and paths.status(path) is None:
        raise UserError(f"{clip(str(path), 300)}: no such file")
    if names_csv(path):
        return Path(path)
    return paths.existing_folder(path)


def sweep_name(path: Path) -> str:
    """Return the sweep a runs CSV belongs to: ``x`` for ``x-runs.csv``, else its folder's."""
    stem = path.name[: -len(SUFFIX)]
    if stem.endswith("-runs"):
        return stem[: -len("-runs")]
    return path.resolve().parent.name if stem == "runs" else stem


def read(path: str | Path) -> list[Recorded]:
    """Return every trained run in a runs CSV (pending rows have nothing to show)."""
    where = clip(str(path), 200)
    text = readers.read_text(path, readers.MAX_SUMMARY_BYTES, "runs CSV").removeprefix("\ufeff")
    try:
        header, rows = _rows(text, where)
        del text  # the cells hold what is needed: the text's copy would double the peak
        found = list(_recorded(header, rows, where, Path(path)))
    except csv.Error as error:  # e.g. a field past csv's 128 KiB limit
        raise UserError(f"{where}: not a readable CSV ({error})") from None
    if not found:
        raise UserError(f"{where}: no trained runs in it")
    return found


def _rows(text: str, where: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Return the header and each data row's line number and cells, checking the shape.

    Every row is split before any is interpreted, so an oversized file is refused at once.
    """
    reader = csv.reader(_lines(text))
    header = next(reader, None)
    if not header or header == [""]:
        raise UserError(f"{where}: empty, not a runs CSV")
    _check_header(header, where)
    rows = []
    most = min(MAX_ROWS, MAX_CELLS // len(header))
    for cells in reader:
        if not cells:
            continue  # a blank line, as a hand edit may leave at the end
        if len(rows) == most:
            raise UserError(
                f"{where}: more than {most} rows of {len(header)} columns, more than a runs "
                "CSV holds"
            )
        if len(cells) != len(header):
            raise UserError(
                f"{where}: line {reader.line_num} has {len(cells)} fields, the header {len(header)}"
            )
        rows.append((reader.line_num, cells))
    return header, rows


def _lines(text: str) -> Iterator[str]:
    """Yield ``text``'s lines one at a time (io.StringIO would copy it, up to four-fold)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _check_header(header: Sequence[str], where: str) -> None:
    """Raise a UserError unless the header names the columns a runs CSV has, once each."""
    if len(header) > MAX_COLUMNS:
        raise UserError(f"{where}: {len(header)} columns, more than a runs CSV has")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UserError(
            f"{where}: not a runs CSV (no {', '.join(missing[:5])} column"
            f"{'s' if len(missing) > 1 else ''}{', ...' if len(missing) > 5 else ''})"
        )
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise UserError(f"{where}: column {shorten(twice[0])} appears twice")


def _recorded(
    header: Sequence[str], rows: Sequence[tuple[int, list[str]]], where: str, path: Path
) -> Iterator[Recorded]:
    """Yield each trained row as a Recorded run; refuse a run id seen before."""
    seen: dict[str, int] = {}
    for line, cells in rows:
        row = dict(zip(header, cells, strict=True))
        at = f"{where}: line {line}"
        run_id = row["run_id"]
        if not run_id:
            raise UserError(f"{at}: no run_id")
        if run_id in seen:
            raise UserError(f"{at}: run {shorten(run_id)} again (first at line {seen[run_id]})")
        seen[run_id] = line
        status = row["status"]
        if status not in _STATUSES:
            raise UserError(f"{at}: status {shorten(status)} is none of {', '.join(Status)}")
        if status != Status.PENDING:
            yield _one_run(row, at, row_label(path, line))


def _one_run(row: Mapping[str, str], at: str, label: Path) -> Recorded:
    """Return a row as a run: its config from the recorded keys, its metrics as numbers."""
    keys = _config_keys(row, at)
    raw: dict[str, Any] = {"name": "csv"}
    for key, value in keys.items():
        raw = config_lib.set_dotted(raw, key, value)
    cfg = config_lib.validate(raw, f"{at}: the recorded config")
    if losses.loss_key(cfg) != row["loss"]:
        raise UserError(
            f"{at}: loss {shorten(row['loss'])} disagrees with the loss.* columns "
            f"({losses.loss_key(cfg)})"
        )
    metrics = {"run_id": row["run_id"], "status": row["status"], "reason": row.get("reason", "")}
    metrics |= {m: _number(row, m, at) for m in SUMMARY_METRICS if row.get(m, "") != ""}
    handled = {"run_id", "status", "reason", "loss", *DESCRIPTIVE, *SUMMARY_METRICS, *keys}
    extra = {k: v for k, v in row.items() if k not in handled}
    return Recorded(store.Run(cfg, metrics, label), keys, extra)


def _config_keys(row: Mapping[str, str], at: str) -> dict[str, Any]:
    """Return the config keys a row records, dotted: descriptive columns, then grid keys."""
    keys = dict(_loss_keys(row["loss"], at))
    for column, key in DESCRIPTIVE.items():
        keys[key] = _TYPED.get(column, _text)(row, column, at)
    for column, text in row.items():
        if "." in column and column.split(".")[0] in _CONFIG_SECTIONS and text != "":
            value = _scalar(text, column, at)
            if keys.setdefault(column, value) != value:  # a foreign or hand-edited CSV
                raise UserError(
                    f"{at}: {clip(column, 80)} is {shorten(text)}, its descriptive column "
                    f"says {shorten(keys[column])}"
                )
    return keys


def _loss_keys(key: str, at: str) -> dict[str, Any]:
    """Return the loss.* keys of a table column such as ``mse`` or ``beta(0.5,data_first)``."""
    name, sep, args = key.partition("(")
    spec = losses.LOSSES.get(name)
    if spec is None or bool(sep) != bool(spec.params) or (sep and not args.endswith(")")):
        raise UserError(f"{at}: loss {shorten(key)} is not a loss aeexp knows")
    values = args[:-1].split(",") if sep else []
    if len(values) != len(spec.params):
        raise UserError(f"{at}: loss {shorten(key)} is not a loss aeexp knows")
    keys: dict[str, Any] = {"loss.name": name}
    for param, text in zip(spec.params, values, strict=True):
        keys[f"loss.{param.name}"] = _scalar(text, "loss", at)
    return keys


@functools.lru_cache(maxsize=4096)  # a grid has few distinct values; YAML is slow per cell
def _parsed(text: str) -> Any:
    return yamlio.load_yaml(text)


def _scalar(text: str, column: str, at: str) -> Any:
    """Return a grid cell parsed as YAML (0.001 a number, relu a string), a scalar only."""
    try:
        value = _parsed(text)
    except yaml.YAMLError:
        value = None
    if isinstance(value, list | dict) or value is None:
        raise UserError(f"{at}: {clip(column, 80)} holds {shorten(text)}, not a single value")
    return value


def _number(row: Mapping[str, str], column: str, at: str) -> float:
    """Return a cell as a float (NaN allowed: a diverged run's metric), or raise UserError."""
    text = row[column]
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{at}: {column} holds {shorten(text)}, not a number") from None


def _integer(row: Mapping[str, str], column: str, at: str) -> int:
    """Return a cell as a whole number, or raise UserError."""
    number = _number(row, column, at)
    if not math.isfinite(number) or number != int(number):
        raise UserError(f"{at}: {column} holds {shorten(row[column])}, not a whole number")
    return int(number)


def _text(row: Mapping[str, str], column: str, _at: str) -> str:
    """Return a cell as it is (a name, which the config validates)."""
    return row[column]


_TYPED = {"learning_rate": _number, "seed": _integer}


def read_runs(path: str | Path) -> list[store.Run]:
    """Return a runs CSV's trained runs as tables read them."""
    return [recorded.run for recorded in read(path)]


def load_runs(path: str | Path) -> list[store.Run]:
    """Return the runs ``path`` names: a runs CSV's, else the run directories under it."""
    found = locate(path)
    return read_runs(found) if found is not None else store.load_runs(path)


def read_frame(path: Path) -> pandas.DataFrame:
    """Return a runs CSV as ``aeexp.load_runs`` does a folder: one row per trained run.

    Columns: ``run_id``, ``name`` (the sweep's), ``status``, ``path`` (the CSV and the
    line), the config keys the CSV records (dotted), the metrics, and any other column.
    """
    import pandas

    name = sweep_name(path)
    rows = []
    for recorded in read(path):
        metrics = recorded.run.metrics
        row = {"run_id": metrics["run_id"], "name": name, "status": metrics["status"]}
        row |= {"path": str(recorded.run.path)} | recorded.keys
        row |= {k: v for k, v in metrics.items() if k not in row}
        rows.append(row | recorded.extra)
    return pandas.DataFrame(rows)
