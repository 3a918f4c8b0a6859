"""Check the reference documents' hand-derived gradients against automatic differentiation.

Each closed-form gradient (thesis sections 2.4.3-2.4.14; the entropy-loss note's eqs. 1-5 and
11-14; the cross-entropy notes' softmax and weight gradients) is evaluated in NumPy as the
document writes it and compared with the gradient that TensorFlow's ``GradientTape`` computes,
in float64, for the function the formula claims to differentiate. Inputs are random, seeded,
and drawn where the derivation's assumptions hold: positive targets where a log needs them,
pre-activations at least 0.05 away from a ReLU kink, and losses summed as the derivations
write them (not averaged), never clipped.

Errors are taken entry by entry over the entries a formula covers (for a case-split formula,
only the entries in its case)::

    abs_error = |closed - autodiff|
    rel_error = abs_error / max(|closed|, |autodiff|, 1e-12)

A formula ``agrees`` when the largest relative error is below 1e-6 and ``disagrees`` otherwise,
or when either side is not finite. Float64 round-off leaves about 1e-15 and a wrong formula is
off by order one, so the tolerance sits many orders of magnitude from both.

The thesis text and its code differ on two activations. Verdicts use the activations the
derivation itself works with: the logistic sigmoid 1/(1+exp(-u)) (eq. 65 uses
f'(u) = f(u)(1 - f(u)), which holds only for it) and ReLU max(u, eps), eps = 1e-7 (section 2.2
adopts it so that the denominator in eq. 58 is never zero). The other reading of each,
1/(1+exp(u)) as eq. 28 prints it and max(u, 0) as the code has it, is checked as well and
reported in the result's note, with which reading the derivation matches.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aeexp.backend import import_tensorflow
from aeexp.errors import UserError
from aeexp.vocab import EPSILON

# The backend sets TF_CPP_MIN_LOG_LEVEL=3 and hides the C++ start-up notices it cannot reach.
tf = import_tensorflow()

RTOL = 1e-6  # a formula agrees when its largest relative error is below this
REL_FLOOR = 1e-12  # keeps the relative error finite where both sides are exactly zero
EPS = EPSILON  # the thesis's ReLU floor max(u, eps); also the Keras fuzz factor its code clips to
MARGIN = 0.05  # pre-activations stay this far from a ReLU kink, so every case is clear-cut
FORMATS = ("table", "json", "md")

# Sizes of the sampled problems: small enough to be instant, big enough for every case.
BATCH, INPUTS, HIDDEN = 3, 6, 4  # thesis autoencoder: M samples, D units, J code units
IMAGES, NEURONS, BETA, LAMBDA = 3, 5, 1.5, 0.25  # entropy loss: M, N, beta, lambda
CLASSES, FEATURES, SAMPLES, L2 = 4, 6, 5, 0.1  # softmax classifier: C, features, samples, lambda

Array = np.ndarray


# --------------------------------------------------------------------------- comparison


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


def run_checks(seed: int = 0) -> list[CheckResult]:
    """Run every check on inputs drawn from ``seed``; the same seed gives the same results."""
    return [run_check(check, seed) for check in CHECKS]


# --------------------------------------------------------------------------- thesis network

ACTIVATIONS: dict[str, Callable[[Any], tf.Tensor]] = {
    "relu_eps": lambda u: tf.maximum(u, tf.constant(EPS, tf.float64)),  # eqs. 27-28 as printed
    "relu0": lambda u: tf.maximum(u, tf.constant(0.0, tf.float64)),  # the code's ReLU
    "sigmoid": lambda u: 1.0 / (1.0 + tf.exp(-u)),  # the code's logistic sigmoid
    "sigmoid_text": lambda u: 1.0 / (1.0 + tf.exp(u)),  # eq. 28 as printed
}


def i_divergence(a: Any, b: Any) -> tf.Tensor:
    """Return d(a|b) = sum over the last axis of a log(a/b) - a + b (thesis eq. 32)."""
    # xlogy gives 0 log 0 = 0, the divergence's convention; only ReLU max(u, 0) reaches a = 0.
    return tf.reduce_sum(tf.math.xlogy(a, a / b) - a + b, axis=-1)


def e_i1(xh: Any, x: Any) -> tf.Tensor:
    """Return E_I1 = d(xh|x) per sample (thesis eq. 33)."""
    return i_divergence(xh, x)


def e_i2(xh: Any, x: Any) -> tf.Tensor:
    """Return E_I2 = d(x|xh) per sample (thesis eq. 34)."""
    return i_divergence(x, xh)


LOSSES = {"E_I1": e_i1, "E_I2": e_i2}


@dataclass(frozen=True, eq=False)
class Net:
    """A small autoencoder in the thesis's notation (eqs. 1-14) and its forward pass."""

    enc: str  # encoder activation f, a key of ACTIVATIONS
    dec: str  # decoder activation f~
    x: Array  # (M, D) inputs, also the targets
    w: Array  # (J, 1 + D) encoder weights W; column 0 is the bias (x_0 = 1)
    wt: Array  # (D, 1 + J) decoder weights W~; column 0 is the bias (y_0 = 1)
    u: Array  # (M, J) encoder total inputs
    y: Array  # (M, J) code units f(u)
    ut: Array  # (M, D) decoder total inputs u~
    xh: Array  # (M, D) reconstructions x^ = f~(u~)

    @property
    def x1(self) -> Array:
        """Return the inputs with the bias unit x_0 = 1 in front."""
        return _with_bias(self.x)

    @property
    def y1(self) -> Array:
        """Return the code units with the bias unit y_0 = 1 in front."""
        return _with_bias(self.y)


def _with_bias(z: Array) -> Array:
    """Prepend the bias unit z_0 = 1 (thesis eqs. 1, 3)."""
    return np.concatenate([np.ones_like(z[:, :1]), z], axis=1)


def _affine(z: Any, w: Any) -> tf.Tensor:
    """Return the next layer's total input W [1; z] (thesis eqs. 11, 13)."""
    z = tf.convert_to_tensor(z, tf.float64)
    return tf.matmul(tf.concat([tf.ones_like(z[:, :1]), z], axis=1), w, transpose_b=True)


def _encode(net: Net, w: Any) -> tf.Tensor:
    """Return the code units f(W [1; x])."""
    return ACTIVATIONS[net.enc](_affine(net.x, w))


def _decode(net: Net, y: Any, wt: Any) -> tf.Tensor:
    """Return the reconstruction f~(W~ [1; y])."""
    return ACTIVATIONS[net.dec](_affine(y, wt))


def _clear_of_kink(a: Array) -> bool:
    """Whether every row has entries on both sides of zero and none within MARGIN of it."""
    both_signs = ((a > 0).any(axis=1) & (a < 0).any(axis=1)).all()
    return bool(both_signs and (np.abs(a) > MARGIN).all())


def _sample_net(seed: int) -> tuple[Array, Array, Array]:
    """Draw inputs and weights whose every sample has live and dead units in both layers."""
    rng = np.random.default_rng([seed, 0])
    for _ in range(10_000):
        x = rng.uniform(0.05, 1.0, (BATCH, INPUTS))  # eq. 26's range, kept off 0 for the logs
        w = rng.normal(0.0, 1.0, (HIDDEN, 1 + INPUTS))
        wt = rng.normal(0.0, 1.0, (INPUTS, 1 + HIDDEN))
        u = _with_bias(x) @ w.T
        if _clear_of_kink(u) and _clear_of_kink(_with_bias(np.maximum(u, 0.0)) @ wt.T):
            return x, w, wt
    raise RuntimeError(f"seed {seed}: no network with live and dead units in 10000 draws")


@functools.cache
def make_net(seed: int, enc: str, dec: str) -> Net:
    """Return the seeded network with the given activations and its forward pass."""
    x, w, wt = _sample_net(seed)
    u = _affine(x, w)
    y = ACTIVATIONS[enc](u)
    ut = _affine(y, wt)
    xh = ACTIVATIONS[dec](ut)
    return Net(enc, dec, x, w, wt, *(t.numpy() for t in (u, y, ut, xh)))


# The claimed objectives: the batch's summed loss as a function of one quantity. Eqs. 50-76
# are gradients of one sample's E_n, so the weight objectives return per-sample losses and
# are differentiated into a Jacobian (one gradient per sample).


def _loss_of_ut(loss: str, net: Net, ut: tf.Tensor) -> tf.Tensor:
    """Return sum_n E_n as a function of the decoder total inputs u~."""
    return tf.reduce_sum(LOSSES[loss](ACTIVATIONS[net.dec](ut), net.x))


def _loss_of_u(loss: str, net: Net, u: tf.Tensor) -> tf.Tensor:
    """Return sum_n E_n as a function of the encoder total inputs u."""
    return tf.reduce_sum(LOSSES[loss](_decode(net, ACTIVATIONS[net.enc](u), net.wt), net.x))


def _losses_of_w(loss: str, net: Net, w: tf.Tensor) -> tf.Tensor:
    """Return each sample's E_n as a function of the encoder weights W."""
    return LOSSES[loss](_decode(net, _encode(net, w), net.wt), net.x)


def _losses_of_wt(loss: str, net: Net, wt: tf.Tensor) -> tf.Tensor:
    """Return each sample's E_n as a function of the decoder weights W~."""
    return LOSSES[loss](_decode(net, _encode(net, net.w), wt), net.x)


# target: (objective, point of differentiation, the pre-activation its case split is on)
_TARGETS: dict[str, tuple[Callable[..., tf.Tensor], str, str]] = {
    "delta3": (_loss_of_ut, "ut", "ut"),
    "delta2": (_loss_of_u, "u", "u"),
    "W": (_losses_of_w, "w", "u"),
    "Wt": (_losses_of_wt, "wt", "ut"),
}


def _field(name: str, net: Net) -> Array:
    """Return one array of the network by name."""
    return getattr(net, name)


def _case(name: str, positive: bool, net: Net) -> Array:
    """Return the mask of units whose pre-activation is > 0 (or <= 0)."""
    a = getattr(net, name)
    return a > 0 if positive else a <= 0


# Closed forms as the thesis writes them, on the batch (one row per sample n).


def _sum_k(net: Net, delta: Array, over_i: bool = False) -> Array:
    """Return sum_k W~_kj delta_k, over k in I = {k : u~_k > 0} when ``over_i``."""
    if over_i:
        delta = np.where(net.ut > 0, delta, 0.0)
    return delta @ net.wt[:, 1:]


def _times_x(net: Net, delta2: Array) -> Array:
    """Return delta_j x_d for every sample, bias column d = 0 included (eq. 50)."""
    return delta2[:, :, None] * net.x1[:, None, :]


def _times_y(net: Net, delta3: Array) -> Array:
    """Return delta_d y_j for every sample, bias column j = 0 included (eq. 51)."""
    return delta3[:, :, None] * net.y1[:, None, :]


def _zero(net: Net) -> float:
    """Return the derivation's 0."""
    return 0.0


def _log_ut_x(n: Net) -> Array:
    """Return log(u~_d / x_d) (eq. 44)."""
    return np.log(n.ut / n.x)


def _sig_i1(n: Net) -> Array:
    """Return f~(u~_d){1 - f~(u~_d)} log(f~(u~_d)/x_d) (eq. 65)."""
    return n.xh * (1 - n.xh) * np.log(n.xh / n.x)


def _sig_i2(n: Net) -> Array:
    """Return {1 - f~(u~_d)}{f~(u~_d) - x_d} (eq. 71)."""
    return (1 - n.xh) * (n.xh - n.x)


@dataclass(frozen=True)
class ThesisEq:
    """One thesis equation: where it is, what it differentiates, and its closed form."""

    eq: int
    section: str
    loss: str  # "E_I1" or "E_I2"
    decoder: str  # "relu" (ReLU-ReLU) or "sigmoid" (ReLU-Sigmoid)
    target: str  # a key of _TARGETS
    case: bool | None  # True: pre-activation > 0, False: <= 0, None: every unit
    formula: str
    closed: Callable[[Net], Any]
    remark: str = ""


_W_JD = "the extraction's W_id read as W_jd"
THESIS_EQUATIONS = (
    ThesisEq(
        44,
        "2.4.3",
        "E_I1",
        "relu",
        "delta3",
        True,
        "delta3_d = dE_I1/dut_d = log(ut_d/x_d)   [ut_d > 0, so xh_d = ut_d]",
        _log_ut_x,
    ),
    ThesisEq(
        45,
        "2.4.3",
        "E_I1",
        "relu",
        "delta3",
        False,
        "delta3_d = 0   [ut_d <= 0, since d ft(ut_d)/dut_d = 0]",
        _zero,
        "the extraction's ft(ut_i) read as ft(ut_d)",
    ),
    ThesisEq(
        48,
        "2.4.4",
        "E_I1",
        "relu",
        "delta2",
        True,
        "delta2_j = sum_{k in I} Wt_kj log(ut_k/x_k)   [u_j > 0; I = {k : ut_k > 0}]",
        lambda n: _sum_k(n, _log_ut_x(n), over_i=True),
        "the extraction's 'delta_L^(3) = 0 (k in H)' read as delta_k^(3) = 0",
    ),
    ThesisEq(
        49,
        "2.4.4",
        "E_I1",
        "relu",
        "delta2",
        False,
        "delta2_j = 0   [u_j <= 0]",
        _zero,
        "the extraction's condition u_i <= 0 read as u_j <= 0",
    ),
    ThesisEq(
        52,
        "2.4.5",
        "E_I1",
        "relu",
        "W",
        True,
        "dE_n/dW_jd = {sum_{k in I} Wt_kj log(ut_k/x_k)} x_d   [u_j > 0; x_0 = 1]",
        lambda n: _times_x(n, _sum_k(n, _log_ut_x(n), over_i=True)),
    ),
    ThesisEq(53, "2.4.5", "E_I1", "relu", "W", False, "dE_n/dW_jd = 0   [u_j <= 0]", _zero),
    ThesisEq(
        54,
        "2.4.5",
        "E_I1",
        "relu",
        "Wt",
        True,
        "dE_n/dWt_dj = {log(ut_d/x_d)} y_j   [ut_d > 0; y_0 = 1]",
        lambda n: _times_y(n, _log_ut_x(n)),
    ),
    ThesisEq(55, "2.4.5", "E_I1", "relu", "Wt", False, "dE_n/dWt_dj = 0   [ut_d <= 0]", _zero),
    ThesisEq(
        57,
        "2.4.6",
        "E_I2",
        "relu",
        "delta3",
        True,
        "delta3_d = dE_I2/dut_d = -x_d/ut_d + 1   [ut_d > 0]",
        lambda n: -n.x / n.ut + 1,
        "the extraction's sum index d read as i",
    ),
    ThesisEq(
        58,
        "2.4.6",
        "E_I2",
        "relu",
        "delta3",
        False,
        "delta3_d = -x_d (d ft(ut_d)/dut_d) / ft(ut_d) = 0   [ut_d <= 0]",
        _zero,
    ),
    ThesisEq(
        59,
        "2.4.7",
        "E_I2",
        "relu",
        "delta2",
        True,
        "delta2_j = -sum_{k in I} Wt_kj (x_k/ut_k - 1)   [u_j > 0]",
        lambda n: -_sum_k(n, n.x / n.ut - 1, over_i=True),
    ),
    ThesisEq(60, "2.4.7", "E_I2", "relu", "delta2", False, "delta2_j = 0   [u_j <= 0]", _zero),
    ThesisEq(
        61,
        "2.4.8",
        "E_I2",
        "relu",
        "W",
        True,
        "dE_n/dW_jd = {-sum_{k in I} Wt_kj (x_k/ut_k - 1)} x_d   [u_j > 0]",
        lambda n: _times_x(n, -_sum_k(n, n.x / n.ut - 1, over_i=True)),
    ),
    ThesisEq(62, "2.4.8", "E_I2", "relu", "W", False, "dE_n/dW_jd = 0   [u_j <= 0]", _zero, _W_JD),
    ThesisEq(
        63,
        "2.4.8",
        "E_I2",
        "relu",
        "Wt",
        True,
        "dE_n/dWt_dj = {-x_d/ut_d + 1} y_j   [ut_d > 0]",
        lambda n: _times_y(n, -n.x / n.ut + 1),
        "the extraction's Wt_di read as Wt_dj",
    ),
    ThesisEq(64, "2.4.8", "E_I2", "relu", "Wt", False, "dE_n/dWt_dj = 0   [ut_d <= 0]", _zero),
    ThesisEq(
        65,
        "2.4.9",
        "E_I1",
        "sigmoid",
        "delta3",
        None,
        "delta3_d = ft(ut_d){1 - ft(ut_d)} log(ft(ut_d)/x_d)",
        _sig_i1,
    ),
    ThesisEq(
        66,
        "2.4.10",
        "E_I1",
        "sigmoid",
        "delta2",
        True,
        "delta2_j = sum_k Wt_kj ft(ut_k){1 - ft(ut_k)} log(ft(ut_k)/x_k)   [u_j > 0]",
        lambda n: _sum_k(n, _sig_i1(n)),
    ),
    ThesisEq(
        67,
        "2.4.10",
        "E_I1",
        "sigmoid",
        "delta2",
        False,
        "delta2_j = 0   [u_j <= 0]",
        _zero,
        "the extraction's delta_i, u_i read as delta_j, u_j",
    ),
    ThesisEq(
        68,
        "2.4.11",
        "E_I1",
        "sigmoid",
        "W",
        True,
        "dE_n/dW_jd = {sum_k Wt_kj ft(ut_k){1 - ft(ut_k)} log(ft(ut_k)/x_k)} x_d   [u_j > 0]",
        lambda n: _times_x(n, _sum_k(n, _sig_i1(n))),
    ),
    ThesisEq(
        69, "2.4.11", "E_I1", "sigmoid", "W", False, "dE_n/dW_jd = 0   [u_j <= 0]", _zero, _W_JD
    ),
    ThesisEq(
        70,
        "2.4.11",
        "E_I1",
        "sigmoid",
        "Wt",
        None,
        "dE_n/dWt_dj = {ft(ut_d){1 - ft(ut_d)} log(ft(ut_d)/x_d)} y_j",
        lambda n: _times_y(n, _sig_i1(n)),
    ),
    ThesisEq(
        71,
        "2.4.12",
        "E_I2",
        "sigmoid",
        "delta3",
        None,
        "delta3_d = {1 - ft(ut_d)}{ft(ut_d) - x_d}",
        _sig_i2,
    ),
    ThesisEq(
        72,
        "2.4.13",
        "E_I2",
        "sigmoid",
        "delta2",
        True,
        "delta2_j = sum_k Wt_kj {1 - ft(ut_k)}{ft(ut_k) - x_k}   [u_j > 0]",
        lambda n: _sum_k(n, _sig_i2(n)),
    ),
    ThesisEq(
        73,
        "2.4.13",
        "E_I2",
        "sigmoid",
        "delta2",
        False,
        "delta2_j = 0   [u_j <= 0]",
        _zero,
        "the extraction's delta_i, u_i read as delta_j, u_j",
    ),
    ThesisEq(
        74,
        "2.4.14",
        "E_I2",
        "sigmoid",
        "W",
        True,
        "dE_n/dW_jd = {sum_k Wt_kj {1 - ft(ut_k)}{ft(ut_k) - x_k}} x_d   [u_j > 0]",
        lambda n: _times_x(n, _sum_k(n, _sig_i2(n))),
    ),
    ThesisEq(
        75, "2.4.14", "E_I2", "sigmoid", "W", False, "dE_n/dW_jd = 0   [u_j <= 0]", _zero, _W_JD
    ),
    ThesisEq(
        76,
        "2.4.14",
        "E_I2",
        "sigmoid",
        "Wt",
        None,
        "dE_n/dWt_dj = {1 - ft(ut_d)}{ft(ut_d) - x_d} y_j",
        lambda n: _times_y(n, _sig_i2(n)),
        "the extraction's Wt_{d,i} read as Wt_dj",
    ),
)

# (decoder, loss) -> (encoder, decoder, label, reading): the verdict's reading, then the other
_READINGS = {
    ("relu", "E_I1"): (
        ("relu_eps", "relu_eps", "ReLU max(u, eps) (text, eqs. 27-28)", "max(u, eps)"),
        ("relu0", "relu0", "ReLU max(u, 0) (code; 0 log 0 = 0)", "max(u, 0)"),
    ),
    ("relu", "E_I2"): (
        ("relu_eps", "relu_eps", "ReLU max(u, eps) (text, eqs. 27-28)", "max(u, eps)"),
        ("relu0", "relu0", "ReLU max(u, 0) (code; E_I2 is +inf where an output is 0)", "max(u, 0)"),
    ),
    ("sigmoid", "E_I1"): (
        ("relu_eps", "sigmoid", "sigmoid 1/(1+exp(-u)) (code)", "1/(1+exp(-u))"),
        (
            "relu_eps",
            "sigmoid_text",
            "sigmoid 1/(1+exp(u)) (text, eq. 28; its slope is "
            "-f(1 - f), so every nonzero delta flips sign)",
            "1/(1+exp(u))",
        ),
    ),
}
_READINGS["sigmoid", "E_I2"] = _READINGS["sigmoid", "E_I1"]


def _thesis_form(eq: ThesisEq, enc: str, dec: str, label: str, reading: str) -> Form:
    """Build the form of a thesis equation under one reading of the activations."""
    objective, point, pre = _TARGETS[eq.target]
    return Form(
        label=label,
        setup=functools.partial(make_net, enc=enc, dec=dec),
        closed=eq.closed,
        objective=functools.partial(objective, eq.loss),
        at=functools.partial(_field, point),
        where=None if eq.case is None else functools.partial(_case, pre, eq.case),
        reading=reading,
    )


def _thesis_check(eq: ThesisEq) -> Check:
    """Build the check of one thesis equation, under both readings of its activations."""
    net = "ReLU-ReLU" if eq.decoder == "relu" else "ReLU-Sigmoid"
    readings = _READINGS[eq.decoder, eq.loss]
    return Check(
        id=f"thesis-eq{eq.eq}",
        source=f"thesis sec. {eq.section}, eq. {eq.eq} ({eq.loss}, {net})",
        formula=eq.formula,
        forms=tuple(_thesis_form(eq, *reading) for reading in readings),
        remark=eq.remark,
    )


# --------------------------------------------------------------------------- entropy loss


@dataclass(frozen=True, eq=False)
class Scores:
    """Network outputs X for a batch (M images x N neurons), with the loss's beta, lambda."""

    x: Array
    beta: float
    lam: float

    @property
    def e(self) -> Array:
        """Return e^{-beta X}."""
        return np.exp(-self.beta * self.x)

    @property
    def q(self) -> Array:
        """Return q_i = e^{-beta X_i} / sum_j e^{-beta X_j} for every image (eq. 6)."""
        return self.e / self.e.sum(axis=1, keepdims=True)

    @property
    def mean_xq(self) -> Array:
        """Return sum_i X_i q_i for every image, as a column."""
        return (self.x * self.q).sum(axis=1, keepdims=True)


@functools.cache
def make_scores(seed: int) -> Scores:
    """Return the seeded batch of network outputs for the entropy loss."""
    rng = np.random.default_rng([seed, 1])
    return Scores(rng.normal(0.0, 1.0, (IMAGES, NEURONS)), BETA, LAMBDA)


def _tf_q(s: Scores, x: tf.Tensor) -> tf.Tensor:
    """Return q = e^{-beta X} / sum_j e^{-beta X_j} per image (eq. 6)."""
    e = tf.exp(-s.beta * x)
    return e / tf.reduce_sum(e, axis=-1, keepdims=True)


def _entropy(s: Scores, x: tf.Tensor) -> tf.Tensor:
    """Return sum over images of H = -sum_i q_i log q_i (eq. 7)."""
    q = _tf_q(s, x)
    return -tf.reduce_sum(q * tf.math.log(q))


def _balance(s: Scores, x: tf.Tensor) -> tf.Tensor:
    """Return lambda A, A = sum_i sum_m log(N/M q_{m,i}) (eqs. 9-10)."""
    m, n = s.x.shape
    return s.lam * tf.reduce_sum(tf.math.log(n / m * _tf_q(s, x)))


def _balance_of_mean(s: Scores, x: tf.Tensor) -> tf.Tensor:
    """Return lambda sum_i log(N/M sum_m q_{m,i}), the A the first line of eq. 13 implies."""
    m, n = s.x.shape
    return s.lam * tf.reduce_sum(tf.math.log(n / m * tf.reduce_sum(_tf_q(s, x), axis=0)))


def _total(s: Scores, x: tf.Tensor) -> tf.Tensor:
    """Return L = sum_m H + lambda A (eq. 10)."""
    return _entropy(s, x) + _balance(s, x)


def _shared(objective: Callable[[Scores, tf.Tensor], tf.Tensor]) -> Callable[..., tf.Tensor]:
    """Make ``objective`` a function of a shift c_k added to X_{k,m} in every image m."""
    return lambda s, c: objective(s, s.x + c)


def _no_shift(s: Scores) -> Array:
    """Return c = 0, the point where the shared-shift gradient is taken."""
    return np.zeros(s.x.shape[1])


def _scores_x(s: Scores) -> Array:
    """Return X, the point where per-image gradients are taken."""
    return s.x


def _diagonal(jacobian: Array) -> Array:
    """Return dq_{m,i}/dX_{m,i} from the full Jacobian dq/dX."""
    return np.einsum("mimi->mi", jacobian)


def _entropy_form(
    closed: Callable[[Scores], Any],
    objective: Callable[..., tf.Tensor],
    label: str = "as written",
    shared: bool = False,
    **kw: Any,
) -> Form:
    """Build a form on the seeded entropy-loss batch."""
    return Form(
        label=label,
        setup=make_scores,
        closed=closed,
        objective=_shared(objective) if shared else objective,
        at=_no_shift if shared else _scores_x,
        **kw,
    )


def _left_term(s: Scores, x: tf.Tensor) -> tf.Tensor:
    """Return the left term of eq. 8, sum_i beta X_i e^{-beta X_i} / sum_j e^{-beta X_j}."""
    e = tf.exp(-s.beta * x)
    return tf.reduce_sum(tf.reduce_sum(s.beta * x * e, axis=1) / tf.reduce_sum(e, axis=1))


def _right_term(s: Scores, x: tf.Tensor) -> tf.Tensor:
    """Return the right term of eq. 8, (ln sum_j e^{-beta X_j} / sum_j e^{-beta X_j}) sum_i."""
    total = tf.reduce_sum(tf.exp(-s.beta * x), axis=1)
    return tf.reduce_sum(tf.math.log(total) / total * total)


_PAITON = "Paiton & Lundquist, entropy loss"
_SHARED_X = (
    "X_k read as shared by the batch (the formula sums over m): compared with "
    "dL/dc_k for a shift c_k added to X_{k,m} in every image, like a bias on neuron k"
)


def _entropy_checks() -> tuple[Check, ...]:
    """Build the checks of the entropy-loss note's gradients."""
    b = BETA
    return (
        Check(
            "entropy-eq1",
            f"{_PAITON}, eq. 1",
            "d(sum_i X_i)/dX_k = 1",
            (_entropy_form(lambda s: np.ones_like(s.x), lambda s, x: tf.reduce_sum(x)),),
        ),
        Check(
            "entropy-eq2",
            f"{_PAITON}, eq. 2",
            "d(sum_i e^{-beta X_i})/dX_k = -beta e^{-beta X_k}",
            (_entropy_form(lambda s: -b * s.e, lambda s, x: tf.reduce_sum(tf.exp(-b * x))),),
        ),
        Check(
            "entropy-eq3",
            f"{_PAITON}, eq. 3",
            "d(sum_i beta X_i e^{-beta X_i})/dX_k = beta e^{-beta X_k} (1 - X_k)",
            (
                _entropy_form(
                    lambda s: b * s.e * (1 - s.x),
                    lambda s, x: tf.reduce_sum(b * x * tf.exp(-b * x)),
                ),
                _entropy_form(
                    lambda s: b * s.e * (1 - b * s.x),
                    lambda s, x: tf.reduce_sum(b * x * tf.exp(-b * x)),
                    label="with (1 - beta X_k) for (1 - X_k)",
                ),
            ),
            remark="the line above the result, beta e^{-beta X_k} + beta X_k "
            "(-beta e^{-beta X_k}), is right; (1 - X_k) holds only for beta = 1, "
            f"and beta = {b} here. Section 4.1 goes on with (1 - beta X_k)",
        ),
        Check(
            "entropy-eq4",
            f"{_PAITON}, eq. 4",
            "d(ln sum_j e^{-beta X_j})/dX_k = -beta e^{-beta X_k} / sum_j e^{-beta X_j}",
            (
                _entropy_form(
                    lambda s: -b * s.e / s.e.sum(axis=1, keepdims=True),
                    lambda s, x: tf.reduce_sum(tf.math.log(tf.reduce_sum(tf.exp(-b * x), axis=1))),
                ),
            ),
        ),
        Check(
            "entropy-eq5",
            f"{_PAITON}, eq. 5",
            "dq_i/dX_i = beta q_i (q_i - 1)",
            (_entropy_form(lambda s: b * s.q * (s.q - 1), _tf_q, pick=_diagonal),),
        ),
        Check(
            "entropy-sec4.1",
            f"{_PAITON}, sec. 4.1 (left term of eq. 8)",
            "d(left term)/dX_k = beta q_k - beta^2 X_k q_k + beta^2 q_k sum_i X_i q_i",
            (
                _entropy_form(
                    lambda s: b * s.q - b**2 * s.x * s.q + b**2 * s.q * s.mean_xq, _left_term
                ),
            ),
        ),
        Check(
            "entropy-eq11",
            f"{_PAITON}, eq. 11 (right term of eq. 8)",
            "d(right term)/dX_k = -beta q_k",
            (_entropy_form(lambda s: -b * s.q, _right_term),),
        ),
        Check(
            "entropy-eq12",
            f"{_PAITON}, eq. 12",
            "dH/dX_k = beta^2 q_k (sum_i X_i q_i - X_k),  H = -sum_i q_i log q_i",
            (_entropy_form(lambda s: b**2 * s.q * (s.mean_xq - s.x), _entropy),),
        ),
        Check(
            "entropy-eq13",
            f"{_PAITON}, eq. 13",
            "d(lambda A)/dX_k = lambda sum_m beta (q_{k,m} - 1),  "
            "A = sum_i sum_m log(N/M q_{m,i}) (eq. 9)",
            (
                _entropy_form(lambda s: s.lam * (b * (s.q - 1)).sum(axis=0), _balance, shared=True),
                _entropy_form(
                    lambda s: s.lam * (b * (s.x.shape[1] * s.q - 1)).sum(axis=0),
                    _balance,
                    label="with (N q_{k,m} - 1) for (q_{k,m} - 1)",
                    shared=True,
                ),
                _entropy_form(
                    lambda s: s.lam * (b * (s.q - 1)).sum(axis=0),
                    _balance_of_mean,
                    shared=True,
                    label="as written, against A = sum_i log(N/M sum_m q_{m,i})",
                ),
            ),
            remark=f"{_SHARED_X}. The first line of (13) differentiates only the i = k term "
            "of A and drops the dependence of q_{i,m} (i != k) on X_k through the "
            "normaliser; each image contributes beta (N q_{k,m} - 1)",
        ),
        Check(
            "entropy-eq14",
            f"{_PAITON}, eq. 14",
            "dL/dX_k = sum_m beta^2 q_{k,m} (sum_i X_{i,m} q_{i,m} - X_{k,m}) "
            "+ lambda sum_m beta (q_{k,m} - 1),  L = sum_m H + lambda A (eq. 10)",
            (
                _entropy_form(
                    lambda s: (b**2 * s.q * (s.mean_xq - s.x) + s.lam * b * (s.q - 1)).sum(axis=0),
                    _total,
                    shared=True,
                ),
                _entropy_form(
                    lambda s: (
                        b**2 * s.q * (s.mean_xq - s.x) + s.lam * b * (s.x.shape[1] * s.q - 1)
                    ).sum(axis=0),
                    _total,
                    shared=True,
                    label="with (N q_{k,m} - 1) for (q_{k,m} - 1)",
                ),
                _entropy_form(
                    lambda s: b**2 * s.q * (s.mean_xq - s.x) + s.lam * b * (s.x.shape[1] * s.q - 1),
                    _total,
                    label="that correction per image, without the sum over m, against dL/dX_{k,m}",
                ),
            ),
            remark=f"{_SHARED_X}. The entropy term is right (it is eq. 12 summed over "
            "images); the lambda term inherits eq. 13's slip",
        ),
    )


# --------------------------------------------------------------------------- cross-entropy


@dataclass(frozen=True, eq=False)
class Classifier:
    """A linear softmax classifier f = W x on a few samples (seed 002's notation)."""

    w: Array  # (C, F) weights W_{j,n}
    x: Array  # (F, S) features x_{n,i}, one column per sample i
    labels: Array  # (S,) true class k of each sample
    lam: float

    @property
    def f(self) -> Array:
        """Return the scores f_{j,i} = sum_n W_{j,n} x_{n,i}."""
        return self.w @ self.x

    @property
    def onehot(self) -> Array:
        """Return delta_{j,k} for every sample, as a (C, S) array."""
        return np.eye(self.w.shape[0])[:, self.labels]

    @property
    def yhat(self) -> Array:
        """Return the softmax probabilities y^_{j,i} over classes j."""
        e = np.exp(self.f)
        return e / e.sum(axis=0, keepdims=True)


@functools.cache
def make_classifier(seed: int) -> Classifier:
    """Return the seeded classifier and samples."""
    rng = np.random.default_rng([seed, 2])
    return Classifier(
        rng.normal(0.0, 1.0, (CLASSES, FEATURES)),
        rng.normal(0.0, 1.0, (FEATURES, SAMPLES)),
        rng.integers(0, CLASSES, SAMPLES),
        L2,
    )


def _nll(c: Classifier, f: tf.Tensor) -> tf.Tensor:
    """Return sum_i L_i, L_i = -f_{k,i} + log sum_j e^{f_{j,i}} (seed 002)."""
    picked = tf.reduce_sum(f * c.onehot, axis=0)
    return tf.reduce_sum(-picked + tf.math.log(tf.reduce_sum(tf.exp(f), axis=0)))


def _cross_entropy(c: Classifier, f: tf.Tensor) -> tf.Tensor:
    """Return sum_i H(p, q) = -sum_j p(j) log q(j) with q = softmax(f) (seed 001)."""
    q = tf.exp(f) / tf.reduce_sum(tf.exp(f), axis=0, keepdims=True)
    return -tf.reduce_sum(c.onehot * tf.math.log(q))


def _total_ce(c: Classifier, w: tf.Tensor) -> tf.Tensor:
    """Return L_total = sum_i L_i + lambda/2 sum_{j,n} W_{j,n}^2 (seed 002)."""
    return _nll(c, tf.matmul(w, c.x)) + c.lam / 2 * tf.reduce_sum(w**2)


def _ce_form(
    closed: Callable[[Classifier], Any],
    objective: Callable[..., tf.Tensor],
    at: Callable[[Classifier], Array],
    label: str = "as written",
) -> Form:
    """Build a form on the seeded classifier."""
    return Form(label=label, setup=make_classifier, closed=closed, objective=objective, at=at)


def _scores(c: Classifier) -> Array:
    """Return f, the point where the score gradient is taken."""
    return c.f


def _weights(c: Classifier) -> Array:
    """Return W, the point where the weight gradient is taken."""
    return c.w


_CE = "Derivation of Cross-Entropy Loss Function (seed 002)"
_CROSS_ENTROPY_CHECKS = (
    Check(
        "crossentropy-softmax",
        f"{_CE}; Garg, Cross entropy (seed 001)",
        "dL_i/df_{j,i} = yh_{j,i} - delta_{j,k},  L_i = -f_{k,i} + log sum_j e^{f_{j,i}}",
        (
            _ce_form(lambda c: c.yhat - c.onehot, _nll, _scores),
            _ce_form(
                lambda c: c.yhat - c.onehot,
                _cross_entropy,
                _scores,
                label="against Garg's H(p, q) = -sum_i p(i) log q(i), q = softmax(f)",
            ),
        ),
        remark="summed over samples as L_total writes it",
    ),
    Check(
        "crossentropy-weights",
        _CE,
        "dL_total/dW_{m,n} = sum_i (yh_{m,i} - delta_{m,k}) x_{n,i} + lambda W_{m,n},  "
        "L_total = sum_i L_i + lambda/2 sum_j sum_n W_{j,n}^2",
        (_ce_form(lambda c: (c.yhat - c.onehot) @ c.x.T + c.lam * c.w, _total_ce, _weights),),
        remark="the regulariser's sum_{i=1}^{C} read as a sum over classes j; W is "
        "classes x features (the text's 'C x N' reuses N, the sample count)",
    ),
)

CHECKS: tuple[Check, ...] = (
    *(_thesis_check(eq) for eq in THESIS_EQUATIONS),
    *_entropy_checks(),
    *_CROSS_ENTROPY_CHECKS,
)


# --------------------------------------------------------------------------- rendering

_COLUMNS = ("id", "source", "formula", "max_abs_error", "max_rel_error", "verdict", "note")

MD_HEADER = f"""\
# Gradient checks: hand-derived gradients against automatic differentiation

Every closed-form gradient in the reference documents is evaluated in NumPy exactly as the
document writes it, and compared with the gradient that TensorFlow's `GradientTape` computes in
float64 for the function the formula claims to differentiate. Inputs are random but seeded:
the thesis's autoencoder with {INPUTS} inputs, {HIDDEN} code units and bias units, on a batch
of {BATCH} samples whose targets lie in [0.05, 1] (the logs need them positive) and whose
pre-activations stay at least {MARGIN} from the ReLU kink, with live and dead units in both
layers; the entropy loss on {IMAGES} images of {NEURONS} neurons with beta = {BETA} and
lambda = {LAMBDA}; a softmax classifier with {CLASSES} classes, {FEATURES} features,
{SAMPLES} samples and lambda = {L2}. Losses are sums, as the derivations write them, not
means, and are never clipped. Errors are taken entry by entry over the entries a formula covers
(for a case-split formula, only those in its case): abs = |closed - autodiff|,
rel = abs / max(|closed|, |autodiff|, {REL_FLOOR:g}). A formula **agrees** when the largest
relative error is below {RTOL:g} and **disagrees** otherwise; float64 round-off leaves about
1e-15, a wrong formula is off by order one. The thesis's verdicts use the activations its
derivation works with: the sigmoid 1/(1+exp(-u)) (eq. 65 uses f' = f(1 - f)) and ReLU
max(u, eps), eps = {EPS:g} (section 2.2 adopts it so that eq. 58 has no zero denominator; the
code's clip of the reconstruction to [eps, 1] has the same effect at the output). The note
reports the other reading, 1/(1+exp(u)) as eq. 28 prints it or max(u, 0) as the code has it,
and which reading the derivation matches. Where a formula disagrees, the note gives the form
that agrees, checked the same way.

Notation: ut = ũ (decoder total input), Wt = W̃, xh = x̂, ft = f̃ (decoder activation),
delta3 = δ⁽³⁾, delta2 = δ⁽²⁾; x_0 = y_0 = 1 are the bias units; yh = ŷ.
"""


def _number(value: float) -> str:
    """Format an error for a table."""
    return f"{value:.2e}" if math.isfinite(value) else "inf"


def _render_table(results: list[CheckResult]) -> str:
    """Return aligned plain text: one line per check, then the notes."""
    head = ("id", "verdict", "max_abs_error", "max_rel_error", "source", "formula")
    rows = [
        (r.id, r.verdict, _number(r.max_abs_error), _number(r.max_rel_error), r.source, r.formula)
        for r in results
    ]
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head) - 1)]

    def line(row: tuple[str, ...]) -> str:
        padded = (cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True))
        return "  ".join([*padded, row[-1]]).rstrip()

    notes = [f"{r.id}: {r.note}" for r in results if r.note]
    summary = _summary(results)
    return "\n".join([line(head), *map(line, rows), "", summary, "", "notes:", *notes]) + "\n"


def _summary(results: list[CheckResult]) -> str:
    """Return the one-line count of verdicts."""
    agree = sum(r.verdict == "agrees" for r in results)
    return (
        f"{len(results)} checks: {agree} agree, {len(results) - agree} disagree "
        f"(rel error < {RTOL:g} in float64)"
    )


def _json_value(value: Any) -> Any:
    """Return ``value`` with a non-finite float as None, which JSON can carry."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _render_json(results: list[CheckResult]) -> str:
    """Return a JSON list of objects with exactly the result's keys."""
    items = [{k: _json_value(v) for k, v in r.to_dict().items()} for r in results]
    return json.dumps(items, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _cell(text: str, code: bool = False) -> str:
    """Escape text for a Markdown table cell."""
    text = text.replace("|", "\\|")
    return f"`{text}`" if code else text


def _render_md(results: list[CheckResult]) -> str:
    """Return a Markdown report: the method, a summary, and one table row per check."""
    lines = [
        MD_HEADER,
        _summary(results) + ".",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
    ]
    for r in results:
        cells = (
            r.id,
            _cell(r.source),
            _cell(r.formula, code=True),
            _number(r.max_abs_error),
            _number(r.max_rel_error),
            f"**{r.verdict}**",
            _cell(r.note),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_RENDERERS = {"table": _render_table, "json": _render_json, "md": _render_md}


def render(results: list[CheckResult], fmt: str) -> str:
    """Render results as ``table`` (terminal text), ``json`` or ``md`` (Markdown report)."""
    if fmt not in _RENDERERS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _RENDERERS[fmt](results)
