"""Shared fixtures: where real MNIST is, and small MNIST-like arrays."""

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MNIST_PATH = Path(os.environ.get("AEEXP_DATA") or REPO.parent / "shared" / "data" / "mnist.npz")


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    """Return the real MNIST .npz, or skip the test with the reason."""
    if not MNIST_PATH.is_file():
        pytest.skip(f"no MNIST .npz at {MNIST_PATH} (set AEEXP_DATA)")
    return MNIST_PATH


@pytest.fixture(scope="session")
def mnist_test_pixels(mnist_path) -> np.ndarray:
    """Return the first 512 real test images as float32 (n, 784) in [0, 1]."""
    with np.load(mnist_path) as archive:
        return archive["x_test"][:512].reshape(-1, 784).astype("float32") / 255.0


@pytest.fixture(scope="session")
def mnist_like() -> np.ndarray:
    """Return synthetic images that are mostly exact zeros, like MNIST."""
    rng = np.random.default_rng(7)
    images = rng.random((64, 784)).astype("float32")
    images[rng.random((64, 784)) < 0.8] = 0.0
    return images
