"""Executors: where lock-step groups train. ``local`` in this process, ``ray`` on a cluster.

An executor takes jobs (a group of run configs and the key of their dataset) and hands back
each job's result as it finishes: the runs' artifacts, or why the job failed. It never
writes to the output folder; the driver does (see :mod:`aeexp.execute`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aeexp.config import DataConfig, RunConfig
from aeexp.dataset import Dataset
from aeexp.errors import UserError, unknown_name_message
from aeexp.store import RunArtifacts


@dataclass(frozen=True)
class Job:
    """One lock-step group to train: its configs and which dataset they use."""

    job_id: int
    configs: tuple[RunConfig, ...]
    data: DataConfig
    attempt: int = 0  # how many times a lost worker already cost this job


@dataclass(frozen=True)
class JobResult:
    """A finished job: every run's artifacts, or the one-line reason it failed."""

    job: Job
    artifacts: tuple[RunArtifacts, ...] = ()
    error: str | None = None  # an exception while training: the group is retried run by run
    lost: bool = False  # the worker died and the retries are spent: recorded as failed
    worker_seconds: float = 0.0  # spent in the worker training and evaluating the group
    round_trip_seconds: float = 0.0  # from dispatch to result on the driver (overhead included)


class Executor(Protocol):
    """What the driver needs of an executor."""

    workers: int

    def start(self, datasets: Mapping[DataConfig, Dataset]) -> None:
        """Get ready to train on these datasets (ship them to workers, check versions)."""

    def submit(self, job: Job) -> None:
        """Queue a job."""

    def outstanding(self) -> int:
        """Return how many submitted jobs have not been handed back by :meth:`next_result`."""

    def next_result(self) -> JobResult:
        """Block until a job finishes and return its result."""

    def shutdown(self, cancel: bool = False) -> None:
        """Release workers; with ``cancel``, abandon jobs in flight."""


EXECUTORS = ("local", "ray")


def make_executor(
    name: str,
    address: str | None = None,
    cpus_per_worker: int | None = None,
    progress: bool = False,
    **options: Any,
) -> Executor:
    """Return the executor called ``name``; Ray is imported only when asked for."""
    if name == "local":
        if address is not None or cpus_per_worker is not None:
            raise UserError("--address and --cpus-per-worker need --executor ray")
        from aeexp.executors.local import LocalExecutor

        return LocalExecutor(progress=progress)
    if name == "ray":
        from aeexp.executors.ray import RayExecutor

        # None means the default; 0 is a mistake RayExecutor refuses, not a default.
        cpus = 1 if cpus_per_worker is None else cpus_per_worker
        return RayExecutor(address=address, cpus_per_worker=cpus, **options)
    raise UserError(unknown_name_message("executor", name, EXECUTORS))


def describe_group(configs: Sequence[RunConfig]) -> str:
    """Return a short label for a group, for progress bars."""
    return configs[0].name if len(configs) == 1 else f"group of {len(configs)}"
