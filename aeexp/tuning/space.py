"""Search spaces: ``{log_uniform: [low, high]}``, ``{uniform: [low, high]}``, ``{choice: [...]}``.

Parsed and checked here without Optuna (a bad range is one line before anything loads); the
Optuna distribution is built only when a trial is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aeexp.errors import UserError, is_finite_number, shorten, valid_and_closest

# One kind per way of drawing a value; each is one branch of ``distribution``.
KINDS = ("log_uniform", "uniform", "choice")
# A categorical space of more values than this is a grid, not a search.
MAX_CHOICES = 1000
_SPELLED = "{log_uniform: [low, high]}, {uniform: [low, high]} or {choice: [a, b, ...]}"


@dataclass(frozen=True)
class Space:
    """One searched config key and where its values come from."""

    key: str  # dotted, canonical (optimizer.lr is written optimizer.learning_rate)
    kind: str  # one of KINDS
    values: tuple[Any, ...]  # (low, high) for a range, the options for a choice

    @property
    def is_range(self) -> bool:
        """Return whether values are drawn from an interval (not a list of options)."""
        return self.kind != "choice"

    @property
    def log(self) -> bool:
        """Return whether values are drawn uniformly in their logarithm."""
        return self.kind == "log_uniform"

    def samples(self) -> list[Any]:
        """Return values that stand for the whole space when a config is checked: ends, options."""
        return list(self.values)

    def spec(self) -> dict[str, Any]:
        """Return the space as the search file writes it, e.g. ``{log_uniform: [1e-05, 3.0]}``."""
        return {self.kind: list(self.values)}

    def distribution(self) -> Any:
        """Return the Optuna distribution that draws this space's values."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        if self.kind == "choice":
            return CategoricalDistribution(self.values)
        low, high = self.values
        return FloatDistribution(float(low), float(high), log=self.log)


def _range(where: str, kind: str, bounds: Any) -> tuple[float, float]:
    """Return a checked (low, high): two finite numbers, low below high, above zero for log."""
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise UserError(f"{where}: {kind} takes [low, high], got {shorten(bounds)}")
    low, high = bounds
    if not (is_finite_number(low) and is_finite_number(high)):
        raise UserError(f"{where}: {kind} bounds must be finite numbers, got {shorten(bounds)}")
    if low == high:
        raise UserError(f"{where}: {kind} [{low}, {high}] is an empty range (low equals high)")
    if low > high:
        raise UserError(f"{where}: {kind} [{low}, {high}] is inverted (low above high)")
    if kind == "log_uniform" and low <= 0:
        raise UserError(
            f"{where}: log_uniform [{low}, {high}] reaches {'zero' if low == 0 else 'below zero'}; "
            "a log range must lie above zero (use uniform, or a positive low)"
        )
    return float(low), float(high)


def _choices(where: str, options: Any) -> tuple[Any, ...]:
    """Return checked options: a non-empty list of distinct plain values (Optuna's categories)."""
    if not isinstance(options, list) or not options:
        raise UserError(f"{where}: choice takes a non-empty list, got {shorten(options)}")
    if len(options) > MAX_CHOICES:
        raise UserError(f"{where}: choice of {len(options)} options, at most {MAX_CHOICES}")
    for option in options:
        plain = option is None or isinstance(option, bool | int | str)
        if not (plain or is_finite_number(option)):
            raise UserError(
                f"{where}: choice options must be numbers, strings, booleans or null, "
                f"got {shorten(option)} (a mapping belongs in the grid)"
            )
    if len({(type(o), o) for o in options}) != len(options):
        raise UserError(f"{where}: choice lists an option twice: {shorten(options)}")
    return tuple(options)


def parse_space(key: str, raw: Any, where: str) -> Space:
    """Return the space ``raw`` describes for ``key``, or raise a one-line UserError."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise UserError(f"{where}: expected one of {_SPELLED}, got {shorten(raw)}")
    ((kind, values),) = raw.items()
    if kind not in KINDS:
        raise UserError(f"{where}: unknown space {shorten(kind)}{valid_and_closest(kind, KINDS)}")
    if kind == "choice":
        return Space(key, kind, _choices(where, values))
    return Space(key, kind, _range(where, kind, values))


def describe_value(value: Any) -> str:
    """Return a searched value for a message or a label: 4 significant digits for a float."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


def describe_params(params: Mapping[str, Any]) -> str:
    """Return searched values for a message, e.g. ``optimizer.learning_rate=0.00123``."""
    return ", ".join(f"{key}={describe_value(value)}" for key, value in params.items())
