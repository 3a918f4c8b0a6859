"""One check for every path a user names: its length, its type, and what it resolves to.

Asking the filesystem about a path can itself fail: a part longer than the filesystem's
name limit, a symlink loop or a folder without permission make ``Path.is_dir`` and
``Path.resolve`` raise instead of answering. Every path argument passes through here first,
so those faults are one line naming the path, and an output never replaces what is not a
regular file (a FIFO, or a device node such as /dev/null when run as root).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from aeexp.errors import UserError, clip

# POSIX's portable limits as Linux filesystems set them: one name, and a whole path.
NAME_MAX = 255
PATH_MAX = 4096

_REASONS = {
    errno.ENOENT: "no such file",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ELOOP: "symlink loop (too many levels of symbolic links)",
    errno.ENAMETOOLONG: "file name too long",
}
PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM})


def os_reason(error: OSError, fallback: str) -> str:
    """Return what an OSError means for a path, in a few words; ``fallback`` if unknown."""
    return _REASONS.get(error.errno or 0, fallback)


def _where(path: str | Path) -> str:
    return clip(str(path), 300)


def length_problem(path: str | Path) -> str | None:
    """Return why ``path`` is too long for the filesystem, or None if it is not."""
    encoded = os.fsencode(path)
    if len(encoded) >= PATH_MAX:
        return f"path too long ({len(encoded)} bytes; the limit is {PATH_MAX - 1})"
    if any(len(part) > NAME_MAX for part in encoded.split(b"/")):
        return f"file name too long (a part of the path is over {NAME_MAX} bytes)"
    if b"\0" in encoded:
        return "not a valid file name (it contains a NUL character)"
    return None


def status(path: str | Path) -> os.stat_result | None:
    """Return ``os.stat(path)``, None if nothing is there, or raise a one-line UserError."""
    if not str(path):  # '' would mean the working folder to some calls, nothing to others
        raise UserError("an empty path names no file or folder")
    problem = length_problem(path)
    if problem is not None:
        raise UserError(f"{_where(path)}: {problem}")
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        reason = os_reason(error, f"cannot look it up ({error.strerror})")
        raise UserError(f"{_where(path)}: {reason}") from None


def missing(path: str | Path) -> bool:
    """Return whether nothing is at ``path`` (no such file); False if it cannot be asked.

    Only a plain "no such file or folder" counts: a path too long, a part that is not a folder or a
    folder without permission is left to the reader, which names that fault.
    """
    if not str(path) or length_problem(path) is not None:
        return False
    try:
        os.stat(path)
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    return False


def is_folder(path: str | Path) -> bool:
    """Return whether ``path`` names an existing folder; False if it cannot name one at all."""
    try:
        found = status(path)
    except UserError:  # e.g. a 5,000-character compare filter: no folder has that name
        return False
    return found is not None and stat.S_ISDIR(found.st_mode)


def existing_folder(path: str | Path, what: str = "folder") -> Path:
    """Return ``path`` if it is a folder this process can list, or raise a one-line UserError."""
    found = status(path)
    if found is None:
        raise UserError(f"{_where(path)}: no such {what}")
    if not stat.S_ISDIR(found.st_mode):
        raise UserError(f"{_where(path)}: not a folder")
    try:
        with os.scandir(path):
            pass
    except OSError as error:
        reason = os_reason(error, f"cannot list it ({error.strerror})")
        raise UserError(f"{_where(path)}: {reason}") from None
    return Path(path)


def output_folder(path: str | Path) -> Path:
    """Return ``path`` if it is a folder or nothing yet, or raise a one-line UserError."""
    found = status(path)
    if found is not None and not stat.S_ISDIR(found.st_mode):
        raise UserError(f"{_where(path)}: exists and is not a folder")
    return Path(path)


def output_file(path: str | Path) -> Path:
    """Return ``path`` if it is a regular file or nothing yet, or raise a one-line UserError.

    Writing replaces the file by a rename, which would also replace a FIFO or a device
    node: those are refused, as is a name whose folder does not exist.
    """
    found = status(path)
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise UserError(f"{_where(path)}: is a folder, not a file")
    if found is not None and not stat.S_ISREG(found.st_mode):
        raise UserError(f"{_where(path)}: not a regular file; refusing to replace it")
    parent = status(Path(path).parent)
    if parent is None or not stat.S_ISDIR(parent.st_mode):
        raise UserError(f"{_where(path)}: its folder {_where(Path(path).parent)} does not exist")
    return Path(path)
