"""The one exception type that means "the user's input is wrong", and the checks it shares."""

import difflib
import math
from collections.abc import Iterable
from typing import Any


class UserError(Exception):
    """A user mistake: the CLI prints its message on one line and exits with code 2."""


def valid_and_closest(name: object, valid: Iterable[str]) -> str:
    """Return ' (valid: a, b); did you mean 'a'?' for a name that is not in ``valid``."""
    valid = sorted(valid)
    message = f" (valid: {', '.join(valid)})"
    close = difflib.get_close_matches(str(name), valid, n=1)
    return f"{message}; did you mean {close[0]!r}?" if close else message


def unknown_name_message(kind: str, name: object, valid: Iterable[str]) -> str:
    """Return 'unknown <kind> ...' with the valid names and the closest match."""
    return f"unknown {kind} {name!r}{valid_and_closest(name, valid)}"


def is_finite_number(value: Any) -> bool:
    """Return whether ``value`` is an int or float (not a bool) and neither NaN nor infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
