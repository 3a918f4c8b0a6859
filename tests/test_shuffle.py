"""Each epoch's shuffle, on both engines, against the documented seeding and NumPy training.

An epoch's order is drawn from the run seed and the epoch's number: on TensorFlow the argsort
of ``tf.random.stateless_uniform([n], seed=[seed, epoch])``; on JAX
``jax.random.permutation(fold_in(key, epoch), n)`` with the key from NumPy's
``SeedSequence(seed, spawn_key=(1,))``. The engines' determinism tests compare an engine with
itself, which a shuffle that repeats epoch 0's order every epoch passes; here a 3-epoch
history on 300 MNIST images is recomputed by an independent NumPy trainer (a linear
784-32-784 autoencoder, MSE, plain SGD, float64) fed the orders drawn above.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
SEED, RATE, BATCH, EPOCHS, N_TRAIN, N_VAL = 5, 2.0, 32, 3, 300, 200  # 9 batches and 12 rows
RTOL = 1e-5  # float32 against float64 is ~2e-7 here; the repeated order moves the losses ~3e-3


@pytest.fixture(scope="module")
def images(mnist_path):
    with np.load(mnist_path) as archive:
        x_train = archive["x_train"][:N_TRAIN].reshape(-1, 784).astype("float32") / 255
        x_val = archive["x_test"][:N_VAL].reshape(-1, 784).astype("float32") / 255
    return x_train, x_val


def sgd(rate):
    """Return plain SGD as a step function: each weight moves by -rate times its gradient."""

    def step(weights, grads):
        for weight, grad in zip(weights, grads, strict=True):
            weight -= rate * grad

    return step


def identity(z):
    return z


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


ACTIVATIONS = {  # name -> (function, its derivative from the pre-activation and the output)
    "linear": (identity, lambda z, a: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype)),
    "sigmoid": (sigmoid, lambda z, a: a * (1 - a)),
}


def numpy_training(
    initial, x_train, x_val, orders, *, step=None, batch=BATCH, activations=("linear", "linear")
):
    """Return ((loss, val_loss) per epoch, final weights): minibatch training on mean squared error.

    ``step`` updates the weights in place from their gradients (SGD at ``RATE`` if not given).
    The epoch loss is the batches' mean losses weighted by their sizes (each taken before its
    step), the validation loss the mean over ``x_val`` after the epoch.
    """
    step = step or sgd(RATE)
    (encode, d_encode), (decode, d_decode) = (ACTIVATIONS[name] for name in activations)
    weights = [np.asarray(w, np.float64).copy() for w in initial]
    kernel1, bias1, kernel2, bias2 = weights
    x, x_val = x_train.astype(np.float64), x_val.astype(np.float64)
    history = []
    for order in orders:
        total = 0.0
        for start in range(0, len(x), batch):
            rows = x[order[start : start + batch]]
            hidden = rows @ kernel1 + bias1
            code = encode(hidden)
            out = code @ kernel2 + bias2
            recon = decode(out)
            residual = recon - rows
            total += np.mean(residual**2) * len(rows)
            d_out = 2 * residual / residual.size * d_decode(out, recon)
            d_hidden = d_out @ kernel2.T * d_encode(hidden, code)
            grads = [rows.T @ d_hidden, d_hidden.sum(axis=0), code.T @ d_out, d_out.sum(axis=0)]
            step(weights, grads)
        val = decode(encode(x_val @ kernel1 + bias1) @ kernel2 + bias2) - x_val
        history.append((total / len(x), np.mean(val**2)))
    return np.array(history), weights


def tensorflow_orders(seed, n, epochs):
    """Return each epoch's order as the TensorFlow engine documents it: argsort of uniforms."""
    import tensorflow as tf

    return [
        np.argsort(
            tf.random.stateless_uniform([n], seed=tf.constant([seed, epoch], tf.int64)),
            kind="stable",
        )
        for epoch in range(epochs)
    ]


def check(got_history, initial, final, images, orders, shows=100):
    """Assert the engine's run is the NumPy run on ``orders``, and that the order shows.

    ``shows``: how many RTOLs reusing epoch 0's order every epoch must move a loss by.
    """
    assert not any((orders[0] == order).all() for order in orders[1:])
    for order in orders:
        assert sorted(order) == list(range(N_TRAIN))
    want, weights = numpy_training(initial, *images, orders)
    repeated, _ = numpy_training(initial, *images, [orders[0]] * EPOCHS)
    # The test can fail: epoch 0's order every epoch moves a loss by far more than RTOL.
    assert np.abs(repeated[1:] / want[1:] - 1).max() > shows * RTOL
    np.testing.assert_allclose(got_history, want, rtol=RTOL)
    for found, expected, start in zip(final, weights, initial, strict=True):
        moved = np.abs(expected - start).max()
        np.testing.assert_allclose(found, expected, rtol=0, atol=1e-4 * moved)


def test_tensorflow_shuffles_each_epoch_by_seed_and_epoch(images):
    from aeexp.config.run import ModelConfig
    from aeexp.engines import tensorflow as engine
    from aeexp.engines.model import build_autoencoder
    from aeexp.registry import losses, optimizers

    shape = ModelConfig(encoder_activation="linear", decoder_activation="linear")
    model = build_autoencoder(shape, SEED)
    initial = [np.asarray(w) for w in model.get_weights()]
    member = engine.Member(model, optimizers.build("sgd", learning_rate=RATE), losses.get("mse"))
    engine.enable_determinism()
    trainer = engine.GroupTrainer([member], *images, batch_size=BATCH, seed=SEED)
    (history,) = trainer.train(EPOCHS)
    orders = tensorflow_orders(SEED, N_TRAIN, EPOCHS)
    final = [np.asarray(w) for w in member.model.get_weights()]
    check(np.array([history.loss, history.val_loss]).T, initial, final, images, orders)


def test_jax_shuffles_each_epoch_by_seed_and_epoch(images, mnist_path, tmp_path):
    jax = pytest.importorskip("jax")
    out = tmp_path / "run.npz"
    arguments = [SEED, RATE, BATCH, EPOCHS, N_TRAIN, N_VAL]
    command = [sys.executable, str(HERE / "jaxshuffle.py"), str(mnist_path), str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        command + [str(a) for a in arguments], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as run:
        history = np.array([run["loss"], run["val_loss"]]).T
        initial = [run[f"initial{i}"] for i in range(4)]
        final = [run[f"final{i}"] for i in range(4)]
    words = np.random.SeedSequence(SEED, spawn_key=(1,)).generate_state(2, dtype=np.uint32)
    key = jax.random.wrap_key_data(jax.numpy.asarray(words))
    orders = [
        np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), N_TRAIN))
        for epoch in range(EPOCHS)
    ]
    check(history, initial, final, images, orders)
