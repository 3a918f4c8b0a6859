"""Executors: where lock-step groups train. ``local`` in this process, ``ray`` on a cluster.

An executor takes jobs (a group of run configs and the key of their dataset) and hands back
each job's result as it finishes: the runs' artifacts, or why the job failed. It never
writes to the output folder; the driver does (see :mod:`aeexp.execute.driver`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aeexp.config.run import DataConfig, RunConfig
from aeexp.data.dataset import Dataset
from aeexp.engines.base import StopRule
from aeexp.env.extras import install_hint
from aeexp.errors import UserError, unknown_name_message
from aeexp.store.rundir import RunArtifacts


@dataclass(frozen=True)
class Job:
    """One lock-step group to train: its configs and which dataset they use."""

    job_id: int
    configs: tuple[RunConfig, ...]
    data: DataConfig
    attempt: int = 0  # how many times a lost worker already cost this job
    stop: StopRule | None = None  # stops members early; None: every member trains every epoch


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


@dataclass(frozen=True)
class ExecutorOption:
    """One option an executor takes: its keyword (``--cpus-per-worker`` on the CLI) and help."""

    keyword: str
    help: str
    metavar: str
    minimum: int | None = None  # an integer option's smallest value; None: a string option

    @property
    def flag(self) -> str:
        """Return the command-line flag, e.g. ``--cpus-per-worker``."""
        return "--" + self.keyword.replace("_", "-")


@dataclass(frozen=True)
class ExecutorEntry:
    """An executor: its help and options, and ``module:function`` that creates one.

    The module is imported only when the executor is chosen (Ray's on ``--executor ray``),
    and the function takes ``progress`` and the entry's options as keywords. The CLI's
    options and the API's keywords are derived from these entries, so an executor is one
    module and one entry here.
    """

    help: str
    factory: str
    options: tuple[ExecutorOption, ...] = ()

    def create(self, progress: bool = False, **options: Any) -> Executor:
        """Return a new executor of this kind."""
        module, _, function = self.factory.partition(":")
        return getattr(importlib.import_module(module), function)(progress=progress, **options)


EXECUTORS: dict[str, ExecutorEntry] = {
    "local": ExecutorEntry("Train in this process.", "aeexp.execute.local:create"),
    "ray": ExecutorEntry(
        f"Train on Ray actors ({install_hint('ray')}).",
        "aeexp.execute.ray:create",
        (
            ExecutorOption(
                "address",
                "Ray cluster to attach to: auto, HOST:PORT or ray://HOST:PORT (default: "
                "$RAY_ADDRESS, else an embedded local Ray sized to this machine's CPUs).",
                "ADDR",
            ),
            ExecutorOption(
                "cpus_per_worker",
                "CPUs (and TensorFlow threads) per Ray worker [default: 1].",
                "N",
                minimum=1,
            ),
        ),
    ),
}


def executor_options() -> dict[str, ExecutorOption]:
    """Return every executor's options by keyword (the CLI offers each once)."""
    return {o.keyword: o for entry in EXECUTORS.values() for o in entry.options}


def make_executor(name: str, progress: bool = False, **options: Any) -> Executor:
    """Return the executor called ``name``; an option it does not take is refused."""
    if name not in EXECUTORS:
        raise UserError(unknown_name_message("executor", name, EXECUTORS))
    given = {key: value for key, value in options.items() if value is not None}
    entry = EXECUTORS[name]
    foreign = [key for key in given if key not in {o.keyword for o in entry.options}]
    if foreign:
        owners = {n for n, e in EXECUTORS.items() for o in e.options if o.keyword in foreign}
        flags = " and ".join(
            executor_options()[k].flag if k in executor_options() else k for k in foreign
        )
        needs = " or ".join(f"--executor {owner}" for owner in sorted(owners)) or name
        raise UserError(f"{flags} need {needs}")
    return entry.create(progress=progress, **given)


def describe_group(configs: Sequence[RunConfig]) -> str:
    """Return a short label for a group, for progress bars."""
    return configs[0].name if len(configs) == 1 else f"group of {len(configs)}"


@dataclass(frozen=True)
class ExecutorOptions:
    """Where groups train: an executor's name and its options (see :data:`EXECUTORS`)."""

    name: str = "local"
    progress: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    def make(self) -> Executor:
        """Return a fresh executor."""
        return make_executor(self.name, self.progress, **self.options)
