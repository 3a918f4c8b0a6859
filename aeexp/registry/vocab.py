"""The words every module shares, each defined once: metrics, labels, loss keys, run statuses.

Nothing here imports the rest of aeexp (nor TensorFlow), so the CLI, the config schema and
the analysis can all derive their lists from this module and stay light.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Keras's fuzz factor: the divergences' clipping floor the thesis trained with, the epsilon
# default of every Keras 2.2 optimizer, and the thesis's ReLU floor max(u, eps).
EPSILON = 1e-7


# --- Metrics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One number a run records in metrics.json, and where the commands offer it."""

    name: str
    label: str
    higher_is_better: bool | None  # None: not a score (a spread, an epoch, a duration)
    table: bool = False  # ``aeexp table --metric`` may show it
    compare: bool = False  # ``aeexp compare`` shows it by default
    select: int | None = None  # position among ``aeexp select --metric``'s choices
    completed: bool = True  # every completed run records it, so ``aeexp tune`` may rank by it


# In runs.csv's column order. Adding a metric here offers it wherever its flags say.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("ssim_thesis", "SSIM, thesis protocol", True, table=True, compare=True, select=2),
        Metric(
            "ssim_thesis_viridis",
            "SSIM, thesis protocol on viridis images",
            True,
            table=True,
            compare=True,
            select=3,
        ),
        Metric(
            "ssim_mean", "SSIM, mean over the test set", True, table=True, compare=True, select=0
        ),
        Metric("ssim_std", "SSIM, standard deviation over the test set", None),
        Metric("ssim_median", "SSIM, median over the test set", True, table=True, select=1),
        Metric(
            "psnr_mean",
            "PSNR (dB), mean over the test set",
            True,
            table=True,
            compare=True,
            select=4,
        ),
        Metric("mse", "MSE over the test set", False, table=True, compare=True),
        Metric("final_loss", "final training loss", False),
        Metric("final_val_loss", "final validation loss", False, table=True, compare=True),
        Metric("pruned_epoch", "epoch a tuner's pruner stopped the run at", None, completed=False),
        Metric("diverged_epoch", "epoch the run diverged at", None, completed=False),
        Metric("train_seconds", "training time (s)", None),
    )
}
SUMMARY_METRICS = tuple(METRICS)  # runs.csv's metric columns
TABLE_METRICS = tuple(m.name for m in METRICS.values() if m.table)
COMPARE_METRICS = tuple(m.name for m in METRICS.values() if m.compare)
SELECT_METRICS = tuple(
    m.name
    for m in sorted((m for m in METRICS.values() if m.select is not None), key=lambda m: m.select)
)


def higher_is_better(metric: str) -> bool:
    """Return whether a larger ``metric`` is better; a metric with no direction raises."""
    direction = METRICS[metric].higher_is_better if metric in METRICS else None
    if direction is None:
        raise ValueError(f"{metric!r} has no known direction (higher or lower is better)")
    return direction


# --- Run status -------------------------------------------------------------------------------


class Status(enum.StrEnum):
    """What became of a run. Members are strings, so they compare and serialise as such."""

    PENDING = "pending"  # no readable metrics.json: not trained yet, or damaged
    COMPLETED = "completed"
    DIVERGED = "diverged"
    FAILED = "failed"
    # Stopped early by a tuner's pruner (``aeexp tune``): its history up to ``pruned_epoch``
    # and its metrics as it stood then are kept; tables, like for a diverged run, leave it out.
    PRUNED = "pruned"


# The statuses a finished run's metrics.json may record: every status but pending.
RECORDED_STATUSES = frozenset(Status) - {Status.PENDING}


def status_of(metrics: Mapping[str, Any] | None) -> str:
    """Return a run's status from its metrics.json, or ``pending`` without one.

    The one rule for a metrics.json with no ``status``: it is ``completed``. Every writer
    records a status (diverged and failed runs always say so), so only a finished run can
    lack one. Readers ask here instead of testing the field themselves.
    """
    if metrics is None:
        return Status.PENDING
    return str(metrics.get("status", Status.COMPLETED))


def is_completed(metrics: Mapping[str, Any] | None) -> bool:
    """Return whether a run finished training (see :func:`status_of`)."""
    return status_of(metrics) == Status.COMPLETED


# --- Labels and keys --------------------------------------------------------------------------

ACTIVATION_LABELS = {"relu": "ReLU", "sigmoid": "Sigmoid"}


def activation_pair(encoder: str, decoder: str) -> str:
    """Return the thesis's name for an activation pair, e.g. ``ReLU-Sigmoid``."""
    return f"{ACTIVATION_LABELS.get(encoder, encoder)}-{ACTIVATION_LABELS.get(decoder, decoder)}"


def decoder_label(cfg: Any) -> str:
    """Return a run's (a RunConfig's) activation pair, e.g. ``ReLU-Sigmoid``: a table's row."""
    return activation_pair(cfg.model.encoder_activation, cfg.model.decoder_activation)


# The thesis's two rows: a ReLU encoder with either decoder activation, keyed by the latter.
DECODERS = {decoder: activation_pair("relu", decoder) for decoder in ("relu", "sigmoid")}


# --- Loss headers ------------------------------------------------------------------------------

LOSS_HEADERS = {"mse": "MSE", "i_div1": "E_I1", "i_div2": "E_I2"}


def loss_header(key: str) -> str:
    """Return a column header for a loss key: the thesis's symbol, or the key itself."""
    return LOSS_HEADERS.get(key, key)


# Grid points a sweep may expand to unless --max-runs raises it: 50x the largest study.
DEFAULT_MAX_RUNS = 10_000
# Runs trained in lock-step at once; a 30-member group peaks near 2.2 GB (bench/README.md).
DEFAULT_MAX_GROUP = 30
