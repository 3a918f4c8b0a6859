"""Reaching a service on another address: a bounded connect check, and scoped settings.

Ray and MLflow each retry a dead address for minutes with their own defaults. A TCP
connect with a short timeout says in seconds whether anything listens there at all, and
their own limits are set only for the calls that need them, never over a user's choice.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from aeexp.errors import one_line, shorten

# Seconds a connect check waits: a service on a LAN answers in milliseconds.
CONNECT_TIMEOUT = 3.0


def unreachable_reason(host: str, port: int) -> str | None:
    """Return why nothing accepts a TCP connection at host:port, or None if something does."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            return None
    except socket.gaierror:
        return f"unknown host {shorten(host)}"
    except UnicodeError:  # IDNA refuses an empty label or one over 63 characters: a..b
        return f"not a valid host name {shorten(host)}"
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no answer within {CONNECT_TIMEOUT:.0f} s"
    except OSError as error:
        return error.strerror or one_line(error)


@contextmanager
def environment_defaults(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables the user left unset, for the duration of the block only."""
    added = {key: value for key, value in values.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
