"""Run directories: their layout, atomic writes, what is done, and reading them back.

A run directory is complete or absent. Its files are written into a staging folder
``.tmp-<run-id>-<host>-<pid>`` beside it, flushed to disk, and renamed into place in one
step, so a kill at any moment leaves no half-written run. Only the driver writes here:
workers hand back bytes. Every path written or deleted is checked to lie inside the output
folder first, and the staging cleanup deletes only folders this naming produced whose run
no live process holds the lock of.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import Timeout

from aeexp.config import run as config_lib
from aeexp.config.run import RunConfig
from aeexp.errors import UserError, shorten
from aeexp.io import paths, readers
from aeexp.io.atomic import (
    HOST,
    TEMP_PREFIX,
    fsync_dir,
    is_stale_temp_file,
    os_errors,
    pid_alive,
    write_new,
)
from aeexp.io.yamlio import read_yaml
from aeexp.registry.vocab import RECORDED_STATUSES, Status
from aeexp.store import locks

CONFIG = "config.yaml"
HISTORY = "history.csv"
METRICS = "metrics.json"
LOSS_PLOT = "loss_history.png"
RECONSTRUCTIONS = "reconstructions.png"
MODEL = "model.keras"
HISTORY_FIELDS = ("epoch", "loss", "val_loss", "seconds")

DAMAGED = ".damaged"
# What staged_run_dir names its folders: .tmp-[old-]<10-hex run id>-<host>-<pid>.
_STAGING_NAME = re.compile(r"^\.tmp-(?:old-)?(?P<run_id>[0-9a-f]{10})-(?P<host>.+)-(?P<pid>\d+)$")


@dataclass(frozen=True)
class RunArtifacts:
    """What training one run produced: its metrics and every file of its directory, as bytes."""

    run_id: str
    metrics: dict[str, Any]
    files: dict[str, bytes]


def staging_name(run_id: str, old: bool = False) -> str:
    """Return this process's staging folder name for ``run_id``."""
    return f"{TEMP_PREFIX}{'old-' if old else ''}{run_id}-{HOST}-{os.getpid()}"


def _resolve(path: Path) -> Path:
    """Return ``path`` resolved, or raise a one-line UserError (a symlink loop, say)."""
    paths.status(path)  # names the fault: too long, a loop, no permission
    try:
        return path.resolve()
    except (OSError, RuntimeError) as error:  # RuntimeError: Python < 3.13's symlink loop
        raise UserError(f"{path}: cannot resolve ({error})") from None


def check_inside(root: Path, path: Path) -> Path:
    """Return ``path`` resolved, or raise UserError if it is not strictly inside ``root``."""
    resolved_root, resolved = _resolve(root), _resolve(path)
    if resolved == resolved_root or resolved_root not in resolved.parents:
        raise UserError(f"{path}: refusing to write outside the output folder {root}")
    return resolved


def metrics_problem(data: Any) -> str | None:
    """Return why parsed metrics.json content is not a run's record, or None if it is one."""
    if not isinstance(data, dict):
        return f"{METRICS} holds a {type(data).__name__}, not an object"
    if not data:
        return f"{METRICS} is an empty object"
    if data.get("status", Status.COMPLETED) not in RECORDED_STATUSES:
        return f"{METRICS} has an unknown status {shorten(data.get('status'))}"
    return None


def read_metrics(run_dir: Path) -> dict[str, Any] | None:
    """Return a run's metrics, or None if ``metrics.json`` is missing or damaged.

    Damaged: empty, not JSON, over its size cap, nested past the parser, not a run's
    record. A file or folder this process may not read is a fault, not a pending run:
    saying every run is pending would hide it.
    """
    path = run_dir / METRICS
    if paths.status(path) is None:
        return None
    try:
        data = readers.read_json(path, readers.MAX_METRICS_BYTES, "metrics file")
    except readers.PermissionDenied:
        raise
    except UserError:  # damaged content: the run is pending, moved aside and retrained
        return None
    return None if metrics_problem(data) else data


def is_complete(run_dir: Path) -> bool:
    """Return True if ``run_dir`` holds a finished run (metrics are written last, and parse)."""
    return read_metrics(run_dir) is not None


def is_damaged(run_dir: Path) -> bool:
    """Return True if ``run_dir`` exists but its ``metrics.json`` is missing or unreadable."""
    return run_dir.is_dir() and not is_complete(run_dir)


def move_aside(run_dir: Path, root: Path) -> Path:
    """Move a damaged run directory into ``<experiment>/.damaged/`` (never delete it)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = run_dir.parent / DAMAGED / f"{run_dir.name}-{stamp}-{uuid.uuid4().hex[:6]}"
    check_inside(root, target)
    with os_errors(target):
        target.parent.mkdir(exist_ok=True)
        run_dir.rename(target)
    return target


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` and prove it is writable, or raise a one-line UserError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f"{TEMP_PREFIX}probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(f"output folder {folder} is not writable ({error.strerror})") from None


def _missing_folders(folder: Path, root: Path | None) -> list[Path]:
    """Return ``folder`` and its parents (up to ``root``) that do not exist yet, deepest first."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists() or (root is not None and path != root and root not in path.parents):
            break
        missing.append(path)
    return missing


def _remove_if_empty(folders: Sequence[Path]) -> None:
    """Remove ``folders``, deepest first, stopping at the first that is not empty."""
    for folder in folders:
        try:
            folder.rmdir()  # refuses a folder that holds anything: nothing is lost
        except OSError:
            return


@contextlib.contextmanager
def created_folders_undone(folder: Path, root: Path | None = None) -> Iterator[None]:
    """On an error in the block, remove the folders up to ``folder`` it created, if empty.

    A command refused after making its output folder (``ensure_writable``) leaves nothing
    behind; with ``root``, only folders inside it are considered.
    """
    created = _missing_folders(Path(folder), root)
    try:
        yield
    except BaseException:
        _remove_if_empty(created)
        raise


def remove_stale_staging(folder: Path) -> list[Path]:
    """Delete staging folders of aeexp's own naming whose writer is gone; return them.

    A folder counts as stale only if nobody holds its run's lock and, when it was made on
    this host, its process is dead. Anything else (a user's ``.tmp-notes``, another host's
    live writer) is left alone.
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        if is_stale_temp_file(path):  # e.g. runs.csv's, its writer killed mid-write
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
            continue
        match = _STAGING_NAME.match(path.name)
        if match is None or not path.is_dir() or path.is_symlink():
            continue
        if match["host"] == HOST and pid_alive(int(match["pid"])):
            continue
        lock = locks.run_lock(folder, match["run_id"])
        try:
            with lock:
                shutil.rmtree(path, ignore_errors=True)
        except Timeout:
            continue
        removed.append(path)
    return removed


@contextlib.contextmanager
def staged_run_dir(run_dir: Path, root: Path | None = None) -> Iterator[Path]:
    """Yield a staging folder that becomes ``run_dir`` atomically if the block succeeds.

    ``root`` is the output folder: both folders must lie inside it. Files written into the
    staging folder should be flushed (``write_run_files`` does); the folder itself is
    fsynced before the rename, and the parent after it.
    """
    staging = run_dir.parent / staging_name(run_dir.name)
    if root is not None:
        check_inside(root, run_dir)
    with os_errors(staging):
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    try:
        yield staging
        with os_errors(run_dir):
            fsync_dir(staging)
            if run_dir.exists():
                # --force: move the old run aside first so the swap itself stays one rename.
                old = staging.with_name(staging_name(run_dir.name, old=True))
                run_dir.rename(old)
                staging.rename(run_dir)
                shutil.rmtree(old, ignore_errors=True)
            else:
                staging.rename(run_dir)
            fsync_dir(run_dir.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_run_files(run_dir: Path, files: Mapping[str, bytes], root: Path | None = None) -> None:
    """Write a run's files (``metrics.json`` last) as one complete directory, atomically.

    A name is a file name, or ``folder/file`` (the TensorBoard events).
    """
    order = sorted(files, key=lambda name: name == METRICS)
    with staged_run_dir(run_dir, root) as staging:
        for name in order:
            parts = Path(name).parts
            if not 1 <= len(parts) <= 2 or any(p.startswith(".") or p == "" for p in parts):
                raise ValueError(f"run file name {name!r} is not a file or folder/file name")
            with os_errors(staging / name):
                (staging / name).parent.mkdir(exist_ok=True)
                write_new(staging / name, files[name])


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """Return a run's per-epoch rows as numbers; none without a history.csv.

    Raises ValueError saying what is damaged: over its cap, a missing column, a value that
    is not a number.
    """
    path = run_dir / HISTORY
    if paths.status(path) is None:
        return []
    try:
        text = readers.read_text(path, readers.MAX_HISTORY_BYTES, "history file")
    except UserError as error:
        raise ValueError(_relative(str(error), run_dir)) from None
    try:
        return _history_rows(csv.DictReader(io.StringIO(text)))
    except csv.Error as error:  # e.g. a field past csv's 128 KiB limit
        raise ValueError(f"{HISTORY} is not a readable CSV ({error})") from None


def _history_rows(reader: csv.DictReader) -> list[dict[str, float]]:
    """Return the history's rows as numbers, or raise ValueError naming what is wrong."""
    missing = [f for f in HISTORY_FIELDS if f not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"{HISTORY} has no {', '.join(missing)} column")
    rows = []
    for line, row in enumerate(reader, start=2):
        try:
            rows.append({f: float(row[f]) for f in HISTORY_FIELDS})
        except (TypeError, ValueError):
            raise ValueError(f"{HISTORY} has a value that is not a number (line {line})") from None
    return rows


# --- Reading run directories back ------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A finished run as tables see it: its config, metrics and directory."""

    config: RunConfig
    metrics: dict[str, Any]
    path: Path


def _read_run(run_dir: Path) -> Run:
    """Read one run directory, or raise ValueError saying what is damaged."""
    config_path, metrics_path = run_dir / CONFIG, run_dir / METRICS
    try:
        for path in (config_path, metrics_path):
            found = paths.status(path)
            if found is None:
                raise ValueError(f"no {path.name}")
            if found.st_size == 0:
                raise ValueError(f"{path.name} is empty")
        cfg = config_lib.validate(read_yaml(config_path), CONFIG)
        metrics = readers.read_json(metrics_path, readers.MAX_METRICS_BYTES, "metrics file")
    except UserError as error:  # a fault of this one run's files: skipped, named
        raise ValueError(_relative(str(error), run_dir)) from None
    problem = metrics_problem(metrics)
    if problem is not None:
        raise ValueError(problem)
    return Run(cfg, metrics, run_dir)


def _relative(message: str, run_dir: Path) -> str:
    """Return ``message`` naming the run's files by their names alone (the run is named)."""
    return message.replace(f"{run_dir}{os.sep}", "")


def _run_dirs(folder: Path) -> list[Path]:
    """Return every directory under ``folder`` holding a config.yaml or a metrics.json.

    Hidden directories (a sweep's staging folders) and everything under them are left out;
    a folder this process cannot list is named in a warning, not silently passed over.
    """
    found = []

    def unlistable(error: OSError) -> None:
        warn_skipped(Path(error.filename or folder), error.strerror or str(error))

    for parent, folders, files in os.walk(folder, onerror=unlistable):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        if CONFIG in files or METRICS in files:
            found.append(Path(parent))
    return sorted(found)


def holds_runs(folder: Path) -> bool:
    """Return whether any run directory lies under ``folder``; stops at the first found."""
    for _parent, folders, files in os.walk(folder):
        if CONFIG in files or METRICS in files:
            return True
        folders[:] = [f for f in folders if not f.startswith(".")]
    return False


def warn_skipped(run_dir: Path, reason: str) -> None:
    """Say on one stderr line that a damaged run directory is left out, and why."""
    line = " ".join(f"skipping {run_dir}: {reason}".split())  # a newline in a name too
    print(f"aeexp: warning: {line}", file=sys.stderr)


def load_runs(folder: str | Path) -> list[Run]:
    """Read every complete run directory under ``folder`` (an experiment or a parent of several).

    A run directory whose config.yaml or metrics.json is missing, empty, unreadable or
    invalid is damaged data, not a reason to stop: it is skipped with one warning line.
    """
    folder = paths.existing_folder(folder)
    found = []
    for run_dir in _run_dirs(folder):
        try:
            found.append(_read_run(run_dir))
        except ValueError as error:
            warn_skipped(run_dir, str(error))
    if not found:
        raise UserError(f"{folder}: no complete runs found")
    return found
