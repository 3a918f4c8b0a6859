"""The thesis's gradients (sections 2.4.3-2.4.14, eqs. 44-76), under both activation readings."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aeexp.gradcheck.core import Array, Check, Form, tf
from aeexp.registry.vocab import DECODERS, EPSILON

MARGIN = 0.05  # pre-activations stay this far from a ReLU kink, so every case is clear-cut
BATCH, INPUTS, HIDDEN = 3, 6, 4  # thesis autoencoder: M samples, D units, J code units


ACTIVATIONS: dict[str, Callable[[Any], tf.Tensor]] = {
    # The thesis's ReLU floor max(u, eps), eps the Keras fuzz factor: eqs. 27-28 as printed.
    "relu_eps": lambda u: tf.maximum(u, tf.constant(EPSILON, tf.float64)),
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


@dataclass(frozen=True, kw_only=True)
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


def _sigmoid_equations(
    loss: str,
    first: int,
    sections: tuple[str, str, str],
    delta3: Callable[[Net], Array],
    term: Callable[[str], str],
    wt_remark: str = "",
) -> tuple[ThesisEq, ...]:
    """Return eqs. ``first``..``first + 5``: one loss on ReLU-Sigmoid (sections 2.4.9-2.4.14).

    The thesis derives E_I1 and E_I2 alike there: each equation is the loss's delta3 term,
    ``term(index)`` as printed, carried back through the decoder and into the weights.
    """
    d3, d2, weights = sections
    wt = term("d") if term("d").startswith("{") else f"{{{term('d')}}}"  # braced before y_j
    # fmt: off
    rows = (
        dict(eq=first, section=d3, target="delta3", case=None,
             formula=f"delta3_d = {term('d')}", closed=delta3),
        dict(eq=first + 1, section=d2, target="delta2", case=True,
             formula=f"delta2_j = sum_k Wt_kj {term('k')}   [u_j > 0]",
             closed=lambda n: _sum_k(n, delta3(n))),
        dict(eq=first + 2, section=d2, target="delta2", case=False,
             formula="delta2_j = 0   [u_j <= 0]", closed=_zero,
             remark="the extraction's delta_i, u_i read as delta_j, u_j"),
        dict(eq=first + 3, section=weights, target="W", case=True,
             formula=f"dE_n/dW_jd = {{sum_k Wt_kj {term('k')}}} x_d   [u_j > 0]",
             closed=lambda n: _times_x(n, _sum_k(n, delta3(n)))),
        dict(eq=first + 4, section=weights, target="W", case=False,
             formula="dE_n/dW_jd = 0   [u_j <= 0]", closed=_zero, remark=_W_JD),
        dict(eq=first + 5, section=weights, target="Wt", case=None,
             formula=f"dE_n/dWt_dj = {wt} y_j", closed=lambda n: _times_y(n, delta3(n)),
             remark=wt_remark),
    )
    # fmt: on
    return tuple(ThesisEq(loss=loss, decoder="sigmoid", **row) for row in rows)


# A table, one equation a row; kept as written rather than one field a line.
# fmt: off
THESIS_EQUATIONS = (
    ThesisEq(eq=44, section="2.4.3", loss="E_I1", decoder="relu", target="delta3", case=True,
             formula="delta3_d = dE_I1/dut_d = log(ut_d/x_d)   [ut_d > 0, so xh_d = ut_d]",
             closed=_log_ut_x),
    ThesisEq(eq=45, section="2.4.3", loss="E_I1", decoder="relu", target="delta3", case=False,
             formula="delta3_d = 0   [ut_d <= 0, since d ft(ut_d)/dut_d = 0]",
             closed=_zero, remark="the extraction's ft(ut_i) read as ft(ut_d)"),
    ThesisEq(eq=48, section="2.4.4", loss="E_I1", decoder="relu", target="delta2", case=True,
             formula="delta2_j = sum_{k in I} Wt_kj log(ut_k/x_k)   [u_j > 0; I = {k : ut_k > 0}]",
             closed=lambda n: _sum_k(n, _log_ut_x(n), over_i=True),
             remark="the extraction's 'delta_L^(3) = 0 (k in H)' read as delta_k^(3) = 0"),
    ThesisEq(eq=49, section="2.4.4", loss="E_I1", decoder="relu", target="delta2", case=False,
             formula="delta2_j = 0   [u_j <= 0]",
             closed=_zero, remark="the extraction's condition u_i <= 0 read as u_j <= 0"),
    ThesisEq(eq=52, section="2.4.5", loss="E_I1", decoder="relu", target="W", case=True,
             formula="dE_n/dW_jd = {sum_{k in I} Wt_kj log(ut_k/x_k)} x_d   [u_j > 0; x_0 = 1]",
             closed=lambda n: _times_x(n, _sum_k(n, _log_ut_x(n), over_i=True))),
    ThesisEq(eq=53, section="2.4.5", loss="E_I1", decoder="relu", target="W", case=False,
             formula="dE_n/dW_jd = 0   [u_j <= 0]",
             closed=_zero),
    ThesisEq(eq=54, section="2.4.5", loss="E_I1", decoder="relu", target="Wt", case=True,
             formula="dE_n/dWt_dj = {log(ut_d/x_d)} y_j   [ut_d > 0; y_0 = 1]",
             closed=lambda n: _times_y(n, _log_ut_x(n))),
    ThesisEq(eq=55, section="2.4.5", loss="E_I1", decoder="relu", target="Wt", case=False,
             formula="dE_n/dWt_dj = 0   [ut_d <= 0]",
             closed=_zero),
    ThesisEq(eq=57, section="2.4.6", loss="E_I2", decoder="relu", target="delta3", case=True,
             formula="delta3_d = dE_I2/dut_d = -x_d/ut_d + 1   [ut_d > 0]",
             closed=lambda n: -n.x / n.ut + 1,
             remark="the extraction's sum index d read as i"),
    ThesisEq(eq=58, section="2.4.6", loss="E_I2", decoder="relu", target="delta3", case=False,
             formula="delta3_d = -x_d (d ft(ut_d)/dut_d) / ft(ut_d) = 0   [ut_d <= 0]",
             closed=_zero),
    ThesisEq(eq=59, section="2.4.7", loss="E_I2", decoder="relu", target="delta2", case=True,
             formula="delta2_j = -sum_{k in I} Wt_kj (x_k/ut_k - 1)   [u_j > 0]",
             closed=lambda n: -_sum_k(n, n.x / n.ut - 1, over_i=True)),
    ThesisEq(eq=60, section="2.4.7", loss="E_I2", decoder="relu", target="delta2", case=False,
             formula="delta2_j = 0   [u_j <= 0]",
             closed=_zero),
    ThesisEq(eq=61, section="2.4.8", loss="E_I2", decoder="relu", target="W", case=True,
             formula="dE_n/dW_jd = {-sum_{k in I} Wt_kj (x_k/ut_k - 1)} x_d   [u_j > 0]",
             closed=lambda n: _times_x(n, -_sum_k(n, n.x / n.ut - 1, over_i=True))),
    ThesisEq(eq=62, section="2.4.8", loss="E_I2", decoder="relu", target="W", case=False,
             formula="dE_n/dW_jd = 0   [u_j <= 0]",
             closed=_zero, remark=_W_JD),
    ThesisEq(eq=63, section="2.4.8", loss="E_I2", decoder="relu", target="Wt", case=True,
             formula="dE_n/dWt_dj = {-x_d/ut_d + 1} y_j   [ut_d > 0]",
             closed=lambda n: _times_y(n, -n.x / n.ut + 1),
             remark="the extraction's Wt_di read as Wt_dj"),
    ThesisEq(eq=64, section="2.4.8", loss="E_I2", decoder="relu", target="Wt", case=False,
             formula="dE_n/dWt_dj = 0   [ut_d <= 0]",
             closed=_zero),
    *_sigmoid_equations("E_I1", 65, ("2.4.9", "2.4.10", "2.4.11"), _sig_i1,
                        lambda i: f"ft(ut_{i}){{1 - ft(ut_{i})}} log(ft(ut_{i})/x_{i})"),
    *_sigmoid_equations("E_I2", 71, ("2.4.12", "2.4.13", "2.4.14"), _sig_i2,
                        lambda i: f"{{1 - ft(ut_{i})}}{{ft(ut_{i}) - x_{i}}}",
                        wt_remark="the extraction's Wt_{d,i} read as Wt_dj"),
)
# fmt: on

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


def thesis_check(eq: ThesisEq) -> Check:
    """Build the check of one thesis equation, under both readings of its activations."""
    net = DECODERS[eq.decoder]
    readings = _READINGS[eq.decoder, eq.loss]
    return Check(
        id=f"thesis-eq{eq.eq}",
        source=f"thesis sec. {eq.section}, eq. {eq.eq} ({eq.loss}, {net})",
        formula=eq.formula,
        forms=tuple(_thesis_form(eq, *reading) for reading in readings),
        remark=eq.remark,
    )
