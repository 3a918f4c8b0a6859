"""What every engine shares: a member's per-epoch history, the epoch callback, chunk sizes.

No framework here, so that progress bars, TensorBoard events and MLflow read histories the
same way whichever engine (TensorFlow or JAX) trained them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# Validation rows per compiled call. XLA holds every member's reconstructions of a call at
# once: 1,000 rows keep a group of 30 at ~0.1 GB where the whole test set took ~0.9 GB.
VALIDATION_CHUNK = 1000


@dataclass
class History:
    """Per-epoch record of one member; ``diverged_epoch`` is 1-based, None if it never did."""

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    diverged_epoch: int | None = None


EpochCallback = Callable[[int, Sequence[History]], None]
