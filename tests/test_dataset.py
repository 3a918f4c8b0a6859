"""Loading data for a run: the test set, or a holdout of the training set for tuning."""

import numpy as np
import pytest

from aeexp.config import run as config
from aeexp.data import dataset
from aeexp.errors import UserError


def run_config(mnist_path, **data):
    return config.validate({"data": {"path": str(mnist_path), **data}})


def test_holdout_replaces_the_test_set_with_the_last_training_images(mnist_path):
    loaded = dataset.load_dataset(run_config(mnist_path, train_limit=1000, holdout=200))
    with np.load(mnist_path) as archive:
        train = archive["x_train"][:1000].reshape(-1, 784) / 255.0
        labels = archive["y_train"][800:1000]
    assert loaded.x_train.shape == (800, 784) and loaded.x_eval.shape == (200, 784)
    np.testing.assert_allclose(loaded.x_eval, train[800:], rtol=1e-6)
    np.testing.assert_array_equal(loaded.eval_labels, labels)
    assert "last 200 training images" in loaded.source


def test_holdout_too_large(mnist_path):
    with pytest.raises(UserError, match="leaves no training images"):
        dataset.load_dataset(run_config(mnist_path, train_limit=100, holdout=100))


@pytest.mark.parametrize(
    ("data", "setting"),
    [({"test_limit": 20}, "data.test_limit=20"), ({"holdout": 20}, "data.holdout=20")],
)
def test_too_few_evaluation_images_fail_at_load_not_after_training(mnist_path, data, setting):
    """The thesis SSIM needs a 0, then a 1, ... then a 9: 20 images do not hold them."""
    with pytest.raises(UserError) as caught:
        dataset.load_dataset(run_config(mnist_path, train_limit=1000, **data))
    assert str(caught.value).startswith(f"{setting}: the thesis SSIM needs the classes 0-9")


def test_enough_evaluation_images_load(mnist_path):
    assert len(dataset.load_dataset(run_config(mnist_path, test_limit=100)).eval_images) == 100


def test_the_digest_checks_what_arrived(mnist_path):
    import pickle

    loaded = dataset.load_dataset(run_config(mnist_path, train_limit=300, test_limit=100))
    arrived = pickle.loads(pickle.dumps(loaded))
    arrived.verify()
    assert arrived.digest == loaded.digest
    tampered = pickle.loads(pickle.dumps(loaded))
    tampered.train_images[0, 0, 0] ^= 1
    with pytest.raises(ValueError, match="corrupted in transit"):
        tampered.verify()


def test_a_training_set_smaller_than_a_batch_is_refused(mnist_path):
    loaded = dataset.load_dataset(run_config(mnist_path, train_limit=100))
    with pytest.raises(UserError, match="train.batch_size 256 is larger than the 100 training"):
        loaded.check_batch(256)
    loaded.check_batch(100)
