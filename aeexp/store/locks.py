"""The file locks of an experiment folder: one per run a driver trains, one for runs.csv.

Two drivers on one folder (two terminals, two cluster jobs) never train or write the same
run: each holds the run's lock while it does. The locks live in ``<experiment>/.locks/``,
which the last driver to finish removes.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from aeexp.errors import UserError, clip
from aeexp.io import paths

LOCKS = ".locks"
TUNE_LOCK = ".tune.lock"  # beside the study it guards: one aeexp tune at a time
# The lock files aeexp makes in <experiment>/.locks/: <run id>.lock and runs.csv.lock.
_LOCK_NAME = re.compile(r"^(?:[0-9a-f]{10}|runs\.csv)\.lock$")
# How often an acquire starts again because a finished sweep removed the .locks folder.
_LOCK_FOLDER_RETRIES = 10


class _Lock(FileLock):
    """A FileLock that makes its folder again if a finished sweep removed it meanwhile.

    filelock makes the folder once, when an acquire starts: a waiter whose folder
    :func:`remove_lock_files` removed would fail with FileNotFoundError. Starting again is
    safe: the folder is removed only once empty, so nobody holds a lock in it. Anything
    else in the way (a folder or a symlink where the lock file goes, a file where its folder
    goes, no permission) is one line naming the path, not a traceback.
    """

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        """Acquire as FileLock does, starting again if the lock's folder vanished."""
        for _ in range(_LOCK_FOLDER_RETRIES):
            try:
                return self._acquire_once(*args, **kwargs)
            except FileNotFoundError:
                if Path(self.lock_file).parent.exists():
                    raise _blocked(self.lock_file, "no such file") from None
        return self._acquire_once(*args, **kwargs)

    def _acquire_once(self, *args: Any, **kwargs: Any) -> Any:
        """Acquire once; a lock path that cannot be a lock file raises UserError."""
        try:
            return super().acquire(*args, **kwargs)
        except (FileNotFoundError, Timeout):
            raise
        except OSError as error:
            if Path(self.lock_file).is_symlink():  # filelock opens with O_NOFOLLOW: ELOOP
                reason = "a symbolic link, which a lock never follows"
            else:
                reason = paths.os_reason(error, error.strerror or type(error).__name__)
            raise _blocked(self.lock_file, reason) from None


def _blocked(lock_file: str, reason: str) -> UserError:
    """Return the one-line error for a lock that cannot be taken: what is in the way."""
    return UserError(
        f"{clip(lock_file, 300)}: cannot take aeexp's lock here ({reason}); if something "
        "else is in the way of the lock file or its folder, move it aside and rerun"
    )


def study_lock(experiment_dir: Path) -> FileLock:
    """Return the lock one ``aeexp tune`` holds on an experiment's study."""
    return _Lock(experiment_dir / TUNE_LOCK, timeout=0)


def run_lock(experiment_dir: Path, run_id: str) -> FileLock:
    """Return the lock a driver holds while it trains or writes ``run_id``."""
    return _Lock(experiment_dir / LOCKS / f"{run_id}.lock", timeout=0)


def summary_lock(experiment_dir: Path) -> FileLock:
    """Return the lock that serialises rewrites of the experiment's ``runs.csv``."""
    return _Lock(experiment_dir / LOCKS / "runs.csv.lock", timeout=60)


def remove_lock_files(experiment_dir: Path) -> None:
    """Delete the lock files nobody holds, then the ``.locks`` folder if that empties it.

    filelock leaves its files behind on Unix. Each is deleted only while this process holds
    it, so never under another live driver; one waiting for it finds the file unlinked when
    its turn comes and takes a new one (filelock checks the link count after locking). Best
    effort: a lock that cannot be taken or deleted is left, and so is the folder.
    """
    folder = experiment_dir / LOCKS
    try:
        names = [p.name for p in folder.iterdir() if _LOCK_NAME.match(p.name)]
    except OSError:  # no .locks folder: nothing was locked
        return
    for name in names:
        lock = FileLock(folder / name, timeout=0)  # a plain FileLock: never makes the folder
        try:
            with lock:
                (folder / name).unlink(missing_ok=True)
        except (Timeout, OSError):  # held by a live driver, or not ours to delete
            continue
    with contextlib.suppress(OSError):  # not empty: another driver's, or a user's, files
        folder.rmdir()
