"""The images a run trains and is judged on, loaded once by the driver and shipped as uint8.

No TensorFlow here: the driver loads and checks the data before anything trains, and a Ray
worker receives these arrays through the object store rather than re-reading a path that
may not exist on its node. ``digest`` lets a worker check what arrived.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

import numpy as np

from aeexp import evaluate
from aeexp.config.run import RunConfig
from aeexp.data import sources as data_lib
from aeexp.errors import UserError
from aeexp.registry.datasets import DEFAULT_DATASET


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is elementwise, not a bool
class Dataset:
    """A dataset as a run uses it: uint8 training and evaluation images, labels, provenance."""

    train_images: np.ndarray  # uint8 (n, 28, 28)
    eval_images: np.ndarray  # uint8 (m, 28, 28): the test set, or a training holdout
    eval_labels: np.ndarray  # uint8 (m,)
    source: str
    sha256: str | None  # of the source file(s), as recorded in metrics.json
    name: str = DEFAULT_DATASET  # its data.name, as recorded in metrics.json
    digest: str = field(default="")  # of the arrays themselves, checked on arrival

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", self.compute_digest())

    def compute_digest(self) -> str:
        """Return the sha256 of the three arrays' shapes and bytes."""
        digest = hashlib.sha256()
        for array in (self.train_images, self.eval_images, self.eval_labels):
            digest.update(repr(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def verify(self) -> None:
        """Raise ValueError unless the arrays still hash to ``digest`` (a transfer check)."""
        if self.compute_digest() != self.digest:
            raise ValueError("the dataset's arrays do not match their sha256: corrupted in transit")

    def check_batch(self, batch_size: int) -> None:
        """Raise UserError if the training set cannot fill one batch of ``batch_size``."""
        if len(self.train_images) < batch_size:
            raise UserError(
                f"train.batch_size {batch_size} is larger than the {len(self.train_images)} "
                "training images; lower the batch size or use more images"
            )

    @property
    def x_train(self) -> np.ndarray:
        """Return the training images as float32 (n, 784) in [0, 1]."""
        return data_lib.pixels(self.train_images)

    @functools.cached_property
    def x_eval(self) -> np.ndarray:
        """Return the evaluation images as float32 (m, 784) in [0, 1]."""
        return data_lib.pixels(self.eval_images)


def load_dataset(config: RunConfig) -> Dataset:
    """Load and check the dataset ``config`` asks for (test set, or a training holdout)."""
    settings = config.data
    source = data_lib.resolve_source(settings.path, settings.name)
    stored = data_lib.load_source(source, settings.train_limit, settings.test_limit)
    train, images, labels = stored.x_train, stored.x_test, np.asarray(stored.y_test)
    description = source.describe()
    # The setting that chose the evaluation images, to name if they cannot serve the thesis SSIM.
    limit = None if settings.test_limit is None else f"data.test_limit={settings.test_limit}"
    if settings.holdout is not None:
        if settings.holdout >= len(train):
            raise UserError(
                f"data.holdout {settings.holdout} leaves no training images "
                f"(there are {len(train)})"
            )
        split = len(train) - settings.holdout
        train, images = train[:split], train[split:]
        labels = np.asarray(stored.y_train[split:])
        description += f"; evaluated on the last {settings.holdout} training images"
        limit = f"data.holdout={settings.holdout}"
    _check_thesis_classes(labels, limit)
    sha256 = data_lib.sha256_of(source)
    return Dataset(train, images, labels, description, sha256, settings.name)


def _check_thesis_classes(labels: np.ndarray, limit: str | None) -> None:
    """Raise the evaluation's UserError now, before training, if the thesis SSIM cannot run."""
    try:
        evaluate.thesis_class_indices(labels)
    except UserError as error:
        if limit is None:
            raise
        raise UserError(f"{limit}: {error}") from None
