"""Progress bars: animated on a terminal or in a notebook, a plain line now and then in a log.

A bar redraws itself with carriage returns. A log (CI, ``nohup``, a cluster's job file)
keeps every frame, and an erased bar leaves a carriage return and blanks before the error
line that follows, so the log's first line is not the error. Where stderr is neither a
terminal nor a Jupyter kernel (whose stderr is no terminal, yet renders a bar), a bar
writes whole lines instead: at most one every :data:`LINE_INTERVAL` seconds, and its
summary when it is kept.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from tqdm import tqdm

# The least time between two progress lines in a log: a long sweep says how far it is a few
# times an hour per bar, never hundreds of frames.
LINE_INTERVAL = 60.0


def _animated() -> bool:
    """Return whether stderr renders a redrawn bar: a terminal, or a Jupyter/IPython kernel."""
    if "ipykernel" in sys.modules:  # a notebook's stderr is no tty, but it draws the bar
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stderr, or a closed one
        return False


def bar(
    total: int, desc: str, unit: str, enabled: bool, initial: int = 0, leave: bool = True
) -> tqdm | LineProgress:
    """Return a progress bar: tqdm where it animates, else one that writes plain lines."""
    if enabled and not _animated():
        return LineProgress(total, desc, unit, initial, leave)
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        disable=not enabled,
        leave=leave,
        dynamic_ncols=True,
    )


class LineProgress:
    """The part of tqdm's interface aeexp uses, written as whole lines to stderr, rarely."""

    def __init__(self, total: int, desc: str, unit: str, initial: int, leave: bool) -> None:
        self.total, self.desc, self.unit, self.n, self.leave = total, desc, unit, initial, leave
        self.postfix = ""
        self._started = self._last_line = time.monotonic()
        self._closed = False
        self._shown: int | None = None  # the count the last line showed

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more done; write a line if the last one is old enough."""
        self.n += n
        if time.monotonic() - self._last_line >= LINE_INTERVAL:
            self._line()

    def set_postfix(self, refresh: bool = True, **values: Any) -> None:
        """Keep ``key=value`` pairs for the next line, as tqdm shows them after the count."""
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def write(self, text: str, file: IO[str] | None = None) -> None:
        """Write a message on its own line (no bar to clear first)."""
        print(text, file=file or sys.stderr, flush=True)

    def close(self) -> None:
        """Write the summary line if the bar is kept (a sweep's) and it is news; none if erased."""
        if not self._closed and self.leave and self._shown != self.n:
            self._line()
        self._closed = True

    def _line(self) -> None:
        """Write where the bar stands: desc, count of total, elapsed time, postfix."""
        self._last_line, self._shown = time.monotonic(), self.n
        elapsed = tqdm.format_interval(self._last_line - self._started)
        postfix = f", {self.postfix}" if self.postfix else ""
        self.write(f"{self.desc}: {self.n}/{self.total} {self.unit}s in {elapsed}{postfix}")
