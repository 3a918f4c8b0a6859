"""Run directories: their layout, atomic writes, and what is already done.

A run directory is complete or absent. Files are written into ``.tmp-<run-id>-<pid>`` beside
the final directory, which is renamed into place only when everything is there; a rename
within one folder is atomic on POSIX, so a kill at any moment leaves no half-written run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from aeexp.config import ConfigDumper
from aeexp.errors import UserError

CONFIG = "config.yaml"
HISTORY = "history.csv"
METRICS = "metrics.json"
LOSS_PLOT = "loss_history.png"
RECONSTRUCTIONS = "reconstructions.png"
MODEL = "model.keras"
_STAGING_PREFIX = ".tmp-"


def is_complete(run_dir: Path) -> bool:
    """Return True if ``run_dir`` holds a finished run (metrics are written last)."""
    return (run_dir / METRICS).is_file()


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` and prove it is writable, or raise a one-line UserError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=_STAGING_PREFIX):
            pass
    except OSError as error:
        raise UserError(f"output folder {folder} is not writable ({error.strerror})") from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(folder: Path) -> None:
    """Delete staging directories left by processes that were killed."""
    if not folder.is_dir():
        return
    for path in folder.glob(f"{_STAGING_PREFIX}*"):
        pid = path.name.rsplit("-", 1)[-1]
        if path.is_dir() and (not pid.isdigit() or not _pid_alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staged_run_dir(run_dir: Path) -> Iterator[Path]:
    """Yield a staging folder that becomes ``run_dir`` atomically if the block succeeds."""
    staging = run_dir.parent / f"{_STAGING_PREFIX}{run_dir.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        if run_dir.exists():
            # --force: move the old run aside first so the swap itself stays one rename.
            old = staging.with_name(f"{_STAGING_PREFIX}old-{run_dir.name}-{os.getpid()}")
            run_dir.rename(old)
            staging.rename(run_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(run_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_STAGING_PREFIX, suffix=path.suffix)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def write_yaml(path: Path, data: Any) -> None:
    """Write ``data`` as block-style YAML that the config loader reads back as written."""
    write_text_atomic(path, yaml.dump(data, Dumper=ConfigDumper, sort_keys=False))


def write_csv(path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
    """Write ``rows`` as CSV with the given column order, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(path.read_text())


def complete_runs(experiment_dir: Path) -> Iterator[Path]:
    """Yield every complete run directory under ``experiment_dir``, in name order."""
    if experiment_dir.is_dir():
        for path in sorted(experiment_dir.iterdir()):
            if path.is_dir() and not path.name.startswith(".") and is_complete(path):
                yield path
