"""The datasets a run may train on, each one entry: its title, Keras loader and cache, its files.

Every dataset here has MNIST's form: uint8 28x28 images and labels 0-9, in a Keras ``.npz``
or the four IDX files. A third such dataset is one more entry (and a test with synthetic
files); nothing else names a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset: how it is named, where Keras keeps it, which files a data folder holds."""

    title: str  # as tables and reports name it
    npz_name: str  # the file a data folder may hold instead of the four IDX files
    # The environment variable naming its file or folder when data.path is unset. Each dataset
    # has its own, so setting MNIST's never makes another dataset read MNIST under its name.
    env_var: str
    # The module under keras.datasets whose load_data() reads it, and what that leaves under
    # $KERAS_HOME/datasets (a file or a folder); None for a dataset Keras does not ship, which
    # is then read from data.path or its variable only.
    keras_loader: str | None = None
    keras_cache: str | None = None
    thesis: bool = False  # the thesis's own data: only these compare with its published table


DATASETS: dict[str, DatasetEntry] = {
    "mnist": DatasetEntry(
        title="MNIST",
        keras_loader="mnist",
        keras_cache="mnist.npz",
        npz_name="mnist.npz",
        env_var="AEEXP_DATA",
        thesis=True,
    ),
    "fashion_mnist": DatasetEntry(
        title="Fashion-MNIST",
        keras_loader="fashion_mnist",
        keras_cache="fashion-mnist",
        npz_name="fashion_mnist.npz",
        env_var="AEEXP_DATA_FASHION_MNIST",
    ),
}
DEFAULT_DATASET = "mnist"
DatasetName = Literal[tuple(DATASETS)]  # type: ignore[valid-type]  # the schema's choices


def title(name: str) -> str:
    """Return how tables and reports name dataset ``name``: ``MNIST``, ``Fashion-MNIST``."""
    return DATASETS[name].title
