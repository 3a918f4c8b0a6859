"""Bounded reading of every file aeexp reads: a type check and a size cap before any byte.

A config, a run's metrics.json or history.csv, a sweep's runs.csv, a model: each is opened
without blocking (a FIFO must not wait for a writer), checked to be a regular file (not a
device such as /dev/zero, a folder or a FIFO), and read up to its cap plus one byte, so a
4 GiB sparse file costs what the cap costs. A fault is one line naming the file and why.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from aeexp.errors import UserError, clip
from aeexp.io import paths

KIB, MIB = 1 << 10, 1 << 20
# Caps, each far above what aeexp writes: a config or sweep file is hand-written YAML; a
# metrics.json is ~3 KB; a history.csv ~60 bytes per epoch, at most 10,000 epochs; runs.csv
# ~600 bytes per run of a grid of at most 10,000 runs.
MAX_CONFIG_BYTES = 1 * MIB
MAX_METRICS_BYTES = 1 * MIB
MAX_HISTORY_BYTES = 4 * MIB
MAX_SUMMARY_BYTES = 64 * MIB
# A model of code_dim 4096 (the largest allowed) with its optimizer slots is ~110 MB.
MAX_MODEL_BYTES = 512 * MIB


def _size_label(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit >= MIB else f"{limit // KIB} KiB"


class PermissionDenied(UserError):
    """A file this process may not read: a fault of the machine, never a damaged file."""


def _open_failure(where: str, error: OSError | ValueError) -> UserError:
    """Return the one-line error for a file that could not be opened."""
    if isinstance(error, ValueError):  # os.open refuses a path with a NUL character
        return UserError(f"{where}: not a valid file name (it contains a NUL character)")
    reason = paths.os_reason(error, f"cannot read ({error.strerror})")
    kind = PermissionDenied if error.errno in paths.PERMISSION_ERRNOS else UserError
    return kind(f"{where}: {reason}")


def read_bytes(path: str | Path, limit: int, what: str = "file") -> bytes:
    """Return the bytes of a regular file of at most ``limit`` bytes, or raise UserError."""
    raw = _read_regular(path, limit + 1, what)
    if len(raw) > limit:
        where = clip(str(path), 300)
        raise UserError(f"{where}: larger than {_size_label(limit)}, too large for a {what}")
    return raw


def read_head(path: str | Path, size: int, what: str = "file") -> bytes:
    """Return the first ``size`` bytes of a regular file (fewer if it is shorter)."""
    return _read_regular(path, size, what)


def _read_regular(path: str | Path, size: int, what: str) -> bytes:
    """Return at most ``size`` bytes of a regular file, opened without blocking."""
    where = clip(str(path), 300)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError) as error:
        raise _open_failure(where, error) from None
    try:
        found = os.fstat(fd)
        if stat.S_ISDIR(found.st_mode):
            raise UserError(f"{where}: is a directory, not a {what}")
        if not stat.S_ISREG(found.st_mode):  # a FIFO, a device such as /dev/zero, a socket
            raise UserError(f"{where}: not a regular file")
        with os.fdopen(os.dup(fd), "rb") as file:
            return _read_up_to(file, size, found.st_size)
    except OSError as error:
        raise UserError(f"{where}: cannot read ({error.strerror or error})") from None
    finally:
        os.close(fd)


def _read_up_to(file: BinaryIO, size: int, known: int) -> bytes:
    """Return at most ``size`` bytes of a file ``known`` bytes long when opened.

    ``read(size)`` reserves ``size`` bytes before reading: a 2 KB runs.csv read under a
    64 MiB cap would cost 64 MiB. Reading what the file holds (and a byte, to see it grow)
    costs what the file costs; only a file that grew since is read on to the cap.
    """
    first = file.read(min(size, known + 1))
    if len(first) <= known or len(first) == size:
        return first
    return first + file.read(size - len(first))


def read_text(path: str | Path, limit: int, what: str = "file", language: str = "UTF-8") -> str:
    """Return a bounded regular file as UTF-8 text without NUL bytes, or raise UserError."""
    raw = read_bytes(path, limit, what)
    where = clip(str(path), 300)
    if b"\0" in raw:
        offset = raw.index(b"\0")
        raise UserError(f"{where}: binary file, not {language} text (NUL byte at offset {offset})")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        byte = raw[error.start]
        raise UserError(f"{where}: not UTF-8 text (byte 0x{byte:02x} at line {line})") from None


def parse_json(text: str, where: str) -> Any:
    """Parse JSON text, or raise UserError; nesting too deep for the parser is refused too."""
    try:
        return json.loads(text)
    except RecursionError:
        raise UserError(f"{where}: JSON nested too deeply") from None
    except ValueError as error:
        raise UserError(f"{where}: not valid JSON ({error})") from None


def read_json(path: str | Path, limit: int = MAX_METRICS_BYTES, what: str = "JSON file") -> Any:
    """Return a bounded JSON file's content, or raise a one-line UserError."""
    return parse_json(read_text(path, limit, what, "JSON"), clip(str(path), 300))
