"""What a notebook calls, and the command line too: run one config, or sweep a grid.

Both go through :func:`aeexp.execute.execute`, so a single run is a sweep of one: it skips
a complete run, checks the output folder, clears stale staging and records a failure the
same way. Mistakes raise :class:`aeexp.errors.UserError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeexp import execute, results
from aeexp.config import load_run_config
from aeexp.executors import make_executor
from aeexp.plan import DEFAULT_MAX_RUNS, SweepPlan, plan_run, plan_sweep

ALL_STATUSES = frozenset({execute.PENDING, execute.COMPLETED, execute.DIVERGED, execute.FAILED})


@dataclass(frozen=True)
class ExecutorOptions:
    """Where groups train: ``local``, or ``ray`` (optionally at a cluster's address)."""

    name: str = "local"
    address: str | None = None
    cpus_per_worker: int | None = None
    progress: bool = False

    def make(self) -> execute.Executor:
        """Return a fresh executor."""
        return make_executor(self.name, self.address, self.cpus_per_worker, self.progress)


@dataclass(frozen=True)
class RunResult:
    """One run after :func:`run`: where it lives, its metrics, and whether it trained now."""

    run_dir: Path
    metrics: dict[str, Any]
    trained_now: bool

    @property
    def status(self) -> str:
        """Return ``completed``, ``diverged`` or ``failed``."""
        return str(self.metrics.get("status", execute.COMPLETED))


def run(
    config: str | Path,
    overrides: Iterable[str] = (),
    seed: int | None = None,
    out: str | None = None,
    force: bool = False,
    executor: ExecutorOptions = ExecutorOptions(),
) -> RunResult:
    """Train and evaluate one config file unless that run is already complete."""
    cfg = load_run_config(config, overrides, seed=seed, out=out)
    plan = plan_run(cfg)
    (planned,) = plan.runs
    redo = ALL_STATUSES if force else frozenset({execute.PENDING})
    trained = False
    if execute.run_status(planned) in redo:
        outcome = execute.execute(plan, executor.make(), max_group=1, redo=redo)
        trained = bool(outcome.trained)
    metrics = results.read_metrics(planned.run_dir)
    if metrics is None:  # another driver held it and did not finish it
        metrics = {"status": execute.PENDING}
    return RunResult(planned.run_dir, metrics, trained)


def plan(
    sweep_file: str | Path,
    overrides: Iterable[str] = (),
    out: str | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> SweepPlan:
    """Return a sweep's validated runs without training anything."""
    return plan_sweep(sweep_file, overrides, out, max_runs)


def sweep(
    sweep_file: str | Path,
    overrides: Iterable[str] = (),
    out: str | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
    **options: Any,
) -> execute.Outcome:
    """Train every run of a sweep file that is not complete yet; return what happened."""
    return train_plan(plan(sweep_file, overrides, out, max_runs), **options)


def train_plan(
    planned: SweepPlan,
    max_group: int = 30,
    rerun_failed: bool = False,
    executor: ExecutorOptions = ExecutorOptions(),
    on_runs_done: Callable[[int], None] | None = None,
    on_waiting: Callable[[int], None] | None = None,
) -> execute.Outcome:
    """Train the runs of a plan that are pending (and failed ones, with ``rerun_failed``)."""
    redo = frozenset({execute.PENDING, execute.FAILED} if rerun_failed else {execute.PENDING})
    return execute.execute(planned, executor.make(), max_group, redo, on_runs_done, on_waiting)
