"""What every engine shares: the Engine Protocol, a member's history, the epoch bookkeeping.

No framework here, so that progress bars, TensorBoard events and MLflow read histories the
same way whichever engine (TensorFlow or JAX) trained them. An engine is one module whose
``ENGINE`` satisfies :class:`Engine`, plus its entry in :data:`aeexp.env.backend.ENGINES`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from aeexp.config.run import RunConfig

# Validation rows per compiled call. XLA holds every member's reconstructions of a call at
# once: 1,000 rows keep a group of 30 at ~0.1 GB where the whole test set took ~0.9 GB.
VALIDATION_CHUNK = 1000


@dataclass
class History:
    """Per-epoch record of one member; epochs are 1-based, None if it never happened.

    ``diverged_epoch``: its loss turned NaN or infinite; ``stopped_epoch``: a stop rule (a
    tuner's pruner) froze it after that epoch.
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    diverged_epoch: int | None = None
    stopped_epoch: int | None = None


EpochCallback = Callable[[int, Sequence[History]], None]
# (epoch just finished, every member's history, indices still training) -> indices to freeze.
StopCallback = Callable[[int, Sequence[History], Sequence[int]], Iterable[int]]


# A stop rule speaks run ids; the runner turns it into the StopCallback an engine calls.
class StopRule(Protocol):
    """What stops members of a group early (a tuner's pruner), evaluated where the group trains.

    Shipped with the job (so it must pickle): a Ray worker may not see the driver's disk.
    """

    def stop(self, epoch: int, val_losses: Mapping[str, Sequence[float]]) -> Collection[str]:
        """Return the run ids, among those given (still training), to stop after ``epoch``."""

    def record(self, run_id: str, status: str) -> dict[str, Any]:
        """Return what to add to a run's metrics.json (e.g. its trial), given its status."""


class Member(Protocol):
    """One configuration of a group, as an engine built it: the runner saves its model."""

    model: Any  # a Keras model: saved as model.keras, and what reconstruct() takes


class GroupTrainer(Protocol):
    """Trains members that share data, batch size, epochs and shuffle seed in lock-step."""

    def train(
        self, epochs: int, on_epoch: EpochCallback | None = None, stop: StopCallback | None = None
    ) -> list[History]:
        """Train for ``epochs``; freeze a member whose loss turns NaN or that ``stop`` names."""


class Engine(Protocol):
    """A backend: what trains, evaluates and describes runs whose ``train.backend`` is ``name``.

    Importing its module imports no framework and switches no Keras backend; the framework
    comes with the first method that needs it, once :func:`aeexp.env.backend.start` made the
    engine's Keras backend this process's.
    """

    name: str  # the train.backend value, its key in aeexp.env.backend.ENGINES
    label: str  # how messages name it: TensorFlow, JAX
    packages: tuple[str, ...]  # distributions `aeexp env` lists for it

    def worker_setup(self, threads: int) -> None:
        """Fit a Ray worker's framework to its ``threads`` CPUs, before the framework starts."""

    def enable_determinism(self) -> None:
        """Make the framework's ops deterministic: a config and seed give the same numbers."""

    def build_member(self, config: RunConfig) -> Member:
        """Return a fresh member for ``config``: its seeded model, optimizer and loss."""

    def group_trainer(
        self,
        members: Sequence[Any],
        x_train: np.ndarray,
        x_val: np.ndarray,
        batch_size: int,
        seed: int,
        xla: bool = True,
        init: str | None = None,
    ) -> GroupTrainer:
        """Return the trainer of ``members`` (``xla``: compile, where the engine may choose).

        ``init``: the group's ``train.init``; ``"shared"`` shuffles each epoch by
        :func:`aeexp.engines.model.shared_order`, the same order on every engine.
        """

    def reconstruct(self, model: Any, images: np.ndarray) -> np.ndarray:
        """Return ``model``'s float32 reconstructions of ``images``, as validation computes them."""

    def versions(self) -> dict[str, str]:
        """Return the versions of this backend's framework that decide a run's numbers."""

    def devices(self) -> list[dict[str, str]]:
        """Return every device the framework sees: its type, name and, for a GPU, its model."""


class LockStep(Protocol):
    """What :func:`train_lockstep` drives: an engine's compiled epoch over its active members."""

    def run_epoch(self, active: Sequence[int], epoch: int) -> Mapping[int, tuple[float, float]]:
        """Train the members ``active`` one epoch (0-based); return each one's two mean losses."""

    def freeze(self, frozen: Sequence[int], active: Sequence[int]) -> None:
        """Stop training ``frozen``: the members ``active`` go on with the same bits."""


def record_epoch(history: History, train: float, val: float, seconds: float, epoch: int) -> bool:
    """Append one epoch (1-based) to ``history``; mark and return whether a loss is not finite."""
    history.loss.append(float(train))
    history.val_loss.append(float(val))
    history.seconds.append(seconds)
    if math.isfinite(train) and math.isfinite(val):
        return False
    history.diverged_epoch = epoch
    return True


def ask_stop(
    stop: StopCallback | None,
    epoch: int,
    epochs: int,
    histories: Sequence[History],
    survivors: Sequence[int],
) -> list[int]:
    """Return the members among ``survivors`` that ``stop`` freezes after ``epoch``, marked.

    Asked after every epoch but the last (a member that trained every epoch is finished, not
    stopped), and only while some member still trains.
    """
    if stop is None or not survivors or epoch >= epochs:
        return []
    stopped = sorted(set(stop(epoch, histories, tuple(survivors))) & set(survivors))
    for index in stopped:
        histories[index].stopped_epoch = epoch
    return stopped


def train_lockstep(
    trainer: LockStep,
    members: int,
    epochs: int,
    on_epoch: EpochCallback | None = None,
    stop: StopCallback | None = None,
) -> list[History]:
    """Train ``members`` for ``epochs``; freeze one whose loss turns NaN or that ``stop`` names.

    The per-epoch bookkeeping both engines share: histories, divergence, the stop rule,
    freezing, the epoch callback. A frozen member keeps its history so far.
    """
    histories = [History() for _ in range(members)]
    active = list(range(members))
    for epoch in range(epochs):
        if not active:
            break
        started = time.perf_counter()
        losses = trainer.run_epoch(active, epoch)
        seconds = time.perf_counter() - started
        frozen = [i for i in active if record_epoch(histories[i], *losses[i], seconds, epoch + 1)]
        survivors = [i for i in active if i not in frozen]
        frozen += ask_stop(stop, epoch + 1, epochs, histories, survivors)
        if frozen:
            active = [i for i in active if i not in frozen]
            trainer.freeze(frozen, active)
        if on_epoch is not None:
            on_epoch(epoch + 1, histories)
    return histories
