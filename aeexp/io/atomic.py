"""Atomic writes: every file aeexp writes goes through a flushed temporary file and a rename.

A kill at any moment leaves the old file or the new one, never half of one. A temporary file
is named ``.tmp-file-<pid>-<host hash>-<uuid>-<name>``, so that one a killed writer left
behind can be told from a live writer's and removed (the run store's staging cleanup does).
A fault of the machine (a full disk, no permission) is one line naming the file.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import re
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from aeexp.errors import UserError
from aeexp.io.yamlio import ConfigDumper

# The prefix of the temporary names aeexp gives the files and folders it is writing.
TEMP_PREFIX = ".tmp-"
# This host's name as file names carry it (a staging folder's), and a short hash of it.
HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64] or "host"
HOST_TAG = hashlib.sha256(HOST.encode()).hexdigest()[:8]
_TEMP_FILE = re.compile(r"^\.tmp-file-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[0-9a-f]{32}-")


@contextlib.contextmanager
def os_errors(path: Path) -> Iterator[None]:
    """Turn an environment fault while touching ``path`` into a one-line UserError."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or errno.errorcode.get(error.errno or 0, str(error))
        raise UserError(f"{path}: cannot write ({reason})") from None


def pid_alive(pid: int) -> bool:
    """Return whether a process ``pid`` may still run on this host (no permission: it may)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def is_stale_temp_file(path: Path) -> bool:
    """Return whether ``path`` is a temporary file of this host whose writer is dead."""
    match = _TEMP_FILE.match(path.name)
    return (
        match is not None
        and match["host"] == HOST_TAG
        and not pid_alive(int(match["pid"]))
        and path.is_file()
        and not path.is_symlink()
    )


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` with the umask's mode (as the user's other files), write, fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a flushed temporary file and a rename."""
    with os_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(
            f"{TEMP_PREFIX}file-{os.getpid()}-{HOST_TAG}-{uuid.uuid4().hex}-{path.name}"
        )
        try:
            write_new(temp, data)
            os.replace(temp, path)
            fsync_dir(path.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a flushed temporary file and a rename."""
    write_bytes_atomic(path, text.encode())


def encode_json(data: Any) -> str:
    """Return ``data`` as indented JSON, refusing NaN and infinities."""
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def encode_yaml(data: Any) -> str:
    """Return ``data`` as block-style YAML that the config loader reads back as written."""
    return yaml.dump(data, Dumper=ConfigDumper, sort_keys=False)


def encode_csv(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> str:
    """Return ``rows`` as CSV with the given column order."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_text_atomic(path, encode_json(data))


def write_yaml(path: Path, data: Any) -> None:
    """Write ``data`` as YAML, atomically."""
    write_text_atomic(path, encode_yaml(data))


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> None:
    """Write ``rows`` as CSV with the given column order, atomically."""
    write_text_atomic(path, encode_csv(rows, fields))
