"""What a notebook calls, and the command line too: run a config, sweep a grid, load runs.

``run`` and ``sweep`` go through :func:`aeexp.execute.driver.execute`, so a single run is a sweep
of one: it skips a complete run, checks the output folder, clears stale staging and records
a failure the same way. ``load_runs`` reads run directories (or a sweep's runs.csv, such as
a report's committed ``<sweep>-runs.csv``) into a pandas DataFrame.
Mistakes raise :class:`aeexp.errors.UserError`.

    >>> import aeexp
    >>> result = aeexp.run("configs/thesis/mse_relu-sigmoid_adam.yaml", **{"train.epochs": 5})
    >>> result.metrics["ssim_mean"], result.history.tail()
    >>> runs = aeexp.load_runs("results/thesis/runs")
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from aeexp import arguments
from aeexp.config import bundled
from aeexp.config import run as config_lib
from aeexp.config.run import RunConfig
from aeexp.config.sweep import (
    DEFAULT_MAX_RUNS,
    PlannedRun,
    SweepPlan,
    describe_point,
    plan_run,
    plan_sweep,
)
from aeexp.env.extras import install_hint
from aeexp.errors import UserError, clip, is_finite_number
from aeexp.execute import driver as execute
from aeexp.execute import progress
from aeexp.execute.executors import ExecutorOptions, executor_options
from aeexp.registry.vocab import (
    COMPARE_METRICS,
    DEFAULT_MAX_GROUP,
    Status,
    is_completed,
    status_of,
)
from aeexp.store import ledger
from aeexp.store import rundir as store

if TYPE_CHECKING:
    import pandas

    from aeexp.analysis.compare import Comparison

ALL_STATUSES = frozenset(Status)


@dataclass(frozen=True)
class RunResult:
    """One run after :func:`run`: where it lives, its metrics, and whether it trained now."""

    run_dir: Path
    metrics: dict[str, Any]
    trained_now: bool

    @property
    def status(self) -> str:
        """Return ``completed``, ``diverged``, ``failed`` (or ``pending`` if unfinished)."""
        return status_of(self.metrics)

    @property
    def history(self) -> pandas.DataFrame:
        """Return the per-epoch history (epoch, loss, val_loss, seconds) as a DataFrame."""
        import pandas

        try:
            rows = store.read_history(self.run_dir)  # a failed run has none: no rows
        except ValueError as error:
            raise UserError(f"{self.run_dir}: {error}") from None
        return pandas.DataFrame(rows, columns=list(store.HISTORY_FIELDS))

    @property
    def headline(self) -> str:
        """Return the metrics a user looks at first, on one line."""
        metrics = self.metrics
        if not is_completed(metrics):
            status = metrics.get("status")
            if status == Status.DIVERGED:
                return f"status {status} at epoch {metrics.get('diverged_epoch')}"
            if status == Status.PRUNED:
                return f"status {status} at epoch {metrics.get('pruned_epoch')}"
            return f"status {status}: {clip(str(metrics.get('reason', 'no reason recorded')))}"

        def number(key: str, spec: str) -> str:
            # A metrics.json written by hand or damaged may lack a key: shown, not a crash.
            value = metrics.get(key)
            return format(value, spec) if is_finite_number(value) else "?"

        return (
            f"ssim_thesis {number('ssim_thesis', '.3f')}  "
            f"ssim_mean {number('ssim_mean', '.3f')} +- {number('ssim_std', '.3f')}  "
            f"psnr {number('psnr_mean', '.2f')} dB  mse {number('mse', '.5f')}  "
            f"val_loss {number('final_val_loss', '.5g')}"
        )


def _split(keywords: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword arguments into executor options (``address``) and dotted config keys."""
    known = executor_options()
    chosen = {k: v for k, v in keywords.items() if k in known}
    return chosen, {k: v for k, v in keywords.items() if k not in known}


def _options(
    executor: str | ExecutorOptions, progress: bool, options: Mapping[str, Any]
) -> ExecutorOptions:
    if isinstance(executor, ExecutorOptions):
        return executor
    return ExecutorOptions(executor, progress, dict(options))


def run(
    config: str | Path | Mapping[str, Any] | RunConfig,
    *,
    overrides: Sequence[str] = (),
    seed: int | None = None,
    out: str | Path | None = None,
    force: bool = False,
    executor: str | ExecutorOptions = "local",
    progress: bool = False,
    tensorboard: bool = False,
    mlflow: str | None = None,
    **keywords: Any,
) -> RunResult:
    """Train and evaluate one config unless that run is already complete.

    ``config`` is a YAML file, a bundled config's name (``thesis/mse_relu-sigmoid_adam``;
    ``aeexp configs`` lists them), a mapping or a :class:`RunConfig`; keyword arguments with
    dotted names override keys, e.g. ``aeexp.run(path, **{"train.epochs": 5})``; the
    executor's own options are keywords too (``executor="ray", address="auto"``).
    ``tensorboard`` writes TensorBoard events into the run directory; ``mlflow`` logs the
    run to that MLflow tracking URI.
    """
    arguments.check(
        "run",
        config=config,
        overrides=overrides,
        seed=seed,
        out=out,
        force=force,
        executor=executor,
        progress=progress,
        tensorboard=tensorboard,
        mlflow=mlflow,
    )
    chosen, dotted = _split(keywords)
    arguments.check_executor_options("run", chosen)
    if tensorboard:
        dotted = {**dotted, "output.tensorboard": True}
    if isinstance(config, str | Path):
        config = bundled.locate(config, "run")
    cfg = config_lib.resolve(config, overrides, dotted, seed, out)
    planned = plan_run(cfg)
    (only,) = planned.runs
    redo = ALL_STATUSES if force else frozenset({Status.PENDING})
    trained = False
    # One ledger for the whole command: it reads metrics.json once, re-reads it only under
    # the run's lock, and keeps what the driver writes, so nothing is read back afterwards.
    book = ledger.Ledger(planned)
    if book.status(only) in redo:
        options = _options(executor, progress, chosen)
        outcome = execute.execute(
            planned,
            options.make(),
            max_group=1,
            redo=redo,
            sinks=tracking_sinks(mlflow),
            ledger=book,
        )
        trained = bool(outcome.trained)
    metrics = book.metrics[only.run_id]
    if metrics is None:  # another driver held it and did not finish it
        metrics = {"status": Status.PENDING}
    return RunResult(only.run_dir, metrics, trained)


def plan(
    sweep_file: str | Path | Mapping[str, Any],
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> SweepPlan:
    """Return a sweep's validated runs without training anything."""
    arguments.check("sweep", sweep_file=sweep_file, overrides=overrides, out=out, max_runs=max_runs)
    if isinstance(sweep_file, str | Path):
        sweep_file = bundled.locate(sweep_file, "sweep")
    return plan_sweep(sweep_file, overrides, out, max_runs)


def sweep(
    sweep_file: str | Path | Mapping[str, Any],
    *,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
    max_group: int = DEFAULT_MAX_GROUP,
    rerun_failed: bool = False,
    executor: str | ExecutorOptions = "local",
    progress: bool = False,
    tensorboard: bool = False,
    mlflow: str | None = None,
    **executor_options: Any,
) -> execute.Outcome:
    """Train every run of a sweep (a file, a bundled name or a mapping) not complete yet.

    ``executor_options`` are the executor's own (``executor="ray", address="auto"``).
    ``progress`` draws bars on a terminal or in a notebook, and writes a plain line at most
    once a minute per bar where stderr is a file (see :mod:`aeexp.execute.progress`). Returns the
    :class:`aeexp.execute.driver.Outcome`: the plan, the run ids trained now, how many were
    complete already, and each run's status; ``load_runs(outcome.experiment_dir)`` gives
    the table.
    """
    arguments.check(
        "sweep",
        sweep_file=sweep_file,
        overrides=overrides,
        out=out,
        max_runs=max_runs,
        max_group=max_group,
        rerun_failed=rerun_failed,
        executor=executor,
        progress=progress,
        tensorboard=tensorboard,
        mlflow=mlflow,
    )
    chosen, unknown = _split(executor_options)
    if unknown:
        raise UserError(f"sweep() got unknown keywords: {', '.join(sorted(unknown))}")
    arguments.check_executor_options("sweep", chosen)
    options = _options(executor, progress, chosen)
    if tensorboard:
        overrides = [*overrides, "output.tensorboard=true"]
    planned = plan(sweep_file, overrides, out, max_runs)
    return train_plan(
        planned, max_group, rerun_failed, executor=options, sinks=tracking_sinks(mlflow)
    )


def train_plan(
    planned: SweepPlan,
    max_group: int = DEFAULT_MAX_GROUP,
    rerun_failed: bool = False,
    *,
    executor: ExecutorOptions = ExecutorOptions(),
    sinks: Sequence[Callable[[PlannedRun], None]] = (),
) -> execute.Outcome:
    """Train the runs of a plan that are pending (and failed ones, with ``rerun_failed``).

    With ``executor.progress`` a bar counts the runs done. Runs another aeexp is training
    are waited for, and said so on stderr.
    """
    redo = redo_statuses(rerun_failed)
    known = ledger.Ledger(planned)  # read once: for the bar's start and for the driver
    bar = progress.bar(
        len(planned.runs),
        planned.name,
        "run",
        executor.progress,
        initial=len(planned.runs) - len(known.to_do(redo)),
    )
    try:
        outcome = execute.execute(
            planned,
            executor.make(),
            max_group=max_group,
            redo=redo,
            on_runs_done=bar.update,
            on_waiting=lambda n: bar.write(
                f"aeexp: waiting for {n} run(s) another aeexp is training", file=sys.stderr
            ),
            sinks=sinks,
            ledger=known,
        )
    except BaseException:
        _clear(bar)  # the error line that follows must stand alone
        raise
    bar.close()  # a sweep that ends keeps its bar: how many runs, how long
    return outcome


def _clear(bar: tqdm | progress.LineProgress) -> None:
    """Close a progress bar and erase its line."""
    bar.leave = False
    bar.close()


def redo_statuses(rerun_failed: bool = False) -> frozenset[str]:
    """Return the statuses a sweep trains: pending, and failed too with ``rerun_failed``."""
    return frozenset({Status.PENDING, Status.FAILED} if rerun_failed else {Status.PENDING})


def describe_plan(planned: SweepPlan) -> str:
    """Return each run's id, status and grid point, then how many are done and to train."""
    statuses = ledger.plan_statuses(planned)
    lines = [f"{r.run_id}  {statuses[r.run_id]:9}  {describe_point(r.point)}" for r in planned.runs]
    done = sum(status != Status.PENDING for status in statuses.values())
    lines.append(
        f"{len(planned.runs)} runs: {done} done, {len(planned.runs) - done} to train "
        f"-> {planned.experiment_dir}"
    )
    return "\n".join(lines)


def tune(
    search_file: str | Path | Mapping[str, Any],
    *,
    trials: int,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    seed: int | None = None,
    batch: int | None = None,
    max_group: int = DEFAULT_MAX_GROUP,
    max_runs: int = DEFAULT_MAX_RUNS,
    top: int = 1,
    seeds: str | Sequence[int] = "0-4",
    sweep_out: str | Path | None = None,
    sweep_name: str | None = None,
    on_test_set: bool = False,
    executor: str | ExecutorOptions = "local",
    progress: bool = False,
    tensorboard: bool = False,
    mlflow: str | None = None,
    **executor_options: Any,
) -> Any:
    """Search each cell of a search file with Optuna to ``trials`` trials, then pick its best.

    Trials are asked in batches (``batch`` per cell; default a quarter of ``trials``, at
    most ``max_group`` shared among the cells), trained in lock-step on the executor,
    pruned at epoch boundaries, and recorded as runs in ``<out>/<name>/`` with the studies
    in ``tune.db`` there; a second call resumes. It ends by drawing ``tune.png`` and
    writing a sweep file of each cell's ``top`` best points over ``seeds`` (``sweep_out``,
    default ``<out>/<name>/best.yaml``). Returns an :class:`aeexp.tuning.driver.TuneOutcome`.
    Needs Optuna (``pip install 'optuna>=4,<5'``).
    """
    from aeexp.analysis.selection import parse_seeds
    from aeexp.io import paths
    from aeexp.tuning import best, driver, search

    arguments.check(
        "tune",
        search_file=search_file,
        trials=trials,
        overrides=overrides,
        out=out,
        seed=seed,
        batch=batch,
        max_group=max_group,
        max_runs=max_runs,
        top=top,
        seeds=seeds,
        sweep_out=sweep_out,
        sweep_name=sweep_name,
        on_test_set=on_test_set,
        executor=executor,
        progress=progress,
        tensorboard=tensorboard,
        mlflow=mlflow,
    )
    chosen, unknown = _split(executor_options)
    if unknown:
        raise UserError(f"tune() got unknown keywords: {', '.join(sorted(unknown))}")
    arguments.check_executor_options("tune", chosen)
    seed_list = parse_seeds(seeds) if isinstance(seeds, str) else list(seeds)
    if tensorboard:
        overrides = [*overrides, "output.tensorboard=true"]
    if isinstance(search_file, str | Path):
        search_file = bundled.locate(search_file, "tune")
    spec = search.read_search(
        search_file,
        overrides,
        out,
        seed=seed,
        on_test_set=on_test_set,
        max_cells=max_runs,
        trials=trials,
    )
    name = config_lib.check_name(sweep_name or f"{spec.name}-best", "--name")
    target = Path(sweep_out) if sweep_out is not None else spec.experiment_dir / driver.SWEEP_FILE
    if sweep_out is not None:
        paths.output_file(target)  # before any work: never a FIFO, a device or a missing folder
    best.check_seeds(spec, seed_list)
    driver.require_optuna()
    points = best.BestPoints(target, name, trials, top, tuple(seed_list))
    options = _options(executor, progress, chosen)
    return driver.run_search(
        spec,
        trials,
        options.make,
        batch=batch,
        max_group=max_group,
        progress=progress,
        sinks=tracking_sinks(mlflow),
        finish=lambda found_search, found: best.write_best(found_search, found, points),
    )


def environment() -> list[str]:
    """Return the versions that decide a run's numbers, the lock's verdict on them, then devices.

    Every backend is listed (``train.backend`` chooses one per run); a missing one says how
    to install it. Keras itself is not imported: that would fix this process's backend.
    """
    from aeexp._version import __version__
    from aeexp.env import backend, pinned

    lines = [f"aeexp: {__version__}", f"python: {platform.python_version()}"]
    lines += [f"{name}: {_version(name)}" for name in ("keras", "numpy", "scikit-image")]
    for name in backend.BACKENDS:
        if not backend.installed(name):
            lines.append(f"{name}: not installed ({install_hint(backend.ENGINES[name].framework)})")
            continue
        lines += [f"{package}: {_version(package)}" for package in backend.engine(name).packages]
    lines += pinned.report()
    usable = [name for name in backend.BACKENDS if backend.installed(name)]
    lines.append(f"backends: {', '.join(usable) or 'none'} (default {backend.DEFAULT_BACKEND})")
    for name in usable:
        found = backend.devices(name)
        for device in found:
            model = f" ({device['model']})" if "model" in device else ""
            lines.append(f"device: {device['type']} {device['name']}{model} [{name}]")
        if all(d["type"] == "CPU" for d in found):
            label = backend.engine(name).label
            lines.append(f"gpu: none visible to {label}; training runs on the CPU")
    return lines


def _version(package: str) -> str:
    """Return an installed package's version (TensorFlow's from the module if renamed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:  # e.g. TensorFlow installed as tensorflow-cpu
        return str(__import__(package).__version__)


def tracking_sinks(mlflow: str | None) -> list[Callable[[PlannedRun], None]]:
    """Return the sinks a run is logged to once written: MLflow, if a URI is given."""
    if mlflow is None:
        return []
    from aeexp.execute.tracking import MlflowSink

    return [MlflowSink(mlflow)]


def load_runs(path: str | Path) -> pandas.DataFrame:
    """Return one row per run under ``path`` (a run, a sweep folder or a tree of them).

    ``path`` may also be a sweep's runs.csv or a report's ``<sweep>-runs.csv`` (or a folder
    holding one and no run directory): see :func:`aeexp.store.runs_csv.read_frame`.

    Columns: ``run_id``, ``name``, ``status``, ``path``, the resolved config as dotted keys
    (``loss.name``, ``optimizer.learning_rate``, ...) and every metric (nested ones dotted:
    ``versions.tensorflow``). Incomplete or damaged run directories are skipped with one
    warning line each.
    """
    arguments.check("load_runs", folder=path)
    return ledger.load_runs(path)


def compare(
    *specs: str,
    root: str | Path | None = None,
    metrics: Sequence[str] = COMPARE_METRICS,
    where: str | None = None,
) -> Comparison:
    """Compare two or more sides (folders, runs CSVs or ``key=value`` filters over ``root``).

    ``where`` (``key=value[,...]``) keeps, on every side, only the runs that meet it: one
    cell of two sweeps, say, when each side is a whole sweep.
    """
    from aeexp.analysis import compare as compare_lib

    for spec in specs:
        arguments.check("compare", side=spec)
    arguments.check("compare", root=root, metrics=metrics, where=where)
    return compare_lib.compare(*specs, root=root, metrics=metrics, where=where)
