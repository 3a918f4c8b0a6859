"""The thesis's configs, sweeps and search files that ship inside the package, by name.

A name is a file's path under configs/ without .yaml: ``thesis/mse_relu-sigmoid_adam`` (a run
config), ``sweeps/thesis-optimizers`` (a sweep), ``tune/thesis-cells`` (a search file). In a
clone, aeexp/configs is a link to configs/, so a name and the clone's path are the same file;
a wheel carries them as package data. A real path always wins: a name is looked up only where
no file has that path.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from aeexp.errors import UserError, clip
from aeexp.io import paths, readers

FOLDER = Path(__file__).parents[1] / "configs"
# The folder under configs/ -> what reads its files (the commands and schemas say the same).
KINDS = {"thesis": "run", "sweeps": "sweep", "tune": "tune"}
LABELS = {"run": "run config", "sweep": "sweep file", "tune": "search file"}
SUFFIX = ".yaml"
# Names longer than this are not compared with the bundled ones (difflib is quadratic).
_CLOSE_MATCH_LIMIT = 100
_SUMMARY_WIDTH = 58  # with the name and kind, a line of at most 100 characters


@dataclass(frozen=True)
class Bundled:
    """One bundled file: its name, which command reads it, and where it lies."""

    name: str
    kind: str
    path: Path

    def summary(self) -> str:
        """Return the first line of the file's opening comment: what it is."""
        text = readers.read_text(self.path, readers.MAX_CONFIG_BYTES, LABELS[self.kind], "YAML")
        for line in text.splitlines():
            if line.startswith("#") and "yaml-language-server:" not in line:
                return clip(line.lstrip("#").strip(), _SUMMARY_WIDTH)
        return ""


def catalog() -> dict[str, Bundled]:
    """Return every bundled file by name, run configs first, then sweeps, then searches."""
    found = {}
    for folder, kind in KINDS.items():
        for path in sorted((FOLDER / folder).glob(f"*{SUFFIX}")):
            name = f"{folder}/{path.stem}"
            found[name] = Bundled(name, kind, path)
    return found


def _as_name(text: str) -> str:
    """Return ``text`` without its .yaml, as names are written."""
    return text[: -len(SUFFIX)] if text.endswith(SUFFIX) else text


def _closest(text: str, kind: str | None) -> str:
    """Return "; did you mean 'x'?" for the bundled name closest to ``text``, or ''."""
    if len(text) > _CLOSE_MATCH_LIMIT:
        return ""
    known = catalog()
    same_kind = [name for name, entry in known.items() if kind in (None, entry.kind)]
    for names in (same_kind, list(known)):  # a name of the command's kind first
        close = difflib.get_close_matches(_as_name(text), names, n=1)
        if close:
            return f"; did you mean {close[0]!r}?"
    return ""


def find(name: str) -> Bundled:
    """Return the bundled file called ``name`` (.yaml allowed), or raise a one-line UserError."""
    found = catalog().get(_as_name(name))
    if found is None:
        hint = _closest(name, None)
        raise UserError(f"no bundled config {clip(name, 300)!r} (aeexp configs lists them){hint}")
    return found


def locate(source: str | Path, kind: str) -> str | Path:
    """Return ``source`` if a file may be there, else the bundled file it names for ``kind``.

    ``kind`` is the command's: run, sweep or tune. A name of another kind, or no name at
    all, is a one-line UserError that says what to type instead.
    """
    if not paths.missing(source):
        return source  # a real path wins; a path that cannot be read is the reader's to name
    where = clip(str(source), 300)
    found = catalog().get(_as_name(str(source)))
    if found is None:
        hint = _closest(str(source), kind)
        raise UserError(
            f"{where}: no such file, nor a bundled {LABELS[kind]} (aeexp configs lists them){hint}"
        )
    if found.kind != kind:
        raise UserError(
            f"{where} is a bundled {LABELS[found.kind]}, not a {LABELS[kind]}: "
            f"aeexp {found.kind} {found.name}"
        )
    return found.path


def copy(name: str, destination: str | Path) -> Path:
    """Write bundled ``name`` to ``destination`` (a file, or a folder for NAME's file).

    Never overwrites. The copy's schema line points at this installation's schema, so an
    editor still completes and checks it where it now lies.
    """
    from aeexp.config import sweepfile
    from aeexp.io import atomic

    found = find(name)
    target = Path(destination)
    if paths.is_folder(target):
        target = target / found.path.name
    paths.output_file(target)  # its folder exists; not a folder, a FIFO or a device
    text = readers.read_text(found.path, readers.MAX_CONFIG_BYTES, LABELS[found.kind], "YAML")
    lines = text.splitlines(keepends=True)
    if lines and lines[0].startswith(sweepfile.MODELINE_PREFIX):
        lines = lines[1:]
    body = sweepfile.modeline(found.kind, target) + "\n" + "".join(lines)
    with atomic.os_errors(target):
        try:
            atomic.write_new(target, body.encode())
        except FileExistsError:
            raise UserError(
                f"{clip(str(target), 300)}: already exists; aeexp configs copy never overwrites"
            ) from None
    return target


def render() -> str:
    """Return the bundled files as a table, then how to use them."""
    entries = list(catalog().values())
    width = max(len(entry.name) for entry in entries)
    lines = [f"{e.name:{width}}  {e.kind:5}  {e.summary()}".rstrip() for e in entries]
    lines += [
        "",
        "Run one: aeexp run thesis/NAME; a sweep: aeexp sweep sweeps/NAME; a search: "
        "aeexp tune tune/NAME.",
        "Edit one: aeexp configs copy NAME DEST. A file at the path given always wins over a name.",
    ]
    return "\n".join(lines)
