"""The one table of checks for the arguments the command line and the Python API share.

The CLI's options parse text, then check the value here; the API checks its keyword
arguments here before anything is read or trained. A mistake says the same thing either
way: ``<command>: Invalid value for '<option>': <problem>``, the line the CLI prints (click's
wording), raised as :class:`~aeexp.errors.UserError`, or its TypeError-flavoured
:class:`~aeexp.errors.UserTypeError` when the value is of the wrong type.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aeexp.errors import MAX_SEED, MAX_SEEDS, UserError, UserTypeError, shorten

# The most a count (--trials, --batch, --top, --max-group, --max-runs, --cpus-per-worker) may
# be: a million is far past any grid, batch, group or worker one machine holds; 2**64 is a typo.
MAX_COUNT = 1_000_000


class Problem(Exception):
    """What is wrong with one value; ``wrong_type`` when it is not even of the right type."""

    def __init__(self, message: str, wrong_type: bool = False) -> None:
        super().__init__(message)
        self.wrong_type = wrong_type


def _type_name(value: object) -> str:
    """Return the name of ``value``'s type, as a message shows it."""
    return type(value).__name__


@dataclass(frozen=True)
class Count:
    """A whole number in ``minimum..maximum``; None too when ``optional``."""

    minimum: int = 1
    maximum: int = MAX_COUNT
    optional: bool = False

    def __call__(self, value: Any) -> Any:
        """Return ``value`` if it is a whole number in range, else raise a Problem."""
        if value is None and self.optional:
            return value
        wanted = f"expected a whole number in {self.minimum}..{self.maximum}"
        if isinstance(value, bool) or not isinstance(value, int):
            raise Problem(f"{wanted}, got {_type_name(value)} {shorten(value)}", wrong_type=True)
        if not self.minimum <= value <= self.maximum:
            raise Problem(f"{wanted}, got {shorten(value)}")
        return value


def _flag(value: Any) -> Any:
    """Check a switch: True or False, never a string such as 'no' that Python calls true."""
    if not isinstance(value, bool):
        raise Problem(f"expected True or False, got {_type_name(value)} {shorten(value)}", True)
    return value


def _text(optional: bool) -> Callable[[Any], Any]:
    """Return a check for a string (or None when ``optional``)."""

    def check(value: Any) -> Any:
        if (value is None and optional) or isinstance(value, str):
            return value
        raise Problem(f"expected a string, got {_type_name(value)} {shorten(value)}", True)

    return check


def _path(optional: bool, mapping: bool = False) -> Callable[[Any], Any]:
    """Return a check for a path (str or os.PathLike), or a mapping where a config may be."""
    wanted = "a path, a bundled name or a mapping" if mapping else "a path"
    kinds = (str, os.PathLike, Mapping) if mapping else (str, os.PathLike)

    def check(value: Any) -> Any:
        if (value is None and optional) or isinstance(value, kinds):
            return value
        if mapping and _is_run_config(value):
            return value
        raise Problem(f"expected {wanted}, got {_type_name(value)} {shorten(value)}", True)

    return check


def _is_run_config(value: Any) -> bool:
    """Return whether ``value`` is a RunConfig, which ``run`` takes as it takes a mapping."""
    from aeexp.config.run import RunConfig  # pydantic: only once an API call checks a value

    return isinstance(value, RunConfig)


def _texts(what: str) -> Callable[[Any], Any]:
    """Return a check for a list or tuple of strings (a lone one would be read as letters)."""

    def check(value: Any) -> Any:
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return value
        raise Problem(f"expected a list of {what}, got {_type_name(value)} {shorten(value)}", True)

    return check


def _seeds(value: Any) -> Any:
    """Check seeds: ``0-4``, ``0,1,2`` or a list of at most MAX_SEEDS, each in 0..MAX_SEED."""
    wanted = f"expected a range like 0-4, a list like 0,1,2 or a list of at most {MAX_SEEDS} seeds"
    if isinstance(value, str):
        return value  # parsed, and its bounds checked, where it is used (selection.parse_seeds)
    if not isinstance(value, list | tuple):
        raise Problem(f"{wanted}, got {_type_name(value)} {shorten(value)}", wrong_type=True)
    if len(value) > MAX_SEEDS:
        raise Problem(f"{wanted}, got {len(value):,} seeds")
    for seed in value:
        Count(0, MAX_SEED)(seed)
    return value


def _executor(value: Any) -> Any:
    """Check an executor: its name (checked against the registry when made) or its options."""
    from aeexp.execute.executors import ExecutorOptions  # names are checked when made

    if isinstance(value, str | ExecutorOptions):
        return value
    raise Problem(f"expected an executor's name, got {_type_name(value)} {shorten(value)}", True)


@dataclass(frozen=True)
class Argument:
    """An argument's name as the CLI shows it, and the check its value must pass."""

    option: str
    check: Callable[[Any], Any]


ARGUMENTS: dict[str, Argument] = {
    # What to train or read: a file, a bundled name, or (in the API) the mapping itself.
    "config": Argument("CONFIG", _path(False, mapping=True)),
    "sweep_file": Argument("SWEEP", _path(False, mapping=True)),
    "search_file": Argument("SEARCH", _path(False, mapping=True)),
    "folder": Argument("RUNS", _path(False)),
    "side": Argument("SIDE", _path(False)),
    "root": Argument("--root", _path(True)),
    "out": Argument("--out", _path(True)),
    "sweep_out": Argument("--sweep-out", _path(True)),
    "overrides": Argument("--set", _texts("KEY=VALUE strings")),
    "metrics": Argument("--metric", _texts("metric names")),
    "where": Argument("--where", _text(True)),
    "mlflow": Argument("--mlflow", _text(True)),
    "sweep_name": Argument("--name", _text(True)),
    "executor": Argument("--executor", _executor),
    "seed": Argument("--seed", Count(0, MAX_SEED, optional=True)),
    "trials": Argument("--trials", Count()),
    "batch": Argument("--batch", Count(optional=True)),
    "top": Argument("--top", Count()),
    "max_group": Argument("--max-group", Count()),
    "max_runs": Argument("--max-runs", Count()),
    "seeds": Argument("--seeds", _seeds),
    "force": Argument("--force", _flag),
    "rerun_failed": Argument("--rerun-failed", _flag),
    "on_test_set": Argument("--on-test-set", _flag),
    "tensorboard": Argument("--tensorboard", _flag),
    "progress": Argument("progress", _flag),  # the CLI's is --quiet, its opposite
}


def executor_option_check(minimum: int | None) -> Callable[[Any], Any]:
    """Return the check of an executor's own option: a count from ``minimum``, else a string.

    The executor registry declares each option (``aeexp.execute.executors.ExecutorOption``); the
    CLI's option and the API's keyword are checked by what this returns.
    """
    return _text(True) if minimum is None else Count(minimum, optional=True)


def check_executor_options(command: str, options: Mapping[str, Any]) -> None:
    """Check the executor's keywords (``address``, ``cpus_per_worker``) by their entries."""
    from aeexp.execute.executors import executor_options  # the registry: only when a call checks

    known = executor_options()
    for keyword, value in options.items():
        option = known[keyword]
        try:
            executor_option_check(option.minimum)(value)
        except Problem as problem:
            raise invalid(command, option.flag, problem) from None


def invalid(command: str, option: str, problem: Problem) -> UserError:
    """Return the error for one bad value, worded as the CLI's line."""
    kind = UserTypeError if problem.wrong_type else UserError
    return kind(f"{command}: Invalid value for {option!r}: {problem}")


def check(command: str, **values: Any) -> None:
    """Check each keyword argument of ``command`` against its row of :data:`ARGUMENTS`."""
    for name, value in values.items():
        argument = ARGUMENTS[name]
        try:
            argument.check(value)
        except Problem as problem:
            raise invalid(command, argument.option, problem) from None
