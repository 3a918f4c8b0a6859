"""Optimizer steps where a slip hides from ``test_optimizers``'s random gradients.

Each check runs on both backends' ports (TensorFlow's Keras classes and ``aeexp.engines.keras2``
through ``optimizers.build``; ``aeexp.engines.jax_optimizers``) against ``test_optimizers``'s Keras
2.2 rules in float64 NumPy, never against the other port:

- a "dead pixel": an element whose gradient is exactly zero at every step, as MNIST's border
  pixels give the first layer's weights. It must stay finite and unchanged (Adamax without
  its epsilon divides 0 by 0 there);
- gradients of ~1e-8 and ~1e-10, where epsilon (1e-7) dominates the denominator: an epsilon
  dropped or moved inside the square root changes the step by orders of magnitude (at 1e-10,
  Adagrad without epsilon steps ~300x too far, with it under the root ~3,000x too short);
- Nadam with a large ``schedule_decay``, where mu_t and mu_{t+1} differ by far.
"""

import numpy as np
import pytest
from test_optimizers import CASES, aeexp_steps, keras22_steps

from aeexp.registry import optimizers


def jax_steps(name, grads, p0, overrides):
    from test_jax_optimizers import jax_steps as steps  # skips where JAX is not installed

    return steps(name, grads, p0, overrides)


BACKENDS = {"tensorflow": aeexp_steps, "jax": jax_steps}


def expected(name, grads, p0, overrides):
    params = optimizers.resolved_params(name, overrides)
    return keras22_steps(name, [g.astype(np.float64) for g in grads], p0, params)


def dead_pixel_inputs():
    """Return weights and 8 gradients in which element (0, 0) is exactly 0 at every step."""
    rng = np.random.default_rng(2)
    p0 = rng.normal(size=(5, 4)).astype("float32")
    grads = [rng.normal(size=p0.shape).astype("float32") for _ in range(8)]
    for g in grads:
        g[0, 0] = 0.0
    return p0, grads


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_a_weight_whose_gradient_is_always_zero_stays_put(backend, name, overrides):
    p0, grads = dead_pixel_inputs()
    got = BACKENDS[backend](name, grads, p0, overrides)
    assert np.isfinite(got).all()
    assert got[0, 0] == p0[0, 0]  # no step at all: 0 / (0 + eps) is 0
    np.testing.assert_allclose(got, expected(name, grads, p0, overrides), rtol=1e-5, atol=1e-6)


def tiny_inputs(scale=1e-8):
    """Return zero weights and 8 gradients of 0.5 to 2 ``scale``, mixed signs, a few 0."""
    rng = np.random.default_rng(3)
    sign = np.where(rng.random((5, 4)) < 0.5, -1.0, 1.0)
    grads = [(sign * rng.uniform(0.5, 2, size=(5, 4)) * scale).astype("float32") for _ in range(8)]
    grads[0][1, 1] = grads[4][2, 3] = 0.0
    return np.zeros((5, 4), "float32"), grads


@pytest.mark.parametrize("scale", [1e-8, 1e-10])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_steps_where_epsilon_dominates(backend, name, overrides, scale):
    p0, grads = tiny_inputs(scale)
    want = expected(name, grads, p0, overrides)
    assert np.count_nonzero(want) == want.size  # every weight moved: a wrong step shows in rtol
    # From 0, the weights are the sum of the steps: relative error, not swamped by p0.
    np.testing.assert_allclose(
        BACKENDS[backend](name, grads, p0, overrides), want, rtol=1e-4, atol=1e-16
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("schedule_decay", [5.0, 20.0])
def test_nadam_with_a_steep_momentum_schedule(backend, schedule_decay):
    # 0.96 ** 20 = 0.44: mu_1 = 0.70 and mu_2 = 0.81, so a u_t / u_next swap shows.
    rng = np.random.default_rng(4)
    p0 = rng.normal(size=(5, 4)).astype("float32")
    grads = [rng.normal(size=p0.shape).astype("float32") for _ in range(8)]
    overrides = {"schedule_decay": schedule_decay, "learning_rate": 0.01}
    got = BACKENDS[backend]("nadam", grads, p0, overrides)
    want = expected("nadam", grads, p0, overrides)
    np.testing.assert_allclose(got - p0, want - p0, rtol=1e-4, atol=1e-6)
