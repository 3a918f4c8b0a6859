"""Ctrl-C as a request: the handler records it, the driver acts on it at a safe point.

A SIGINT handler that raises KeyboardInterrupt raises wherever Python happens to be. Inside
a weakref callback or a ``__del__`` run by the garbage collector (at the boundary of a
lock-step group, 1 time in 12) the exception cannot propagate: Python prints "Exception
ignored in ..." and a traceback, and training goes on. Elsewhere it can land half-way
through bookkeeping. So while training, the handler only records the request; the driver
checks it at safe points (after each epoch, between jobs, while it waits) and raises
KeyboardInterrupt there, which the command line turns into one line and exit 130. A second
Ctrl-C means the user insists: it raises at once, and if that lands where it cannot
propagate it is silent, and the request still stands for the next check.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _Requests:
    """The process's Ctrl-C requests while a driver watches (one main thread gets signals)."""

    def __init__(self) -> None:
        self.pressed = 0
        self.watching = False

    def handle(self, signum: int, frame: Any) -> None:
        """Record a Ctrl-C; raise only on the second, when the user insists."""
        self.pressed += 1
        if self.pressed > 1:
            raise KeyboardInterrupt


_REQUESTS = _Requests()


def requested() -> bool:
    """Return whether Ctrl-C was pressed since watching began."""
    return _REQUESTS.pressed > 0


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed: call it where stopping is safe."""
    if _REQUESTS.pressed:
        raise KeyboardInterrupt


def _quiet_hook(previous: Any) -> Any:
    """Return an unraisable hook that drops a KeyboardInterrupt: it is recorded already."""

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous(unraisable)

    return hook


@contextmanager
def watching() -> Iterator[None]:
    """Record Ctrl-C instead of raising it, for the block; nested blocks share the outer one."""
    if _REQUESTS.watching or threading.current_thread() is not threading.main_thread():
        yield
        return
    _REQUESTS.pressed, _REQUESTS.watching = 0, True
    previous_handler = signal.signal(signal.SIGINT, _REQUESTS.handle)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_hook(previous_hook)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        sys.unraisablehook = previous_hook
        _REQUESTS.watching = False
    check()  # pressed after the last safe point: the work is done, but Ctrl-C still wins
