"""Every loss against an independent NumPy formula, and the beta-divergence's limits."""

import numpy as np
import pytest

from aeexp.registry import losses

EPS = 1e-7


def clip(a):
    return np.clip(a.astype(np.float64), EPS, 1.0)


def numpy_reference(name, x, y):
    """Per-sample losses written straight from THESIS.md, in float64."""
    if name == "mse":
        return np.mean((y - x) ** 2, axis=-1)
    if name == "bce":
        yc = np.clip(y, EPS, 1 - EPS)
        return np.mean(-(x * np.log(yc) + (1 - x) * np.log(1 - yc)), axis=-1)
    x, y = clip(x), clip(y)
    term = {
        "i_div1": y * np.log(y / x) - y + x,
        "i_div2": x * np.log(x / y) - x + y,
        "is_div1": y / x - np.log(y / x) - 1,
        "is_div2": x / y - np.log(x / y) - 1,
    }[name]
    return np.mean(term, axis=-1)


def numpy_beta(a, b, beta):
    """The beta-divergence straight from its definition (beta not 0 or 1)."""
    return a**beta / (beta * (beta - 1)) + b**beta / beta - a * b ** (beta - 1) / (beta - 1)


@pytest.fixture(scope="module")
def pairs(mnist_like):
    """Targets that are mostly zeros, with a sigmoid-like and a ReLU-like reconstruction."""
    rng = np.random.default_rng(3)
    sigmoid_like = np.clip(mnist_like + rng.normal(0, 0.1, mnist_like.shape), 1e-4, 1 - 1e-4)
    relu_like = np.maximum(mnist_like + rng.normal(0, 0.3, mnist_like.shape), 0) * 1.2
    return [(mnist_like, sigmoid_like.astype("float32")), (mnist_like, relu_like.astype("float32"))]


def evaluate(name, x, y, **params):
    return np.asarray(losses.get(name, **params)(x, y))


@pytest.mark.parametrize("name", ["mse", "i_div1", "i_div2", "is_div1", "is_div2", "bce"])
def test_named_losses_match_numpy(name, pairs):
    for x, y in pairs:
        got = evaluate(name, x, y)
        assert got.shape == (len(x),)
        np.testing.assert_allclose(got, numpy_reference(name, x, y), rtol=2e-5, atol=1e-6)


def test_losses_on_real_mnist(mnist_test_pixels):
    rng = np.random.default_rng(0)
    x = mnist_test_pixels[:128]
    y = np.clip(x + rng.normal(0, 0.2, x.shape), 0, None).astype("float32")
    for name in ("mse", "i_div1", "i_div2"):
        np.testing.assert_allclose(evaluate(name, x, y), numpy_reference(name, x, y), rtol=2e-5)


@pytest.mark.parametrize("name", ["i_div1", "i_div2", "is_div1", "is_div2"])
def test_divergences_near_a_perfect_reconstruction(name):
    """Where y is within 5% of x the divergences are ~1e-4, so a constant slipped in shows.

    On mostly-zero targets x is clipped to 1e-7 and y / x reaches ~1e6: a ``- 1`` turned
    into ``+ 1`` then hides inside any relative tolerance. Here it misses by 2 against 1e-6.
    """
    rng = np.random.default_rng(5)
    x = rng.uniform(0.2, 0.9, size=(8, 784)).astype("float32")
    y = (x * rng.uniform(0.95, 1.05, size=x.shape)).astype("float32")
    y[0] = x[0]  # an exact reconstruction: every divergence is 0
    expected = numpy_reference(name, x, y)
    assert expected[0] == 0 and expected.max() < 1e-3
    np.testing.assert_allclose(evaluate(name, x, y), expected, rtol=0, atol=1e-6)


def test_clipping_kills_the_gradient_above_one():
    """THESIS.md: the clip of y to at most 1 makes the gradient zero where y > 1."""
    import tensorflow as tf

    x = tf.constant([[0.0, 0.5, 1.0]])
    y = tf.Variable([[1.5, 0.5, 2.0]])
    with tf.GradientTape() as tape:
        loss = losses.get("i_div1")(x, y)
    grad = tape.gradient(loss, y).numpy()
    assert grad[0, 0] == 0 and grad[0, 2] == 0


# 0.6 and 1.4 take the |beta - 1| < 0.5 branch away from its limit, where a slip in its
# division by beta changes the loss by far more than the tolerance (near 1 it hides).
@pytest.mark.parametrize("beta", [0.25, 0.5, 0.6, 1.4, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("order", ["data_first", "recon_first"])
def test_beta_matches_definition(beta, order, pairs):
    for x, y in pairs:
        a, b = (clip(x), clip(y)) if order == "data_first" else (clip(y), clip(x))
        expected = np.mean(numpy_beta(a, b, beta), axis=-1)
        got = evaluate("beta", x, y, beta=beta, order=order)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("beta", "order", "named"),
    [
        (1.0, "data_first", "i_div2"),
        (1.0, "recon_first", "i_div1"),
        (0.0, "data_first", "is_div2"),
        (0.0, "recon_first", "is_div1"),
    ],
)
def test_beta_limits_are_the_named_losses(beta, order, named, pairs):
    for x, y in pairs:
        limit = numpy_reference(named, x, y)
        np.testing.assert_allclose(
            evaluate("beta", x, y, beta=beta, order=order), limit, rtol=1e-5, atol=1e-6
        )
        for offset in (-1e-3, -1e-6, 1e-6, 1e-3):
            near = evaluate("beta", x, y, beta=beta + offset, order=order)
            np.testing.assert_allclose(near, limit, rtol=2e-2, atol=1e-6)


def test_beta_two_is_half_the_squared_error(pairs):
    x, y = pairs[0]
    expected = np.mean((clip(x) - clip(y)) ** 2, axis=-1) / 2
    np.testing.assert_allclose(evaluate("beta", x, y, beta=2.0), expected, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("beta", [0.0, 1e-6, 1.0 - 1e-6, 1.0, 1.0 + 1e-6])
def test_beta_gradient_is_finite_near_singular_points(beta, pairs):
    import tensorflow as tf

    x, y = pairs[1]
    y = tf.Variable(y)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(losses.get("beta", beta=beta)(x, y))
    assert np.all(np.isfinite(tape.gradient(loss, y).numpy()))
    assert np.isfinite(loss.numpy())


def test_describe_names_the_loss():
    assert losses.describe("i_div1") == "I-divergence 1 (E_I1)"
    assert losses.describe("beta", beta=0.5, order="recon_first") == "beta-divergence d_0.5(y|x)"


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("msee", {}, "unknown loss 'msee' (valid: bce, beta, "),
        ("msee", {}, "did you mean 'mse'?"),
        ("beta", {}, "loss 'beta' needs a parameter 'beta'"),
        ("beta", {"beta": 1.0, "order": "anything"}, "order must be data_first or recon_first"),
        ("beta", {"beta": 1.0, "bta": 2}, "unknown parameter for loss 'beta' 'bta'"),
        ("beta", {"beta": float("nan")}, "beta must be a finite number"),
        ("beta", {"beta": float("inf")}, "beta must be a finite number"),
        ("beta", {"beta": "1"}, "beta must be a finite number, got '1'"),
        ("beta", {"beta": True}, "beta must be a finite number"),
        ("mse", {"beta": 2.0}, "loss 'mse' takes no parameters (beta, order are for 'beta'"),
        ("i_div1", {"gamma": 2.0}, "loss 'i_div1' takes no parameters"),
    ],
)
def test_get_validates_name_and_parameters(name, params, expected):
    """A bad loss fails when it is asked for, not on its first batch."""
    with pytest.raises(ValueError) as caught:
        losses.get(name, **params)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_check_params_fills_in_defaults():
    assert losses.check_params("beta", {"beta": 0.5}) == {"beta": 0.5, "order": "data_first"}
    assert losses.check_params("mse", {}) == {}
    assert losses.LOSSES["beta"].parameters == ("beta", "order")


def test_a_loss_parameter_is_declared_only_in_its_registry_entry():
    from aeexp import schema
    from aeexp.config import run as config

    assert set(config.LossConfig.model_fields) == {"name", *losses.all_params()}
    branches = {b["properties"]["name"]["enum"][0]: b for b in schema.loss_schema()["oneOf"]}
    for name, spec in losses.LOSSES.items():
        assert set(branches[name]["properties"]) == {"name", *spec.parameters}
        assert set(branches[name].get("required", [])) >= spec.required
    assert losses.describe("beta", beta=0.5, order="recon_first") == "beta-divergence d_0.5(y|x)"


@pytest.mark.parametrize("name", ["mse", "is_div1"])
def test_a_loss_computes_in_the_reconstructions_precision(name):
    # The loss converts y_true to y_pred's dtype: float64 targets (as NumPy gives them) must
    # not turn a float32 model's loss, and its gradients, into float64.
    x = np.linspace(0.1, 0.9, 8, dtype=np.float64).reshape(2, 4)
    y = np.float32(x[::-1] * 0.5 + 0.25)
    result = losses.get(name)(x, y)
    assert np.asarray(result).dtype == np.float32
