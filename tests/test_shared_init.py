"""``train.init: shared``: the same initial weights and shuffles on both engines (issue 33).

By default each engine draws a seed's weights and orders its own way, so the same seed
starts TensorFlow and JAX at different points. With the key set, both take the initial
weights from :func:`aeexp.engines.model.shared_weights` and each epoch's order from
:func:`aeexp.engines.model.shared_order`, NumPy draws documented there and recomputed here
independently. Each engine's short run (linear 784-32-784, MSE, SGD, ``test_shuffle``'s) is
checked against ``test_shuffle``'s float64 NumPy trainer fed those orders, and the engines
against each other; the runner hands the key on. The key is in the run id only when set.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_shuffle import BATCH, EPOCHS, N_TRAIN, N_VAL, RATE, SEED
from test_shuffle import check as shuffle_check

from aeexp.config.run import validate

HERE = Path(__file__).resolve().parent
SHARED = {"train": {"init": "shared"}}
# The engines' losses, float32 each, from the same weights and orders: measured 1.6e-7 apart
# at most (a float32 ulp or two: each engine's XLA orders its sums its own way), the final
# weights 1.5e-8 (of ~0.1). 1e-6 is six times that; epoch 0's order every epoch moves a loss
# by 5e-4, and the default path's different initialisations by far more.
CROSS_RTOL = 1e-6


def independent_weights(seed, code_dim=32):
    """Glorot-uniform kernels (Keras: +-sqrt(6 / (fan_in + fan_out))) and zero biases."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    weights = []
    for shape in ((784, code_dim), (code_dim, 784)):
        limit = np.sqrt(6 / sum(shape))
        weights += [rng.uniform(-limit, limit, shape).astype(np.float32), np.zeros(shape[1])]
    return weights


def independent_orders(seed, n, epochs):
    """Each epoch's order as documented: a NumPy permutation seeded by (seed, epoch)."""
    return [
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, epoch))).permutation(n)
        for epoch in range(epochs)
    ]


def check(history, initial, final, images):
    """Assert an engine's run is the NumPy run on the documented orders, and that they show.

    From these weights epoch 0's order every epoch moves a loss by 49x RTOL, so 10x is asked
    of ``test_shuffle.check``'s guard rather than its default 100x.
    """
    orders = independent_orders(SEED, N_TRAIN, EPOCHS)
    shuffle_check(history, initial, final, images, orders, shows=10)


def config(**train):
    return validate(
        {
            "seed": SEED,
            "model": {"encoder_activation": "linear", "decoder_activation": "linear"},
            "optimizer": {"name": "sgd", "learning_rate": RATE},
            "train": train,
        }
    )


@pytest.fixture(scope="module")
def images(mnist_path):
    with np.load(mnist_path) as archive:
        x_train = archive["x_train"][:N_TRAIN].reshape(-1, 784).astype("float32") / 255
        x_val = archive["x_test"][:N_VAL].reshape(-1, 784).astype("float32") / 255
    return x_train, x_val


@pytest.fixture(scope="module")
def tensorflow_run(images):
    """Return (initial weights, (loss, val_loss) per epoch, final weights) on TensorFlow."""
    from aeexp.engines import tensorflow as engine

    member = engine.build_member(config(init="shared"))
    initial = [np.asarray(w) for w in member.model.get_weights()]
    engine.enable_determinism()
    trainer = engine.GroupTrainer([member], *images, batch_size=BATCH, seed=SEED, init="shared")
    (history,) = trainer.train(EPOCHS)
    final = [np.asarray(w) for w in member.model.get_weights()]
    return initial, np.array([history.loss, history.val_loss]).T, final


@pytest.fixture(scope="module")
def jax_run(mnist_path, tmp_path_factory):
    """The same on JAX, in a child process (a process keeps its first Keras backend)."""
    pytest.importorskip("jax")
    out = tmp_path_factory.mktemp("jax") / "run.npz"
    arguments = [mnist_path, out, SEED, RATE, BATCH, EPOCHS, N_TRAIN, N_VAL, "shared"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(HERE / "jaxshuffle.py"), *map(str, arguments)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as run:
        initial = [run[f"initial{i}"] for i in range(4)]
        history = np.array([run["loss"], run["val_loss"]]).T
        final = [run[f"final{i}"] for i in range(4)]
    return initial, history, final


def test_the_key_is_in_the_run_id_only_when_set():
    assert config().train.init is None
    # Pinned: the default MNIST/TensorFlow run's id, and JAX's, from before the key existed.
    assert validate({}).run_id == "a7e9608ebd"
    assert validate({"train": {"backend": "jax"}}).run_id == "59f39b87b1"
    assert validate({"train": {"init": None}}).run_id == "a7e9608ebd"
    shared = validate(SHARED).run_id
    assert shared != "a7e9608ebd"
    assert validate({"train": {"init": "shared", "backend": "jax"}}).run_id not in (
        shared,
        "59f39b87b1",
    )


def test_an_unknown_init_is_refused_by_name():
    from aeexp.errors import UserError

    with pytest.raises(UserError, match="train.init.*shared"):
        validate({"train": {"init": "numpy"}})


def test_the_shared_draws_are_the_documented_numpy_draws():
    from aeexp.config.run import ModelConfig
    from aeexp.engines.model import shared_order, shared_weights

    for found, want in zip(
        shared_weights(ModelConfig(), SEED), independent_weights(SEED), strict=True
    ):
        assert found.dtype == np.float32
        np.testing.assert_array_equal(found, want)
    limit = np.sqrt(6 / (784 + 32))
    assert 0.9 * limit < np.abs(shared_weights(ModelConfig(), SEED)[0]).max() < limit
    assert not np.array_equal(
        shared_weights(ModelConfig(), 0)[0], shared_weights(ModelConfig(), 1)[0]
    )
    for epoch, want in enumerate(independent_orders(SEED, N_TRAIN, EPOCHS)):
        found = shared_order(SEED, epoch, N_TRAIN)
        assert found.dtype == np.int32
        np.testing.assert_array_equal(found, want)


def test_tensorflow_starts_from_the_shared_weights_and_shuffles_by_them(tensorflow_run, images):
    initial, history, final = tensorflow_run
    for found, want in zip(initial, independent_weights(SEED), strict=True):
        np.testing.assert_array_equal(found, want)
    check(history, initial, final, images)


def test_jax_starts_from_the_shared_weights_and_shuffles_by_them(jax_run, images):
    initial, history, final = jax_run
    for found, want in zip(initial, independent_weights(SEED), strict=True):
        np.testing.assert_array_equal(found, want)
    check(history, initial, final, images)


def test_the_two_engines_start_alike_bit_for_bit_and_train_alike(tensorflow_run, jax_run):
    for found, want in zip(jax_run[0], tensorflow_run[0], strict=True):
        np.testing.assert_array_equal(found, want)
    np.testing.assert_allclose(jax_run[1], tensorflow_run[1], rtol=CROSS_RTOL)
    for found, want in zip(jax_run[2], tensorflow_run[2], strict=True):
        np.testing.assert_allclose(found, want, rtol=0, atol=1e-6)


def test_the_runner_hands_the_key_to_the_engine(tensorflow_run, mnist_path):
    """Through ``runner.train_group`` (as ``aeexp run`` trains), the trainer's numbers."""
    from aeexp.data.dataset import load_dataset
    from aeexp.execute import runner

    data = {"path": str(mnist_path), "train_limit": N_TRAIN, "test_limit": N_VAL}
    shared = config(init="shared", epochs=EPOCHS, batch_size=BATCH)
    shared = shared.model_copy(update={"data": shared.data.model_copy(update=data)})
    (run,) = runner.train_group([shared], load_dataset(shared))
    rows = run.files["history.csv"].decode().splitlines()[1:]
    history = np.array([[float(x) for x in row.split(",")[1:3]] for row in rows])
    np.testing.assert_array_equal(history, tensorflow_run[1])
