"""The engine: determinism, group == alone, divergence isolation, loss bookkeeping."""

import numpy as np
import pytest

from aeexp.config.run import ModelConfig
from aeexp.engines import tensorflow as engine
from aeexp.engines.model import build_autoencoder
from aeexp.registry import losses, optimizers


@pytest.fixture(scope="module")
def images(mnist_path):
    with np.load(mnist_path) as archive:
        train = archive["x_train"][:3000].reshape(-1, 784).astype("float32") / 255
        # Two full validation chunks and a partial one.
        test = archive["x_test"][: 2 * engine.VALIDATION_CHUNK + 300]
        test = test.reshape(-1, 784).astype("float32") / 255
    return train, test


def member(loss="mse", decoder="sigmoid", optimizer="adam", seed=0, encoder="relu", **params):
    shape = ModelConfig(encoder_activation=encoder, decoder_activation=decoder)
    return engine.Member(
        build_autoencoder(shape, seed), optimizers.build(optimizer, **params), losses.get(loss)
    )


def train(members, images, epochs=2, batch_size=256, seed=0):
    engine.enable_determinism()
    trainer = engine.GroupTrainer(members, *images, batch_size=batch_size, seed=seed)
    return trainer.train(epochs)


def weights(m):
    return [np.asarray(w) for w in m.model.get_weights()]


def test_same_config_and_seed_give_identical_results(images):
    first, second = member(), member()
    h1, h2 = train([first], images)[0], train([second], images)[0]
    assert h1.loss == h2.loss and h1.val_loss == h2.val_loss
    for a, b in zip(weights(first), weights(second), strict=True):
        np.testing.assert_array_equal(a, b)


def test_member_in_group_ends_where_it_ends_alone(images):
    alone = member("i_div2", "relu", "adadelta", seed=3)
    group = [
        member("mse", "sigmoid", "adam", seed=1),
        member("i_div2", "relu", "adadelta", seed=3),
        member("bce", "sigmoid", "nadam", seed=2),
    ]
    h_alone = train([alone], images)[0]
    h_group = train(group, images)[1]
    # Bit for bit: losses, weights and the compiled evaluation pass alike.
    assert h_group.loss == h_alone.loss and h_group.val_loss == h_alone.val_loss
    for a, b in zip(weights(group[1]), weights(alone), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        engine.reconstruct(group[1].model, images[1]), engine.reconstruct(alone.model, images[1])
    )


def test_reported_losses_do_not_depend_on_the_group_size(images):
    """A member's losses once came from a vector over the group, rounded by its width.

    The case that showed it: i_div2 with Adam on 1,000 images, second epoch, one bit off
    beside an MSE twin (0.42156702280044556 alone, 0.42156705260276794 in the pair).
    """
    subset = (images[0][:1000], images[1][:1000])
    alone = train([member("i_div2")], subset)[0]
    for twins in (["mse"], ["mse", "i_div1"]):
        grouped = train([member("i_div2")] + [member(loss) for loss in twins], subset)[0]
        assert grouped.loss == alone.loss and grouped.val_loss == alone.val_loss


def test_diverging_member_is_frozen_and_others_go_on(images):
    exploding = member("mse", "linear", "sgd", encoder="linear", learning_rate=1e12)
    group = [exploding, member()]
    histories = train(group, images, epochs=3)
    assert histories[0].diverged_epoch == 1 and len(histories[0].loss) == 1
    assert histories[1].diverged_epoch is None and len(histories[1].loss) == 3
    assert all(np.isfinite(histories[1].loss))


def test_epoch_loss_is_the_sample_weighted_mean(images):
    """With lr 0 nothing changes, so the epoch loss is the loss over the training set."""
    m = member("mse", optimizer="sgd", learning_rate=0.0)
    train_x, test_x = images
    history = train([m], images, epochs=1, batch_size=700)[0]
    expected_train = np.mean((np.asarray(m.model(train_x)) - train_x) ** 2)
    expected_val = np.mean((np.asarray(m.model(test_x)) - test_x) ** 2)
    assert history.loss[0] == pytest.approx(expected_train, rel=1e-5)
    assert history.val_loss[0] == pytest.approx(expected_val, rel=1e-5)


def test_training_reduces_the_loss(images):
    history = train([member()], images, epochs=3)[0]
    assert history.loss[2] < history.loss[0] and history.val_loss[2] < history.val_loss[0]
