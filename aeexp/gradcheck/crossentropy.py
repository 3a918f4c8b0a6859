"""The cross-entropy notes' gradients: softmax scores and a regularised weight matrix."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aeexp.gradcheck.core import Array, Check, Form, tf

CLASSES, FEATURES, SAMPLES, L2 = 4, 6, 5, 0.1  # softmax classifier: C, features, samples, lambda


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


def nll(c: Classifier, f: tf.Tensor) -> tf.Tensor:
    """Return sum_i L_i, L_i = -f_{k,i} + log sum_j e^{f_{j,i}} (seed 002)."""
    picked = tf.reduce_sum(f * c.onehot, axis=0)
    return tf.reduce_sum(-picked + tf.math.log(tf.reduce_sum(tf.exp(f), axis=0)))


def _cross_entropy(c: Classifier, f: tf.Tensor) -> tf.Tensor:
    """Return sum_i H(p, q) = -sum_j p(j) log q(j) with q = softmax(f) (seed 001)."""
    q = tf.exp(f) / tf.reduce_sum(tf.exp(f), axis=0, keepdims=True)
    return -tf.reduce_sum(c.onehot * tf.math.log(q))


def _total_ce(c: Classifier, w: tf.Tensor) -> tf.Tensor:
    """Return L_total = sum_i L_i + lambda/2 sum_{j,n} W_{j,n}^2 (seed 002)."""
    return nll(c, tf.matmul(w, c.x)) + c.lam / 2 * tf.reduce_sum(w**2)


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
CROSS_ENTROPY_CHECKS = (
    Check(
        "crossentropy-softmax",
        f"{_CE}; Garg, Cross entropy (seed 001)",
        "dL_i/df_{j,i} = yh_{j,i} - delta_{j,k},  L_i = -f_{k,i} + log sum_j e^{f_{j,i}}",
        (
            _ce_form(lambda c: c.yhat - c.onehot, nll, _scores),
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
