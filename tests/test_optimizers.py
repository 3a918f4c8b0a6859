"""Optimizers against Keras 2.2's update rules written out in NumPy, and their defaults."""

import numpy as np
import pytest

from aeexp.registry import optimizers

EPS = 1e-7


def keras22_steps(name, grads, p0, params):
    """Apply Keras 2.2.4's update rules (keras/optimizers.py) to ``p0``, in float64."""
    lr0, decay = params["learning_rate"], params.get("decay", 0.0)
    eps = params.get("epsilon", EPS)  # SGD has none
    p = p0.astype(np.float64).copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vhat = np.zeros_like(p)
    m_schedule = 1.0
    for iteration, g in enumerate(grads):
        lr = lr0 / (1 + decay * iteration)
        t = iteration + 1
        if name == "sgd":
            momentum = params["momentum"]
            m = momentum * m - lr * g  # the velocity
            p += momentum * m - lr * g if params["nesterov"] else m
        elif name == "adagrad":
            v += g**2
            p -= lr * g / (np.sqrt(v) + eps)
        elif name == "rmsprop":
            v = params["rho"] * v + (1 - params["rho"]) * g**2
            p -= lr * g / (np.sqrt(v) + eps)
        elif name == "adadelta":
            rho = params["rho"]
            v = rho * v + (1 - rho) * g**2
            update = g * np.sqrt(m + eps) / np.sqrt(v + eps)
            p -= lr * update
            m = rho * m + (1 - rho) * update**2
        elif name == "adam":
            b1, b2 = params["beta_1"], params["beta_2"]
            lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g**2
            if params["amsgrad"]:
                vhat = np.maximum(vhat, v)
                p -= lr_t * m / (np.sqrt(vhat) + eps)
            else:
                p -= lr_t * m / (np.sqrt(v) + eps)
        elif name == "adamax":
            b1, b2 = params["beta_1"], params["beta_2"]
            m = b1 * m + (1 - b1) * g
            v = np.maximum(b2 * v, np.abs(g))
            p -= lr / (1 - b1**t) * m / (v + eps)
        elif name == "nadam":
            b1, b2, sd = params["beta_1"], params["beta_2"], params["schedule_decay"]
            mu_t = b1 * (1 - 0.5 * 0.96 ** (t * sd))
            mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * sd))
            m_schedule_new = m_schedule * mu_t
            m_schedule_next = m_schedule * mu_t * mu_next
            m_schedule = m_schedule_new
            g_prime = g / (1 - m_schedule_new)
            m = b1 * m + (1 - b1) * g
            m_prime = m / (1 - m_schedule_next)
            v = b2 * v + (1 - b2) * g**2
            v_prime = v / (1 - b2**t)
            m_bar = (1 - mu_t) * g_prime + mu_next * m_prime
            p -= lr * m_bar / (np.sqrt(v_prime) + eps)
    return p


def aeexp_steps(name, grads, p0, params):
    import keras

    variable = keras.Variable(p0)
    optimizer = optimizers.build(name, **params)
    optimizer.build([variable])
    for g in grads:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float32")), variable)])
    return np.asarray(variable.numpy(), dtype=np.float64)


CASES = [
    ("sgd", {}),
    ("adagrad", {}),
    ("rmsprop", {}),
    ("adadelta", {}),
    ("adam", {}),
    ("adamax", {}),
    ("nadam", {}),
    ("nadam", {"schedule_decay": 0.003}),
    ("adagrad", {"decay": 1e-2}),
    ("adadelta", {"learning_rate": 0.95, "decay": 1e-4}),
    ("adam", {"learning_rate": 5e-4, "decay": 1e-5}),
    ("adamax", {"learning_rate": 0.05}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "learning_rate": 0.05}),
    ("adam", {"amsgrad": True}),
    ("adam", {"amsgrad": True, "learning_rate": 0.01, "decay": 1e-3}),
    # An extension: Keras 2.2's Nadam refused decay; aeexp decays its rate like the others.
    ("nadam", {"decay": 1e-2}),
    # A config's own epsilon must reach the ports: Keras 3's default (1e-7) is the registry's,
    # so only another value tells an epsilon passed on from one dropped.
    ("adagrad", {"epsilon": 1e-3}),
    ("rmsprop", {"epsilon": 1e-3}),
]


@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_updates_follow_keras_2_2(name, overrides):
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=(5, 4)).astype("float32")
    grads = [rng.normal(size=p0.shape) * (0.0 if i == 2 else 1.0) for i in range(8)]
    grads[3][0, 0] = 0.0  # A zero gradient, where epsilon placement matters most.
    params = optimizers.resolved_params(name, overrides)
    expected = keras22_steps(
        name, [g.astype("float32").astype(np.float64) for g in grads], p0, params
    )
    got = aeexp_steps(name, grads, p0, overrides)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_keras_2_2_defaults_from_thesis():
    expected = {
        "sgd": 0.01,
        "rmsprop": 0.001,
        "adagrad": 0.01,
        "adadelta": 1.0,
        "adam": 0.001,
        "adamax": 0.002,
        "nadam": 0.002,
    }
    for name, lr in expected.items():
        params = optimizers.resolved_params(name, {})
        assert params["learning_rate"] == lr
        assert params.get("epsilon", 1e-7) == 1e-7 and params["decay"] == 0.0
    assert optimizers.resolved_params("adadelta", {})["rho"] == 0.95
    assert optimizers.resolved_params("nadam", {})["schedule_decay"] == 0.004


def test_nadam_decay_is_a_documented_extension():
    assert "decay" in optimizers.accepted_keys("nadam")
    assert "decay" in optimizers.EXTENSIONS["nadam"]


def test_adagrad_accumulator_starts_at_zero():
    import keras

    variable = keras.Variable(np.ones(3, "float32"))
    optimizer = optimizers.build("adagrad")
    optimizer.build([variable])
    (accumulator,) = [v for v in optimizer.variables if v.path.endswith("accumulator")]
    assert np.all(accumulator.numpy() == 0.0)


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_each_registry_entry_builds_its_class_with_every_keyword(name):
    """The registry alone names an optimizer's class: an entry that disagrees fails here."""
    spec = optimizers.OPTIMIZERS[name]
    built = optimizers.build(name)
    assert type(built) is spec.load_class()
    config = built.get_config()
    for key, value in spec.defaults.items():
        assert config[key] == pytest.approx(value), key


@pytest.mark.parametrize(
    ("name", "overrides"), [("nadam", {"beta_1": 0.8, "beta_2": 0.99}), ("rmsprop", {"rho": 0.5})]
)
def test_non_default_moment_rates_reach_the_update(name, overrides):
    # The defaults of Keras 2.2 and Keras 3 agree, so only other values show that a port's
    # constructor hands them on.
    test_updates_follow_keras_2_2(name, overrides)


def test_the_ports_made_without_keywords_take_keras_2_2s_defaults():
    """aeexp builds every optimizer from a config's complete keywords, so only a port made
    on its own (``keras2.Nadam()``, as Keras 2.2's was) reads the ports' own defaults."""
    from aeexp.engines import keras2

    for name in keras2.PORTED:
        optimizer = getattr(keras2, name)()
        for key, value in optimizers.OPTIMIZERS[name.lower()].defaults.items():
            found = float(np.asarray(getattr(optimizer, key)))
            assert found == pytest.approx(value, rel=1e-6), (name, key)
