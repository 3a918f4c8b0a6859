"""What every engine shares: a member's per-epoch history, the callbacks, the stop rule, chunks.

No framework here, so that progress bars, TensorBoard events and MLflow read histories the
same way whichever engine (TensorFlow or JAX) trained them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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
