"""The one exception type that means "the user's input is wrong", and the checks it shares.

Also the one bound that both the config schema and the data reader enforce, kept here so
that neither has to import the other (the schema stays free of NumPy, the reader of pydantic).
"""

import difflib
import math
import reprlib
from collections.abc import Iterable
from typing import Any

# The most images read from any source, per split, and the most data.train_limit,
# test_limit and holdout may ask for: 10 million 28x28 images are 7.8 GB as uint8, about 140
# times MNIST's 70,000. An array header claiming more is refused before anything is read.
MAX_IMAGES = 10_000_000

# How much of a user's value an error message shows: enough to recognise it, never so much
# that a megabyte string or a deep structure floods the terminal or takes long to render.
SHORTEN_LIMIT = 80
# Names longer than this are not compared with the valid ones (difflib is quadratic).
_CLOSE_MATCH_LIMIT = 100


# The largest seed: it seeds tf.constant([seed, epoch], tf.int64) and NumPy's SeedSequence,
# so int64's range. The config schema and the API's --seed and --seeds checks share it.
MAX_SEED = 2**63 - 1
# The most seeds a written sweep may have (--seeds).
MAX_SEEDS = 1000


class UserError(ValueError):
    """A user mistake: the CLI prints its message on one line and exits with code 2.

    A ValueError, so that a notebook's ``except ValueError`` catches a bad argument too.
    """


class UserTypeError(UserError, TypeError):
    """A user mistake in an argument's type (an int where a path goes): also a TypeError."""


def _bounded_repr(limit: int) -> reprlib.Repr:
    """Return a reprlib.Repr that renders at most a few items and levels of any structure."""
    bounded = reprlib.Repr()
    bounded.maxlevel = 3
    bounded.maxstring = bounded.maxother = bounded.maxlong = limit
    bounded.maxlist = bounded.maxtuple = bounded.maxdict = bounded.maxset = 6
    return bounded


def shorten(value: object, limit: int = SHORTEN_LIMIT) -> str:
    """Return ``repr(value)`` on one line and at most ``limit`` characters, ending in '...'.

    The work is bounded too: a huge string is cut before it is rendered, a structure is
    rendered only a few items and levels deep.
    """
    try:
        if isinstance(value, str):
            text = repr(value[: limit + 1])
        else:
            text = _bounded_repr(limit).repr(value)
    except Exception:  # a repr that fails (an int past Python's digit limit) still gets named
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int = 4 * SHORTEN_LIMIT) -> str:
    """Return ``text`` on one line and at most ``limit`` characters, ending in '...' if cut."""
    text = " ".join(text[: 4 * limit].split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def valid_and_closest(name: object, valid: Iterable[str]) -> str:
    """Return ' (valid: a, b); did you mean 'a'?' for a name that is not in ``valid``."""
    valid = sorted(valid)
    message = f" (valid: {', '.join(valid)})"
    if not isinstance(name, str) or len(name) > _CLOSE_MATCH_LIMIT:
        return message
    close = difflib.get_close_matches(name, valid, n=1)
    return f"{message}; did you mean {close[0]!r}?" if close else message


def unknown_name_message(kind: str, name: object, valid: Iterable[str]) -> str:
    """Return 'unknown <kind> ...' with the valid names and the closest match."""
    return f"unknown {kind} {shorten(name)}{valid_and_closest(name, valid)}"


def is_finite_number(value: Any) -> bool:
    """Return whether ``value`` is an int or float (not a bool) and neither NaN nor infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def one_line(error: BaseException, limit: int = 300) -> str:
    """Return an exception as one line: its type and whitespace-collapsed message, bounded."""
    message = " ".join(str(error).split())
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text[:limit]
