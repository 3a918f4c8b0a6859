"""The ten-image protocol's own noise, measured on saved models without retraining.

The thesis's SSIM is the mean over ten test images: the first 0, the first 1 after it, and so
on. Other images of the same digits would have given another number for the same model.
Here each saved model (``model.keras`` in its run directory) reconstructs the k-th
occurrence of every digit (:func:`aeexp.evaluate.thesis_class_indices` with ``occurrence``
k, k = 1..K) and the protocol is applied to each set. The spread over k is the protocol's
noise; the first set's distance from the mean over k says whether the thesis's ten images
are easier or harder than typical ones.
"""

from __future__ import annotations

import math
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aeexp import evaluate
from aeexp.config.run import RunConfig
from aeexp.data.dataset import load_dataset
from aeexp.errors import clip
from aeexp.io import paths, readers
from aeexp.registry.vocab import is_completed
from aeexp.store import rundir as store

# How many alternative picks per model: k = 1..OCCURRENCES (the MNIST test set has them all).
OCCURRENCES = 50
# Protocol variant -> the colormap the PNGs went through and the metric each run recorded.
VARIANTS = {"gray": "ssim_thesis", "viridis": "ssim_thesis_viridis"}


@dataclass(frozen=True)
class ModelNoise:
    """One saved model's ten-digit SSIM for each occurrence k = 1..K, per protocol variant."""

    path: Path
    values: dict[str, tuple[float, ...]]


@dataclass(frozen=True)
class ProtocolNoise:
    """A configuration's protocol noise, pooled over the models (seeds) that were measured."""

    models: tuple[ModelNoise, ...]
    variant: str

    @property
    def n_models(self) -> int:
        """Return how many saved models were measured."""
        return len(self.models)

    @property
    def occurrences(self) -> int:
        """Return K, the number of alternative picks per model."""
        return len(self.models[0].values[self.variant]) if self.models else 0

    @property
    def sd(self) -> float:
        """Return the pooled standard deviation over k: sqrt(mean over models of var_k)."""
        if not self.models or self.occurrences < 2:
            return math.nan
        variances = [np.var(m.values[self.variant], ddof=1) for m in self.models]
        return float(math.sqrt(np.mean(variances)))

    @property
    def first_offset(self) -> float:
        """Return the mean over models of (the thesis's pick, k = 1) minus (the mean over k)."""
        if not self.models:
            return math.nan
        values = [m.values[self.variant] for m in self.models]
        return float(np.mean([v[0] - np.mean(v) for v in values]))

    @property
    def pooled(self) -> tuple[float, ...]:
        """Return every model's per-k values, model-centred and re-added to the grand mean."""
        values = [np.asarray(m.values[self.variant]) for m in self.models]
        grand = float(np.mean([v.mean() for v in values]))
        return tuple(float(x) for v in values for x in v - v.mean() + grand)


def _evaluation_images(cfg: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """Return the images and labels ``cfg``'s run was evaluated on: the run's own choice."""
    dataset = load_dataset(cfg)  # the one rule for test set or holdout
    return dataset.x_eval, dataset.eval_labels


class Meter:
    """Measures saved models' protocol noise; reads each dataset and each model once."""

    def __init__(self, occurrences: int = OCCURRENCES) -> None:
        self.occurrences = occurrences
        self._data: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._models: dict[Path, ModelNoise | None] = {}

    def model(self, cfg: RunConfig, run_dir: Path) -> ModelNoise | None:
        """Return one run's per-occurrence SSIM, or None if it saved no model."""
        if run_dir not in self._models:
            self._models[run_dir] = self._measure(cfg, run_dir)
        return self._models[run_dir]

    def _measure(self, cfg: RunConfig, run_dir: Path) -> ModelNoise | None:
        path = run_dir / store.MODEL
        if not path.is_file():
            return None
        key = (cfg.data.path, cfg.data.train_limit, cfg.data.test_limit, cfg.data.holdout)
        if key not in self._data:
            self._data[key] = _evaluation_images(cfg)
        images, labels = self._data[key]
        ks = list(range(1, self.occurrences + 1))
        # Every image, chunked as the run was evaluated, so occurrence 1 is the run's own bits.
        try:
            reconstructed = predict(path, images)
        except UnusableModel as error:
            # One damaged file among many runs: the report goes on without its protocol noise.
            store.warn_skipped(run_dir, f"{error}; its protocol noise is not measured")
            return None
        values = {
            variant: tuple(
                float(v)
                for v in evaluate.ssim_thesis_occurrences(
                    images, reconstructed, labels, ks, colormap=variant
                )
            )
            for variant in VARIANTS
        }
        return ModelNoise(run_dir, values)

    def noise(self, runs: Sequence, variant: str) -> ProtocolNoise:
        """Return the protocol noise pooled over ``runs`` (completed runs with a saved model)."""
        measured = [
            m
            for r in runs
            if is_completed(r.metrics) and (m := self.model(r.config, r.path)) is not None
        ]
        return ProtocolNoise(tuple(measured), variant)


class UnusableModel(ValueError):
    """A saved model that cannot be loaded, or does not map the images to their own shape."""


def predict(model_path: Path, images: np.ndarray) -> np.ndarray:
    """Return a saved model's reconstructions of ``images`` (float32, as the run evaluated).

    Raises UnusableModel, with a one-line reason, for a file Keras cannot load or a model
    that is not an autoencoder of these images.
    """
    from aeexp.env.backend import import_keras, loaded_engine

    keras = import_keras()  # quietly: TensorFlow's start-up notices are not for a report
    # The engine of whichever backend Keras runs here: a report needs no particular one.
    engine = loaded_engine()

    found = paths.status(model_path)
    if found is None or not stat.S_ISREG(found.st_mode):
        raise UnusableModel(f"{store.MODEL} is not a regular file")
    if found.st_size > readers.MAX_MODEL_BYTES:  # Keras would unpack whatever it holds
        raise UnusableModel(f"{store.MODEL} is larger than {readers.MAX_MODEL_BYTES >> 20} MiB")
    if not zipfile.is_zipfile(model_path):  # else Keras says "File not found" of a junk file
        raise UnusableModel(f"{store.MODEL} is not a .keras (zip) archive")
    unpacked = _unpacked_size(model_path)
    if unpacked > readers.MAX_MODEL_BYTES:  # a zip bomb: a few MB that unpack to gigabytes
        raise UnusableModel(
            f"{store.MODEL} unpacks to {unpacked >> 20} MiB, more than "
            f"{readers.MAX_MODEL_BYTES >> 20} MiB"
        )
    try:
        # compile=False: the Keras 2.2 optimizer's state is not needed to reconstruct.
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as error:  # a damaged file surfaces as any of Keras's, zip's or h5's errors
        raise UnusableModel(f"{store.MODEL} cannot be loaded ({_reason(error)})") from None
    try:
        reconstructed = engine.reconstruct(model, images)
    except (ValueError, TypeError) as error:  # e.g. a model whose input is not 784 pixels
        raise UnusableModel(
            f"{store.MODEL} cannot reconstruct the images ({_reason(error)})"
        ) from None
    if reconstructed.shape != images.shape:
        raise UnusableModel(
            f"{store.MODEL} maps images of shape {images.shape} to {reconstructed.shape}"
        )
    return reconstructed


def _unpacked_size(path: Path) -> int:
    """Return what the archive's members claim to unpack to, in bytes."""
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(member.file_size for member in archive.infolist())
    except (OSError, zipfile.BadZipFile) as error:
        raise UnusableModel(f"{store.MODEL} is not a readable zip ({_reason(error)})") from None


def _reason(error: Exception) -> str:
    """Return an error's type and message, on one short line."""
    return clip(f"{type(error).__name__}: {error}", 200)
