"""The thesis's figures: loss histories and reconstructions, plus sweep charts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # Files only: never needs a display.

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(figure: plt.Figure, path: Path) -> None:
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def loss_history(loss: Sequence[float], val_loss: Sequence[float], title: str, path: Path) -> None:
    """Plot training and validation loss against epoch, titled with the loss name."""
    figure, axes = plt.subplots(figsize=(5.5, 3.8))
    epochs = np.arange(1, len(loss) + 1)
    axes.plot(epochs, loss, label="training loss")
    axes.plot(epochs, val_loss, label="validation loss")
    axes.set(title=title, xlabel="epoch", ylabel="loss")
    axes.legend()
    axes.grid(alpha=0.3)
    _save(figure, path)


def reconstructions(
    originals: np.ndarray, reconstructed: np.ndarray, path: Path, title: str | None = None
) -> None:
    """Draw originals over their reconstructions in gray, one column per digit."""
    count = len(originals)
    figure, axes = plt.subplots(2, count, figsize=(1.2 * count, 2.6), squeeze=False)
    for column in range(count):
        for row, images in enumerate((originals, reconstructed)):
            ax = axes[row, column]
            ax.imshow(np.asarray(images[column]).reshape(28, 28), cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, column].set_title(str(column), fontsize=9)
    axes[0, 0].set_ylabel("original", fontsize=8)
    axes[1, 0].set_ylabel("reconstruction", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    _save(figure, path)
