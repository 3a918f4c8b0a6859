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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aeexp import evaluate, plots
from aeexp._version import __version__
from aeexp.config.run import RunConfig
from aeexp.config.sweep import group_key
from aeexp.data.dataset import Dataset
from aeexp.engines.base import Engine, EpochCallback, History, StopCallback, StopRule
from aeexp.env import backend, host, pinned
from aeexp.execute import interrupts
from aeexp.io import atomic
from aeexp.registry import losses
from aeexp.registry.vocab import Status
from aeexp.store import rundir as store
from aeexp.store.rundir import RunArtifacts

if TYPE_CHECKING:
    from aeexp.engines.events import GroupEvents


def library_versions(engine: Engine) -> dict[str, str]:
    """Return the versions that determine a run's numbers on ``engine``.

    The engine names its framework's (a TensorFlow run records what it always did; a JAX run
    names its backend, JAX and jaxlib instead of TensorFlow, which it never imports).
    """
    import skimage

    keras = backend.import_keras()
    versions = {"aeexp": __version__, "python": platform.python_version()}
    return (
        versions
        | engine.versions()
        | {
            "keras": keras.__version__,
            "numpy": np.__version__,
            "scikit-image": skimage.__version__,
        }
    )


def _headline(history: History) -> dict[str, Any]:
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


def _history_csv(history: History) -> str:
    epochs = range(1, len(history.loss) + 1)
    columns = (epochs, history.loss, history.val_loss, history.seconds)
    rows = [dict(zip(store.HISTORY_FIELDS, row, strict=True)) for row in zip(*columns, strict=True)]
    return atomic.encode_csv(rows, store.HISTORY_FIELDS)


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
    member: Any,
    history: History,
    *,
    metrics: dict[str, Any],
    reconstructed: np.ndarray | None,
    dataset: Dataset,
) -> dict[str, bytes]:
    """Return every file of a run directory as bytes, keyed by file name."""
    title = losses.describe(config.loss.name, **config.loss.params())
    files = {
        store.CONFIG: atomic.encode_yaml(config.resolved()).encode(),
        store.HISTORY: _history_csv(history).encode(),
        store.LOSS_PLOT: _png(
            lambda out: plots.loss_history(history.loss, history.val_loss, title, out)
        ),
        store.MODEL: _model_bytes(member.model),
        store.METRICS: atomic.encode_json(metrics).encode(),
    }
    if reconstructed is not None:
        picks = evaluate.thesis_class_indices(dataset.eval_labels)
        originals = dataset.x_eval[picks]
        files[store.RECONSTRUCTIONS] = _png(
            lambda out: plots.reconstructions(originals, reconstructed[picks], out, title=title)
        )
    return files


def _devices(engine: Engine) -> dict[str, Any]:
    """Return the accelerators the engine trained on, if any (absent on a CPU run)."""
    gpus = [d.get("model", d["name"]) for d in engine.devices() if d["type"] != "CPU"]
    return {"gpus": gpus} if gpus else {}


def _shared_metrics(
    configs: Sequence[RunConfig], dataset: Dataset, seconds: float, engine: Engine | None = None
) -> dict:
    if engine is None:
        engine = backend.engine(configs[0].train.backend)
    return {
        "train_seconds": round(seconds, 3),
        "group_size": len(configs),
        "data": {
            "name": dataset.name,
            "source": dataset.source,
            "sha256": dataset.sha256,
            "train_images": len(dataset.train_images),
            "test_images": len(dataset.eval_images),
        },
        "versions": library_versions(engine),
        # Whether the packages that decide the numbers had the lock's versions (aeexp env).
        "locked_environment": pinned.is_locked(),
        "machine": host.record(),
        **_devices(engine),
    }


def train_group(
    configs: Sequence[RunConfig],
    dataset: Dataset,
    on_epoch: EpochCallback | None = None,
    xla: bool = True,
    stop: StopRule | None = None,
) -> list[RunArtifacts]:
    """Train ``configs`` (which share a group key) in lock-step; evaluate; return their files.

    The group's ``train.backend`` picks the engine (:func:`aeexp.env.backend.start`);
    ``xla`` applies where the engine may choose (TensorFlow's; JAX always compiles).
    ``stop`` (a tuner's pruner) may stop members after any epoch: they are recorded as
    pruned, with their history so far, and evaluated as they stand.
    """
    if len({group_key(c) for c in configs}) != 1:
        raise ValueError("a group's members must share data, train settings and seed")
    first = configs[0]
    engine: Engine = backend.start(first.train.backend)
    engine.enable_determinism()
    members = [engine.build_member(c) for c in configs]
    trainer = engine.group_trainer(
        members, dataset.x_train, dataset.x_eval, first.train.batch_size, first.seed, xla=xla
    )
    logged = [c.run_id for c in configs if c.output.tensorboard]
    events = _events(logged)
    try:
        started = time.perf_counter()
        histories = trainer.train(
            first.train.epochs,
            _with_events(configs, events, on_epoch),
            None if stop is None else _engine_stop(configs, stop),
        )
        shared = _shared_metrics(configs, dataset, time.perf_counter() - started, engine)
        group = _Group(shared, dataset, engine, events, stop)
        artifacts = []
        for config, member, history in zip(configs, members, histories, strict=True):
            interrupts.check()  # between evaluations: a group of 30 takes a while
            artifacts.append(_artifacts(config, member, history, group))
        return artifacts
    finally:
        if events is not None:
            events.close()


def _engine_stop(configs: Sequence[RunConfig], stop: StopRule) -> StopCallback:
    """Return the engine's stop callback (member indices) for a rule that speaks run ids."""
    run_ids = [config.run_id for config in configs]

    def decide(epoch: int, histories: Sequence[History], active: Sequence[int]) -> list[int]:
        chosen = stop.stop(epoch, {run_ids[i]: histories[i].val_loss for i in active})
        return [i for i in active if run_ids[i] in chosen]

    return decide


def _events(run_ids: Sequence[str]) -> GroupEvents | None:
    """Return TensorBoard writers for ``run_ids``, or None when no run asked for events."""
    if not run_ids:
        return None
    from aeexp.engines.events import GroupEvents

    return GroupEvents(run_ids)


def _with_events(
    configs: Sequence[RunConfig], events: GroupEvents | None, on_epoch: EpochCallback | None
) -> EpochCallback | None:
    """Return the epoch callback that also writes TensorBoard scalars, if any are asked for."""
    if events is None:
        return on_epoch

    def callback(epoch: int, histories: Sequence[History]) -> None:
        by_id = {c.run_id: h for c, h in zip(configs, histories, strict=True)}
        events.epoch(epoch, {run_id: by_id[run_id] for run_id in events.paths})
        if on_epoch is not None:
            on_epoch(epoch, histories)

    return callback


@dataclass(frozen=True)
class _Group:
    """What every member of a trained group is evaluated and recorded with."""

    shared: dict[str, Any]  # the metrics every member records alike
    dataset: Dataset
    engine: Engine
    events: GroupEvents | None
    stop: StopRule | None


def _artifacts(config: RunConfig, member: Any, history: History, group: _Group) -> RunArtifacts:
    """Evaluate a trained member and return its metrics and files."""
    dataset, engine, events, stop = group.dataset, group.engine, group.events, group.stop
    metrics: dict[str, Any] = {"run_id": config.run_id, "name": config.name}
    metrics |= _headline(history)
    reconstructed = None
    # A pruned member is judged as it stands when stopped (cheap: one compiled pass).
    if metrics["status"] in (Status.COMPLETED, Status.PRUNED):
        eval_started = time.perf_counter()
        reconstructed = engine.reconstruct(member.model, dataset.x_eval)
        metrics |= evaluate.evaluate(dataset.x_eval, reconstructed, dataset.eval_labels)
        metrics["eval_seconds"] = round(time.perf_counter() - eval_started, 3)
    metrics |= group.shared
    if stop is not None:
        metrics |= stop.record(config.run_id, metrics["status"])
    metrics["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    files = run_files(
        config, member, history, metrics=metrics, reconstructed=reconstructed, dataset=dataset
    )
    if events is not None and config.run_id in events.paths:
        if store.RECONSTRUCTIONS in files:
            step = len(history.loss)
            events.image(config.run_id, "reconstructions", files[store.RECONSTRUCTIONS], step)
        files |= events.files(config.run_id)
    return RunArtifacts(config.run_id, metrics, files)
