"""Turn validated run configs into trained, evaluated run directories.

This is the one place that ties config, data, model, engine, evaluation and results
together; ``aeexp run`` calls it with a group of one, ``aeexp sweep`` with larger groups.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from aeexp import data as data_lib
from aeexp import engine, evaluate, host, losses, optimizers, plots, results
from aeexp.config import RunConfig
from aeexp.errors import UserError
from aeexp.model import build_autoencoder

HISTORY_FIELDS = ("epoch", "loss", "val_loss", "seconds")


@dataclass(frozen=True)
class Dataset:
    """MNIST as the engine and evaluation need it, plus where it came from."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    sha256: str | None


@dataclass(frozen=True)
class RunOutcome:
    """What became of one run: its directory and headline metrics."""

    config: RunConfig
    run_dir: Path
    metrics: dict[str, Any]

    @property
    def status(self) -> str:
        """Return ``completed`` or ``diverged``."""
        return self.metrics["status"]


def run_dir_of(config: RunConfig) -> Path:
    """Return where ``config``'s run directory lives."""
    return config.experiment_dir / config.run_id


def group_key(config: RunConfig) -> tuple[Any, ...]:
    """Return what members of one lock-step group must share."""
    return (config.data, config.train, config.seed)


def load_dataset(config: RunConfig) -> Dataset:
    """Load and validate the MNIST that ``config`` asks for (test set, or a training holdout)."""
    settings = config.data
    mnist = data_lib.load_mnist(settings.path, settings.train_limit, settings.test_limit)
    source = data_lib.resolve_source(settings.path)
    x_train, x_test, y_test = mnist.train_pixels(), mnist.test_pixels(), np.asarray(mnist.y_test)
    description = source.describe()
    # The setting that chose the evaluation images, to name if they cannot serve the thesis SSIM.
    limit = None if settings.test_limit is None else f"data.test_limit={settings.test_limit}"
    if settings.holdout is not None:
        if settings.holdout >= len(x_train):
            raise UserError(
                f"data.holdout {settings.holdout} leaves no training images "
                f"(there are {len(x_train)})"
            )
        split = len(x_train) - settings.holdout
        x_train, x_test = x_train[:split], x_train[split:]
        y_test = np.asarray(mnist.y_train[split:])
        description += f"; evaluated on the last {settings.holdout} training images"
        limit = f"data.holdout={settings.holdout}"
    _check_thesis_digits(y_test, limit)
    return Dataset(x_train, x_test, y_test, description, data_lib.sha256_of(source))


def _check_thesis_digits(labels: np.ndarray, limit: str | None) -> None:
    """Raise the evaluation's UserError now, before training, if the thesis SSIM cannot run."""
    try:
        evaluate.thesis_digit_indices(labels)
    except UserError as error:
        if limit is None:
            raise
        raise UserError(f"{limit}: {error}") from None


def library_versions() -> dict[str, str]:
    """Return the versions that determine a run's numbers."""
    import keras
    import skimage
    import tensorflow as tf

    from aeexp import __version__

    return {
        "aeexp": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scikit-image": skimage.__version__,
    }


def _build_member(config: RunConfig) -> engine.Member:
    return engine.Member(
        model=build_autoencoder(config.model, config.seed),
        optimizer=optimizers.build(config.optimizer.name, **config.optimizer.params),
        loss=losses.get(config.loss.name, **config.loss.params()),
    )


def _epoch_bar(configs: Sequence[RunConfig], quiet: bool) -> tqdm:
    label = configs[0].name if len(configs) == 1 else f"group of {len(configs)}"
    return tqdm(
        total=configs[0].train.epochs,
        desc=label,
        unit="epoch",
        disable=quiet,
        leave=len(configs) == 1,
        dynamic_ncols=True,
    )


def _headline(history: engine.History) -> dict[str, Any]:
    finite = history.diverged_epoch is None
    return {
        "status": "completed" if finite else "diverged",
        "diverged_epoch": history.diverged_epoch,
        "epochs_trained": len(history.loss),
        "final_loss": history.loss[-1] if finite else None,
        "final_val_loss": history.val_loss[-1] if finite else None,
    }


def _evaluation(model: Any, dataset: Dataset) -> tuple[dict[str, Any], np.ndarray]:
    reconstructed = np.asarray(model(dataset.x_test, training=False))
    return evaluate.evaluate(dataset.x_test, reconstructed, dataset.y_test), reconstructed


def _write_run(
    config: RunConfig,
    member: engine.Member,
    history: engine.History,
    metrics: dict[str, Any],
    reconstructed: np.ndarray | None,
    dataset: Dataset,
) -> Path:
    """Write every file of a run into a staging folder, then move it into place."""
    run_dir = run_dir_of(config)
    title = losses.describe(config.loss.name, **config.loss.params())
    with results.staged_run_dir(run_dir) as staging:
        results.write_yaml(staging / results.CONFIG, config.resolved())
        rows = [
            dict(zip(HISTORY_FIELDS, row, strict=True))
            for row in zip(
                range(1, len(history.loss) + 1),
                history.loss,
                history.val_loss,
                history.seconds,
                strict=True,
            )
        ]
        results.write_csv(staging / results.HISTORY, rows, HISTORY_FIELDS)
        plots.loss_history(history.loss, history.val_loss, title, staging / results.LOSS_PLOT)
        if reconstructed is not None:
            digits = evaluate.thesis_digit_indices(dataset.y_test)
            plots.reconstructions(
                dataset.x_test[digits],
                reconstructed[digits],
                staging / results.RECONSTRUCTIONS,
                title=title,
            )
        member.model.save(staging / results.MODEL)
        results.write_json(staging / results.METRICS, metrics)  # last: marks the run complete
    return run_dir


def train_group(
    configs: Sequence[RunConfig], dataset: Dataset, quiet: bool = False, xla: bool = True
) -> list[RunOutcome]:
    """Train ``configs`` (which share a group key) in lock-step, evaluate and write each run."""
    assert len({group_key(c) for c in configs}) == 1, "a group must share data, train, seed"
    engine.enable_determinism()
    first = configs[0]
    members = [_build_member(c) for c in configs]
    trainer = engine.GroupTrainer(
        members, dataset.x_train, dataset.x_test, first.train.batch_size, first.seed, xla=xla
    )
    started = time.perf_counter()
    with _epoch_bar(configs, quiet) as bar:

        def on_epoch(epoch: int, histories: Sequence[engine.History]) -> None:
            bar.update(1)
            bar.set_postfix(
                loss=f"{histories[0].loss[-1]:.4g}", val_loss=f"{histories[0].val_loss[-1]:.4g}"
            )

        histories = trainer.train(first.train.epochs, on_epoch)
    train_seconds = time.perf_counter() - started
    shared = {
        "train_seconds": round(train_seconds, 3),
        "group_size": len(configs),
        "data": {
            "source": dataset.source,
            "sha256": dataset.sha256,
            "train_images": len(dataset.x_train),
            "test_images": len(dataset.x_test),
        },
        "versions": library_versions(),
        "machine": host.record(),
    }
    outcomes = []
    for config, member, history in zip(configs, members, histories, strict=True):
        metrics: dict[str, Any] = {
            "run_id": config.run_id,
            "name": config.name,
            **_headline(history),
        }
        reconstructed = None
        if metrics["status"] == "completed":
            eval_started = time.perf_counter()
            scores, reconstructed = _evaluation(member.model, dataset)
            metrics |= scores
            metrics["eval_seconds"] = round(time.perf_counter() - eval_started, 3)
        metrics |= shared
        metrics["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        run_dir = _write_run(config, member, history, metrics, reconstructed, dataset)
        outcomes.append(RunOutcome(config, run_dir, metrics))
    return outcomes
