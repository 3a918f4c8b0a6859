"""The entropy-loss note's gradients (Paiton & Lundquist, eqs. 1-5 and 11-14)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aeexp.gradcheck.core import Array, Check, Form, tf

IMAGES, NEURONS, BETA, LAMBDA = 3, 5, 1.5, 0.25  # entropy loss: M, N, beta, lambda


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


def entropy(s: Scores, x: tf.Tensor) -> tf.Tensor:
    """Return sum over images of H = -sum_i q_i log q_i (eq. 7)."""
    q = _tf_q(s, x)
    return -tf.reduce_sum(q * tf.math.log(q))


def balance(s: Scores, x: tf.Tensor) -> tf.Tensor:
    """Return lambda A, A = sum_i sum_m log(N/M q_{m,i}) (eqs. 9-10)."""
    m, n = s.x.shape
    return s.lam * tf.reduce_sum(tf.math.log(n / m * _tf_q(s, x)))


def _balance_of_mean(s: Scores, x: tf.Tensor) -> tf.Tensor:
    """Return lambda sum_i log(N/M sum_m q_{m,i}), the A the first line of eq. 13 implies."""
    m, n = s.x.shape
    return s.lam * tf.reduce_sum(tf.math.log(n / m * tf.reduce_sum(_tf_q(s, x), axis=0)))


def _total(s: Scores, x: tf.Tensor) -> tf.Tensor:
    """Return L = sum_m H + lambda A (eq. 10)."""
    return entropy(s, x) + balance(s, x)


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


def entropy_checks() -> tuple[Check, ...]:
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
            (_entropy_form(lambda s: b**2 * s.q * (s.mean_xq - s.x), entropy),),
        ),
        Check(
            "entropy-eq13",
            f"{_PAITON}, eq. 13",
            "d(lambda A)/dX_k = lambda sum_m beta (q_{k,m} - 1),  "
            "A = sum_i sum_m log(N/M q_{m,i}) (eq. 9)",
            (
                _entropy_form(lambda s: s.lam * (b * (s.q - 1)).sum(axis=0), balance, shared=True),
                _entropy_form(
                    lambda s: s.lam * (b * (s.x.shape[1] * s.q - 1)).sum(axis=0),
                    balance,
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
