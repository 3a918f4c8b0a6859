"""The study file, ``tune.db``: checked before Optuna opens it, its faults one line each.

Optuna keeps every cell's study in one SQLite file in the experiment folder. Opened blindly,
a damaged file (random bytes, cut short, a broken header), something that is not a file (a
folder, a FIFO, a device) or another program's database ends in an SQLAlchemy traceback, and
a symlink would let SQLite write outside the output folder. So the file goes through the
same checks as every file aeexp reads (a regular file, opened without blocking), then
SQLite's own: its header, ``PRAGMA quick_check`` (time bounded by the file's size) and its
tables, which must be none (a new file) or Optuna's. Errors while tuning (a full disk, a
file made read-only) are one line too.

The study is never repaired or replaced here: moving the file aside is the user's call, and
the next ``aeexp tune`` rebuilds it from the run directories (see :data:`RECOVER`).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from aeexp.errors import UserError, clip
from aeexp.io import paths, readers

# Every SQLite 3 file starts with these 16 bytes (https://www.sqlite.org/fileformat.html).
SQLITE_HEADER = b"SQLite format 3\x00"
# A tune.db this large is not aeexp's: a study of 10,000 trials of 10,000 epochs is ~1 GiB.
MAX_DATABASE_BYTES = 4 << 30
RECOVER = (
    "move it aside (or delete it) and rerun: aeexp tune rebuilds the study from the finished "
    "runs in {folder}, training only what is missing"
)


def _refuse(path: Path, problem: str) -> UserError:
    """Return the one-line error for a study file that cannot be used, with the way out."""
    return UserError(f"{clip(str(path), 300)}: {problem}; {RECOVER.format(folder=path.parent)}")


def optuna_tables() -> dict[str, frozenset[str]]:
    """Return the tables of Optuna's storage and their columns, from Optuna's own schema."""
    from optuna.storages._rdb import models

    return {
        name: frozenset(column.name for column in table.columns)
        for name, table in models.BaseModel.metadata.tables.items()
    }


def _lstat(path: Path) -> os.stat_result | None:
    """Return the file's own status (a symlink as a symlink, even dangling), None if absent."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        reason = paths.os_reason(error, f"cannot look it up ({error.strerror})")
        raise UserError(f"{clip(str(path), 300)}: {reason}") from None


def check_study_file(path: Path) -> None:
    """Raise a one-line UserError unless ``path`` is absent, empty, or an Optuna SQLite study."""
    found = _lstat(path)
    if found is None:
        return  # Optuna creates it
    if stat.S_ISLNK(found.st_mode):
        raise _refuse(path, "a symbolic link; the study file must be a regular file here")
    if found.st_size > MAX_DATABASE_BYTES:
        raise _refuse(path, f"larger than {MAX_DATABASE_BYTES >> 30} GiB, not aeexp's study")
    try:
        head = readers.read_head(path, len(SQLITE_HEADER), "study database")
    except readers.PermissionDenied:
        raise
    except UserError as error:
        raise _refuse(path, str(error).removeprefix(f"{clip(str(path), 300)}: ")) from None
    if not head:
        return  # an empty file: SQLite treats it as a new database
    if head != SQLITE_HEADER:
        raise _refuse(path, "not an SQLite database (its header is not SQLite's)")
    _check_contents(path)


def _check_contents(path: Path) -> None:
    """Refuse a damaged SQLite file, or one whose tables are not (only) Optuna's."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            verdict = db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if verdict != "ok":
                raise _refuse(path, f"a damaged SQLite database ({clip(verdict, 120)})")
            tables = {
                name: frozenset(row[1] for row in db.execute(f'PRAGMA table_info("{name}")'))
                for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
    except sqlite3.Error as error:
        raise _refuse(path, f"a damaged SQLite database ({clip(str(error), 120)})") from None
    _check_tables(path, tables)


def _check_tables(path: Path, tables: dict[str, frozenset[str]]) -> None:
    """Refuse tables that are not Optuna's, or Optuna's with other columns."""
    if not tables:
        return  # a new SQLite file: Optuna makes its tables
    expected = optuna_tables()
    foreign = sorted(set(tables) - set(expected) - {"alembic_version"})
    if foreign:
        shown = ", ".join(clip(name, 40) for name in foreign[:5])
        raise _refuse(path, f"an SQLite database of another program (tables {shown})")
    for name, columns in expected.items():
        if name in tables and not columns <= tables[name]:
            missing = ", ".join(sorted(columns - tables[name]))
            raise _refuse(path, f"its table {name} is not Optuna's (no column {missing})")


@contextmanager
def study_errors(path: Path) -> Iterator[None]:
    """Turn a storage failure while tuning (a full disk, a read-only file) into one line."""
    import optuna
    import sqlalchemy

    try:
        yield
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
        raise UserError(
            f"{clip(str(path), 300)}: the study database failed ({clip(_root_cause(error), 160)}); "
            "finished runs are kept, so rerun once the cause is fixed"
        ) from None


def _root_cause(error: BaseException) -> str:
    """Return the message of the error at the bottom of a chain (SQLite's own, usually)."""
    for _ in range(10):  # a chain is short; a cycle must not loop forever
        below = getattr(error, "orig", None) or error.__cause__
        if below is None:
            break
        error = below
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def open_storage(optuna: Any, path: Path) -> Any:
    """Return Optuna's storage on ``path``: connected to that file, never parsed from a URL.

    In a ``sqlite:///`` URL a ``?`` or ``#`` in a folder's name starts a query, so a study in
    ``--out 'a?b'`` would be written to a file ``a`` beside the output folder; a connection
    made from the path itself goes where the path says.
    """
    check_study_file(path)

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(path, check_same_thread=False)

    try:
        return optuna.storages.RDBStorage("sqlite://", engine_kwargs={"creator": connect})
    except RuntimeError as error:  # e.g. a study written by an Optuna whose schema is older
        raise _refuse(path, f"Optuna cannot use it ({clip(str(error), 200)})") from None
