"""Execution: pending runs -> lock-step groups -> an executor -> run directories.

The one path both ``aeexp run`` and ``aeexp sweep`` take. The driver (this module) is the
only writer: it claims each run with a file lock so that two drivers never train the same
run, ships groups to an executor, writes what comes back through atomic staging, records
failures, and keeps ``runs.csv`` current. Ctrl-C cancels outstanding work and leaves no
half-written directory; a killed driver loses only the groups in flight.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from aeexp.config.sweep import PlannedRun, SweepPlan, group_runs
from aeexp.data.dataset import Dataset, load_dataset
from aeexp.env import backend
from aeexp.errors import clip
from aeexp.execute import interrupts
from aeexp.execute.executors import Executor, Job, JobResult
from aeexp.registry.vocab import DEFAULT_MAX_GROUP, Status
from aeexp.store import locks
from aeexp.store import rundir as store
from aeexp.store.ledger import RUNS_CSV, Ledger, record_failure, run_root

# How long a wait for another driver's run lasts before Ctrl-C is looked at again.
WAIT_SECONDS = 0.2


@dataclass
class Outcome:
    """What a call to :func:`execute` did."""

    ledger: Ledger
    trained: list[str] = field(default_factory=list)  # run ids written now (failures too)
    already: int = 0  # runs complete before it started
    moved_aside: list[Path] = field(default_factory=list)  # damaged run directories kept

    @property
    def plan(self) -> SweepPlan:
        """Return the plan executed."""
        return self.ledger.plan

    @property
    def experiment_dir(self) -> Path:
        """Return the folder of the runs and runs.csv (for ``aeexp.load_runs``)."""
        return self.plan.experiment_dir

    def statuses(self) -> dict[str, str]:
        """Return each planned run's status: as found, or as this call wrote it."""
        return self.ledger.statuses()

    def problems(self) -> list[tuple[str, str]]:
        """Return (run id, status) of the runs that diverged or failed."""
        return [(i, s) for i, s in self.statuses().items() if s in (Status.DIVERGED, Status.FAILED)]

    def summary(self) -> str:
        """Return where runs.csv is and how many runs trained now or were complete already."""
        return (
            f"{self.experiment_dir / RUNS_CSV}: {len(self.plan.runs)} runs "
            f"({len(self.trained)} trained now, {self.already} already complete)"
        )


def _acquired(lock: FileLock) -> bool:
    """Take ``lock`` within WAIT_SECONDS; return whether it was taken."""
    try:
        lock.acquire(timeout=WAIT_SECONDS)
    except Timeout:
        return False
    return True


class _Claims:
    """The run locks this driver holds: a claimed run is trained by nobody else."""

    def __init__(self) -> None:
        self.held: dict[str, FileLock] = {}

    def claim(self, run: PlannedRun) -> bool:
        """Take ``run``'s lock without waiting; return False if another driver holds it."""
        lock = locks.run_lock(run.config.experiment_dir, run.run_id)
        try:
            lock.acquire()
        except Timeout:
            return False
        self.held[run.run_id] = lock
        return True

    def wait_for(self, run: PlannedRun) -> None:
        """Block until the driver holding ``run`` lets it go, then hold it."""
        lock = locks.run_lock(run.config.experiment_dir, run.run_id)
        while not _acquired(lock):  # in short waits: Ctrl-C is seen while the other trains
            interrupts.check()
        self.held[run.run_id] = lock

    def release(self, run_id: str) -> None:
        """Let another driver have ``run_id``."""
        lock = self.held.pop(run_id, None)
        if lock is not None:
            lock.release()

    def release_all(self) -> None:
        """Let every held run go."""
        for run_id in list(self.held):
            self.release(run_id)


def _load_datasets(runs: Sequence[PlannedRun]) -> dict[Any, Dataset]:
    """Load and check every data setting before anything trains: fail at once, not hours in."""
    datasets: dict[Any, Dataset] = {}
    for run in runs:
        if run.config.data not in datasets:
            datasets[run.config.data] = load_dataset(run.config)
        datasets[run.config.data].check_batch(run.config.train.batch_size)
    return datasets


@dataclass(frozen=True)
class Schedule:
    """How :func:`execute` trains what is pending: group sizes, what to redo, who to tell."""

    max_group: int = DEFAULT_MAX_GROUP
    redo: frozenset[str] = frozenset({Status.PENDING})
    on_runs_done: Callable[[int], None] | None = None  # a progress bar's update
    on_waiting: Callable[[int], None] | None = None  # told how many runs another driver holds
    sinks: Sequence[Callable[[PlannedRun], None]] = ()  # each written run, e.g. to MLflow


class _Driver:
    """Submits jobs, writes what comes back, and isolates failures run by run."""

    def __init__(
        self, executor: Executor, claims: _Claims, outcome: Outcome, schedule: Schedule
    ) -> None:
        self.sinks = schedule.sinks
        self.executor = executor
        self.claims = claims
        self.outcome = outcome
        self.on_runs_done = schedule.on_runs_done
        self.by_id: dict[str, PlannedRun] = {}
        self.next_job_id = 0

    def submit(self, runs: Sequence[PlannedRun]) -> None:
        self.next_job_id += 1
        for run in runs:
            self.by_id[run.run_id] = run
        configs = tuple(run.config for run in runs)
        self.executor.submit(Job(self.next_job_id, configs, configs[0].data))

    def drain(self) -> None:
        """Handle results until no job is outstanding, writing runs as they arrive."""
        while self.executor.outstanding():
            interrupts.check()
            result = self.executor.next_result()
            self._handle(result)  # a finished job is written, even with Ctrl-C pressed
            self.outcome.ledger.write()

    def _handle(self, result: JobResult) -> None:
        runs = [self.by_id[c.run_id] for c in result.job.configs]
        if result.error is None:
            for artifacts in result.artifacts:
                self._finish(self.by_id[artifacts.run_id], artifacts.files)
            return
        if len(runs) > 1 and not result.lost:
            for run in runs:  # retrain alone, so one bad run fails alone
                self.submit([run])
            return
        for run in runs:
            self.outcome.ledger.record(run.run_id, record_failure(run, result.error))
            self._done(run)

    def _finish(self, run: PlannedRun, files: dict[str, bytes]) -> None:
        store.write_run_files(run.run_dir, files, run_root(run))
        # The metrics in hand, as written: runs.csv needs no re-reading of the directory.
        self.outcome.ledger.record(run.run_id, json.loads(files[store.METRICS]))
        self._done(run)

    def _done(self, run: PlannedRun) -> None:
        self.outcome.trained.append(run.run_id)
        self.claims.release(run.run_id)
        for sink in self.sinks:  # e.g. MLflow: a copy of what the run directory now holds
            sink(run)
        if self.on_runs_done is not None:
            self.on_runs_done(1)


def _prepare(run: PlannedRun, outcome: Outcome) -> None:
    """Move a damaged directory of a claimed run aside, so that it can be written anew."""
    if store.is_damaged(run.run_dir):
        target = store.move_aside(run.run_dir, run_root(run))
        outcome.moved_aside.append(target)
        print(
            f"aeexp: warning: {clip(str(run.run_dir))}: no readable metrics.json; kept as "
            f"{clip(str(target))} and trained again",
            file=sys.stderr,
        )


def _claim_batch(
    runs: Sequence[PlannedRun], claims: _Claims, redo: frozenset[str], outcome: Outcome
) -> tuple[list[PlannedRun], list[PlannedRun]]:
    """Return (runs now claimed and still to do, runs another driver holds)."""
    mine, elsewhere = [], []
    for run in runs:
        if not claims.claim(run):
            elsewhere.append(run)
        elif outcome.ledger.refresh(run) in redo:
            _prepare(run, outcome)
            mine.append(run)
        else:  # finished by another driver between planning and claiming
            claims.release(run.run_id)
    return mine, elsewhere


def execute(
    plan: SweepPlan,
    executor: Executor,
    *,
    max_group: int = DEFAULT_MAX_GROUP,
    redo: frozenset[str] = frozenset({Status.PENDING}),
    on_runs_done: Callable[[int], None] | None = None,
    on_waiting: Callable[[int], None] | None = None,
    sinks: Sequence[Callable[[PlannedRun], None]] = (),
    ledger: Ledger | None = None,
) -> Outcome:
    """Train every run of ``plan`` whose status is in ``redo``; write runs and runs.csv.

    Each sink is called with a run once its directory is written (``aeexp.tracking``).
    ``ledger`` is the plan's, when the caller already read it (for a progress bar's start).
    Nothing is created before the data is checked; the lock files go when it ends, and on
    an error so do the folders it created, if they are left empty. The plan's backend
    becomes this process's Keras backend before anything (the data's Keras source
    included) imports Keras; a process whose Keras runs another backend is refused when it
    trains (a Ray driver never does).
    """
    backend.prefer(plan.backend)
    experiment = plan.experiment_dir
    store.check_inside(plan.output_dir, experiment)
    ledger = ledger or Ledger(plan)
    pending = ledger.to_do(redo)
    outcome = Outcome(ledger, already=len(plan.runs) - len(pending))
    datasets = _load_datasets(pending)  # a sweep refused here has made no folder
    with store.created_folders_undone(experiment, plan.output_dir):
        try:
            store.ensure_writable(experiment)
            with locks.summary_lock(experiment):
                pass  # runs.csv's lock can be taken: known before training, not after it
            store.remove_stale_staging(experiment)
            if pending:
                schedule = Schedule(max_group, redo, on_runs_done, on_waiting, sinks)
                _train(pending, datasets, executor, outcome=outcome, schedule=schedule)
            ledger.write()
        finally:
            locks.remove_lock_files(experiment)  # before the folders it may have made go
    return outcome


def _train(
    pending: list[PlannedRun],
    datasets: dict[Any, Dataset],
    executor: Executor,
    *,
    outcome: Outcome,
    schedule: Schedule,
) -> None:
    """Claim, group, train and write the pending runs; wait for those another driver holds."""
    claims = _Claims()
    try:
        with interrupts.watching():
            executor.start(datasets)
            interrupts.check()
            driver = _Driver(executor, claims, outcome, schedule)
            while pending:
                mine, elsewhere = _claim_batch(pending, claims, schedule.redo, outcome)
                for group in group_runs(mine, schedule.max_group, executor.workers):
                    driver.submit(group)
                driver.drain()
                if elsewhere and schedule.on_waiting is not None:
                    schedule.on_waiting(len(elsewhere))
                for run in elsewhere:  # trained by another driver: wait, then see
                    claims.wait_for(run)
                    claims.release(run.run_id)
                pending = [r for r in elsewhere if outcome.ledger.refresh(r) == Status.PENDING]
    except BaseException:
        executor.shutdown(cancel=True)
        raise
    finally:
        claims.release_all()
    executor.shutdown()
