"""Loading data for a run: the test set, or a holdout of the training set for tuning."""

import numpy as np
import pytest

from aeexp import config, runner
from aeexp.errors import UserError


def run_config(mnist_path, **data):
    return config.validate({"data": {"path": str(mnist_path), **data}})


def test_holdout_replaces_the_test_set_with_the_last_training_images(mnist_path):
    dataset = runner.load_dataset(run_config(mnist_path, train_limit=1000, holdout=200))
    with np.load(mnist_path) as archive:
        train = archive["x_train"][:1000].reshape(-1, 784) / 255.0
        labels = archive["y_train"][800:1000]
    assert dataset.x_train.shape == (800, 784) and dataset.x_test.shape == (200, 784)
    np.testing.assert_allclose(dataset.x_test, train[800:], rtol=1e-6)
    np.testing.assert_array_equal(dataset.y_test, labels)
    assert "last 200 training images" in dataset.source


def test_holdout_too_large(mnist_path):
    with pytest.raises(UserError, match="leaves no training images"):
        runner.load_dataset(run_config(mnist_path, train_limit=100, holdout=100))


@pytest.mark.parametrize(
    ("data", "setting"),
    [({"test_limit": 20}, "data.test_limit=20"), ({"holdout": 20}, "data.holdout=20")],
)
def test_too_few_evaluation_images_fail_at_load_not_after_training(mnist_path, data, setting):
    """The thesis SSIM needs a 0, then a 1, ... then a 9: 20 images do not hold them."""
    with pytest.raises(UserError) as caught:
        runner.load_dataset(run_config(mnist_path, train_limit=1000, **data))
    assert str(caught.value).startswith(f"{setting}: the thesis SSIM needs the digits 0-9")


def test_enough_evaluation_images_load(mnist_path):
    assert len(runner.load_dataset(run_config(mnist_path, test_limit=100)).x_test) == 100
