"""The thesis's figures: loss histories and reconstructions, plus sweep charts."""

from __future__ import annotations

import io
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import BinaryIO

import numpy as np

# Figures made directly, never through pyplot: writing PNGs needs no backend, and a
# notebook's own pyplot backend (inline plots) is left as the user set it.
from matplotlib.figure import Figure


def _save(figure: Figure, path: Path | BinaryIO) -> None:
    """Write a PNG to a file object, or to a path atomically (flushed, the umask's mode)."""
    from aeexp.io import atomic

    if isinstance(path, str | PathLike):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        atomic.write_bytes_atomic(Path(path), buffer.getvalue())
    else:
        figure.savefig(path, format="png", dpi=110, bbox_inches="tight")


def _subplots(*grid: int, **options: object) -> tuple[Figure, object]:
    """Return a figure and its axes as ``pyplot.subplots`` would, without pyplot."""
    figsize = options.pop("figsize", None)
    figure = Figure(figsize=figsize)  # type: ignore[arg-type]
    return figure, figure.subplots(*grid, **options)  # type: ignore[arg-type]


def loss_history(loss: Sequence[float], val_loss: Sequence[float], title: str, path: Path) -> None:
    """Plot training and validation loss against epoch, titled with the loss name."""
    figure, axes = _subplots(figsize=(5.5, 3.8))
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
    figure, axes = _subplots(2, count, figsize=(1.2 * count, 2.6), squeeze=False)
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


def grouped_bars(
    groups: Sequence[str],
    series: dict[str, Sequence[tuple[float, float]]],
    ylabel: str,
    title: str,
    path: Path,
    markers: Sequence[float | None] | None = None,
) -> None:
    """Draw bars per group (e.g. loss) for each series (e.g. optimizer), with error bars.

    ``series`` maps a label to (height, error) per group. ``markers`` (one per group, None
    for none) draws a black line across the group, e.g. the published value.
    """
    figure, axes = _subplots(figsize=(1.6 + 1.3 * len(groups) * max(len(series), 1) / 3, 3.8))
    width = 0.8 / max(len(series), 1)
    positions = np.arange(len(groups))
    for index, (label, values) in enumerate(series.items()):
        means = [m for m, _ in values]
        errors = [s for _, s in values]
        axes.bar(
            positions + (index - (len(series) - 1) / 2) * width,
            means,
            width,
            yerr=errors,
            capsize=2,
            label=label,
        )
    marked = False
    for position, value in zip(positions, markers or [], strict=False):
        if value is not None:
            axes.hlines(
                value,
                position - 0.45,
                position + 0.45,
                colors="black",
                linewidth=2,
                label=None if marked else "published",
                zorder=5,
            )
            marked = True
    axes.set_xticks(positions, groups)
    axes.set(ylabel=ylabel, title=title)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(
            fontsize=8, ncols=min(len(series), 5), loc="lower center", bbox_to_anchor=(0.5, -0.32)
        )
    axes.grid(axis="y", alpha=0.3)
    _save(figure, path)


def line_with_errors(
    x: Sequence[float],
    curves: dict[str, Sequence[tuple[float, float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    path: Path,
    references: dict[str, tuple[float, float]] | None = None,
) -> None:
    """Plot mean +- std curves against ``x``, with optional horizontal reference bands."""
    figure, axes = _subplots(figsize=(5.5, 3.8))
    for label, values in curves.items():
        means = np.array([m for m, _ in values])
        stds = np.array([s for _, s in values])
        axes.errorbar(x, means, yerr=stds, marker="o", capsize=3, label=label)
    for index, (label, (mean, std)) in enumerate((references or {}).items()):
        color = f"C{len(curves) + index}"
        axes.axhline(mean, color=color, linestyle="--", label=label)
        axes.axhspan(mean - std, mean + std, color=color, alpha=0.12)
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    _save(figure, path)


def history_grid(
    panels: Sequence[tuple[str, Sequence[float], Sequence[float]]], path: Path, columns: int = 3
) -> None:
    """Draw one small loss-history panel (training and validation) per (title, loss, val)."""
    rows = max(1, -(-len(panels) // columns))
    figure, axes = _subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, loss, val_loss) in zip(axes.flat, panels, strict=False):
        epochs = np.arange(1, len(loss) + 1)
        ax.plot(epochs, loss, label="training")
        ax.plot(epochs, val_loss, label="validation")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    figure.tight_layout()
    _save(figure, path)


def cell_spread(
    title: str,
    columns: Sequence[tuple[str, Sequence[float], tuple[float, float, float], float]],
    published: float,
    ylabel: str,
    path: Path,
) -> None:
    """Draw, on one axis, per column: the seed values, their 95% interval and the protocol spread.

    Each column is (label, seed values, (mean, CI low, CI high), protocol sd); the protocol
    spread is drawn as mean ± 1 sd beside the interval, the published value as a line.
    """
    figure, axes = _subplots(figsize=(1.2 + 1.5 * max(len(columns), 1), 3.8))
    for x, (_, values, (mean, low, high), protocol_sd) in enumerate(columns):
        axes.scatter(
            np.full(len(values), x - 0.18),
            values,
            s=14,
            color="C0",
            label="seeds" if not x else None,
        )
        axes.errorbar(
            [x],
            [mean],
            yerr=[[mean - low], [high - mean]],
            fmt="o",
            color="C1",
            capsize=4,
            label="mean, 95% t interval" if not x else None,
        )
        if np.isfinite(protocol_sd) and protocol_sd > 0:
            axes.errorbar(
                [x + 0.18],
                [mean],
                yerr=[protocol_sd],
                fmt="none",
                color="C2",
                capsize=4,
                linewidth=3,
                label="protocol spread (± 1 sd over picks)" if not x else None,
            )
    axes.axhline(published, color="black", linestyle="--", label="published")
    axes.set_xticks(range(len(columns)), [c[0] for c in columns], fontsize=8)
    axes.set(ylabel=ylabel, title=title)
    axes.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, -0.42), ncols=2)
    axes.grid(axis="y", alpha=0.3)
    _save(figure, path)


# How each kind of trial is drawn: a completed one filled, a pruned one hollow (its metric is
# as it stood when stopped), one without a metric as a cross on the panel's floor.
_TRIAL_STYLES = {
    "completed": {"marker": "o", "color": "C0", "label": "completed"},
    "pruned": {
        "marker": "o",
        "facecolors": "none",
        "edgecolors": "C1",
        "label": "pruned (when stopped)",
    },
    "none": {"marker": "x", "color": "C3", "label": "diverged or failed (no value)"},
}


def search_trials(
    panels: Sequence[tuple[str, Sequence[tuple[float, float | None, str]], int | None]],
    xlabel: str,
    ylabel: str,
    path: Path,
    log_x: bool = True,
    columns: int = 3,
) -> None:
    """Draw one panel per cell: each trial's metric against a searched value.

    A panel is (title, points, index of the best point or None); a point is (x, metric or
    None, kind), kind ``completed`` or ``pruned``; a point without a metric is drawn as a
    cross at the bottom of its panel, the best as a star.
    """
    columns = max(1, min(columns, len(panels)))
    rows = max(1, -(-len(panels) // columns))
    figure, axes = _subplots(rows, columns, figsize=(4.4 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, points, best) in zip(axes.flat, panels, strict=False):
        for kind, style in _TRIAL_STYLES.items():
            chosen = [(x, y) for x, y, k in points if (k if y is not None else "none") == kind]
            if not chosen:
                continue
            xs = [x for x, _ in chosen]
            if kind == "none":  # no value: on the floor, in axes coordinates
                ax.scatter(xs, [0.03] * len(xs), transform=ax.get_xaxis_transform(), **style)
            else:
                ax.scatter(xs, [y for _, y in chosen], s=22, **style)
        if best is not None:
            x, y, _ = points[best]
            ax.scatter([x], [y], marker="*", s=140, color="gold", edgecolors="black", label="best")
        if log_x:
            ax.set_xscale("log")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    handles: dict[str, object] = {}
    for ax in axes.flat[: len(panels)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        figure.legend(
            list(handles.values()),
            list(handles),
            loc="lower center",
            ncols=len(handles),
            fontsize=8,
        )
    figure.tight_layout(rect=(0, 0.06 if handles else 0, 1, 1))
    _save(figure, path)
