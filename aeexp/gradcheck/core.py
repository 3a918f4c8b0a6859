"""The check machinery: a closed form against TensorFlow's autodiff, in float64, and the verdict."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aeexp.env.backend import LazyModule, import_tensorflow

# The backend sets TF_CPP_MIN_LOG_LEVEL=3 and hides the C++ start-up notices it cannot reach.
tf = LazyModule(import_tensorflow)  # imported when a check first runs, not with this module

RTOL = 1e-6  # a formula agrees when its largest relative error is below this
REL_FLOOR = 1e-12  # keeps the relative error finite where both sides are exactly zero

Array = np.ndarray


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one closed-form gradient."""

    id: str
    source: str
    formula: str
    max_abs_error: float
    max_rel_error: float
    verdict: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a plain dict with exactly the JSON keys."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Outcome:
    """How far one closed form is from autodiff."""

    max_abs_error: float
    max_rel_error: float
    finite: bool = True

    @property
    def verdict(self) -> str:
        """Return ``agrees`` or ``disagrees`` under the module's tolerance."""
        return "agrees" if self.finite and self.max_rel_error < RTOL else "disagrees"


def compare(closed: Any, auto: Any, where: Any = None) -> Outcome:
    """Compare a closed form with an autodiff gradient on the entries ``where`` selects."""
    closed, auto = np.broadcast_arrays(np.asarray(closed, np.float64), np.asarray(auto, np.float64))
    if where is not None:
        # A mask over units (e.g. u_j > 0) selects whole rows of a weight gradient.
        where = np.asarray(where, bool)
        where = where.reshape(where.shape + (1,) * (closed.ndim - where.ndim))
        mask = np.broadcast_to(where, closed.shape)
        closed, auto = closed[mask], auto[mask]
    if closed.size == 0:
        raise ValueError("nothing to compare: the formula's case holds for no entry")
    if not (np.isfinite(closed).all() and np.isfinite(auto).all()):
        return Outcome(math.inf, math.inf, finite=False)
    error = np.abs(closed - auto)
    scale = np.maximum(np.maximum(np.abs(closed), np.abs(auto)), REL_FLOOR)
    return Outcome(float(error.max()), float((error / scale).max()))


def autodiff(objective: Callable[[tf.Tensor], tf.Tensor], at: Any) -> Array:
    """Return d objective / d at in float64 (a Jacobian if the objective is not a scalar).

    Where the objective is not finite it has no derivative, so those gradients come back as
    nan: TensorFlow would otherwise report finite numbers, e.g. 0 behind a ReLU's select.
    """
    var = tf.constant(at, tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(var)
        out = objective(var)
        # One gradient per output entry: the outputs here are a handful of per-sample losses.
        parts = tf.unstack(tf.reshape(out, [-1]))
    zero = tf.UnconnectedGradients.ZERO
    grads = [tape.gradient(part, var, unconnected_gradients=zero).numpy() for part in parts]
    finite = [bool(np.isfinite(part.numpy())) for part in parts]
    grads = [g if ok else np.full_like(g, np.nan) for g, ok in zip(grads, finite, strict=True)]
    return np.stack(grads).reshape(tuple(out.shape) + var.shape)


def compare_gradient(
    closed: Any,
    objective: Callable[[tf.Tensor], tf.Tensor],
    at: Any,
    where: Any = None,
    pick: Callable[[Array], Array] | None = None,
) -> Outcome:
    """Compare a closed form with the autodiff gradient of ``objective`` at ``at``."""
    auto = autodiff(objective, at)
    return compare(closed, auto if pick is None else pick(auto), where)


@dataclass(frozen=True)
class Form:
    """One reading of a formula: a closed form and the objective it claims to differentiate.

    Every callable takes the sampled problem that ``setup(seed)`` returns.
    """

    label: str
    setup: Callable[[int], Any]
    closed: Callable[[Any], Any]  # the formula, evaluated in NumPy
    objective: Callable[[Any, tf.Tensor], tf.Tensor]  # the claimed objective of one variable
    at: Callable[[Any], Array]  # the point at which to differentiate
    where: Callable[[Any], Array] | None = None  # entries inside the formula's case
    pick: Callable[[Array], Array] | None = None  # entries of the Jacobian the formula gives
    reading: str = ""  # the activation reading this form assumes, if that is in question


@dataclass(frozen=True)
class Check:
    """A closed-form gradient from a document: the form as written first, then variants."""

    id: str
    source: str
    formula: str
    forms: tuple[Form, ...]
    remark: str = ""


def evaluate(form: Form, seed: int) -> Outcome:
    """Compare one form's closed form with autodiff of its objective on the seeded sample."""
    problem = form.setup(seed)
    # Case-split formulas are evaluated everywhere and masked; a log of a negative is harmless.
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = form.closed(problem)
    where = None if form.where is None else form.where(problem)
    objective = functools.partial(form.objective, problem)
    return compare_gradient(closed, objective, form.at(problem), where, form.pick)


def _describe(outcome: Outcome) -> str:
    """Say how one form fared, in a few words."""
    if not outcome.finite:
        return "undefined (the objective or its gradient is not finite)"
    if outcome.verdict == "agrees":
        return "agrees"
    return f"disagrees (max rel error {outcome.max_rel_error:.1e})"


def _reading_verdict(forms: tuple[Form, ...], outcomes: list[Outcome]) -> str:
    """Say which activation reading the derivation matches, from the outcomes."""
    pairs = zip(forms, outcomes, strict=True)
    readings = [(f.reading, o.verdict == "agrees") for f, o in pairs if f.reading]
    matched = [reading for reading, agrees in readings if agrees]
    if not readings:
        return ""
    if not matched:
        return "the derivation matches neither reading"
    if len(matched) == len(readings):
        return "the derivation holds under both readings"
    return "the derivation matches " + " and ".join(matched)


def _note(check: Check, outcomes: list[Outcome]) -> str:
    """Assemble a result's note: each variant's outcome, the reading matched, the remark."""
    parts = []
    if len(check.forms) > 1:
        described = zip(check.forms, outcomes, strict=True)
        parts.append("; ".join(f"{form.label}: {_describe(o)}" for form, o in described))
    parts.append(_reading_verdict(check.forms, outcomes))
    parts.append(check.remark)
    text = ". ".join(part[0].upper() + part[1:] for part in parts if part)
    return text + "." if text else ""


def run_check(check: Check, seed: int = 0) -> CheckResult:
    """Run one check: its primary form decides the verdict, the others go in the note."""
    outcomes = [evaluate(form, seed) for form in check.forms]
    primary = outcomes[0]
    return CheckResult(
        id=check.id,
        source=check.source,
        formula=check.formula,
        max_abs_error=primary.max_abs_error,
        max_rel_error=primary.max_rel_error,
        verdict=primary.verdict,
        note=_note(check, outcomes),
    )
