"""The JAX engine in the default test set: a few cheap checks in one child process.

``test_engine_jax.py`` holds the full checks (looped and stacked paths, divergence, pruning,
CPU count) and is in the slow set; without these, ``make test`` never trained on JAX. The
child (``jaxchecks.py MNIST quick``) trains on 300 real MNIST images, whose border pixels are
0 in every image: the first layer's weights there get a zero gradient at every step.
"""

import math

import numpy as np
import pytest
from test_engine_jax import run_checks

pytest.importorskip("jax")


@pytest.fixture(scope="module")
def quick(mnist_path):
    return run_checks(mnist_path, "quick")


@pytest.fixture(scope="module")
def images(mnist_path):
    with np.load(mnist_path) as archive:
        train = archive["x_train"][:300].reshape(-1, 784).astype(np.float64) / 255
        test = archive["x_test"][:1100].reshape(-1, 784).astype(np.float64) / 255
    return train, test


def test_a_member_ends_where_it_ends_alone_bit_for_bit(quick):
    """Beside a member of another stack, and beside one of its own stack."""
    for scenario in ("pair", "twin"):
        assert quick[scenario]["digest"] == quick["alone"]["digest"], scenario
        assert quick[scenario]["loss"] == quick["alone"]["loss"]
        assert quick[scenario]["val_loss"] == quick["alone"]["val_loss"]


def test_every_optimizer_trains_on_real_mnist_without_diverging(quick):
    """Adamax without its epsilon made every run on MNIST diverge here, at epoch 1."""
    assert quick["diverged"] == [None] * 7
    for name, losses in quick["optimizers"].items():
        assert len(losses) == 4 and all(math.isfinite(x) for x in losses), name


def test_with_learning_rate_zero_the_epoch_loss_is_the_training_sets(quick, images):
    """128, 128 and 44 rows: the batches' means weighted by their sizes, in NumPy."""
    found = quick["lr0"]
    kernel1, bias1, kernel2, bias2 = (np.asarray(w, np.float64) for w in found["weights"])

    def loss(x):
        code = np.maximum(x @ kernel1 + bias1, 0.0)
        reconstruction = 1 / (1 + np.exp(-(code @ kernel2 + bias2)))
        return np.mean((reconstruction - x) ** 2)

    assert found["loss"] == pytest.approx(loss(images[0]), rel=1e-5)
    assert found["val_loss"] == pytest.approx(loss(images[1]), rel=1e-5)


def test_the_jax_engine_never_imports_tensorflow(quick):
    assert not quick["tensorflow_imported"]


def test_freeze_masks_exactly_the_members_it_names_the_first_one_too():
    """Member 0 is slot 0 of the first stack: a bound of ``index >= 1`` would train it on.

    No JAX runs: freeze only masks slots (padding, -1, stays masked) and drops a stack with
    nobody left, so a trainer holding just its stacks and masks is enough.
    """
    from types import SimpleNamespace

    from aeexp.engines import jax as engine

    members = [
        SimpleNamespace(stack_key=key, shape=None, loss=None, optimizer="adam", static=())
        for key in ("a", "a", "b")
    ]
    trainer = object.__new__(engine.GroupTrainer)
    trainer.stacks = engine.arrange(members, width=3)
    assert [stack.slots for stack in trainer.stacks] == [[0, 1, -1], [2, -1, -1]]
    trainer.actives = [np.array([i >= 0 for i in stack.slots]) for stack in trainer.stacks]
    trainer._live = [0, 1]
    trainer.freeze([0], [1, 2])
    assert [a.tolist() for a in trainer.actives] == [[False, True, False], [True, False, False]]
    assert trainer._live == [0, 1]
    trainer.freeze([2], [1])
    assert [a.tolist() for a in trainer.actives] == [[False, True, False], [False, False, False]]
    assert trainer._live == [0]  # the second stack has nobody left: it leaves the epoch
