"""Train a lock-step group and evaluate it: configs and a dataset in, each run's files out.

Nothing here touches the output folder. Every run comes back as :class:`RunArtifacts`
(metrics and the bytes of each file), so the same code serves the local executor and a
Ray worker on a machine that cannot see the output folder; the driver writes them.
"""

from __future__ import annotations

import datetime as dt
import io
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aeexp import __version__, engine, evaluate, host, losses, optimizers, plots, store
from aeexp.config import RunConfig
from aeexp.dataset import Dataset
from aeexp.events import GroupEvents
from aeexp.executors import StopRule
from aeexp.model import build_autoencoder
from aeexp.plan import group_key
from aeexp.store import RunArtifacts
from aeexp.vocab import Status


def library_versions() -> dict[str, str]:
    """Return the versions that determine a run's numbers."""
    import keras
    import skimage
    import tensorflow as tf

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


def _headline(history: engine.History) -> dict[str, Any]:
    finite = history.diverged_epoch is None
    headline: dict[str, Any] = {
        "status": Status.COMPLETED if finite else Status.DIVERGED,
        "diverged_epoch": history.diverged_epoch,
        "epochs_trained": len(history.loss),
        "final_loss": history.loss[-1] if finite else None,
        "final_val_loss": history.val_loss[-1] if finite else None,
    }
    if history.stopped_epoch is not None:  # only a tuned run can be pruned: others lack the key
        headline |= {"status": Status.PRUNED, "pruned_epoch": history.stopped_epoch}
    return headline


def _history_csv(history: engine.History) -> str:
    epochs = range(1, len(history.loss) + 1)
    columns = (epochs, history.loss, history.val_loss, history.seconds)
    rows = [dict(zip(store.HISTORY_FIELDS, row, strict=True)) for row in zip(*columns, strict=True)]
    return store.encode_csv(rows, store.HISTORY_FIELDS)


def _png(draw: Callable[[io.BytesIO], None]) -> bytes:
    buffer = io.BytesIO()
    draw(buffer)
    return buffer.getvalue()


def _model_bytes(model: Any) -> bytes:
    # Keras saves to a path only; a private temporary folder, never the output folder.
    with tempfile.TemporaryDirectory(prefix="aeexp-model-") as folder:
        path = Path(folder) / store.MODEL
        model.save(path)
        return path.read_bytes()


def run_files(
    config: RunConfig,
    member: engine.Member,
    history: engine.History,
    metrics: dict[str, Any],
    reconstructed: np.ndarray | None,
    dataset: Dataset,
) -> dict[str, bytes]:
    """Return every file of a run directory as bytes, keyed by file name."""
    title = losses.describe(config.loss.name, **config.loss.params())
    files = {
        store.CONFIG: store.encode_yaml(config.resolved()).encode(),
        store.HISTORY: _history_csv(history).encode(),
        store.LOSS_PLOT: _png(
            lambda out: plots.loss_history(history.loss, history.val_loss, title, out)
        ),
        store.MODEL: _model_bytes(member.model),
        store.METRICS: store.encode_json(metrics).encode(),
    }
    if reconstructed is not None:
        digits = evaluate.thesis_digit_indices(dataset.eval_labels)
        originals = dataset.x_eval[digits]
        files[store.RECONSTRUCTIONS] = _png(
            lambda out: plots.reconstructions(originals, reconstructed[digits], out, title=title)
        )
    return files


def _devices() -> dict[str, Any]:
    """Return the GPUs TensorFlow trained on, when there are any (absent on a CPU run)."""
    from aeexp.backend import gpu_names

    gpus = gpu_names()
    return {"gpus": gpus} if gpus else {}


def _shared_metrics(configs: Sequence[RunConfig], dataset: Dataset, seconds: float) -> dict:
    return {
        "train_seconds": round(seconds, 3),
        "group_size": len(configs),
        "data": {
            "source": dataset.source,
            "sha256": dataset.sha256,
            "train_images": len(dataset.train_images),
            "test_images": len(dataset.eval_images),
        },
        "versions": library_versions(),
        "machine": host.record(),
        **_devices(),
    }


def train_group(
    configs: Sequence[RunConfig],
    dataset: Dataset,
    on_epoch: engine.EpochCallback | None = None,
    xla: bool = True,
    stop: StopRule | None = None,
) -> list[RunArtifacts]:
    """Train ``configs`` (which share a group key) in lock-step; evaluate; return their files.

    ``stop`` (a tuner's pruner) may stop members after any epoch: they are recorded as
    pruned, with their history so far, and evaluated as they stand.
    """
    if len({group_key(c) for c in configs}) != 1:
        raise ValueError("a group's members must share data, train settings and seed")
    engine.enable_determinism()
    first = configs[0]
    members = [_build_member(c) for c in configs]
    trainer = engine.GroupTrainer(
        members, dataset.x_train, dataset.x_eval, first.train.batch_size, first.seed, xla=xla
    )
    logged = [c.run_id for c in configs if c.output.tensorboard]
    events = GroupEvents(logged) if logged else None
    try:
        started = time.perf_counter()
        histories = trainer.train(
            first.train.epochs,
            _with_events(configs, events, on_epoch),
            None if stop is None else _engine_stop(configs, stop),
        )
        shared = _shared_metrics(configs, dataset, time.perf_counter() - started)
        return [
            _artifacts(config, member, history, shared, dataset, events, stop)
            for config, member, history in zip(configs, members, histories, strict=True)
        ]
    finally:
        if events is not None:
            events.close()


def _engine_stop(configs: Sequence[RunConfig], stop: StopRule) -> engine.StopCallback:
    """Return the engine's stop callback (member indices) for a rule that speaks run ids."""
    run_ids = [config.run_id for config in configs]

    def decide(epoch: int, histories: Sequence[engine.History], active: Sequence[int]) -> list[int]:
        chosen = stop.stop(epoch, {run_ids[i]: histories[i].val_loss for i in active})
        return [i for i in active if run_ids[i] in chosen]

    return decide


def _with_events(
    configs: Sequence[RunConfig], events: GroupEvents | None, on_epoch: engine.EpochCallback | None
) -> engine.EpochCallback | None:
    """Return the epoch callback that also writes TensorBoard scalars, if any are asked for."""
    if events is None:
        return on_epoch

    def callback(epoch: int, histories: Sequence[engine.History]) -> None:
        by_id = {c.run_id: h for c, h in zip(configs, histories, strict=True)}
        events.epoch(epoch, {run_id: by_id[run_id] for run_id in events.paths})
        if on_epoch is not None:
            on_epoch(epoch, histories)

    return callback


def _artifacts(
    config: RunConfig,
    member: engine.Member,
    history: engine.History,
    shared: dict[str, Any],
    dataset: Dataset,
    events: GroupEvents | None,
    stop: StopRule | None = None,
) -> RunArtifacts:
    """Evaluate a trained member and return its metrics and files."""
    metrics: dict[str, Any] = {"run_id": config.run_id, "name": config.name}
    metrics |= _headline(history)
    reconstructed = None
    # A pruned member is judged as it stands when stopped (cheap: one compiled pass).
    if metrics["status"] in (Status.COMPLETED, Status.PRUNED):
        eval_started = time.perf_counter()
        reconstructed = engine.reconstruct(member.model, dataset.x_eval)
        metrics |= evaluate.evaluate(dataset.x_eval, reconstructed, dataset.eval_labels)
        metrics["eval_seconds"] = round(time.perf_counter() - eval_started, 3)
    metrics |= shared
    if stop is not None:
        metrics |= stop.record(config.run_id, metrics["status"])
    metrics["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    files = run_files(config, member, history, metrics, reconstructed, dataset)
    if events is not None and config.run_id in events.paths:
        if store.RECONSTRUCTIONS in files:
            step = len(history.loss)
            events.image(config.run_id, "reconstructions", files[store.RECONSTRUCTIONS], step)
        files |= events.files(config.run_id)
    return RunArtifacts(config.run_id, metrics, files)
