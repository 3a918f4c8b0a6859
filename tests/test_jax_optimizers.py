"""Keras 2.2's optimizers in JAX: against Keras 2.2's formulas and against the TensorFlow path.

Both comparisons use ``test_optimizers``'s cases: every optimizer, with decay, momentum,
Nesterov, AMSGrad and Nadam's schedule. The JAX rules are pure functions, so this runs in
the test session's own process whatever its Keras backend.
"""

import numpy as np
import pytest
from test_optimizers import CASES, aeexp_steps, keras22_steps

from aeexp.registry import optimizers

jax = pytest.importorskip("jax")
jax_optimizers = pytest.importorskip("aeexp.engines.jax_optimizers")


def gradients():
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=(5, 4)).astype("float32")
    grads = [rng.normal(size=p0.shape) * (0.0 if i == 2 else 1.0) for i in range(8)]
    grads[3][0, 0] = 0.0  # A zero gradient, where epsilon placement matters most.
    return p0, [g.astype("float32") for g in grads]


def jax_steps(name, grads, p0, overrides):
    params = optimizers.resolved_params(name, overrides)
    static = jax_optimizers.structure(name, params)
    hyper = jax_optimizers.hyperparameters(name, params)
    weights = [jax.numpy.asarray(p0)]
    state = jax_optimizers.init(name, static, weights)
    step = jax.jit(lambda s, h, g, w: jax_optimizers.apply(name, static, s, h, g, w))
    for g in grads:
        weights, state = step(state, hyper, [jax.numpy.asarray(g)], weights)
    return np.asarray(weights[0], dtype=np.float64)


@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_updates_follow_keras_2_2(name, overrides):
    p0, grads = gradients()
    params = optimizers.resolved_params(name, overrides)
    expected = keras22_steps(name, [g.astype(np.float64) for g in grads], p0, params)
    got = jax_steps(name, grads, p0, overrides)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_updates_match_the_tensorflow_path_to_float32_rounding(name, overrides):
    pytest.importorskip("tensorflow")
    p0, grads = gradients()
    tensorflow_path = aeexp_steps(name, grads, p0, overrides)
    # The same arithmetic in the same order: what is left is how each compiler rounds.
    np.testing.assert_allclose(jax_steps(name, grads, p0, overrides), tensorflow_path, rtol=2e-6)


def test_what_changes_the_computation_is_static():
    # Every keyword given, as a validated config holds them (defaults merged there, once).
    def structure(name, overrides):
        return jax_optimizers.structure(name, optimizers.resolved_params(name, overrides))

    assert structure("sgd", {}) != structure("sgd", {"momentum": 0.9})
    assert structure("sgd", {"momentum": 0.9}) != structure(
        "sgd", {"momentum": 0.9, "nesterov": True}
    )
    assert structure("adam", {}) != structure("adam", {"amsgrad": True})
    # Rates, decays and betas are numbers, not structure: such members stack together.
    assert structure("adam", {"learning_rate": 0.01, "beta_1": 0.8, "decay": 1e-3}) == structure(
        "adam", {}
    )


def test_constants_are_rounded_as_keras_rounds_them():
    hyper = jax_optimizers.hyperparameters("adam", optimizers.resolved_params("adam", {}))
    # 1 - 0.9 in float64, then float32; not 1 - float32(0.9).
    assert hyper["one_minus_beta_1"] == np.float32(1 - 0.9)
    assert hyper["one_minus_beta_1"] != np.float32(1) - np.float32(0.9)


def test_the_step_counter_is_an_integer():
    # A float32 counter stops counting at 2**24 steps, where 1 + t == t; Keras counts in
    # integers, and the decay and bias corrections read the count.
    params = optimizers.resolved_params("adam", {})
    state = jax_optimizers.init("adam", jax_optimizers.structure("adam", params), [])
    assert jax.numpy.issubdtype(state["iterations"].dtype, jax.numpy.integer)
