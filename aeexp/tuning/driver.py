"""The tuning loop: per cell, ask a batch of trials, train them in lock-step, tell the results.

Each cell has its own Optuna study; all of them live in one SQLite file in the experiment
folder (``tune.db``), through Optuna's own storage, so a killed ``aeexp tune`` resumes. A
batch is trained through :func:`aeexp.execute.driver.execute` like a sweep's runs (same run ids,
same writer, same executors), with the pruning rule shipped in each job. Trials a kill left
RUNNING are trained again with the same parameters before anything new is asked, and a run
directory already complete on disk (run ids are content hashes) is told, not retrained.

The sampler is re-seeded before each batch from the search seed, the study and the number of
trials it already holds, so the sequence of trials is the same whether or not the tuning was
interrupted. With ``confirm`` in the search file, once every trial has finished, each cell's
best few train again on further seeds (runs, not trials: the studies never see them), and
the cell's best is named by the mean over its seeds.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from filelock import Timeout

from aeexp.analysis.tables import recorded_number
from aeexp.config.sweep import PlannedRun, SweepPlan
from aeexp.data.dataset import load_dataset
from aeexp.env.extras import install_hint
from aeexp.errors import UserError, is_finite_number
from aeexp.execute import driver as execute
from aeexp.execute import interrupts
from aeexp.execute import progress as progress_lib
from aeexp.execute.executors import Executor, Job, JobResult
from aeexp.registry.vocab import DEFAULT_MAX_GROUP, Status, status_of
from aeexp.store import ledger, locks
from aeexp.store import rundir as store
from aeexp.tuning import database
from aeexp.tuning.search import Cell, Search
from aeexp.tuning.space import describe_params
from aeexp.tuning.stop import STATES, PruningRule, Snapshot, TrialRef, intermediate_values
from aeexp.tuning.trials import Rerun, Trial, ranked

DATABASE = "tune.db"
FIGURE = "tune.png"
SWEEP_FILE = "best.yaml"
LOCK = locks.TUNE_LOCK


def require_optuna() -> Any:
    """Return the optuna module, or raise a one-line UserError saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise UserError(f"aeexp tune needs Optuna: {install_hint('tune')}") from None
    if int(optuna.__version__.split(".")[0]) < 4:
        raise UserError(
            f"aeexp tune needs Optuna 4 or later (found {optuna.__version__}): "
            f"{install_hint('tune')}"
        )
    return optuna


@dataclass
class TuneOutcome:
    """What ``aeexp tune`` did: every trial, what it trained now, and the files it wrote."""

    search: Search
    trials: list[Trial]
    trained: int  # runs trained by this call
    figure: Path
    sweep_file: Path | None  # None if some cell has no completed trial

    @property
    def experiment_dir(self) -> Path:
        """Return the folder of the trials' runs, runs.csv, the study and the figure."""
        return self.search.experiment_dir

    @property
    def database(self) -> Path:
        """Return the SQLite file holding every cell's Optuna study."""
        return self.experiment_dir / DATABASE

    def of(self, cell: Cell) -> list[Trial]:
        """Return a cell's trials in order."""
        return [t for t in self.trials if t.cell.index == cell.index]

    def best(self, cell: Cell, top: int = 1) -> list[Trial]:
        """Return a cell's ``top`` best completed trials (distinct runs), best first."""
        return ranked(self.of(cell), self.search.metric.maximize)[:top]

    def epochs(self, cell: Cell | None = None) -> int:
        """Return the epochs trained by the distinct runs of a cell's trials (of all cells).

        A confirmed trial's reruns count too.
        """
        chosen = self.trials if cell is None else self.of(cell)
        runs = {t.run_id: t.epochs for t in chosen}
        runs |= {r.run_id: r.epochs for t in chosen for r in t.reruns}
        return sum(runs.values())

    def summary(self) -> str:
        """Return one line per cell (best value, trial counts, epochs) and where files are."""
        metric = self.search.metric.name
        lines = [
            f"{self.experiment_dir / 'runs.csv'}: {len(self.trials)} trials in "
            f"{len(self.search.cells)} cell(s), {self.trained} run(s) trained now, "
            f"{self.epochs()} epochs in all; studies in {self.database}"
        ]
        for cell in self.search.cells:
            trials = self.of(cell)
            counts = {}
            for trial in trials:
                counts[trial.status] = counts.get(trial.status, 0) + 1
            tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            best = self.best(cell)
            found = (
                _describe_best(best[0], metric, bool(self.search.confirm.top))
                if best
                else f"no completed trial, so no best {metric}"
            )
            lines.append(
                f"cell {cell.index} ({cell.label}): {found}; {len(trials)} trials: {tally}; "
                f"{self.epochs(cell)} epochs"
            )
        lines.append(f"figure: {self.figure}")
        if self.sweep_file is not None:
            lines.append(f"best points: {self.sweep_file}")
        return "\n".join(lines)


def _describe_best(trial: Trial, metric: str, confirming: bool) -> str:
    """Return a cell's best trial: its value (over its seeds when confirmed), point and run."""
    where = f"at {describe_params(trial.params)} (trial {trial.number}, run {trial.run_id})"
    if trial.tier == 2:
        failed = ", ".join(r.run_id for r in trial.reruns if r.value is None)
        note = f", NOT confirmed: rerun {failed} did not complete"
        return f"best {metric} {trial.value:.4f} {where}{note}"
    if trial.tier == 1:
        note = ", NOT confirmed: every confirming rerun in this cell failed" if confirming else ""
        return f"best {metric} {trial.value:.4f} {where}{note}"
    values = ", ".join(f"{v:.4f}" for v in (trial.value, *(r.value for r in trial.reruns)))
    runs = ", ".join(r.run_id for r in trial.reruns)
    return (
        f"best {metric} {trial.score:.4f} {where}, the mean of {values} over "
        f"{1 + len(trial.reruns)} seeds (reruns {runs})"
    )


class _WithRule:
    """An executor whose every job carries the batch's pruning rule (its own runs' part)."""

    def __init__(self, inner: Executor, rule: PruningRule) -> None:
        self.inner = inner
        self.rule = rule

    @property
    def workers(self) -> int:
        """Return the wrapped executor's workers (Ray knows them only once started)."""
        return self.inner.workers

    def start(self, datasets: Any) -> None:
        """Start the wrapped executor."""
        self.inner.start(datasets)

    def submit(self, job: Job) -> None:
        """Submit the job with the rule for its runs attached."""
        run_ids = {config.run_id for config in job.configs}
        self.inner.submit(replace(job, stop=self.rule.only(run_ids)))

    def outstanding(self) -> int:
        """Return the wrapped executor's outstanding jobs."""
        return self.inner.outstanding()

    def next_result(self) -> JobResult:
        """Return the wrapped executor's next result."""
        return self.inner.next_result()

    def shutdown(self, cancel: bool = False) -> None:
        """Shut the wrapped executor down."""
        self.inner.shutdown(cancel)


@contextmanager
def _exclusive(experiment: Path) -> Iterator[None]:
    """Hold the experiment's tuning lock: two drivers on one study would tell trials twice."""
    lock = locks.study_lock(experiment)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(
            f"{experiment}: another aeexp tune is running on this study (it holds {LOCK}); "
            "wait for it, or tune into another --out"
        ) from None
    try:
        yield
    finally:
        lock.release()


def default_batch(trials: int, cells: int, max_group: int) -> int:
    """Return the trials asked per cell at a time: a quarter of them, the group shared out.

    At least four batches per study, so the sampler learns from results and the pruner has
    finished trials to compare with; no more than fill one lock-step group across the cells.
    """
    return max(1, min(math.ceil(trials / 4), max_group // cells))


def sampler_seed(seed: int, study: str, asked: int) -> int:
    """Return the sampler's seed for a batch: fixed by the search seed, the study and its size."""
    digest = hashlib.sha256(f"{seed}:{study}:{asked}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _check_data(search: Search) -> None:
    """Load and check every cell's data once before anything is created (a bad path: one line)."""
    seen = set()
    for cell in search.cells:
        cfg = cell.config({s.key: s.samples()[0] for s in cell.spaces})
        if cfg.data not in seen:
            seen.add(cfg.data)
            load_dataset(cfg).check_batch(cfg.train.batch_size)


class _Studies:
    """Every cell's study in one SQLite storage: ask batches, snapshot them, tell results."""

    def __init__(self, optuna: Any, search: Search) -> None:
        self.optuna = optuna
        self.search = search
        self.storage = database.open_storage(optuna, search.experiment_dir / DATABASE)
        direction = "maximize" if search.metric.maximize else "minimize"
        self.studies = {}
        for cell in search.cells:
            study = optuna.create_study(
                study_name=cell.study_name,
                storage=self.storage,
                direction=direction,
                load_if_exists=True,
            )
            study.set_user_attr("cell", cell.label)
            study.set_user_attr("search", {s.key: s.spec() for s in cell.spaces})
            study.set_user_attr("metric", search.metric.name)
            self.studies[cell.study_name] = study
        # Each run's metrics.json as this command last read or wrote it, by run id: a trial's
        # is read once, when it is told or collected, however often the command needs it.
        self.known: dict[str, Mapping[str, Any] | None] = {}

    def metrics(self, run_id: str) -> Mapping[str, Any] | None:
        """Return a run's metrics (None if it has none), reading its directory at most once."""
        if self.known.get(run_id) is None:  # absent, or pending: another driver may finish it
            self.known[run_id] = store.read_metrics(self.search.experiment_dir / run_id)
        return self.known[run_id]

    def trials(self, cell: Cell, *states: Any) -> list[Any]:
        """Return a cell's trials (FrozenTrials), of the given states or all."""
        return self.studies[cell.study_name].get_trials(deepcopy=False, states=states or None)

    def next_batch(self, total: int, per_cell: int) -> list[tuple[Cell, int, dict[str, Any]]]:
        """Return the next batch: trials a kill left running, else up to ``per_cell`` new ones."""
        state = self.optuna.trial.TrialState
        left = []
        for cell in self.search.cells:
            keys = {space.key for space in cell.spaces}
            for trial in self.trials(cell, state.RUNNING):
                if set(trial.params) == keys:
                    left.append((cell, trial.number, dict(trial.params)))
                else:  # killed while it was being asked: it never trained
                    self.studies[cell.study_name].tell(trial.number, state=state.FAIL)
        if left:
            return left
        batch = []
        for cell in self.search.cells:
            asked = len(self.trials(cell))
            count = min(per_cell, total - asked)
            if count <= 0:
                continue
            sampler = self.search.sampler.build(
                sampler_seed(self.search.seed, cell.study_name, asked)
            )
            study = self.optuna.load_study(
                study_name=cell.study_name, storage=self.storage, sampler=sampler
            )
            for _ in range(count):
                trial = study.ask(cell.distributions())
                batch.append((cell, trial.number, dict(trial.params)))
        return batch

    def snapshot(self, cell: Cell, pruner: Any) -> Snapshot:
        """Return a cell's finished trials, as the batch's pruning rule sees them."""
        state = self.optuna.trial.TrialState
        finished = tuple(self.trials(cell, state.COMPLETE, state.PRUNED))
        return Snapshot(self.search.metric.maximize, pruner, finished)

    def tell(self, cell: Cell, number: int, run_dir: Path) -> bool:
        """Tell a trial what its run directory holds; return False if the run is not there."""
        metrics = self.metrics(run_dir.name)
        status = status_of(metrics)
        if metrics is None:
            return False
        study = self.studies[cell.study_name]
        study_id = self.storage.get_study_id_from_name(cell.study_name)
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, number)
        self.storage.set_trial_user_attr(trial_id, "run_id", run_dir.name)
        self.storage.set_trial_user_attr(trial_id, "status", status)
        state = STATES.get(status, "FAIL")
        if state != "FAIL":
            try:
                losses = [row["val_loss"] for row in store.read_history(run_dir)]
            except ValueError:  # a damaged history: the trial cannot be judged
                losses, state = [], "FAIL"
            maximize = self.search.metric.maximize
            for step, value in intermediate_values(losses, maximize).items():
                self.storage.set_trial_intermediate_value(trial_id, step, value)
        value = None
        if state == "COMPLETE":
            value = recorded_number(
                run_dir, self.search.metric.name, metrics.get(self.search.metric.name)
            )
            state = "COMPLETE" if value is not None else "FAIL"
        study.tell(number, value, state=self.optuna.trial.TrialState[state], skip_if_finished=True)
        return True


def _planned(cell: Cell, params: Mapping[str, Any], offset: int = 0) -> PlannedRun:
    """Return a trial's run as a sweep plans it, or its rerun on the cell's seed + ``offset``."""
    cfg = cell.config(params)
    if offset:
        cfg = cell.config({**params, "seed": cfg.seed + offset})
    return PlannedRun(cfg, {**cell.point, **params})  # runs.csv's seed column tells them apart


def _train_batch(
    search: Search,
    studies: _Studies,
    batch: Sequence[tuple[Cell, int, dict[str, Any]]],
    make_executor: Callable[[], Executor],
    max_group: int,
    sinks: Sequence[Callable[[PlannedRun], None]],
) -> int:
    """Train a batch's runs (those not on disk yet) with its pruning rule; return how many."""
    runs: dict[str, PlannedRun] = {}
    refs: dict[str, TrialRef] = {}
    for cell, number, params in batch:
        run = _planned(cell, params)
        runs.setdefault(run.config.run_id, run)
        refs.setdefault(run.config.run_id, TrialRef(cell.study_name, number))
    pruner = search.pruner.build()
    cells = {cell.study_name: cell for cell, _, _ in batch}
    rule = PruningRule(refs, {name: studies.snapshot(c, pruner) for name, c in cells.items()})
    planned = SweepPlan(search.name, search.output_dir, search.keys, tuple(runs.values()))
    outcome = execute.execute(
        planned, _WithRule(make_executor(), rule), max_group=max_group, sinks=sinks
    )
    studies.known.update(outcome.ledger.metrics)  # what the batch read and wrote
    return len(outcome.trained)


def _collect(search: Search, studies: _Studies) -> list[Trial]:
    """Return every trial of every cell with its run's status, metric and epochs."""
    found = []
    for cell in search.cells:
        keys = {space.key for space in cell.spaces}
        for frozen in studies.trials(cell):
            params = dict(frozen.params)
            if set(params) != keys:  # failed while being asked: no run
                found.append(Trial(cell, frozen.number, params, "", "FAIL", Status.FAILED, None, 0))
                continue
            run_id = cell.config(params).run_id
            metrics = studies.metrics(run_id) or {}
            value = metrics.get(search.metric.name)
            value = value if isinstance(value, int | float) and math.isfinite(value) else None
            found.append(
                Trial(
                    cell,
                    frozen.number,
                    params,
                    run_id,
                    frozen.state.name,
                    status_of(metrics) if metrics else Status.PENDING,
                    value,
                    int(metrics.get("epochs_trained") or 0),
                    metrics,
                )
            )
    return found


def _to_confirm(search: Search, found: Sequence[Trial]) -> dict[str, list[PlannedRun]]:
    """Return, by trial run id, the reruns of each cell's best ``confirm.top`` trials."""
    chosen = {}
    for cell in search.cells:
        for trial in ranked(
            [t for t in found if t.cell.index == cell.index], search.metric.maximize
        )[: search.confirm.top]:
            chosen[trial.run_id] = [
                _planned(cell, trial.params, k) for k in search.confirm.offsets()
            ]
    return chosen


def _rerun(studies: _Studies, run: PlannedRun) -> Rerun:
    """Return a rerun as its run directory recorded it: its value only if it completed."""
    metrics = studies.metrics(run.config.run_id) or {}
    value = metrics.get(studies.search.metric.name)
    if status_of(metrics) != Status.COMPLETED or not is_finite_number(value):
        value = None
    epochs = int(metrics.get("epochs_trained") or 0)
    return Rerun(run.config.seed, run.config.run_id, value, epochs, metrics)


def _confirm(
    search: Search,
    studies: _Studies,
    found: list[Trial],
    train: Callable[[SweepPlan, str], int],
) -> tuple[list[Trial], int]:
    """Train each cell's best trials again on the further seeds; return them and runs trained."""
    chosen = _to_confirm(search, found)
    runs = {run.config.run_id: run for planned in chosen.values() for run in planned}
    if not runs:
        return found, 0
    planned = SweepPlan(search.name, search.output_dir, search.keys, tuple(runs.values()))
    trained = train(planned, f"{search.name} (confirm)")
    reruns = {
        trial_run: tuple(_rerun(studies, run) for run in planned_runs)
        for trial_run, planned_runs in chosen.items()
    }
    return [replace(t, reruns=reruns.get(t.run_id, ())) if t.run_id else t for t in found], trained


def _write_summary(search: Search, trials: Sequence[Trial]) -> None:
    """Rewrite runs.csv with every trial's run and rerun, in trial order (nothing trains)."""
    runs: dict[str, PlannedRun] = {}
    known: dict[str, Mapping[str, Any] | None] = {}
    for trial in (t for t in trials if t.run_id):
        runs.setdefault(trial.run_id, _planned(trial.cell, trial.params))
        known[trial.run_id] = trial.metrics or None
    for trial in trials:
        for k, rerun in zip(search.confirm.offsets(), trial.reruns, strict=False):
            runs.setdefault(rerun.run_id, _planned(trial.cell, trial.params, k))
            known[rerun.run_id] = rerun.metrics or None
    if runs:
        planned = SweepPlan(search.name, search.output_dir, search.keys, tuple(runs.values()))
        ledger.Ledger(planned, known=known).write()


def _plan_trainer(
    studies: _Studies,
    make_executor: Callable[[], Executor],
    max_group: int,
    progress: bool,
    sinks: Sequence[Callable[[PlannedRun], None]],
) -> Callable[[SweepPlan, str], int]:
    """Return what trains a plan's pending runs with a bar of its own; it returns how many."""

    def train(planned: SweepPlan, desc: str) -> int:
        """Train the plan's pending runs (a rerun already on disk is read, not retrained)."""
        book = ledger.Ledger(planned)
        todo = len(book.to_do(frozenset({Status.PENDING})))
        bar = progress_lib.bar(
            len(planned.runs), desc, "run", progress, initial=len(planned.runs) - todo
        )
        try:
            outcome = execute.execute(
                planned,
                make_executor(),
                max_group=max_group,
                on_runs_done=bar.update,
                sinks=sinks,
                ledger=book,
            )
        except BaseException:
            bar.leave = False
            bar.close()
            raise
        bar.close()
        studies.known.update(outcome.ledger.metrics)
        return len(outcome.trained)

    return train


def run_search(
    search: Search,
    trials: int,
    make_executor: Callable[[], Executor],
    *,
    batch: int | None = None,
    max_group: int = DEFAULT_MAX_GROUP,
    progress: bool = False,
    sinks: Sequence[Callable[[PlannedRun], None]] = (),
    finish: Callable[[Search, list[Trial]], Path | None] | None = None,
) -> TuneOutcome:
    """Run every cell's study to ``trials`` trials; write runs.csv, the figure, the sweep file.

    ``finish`` writes the best points' sweep file (see :mod:`aeexp.tuning.best`) and returns
    its path; it runs last, after runs.csv and the figure are written.
    """
    optuna = require_optuna()
    from aeexp.tuning.figure import write_figure
    from aeexp.tuning.stop import quiet_optuna

    _check_data(search)
    experiment = search.experiment_dir
    store.check_inside(search.output_dir, experiment)
    store.ensure_writable(experiment)
    per_cell = batch or default_batch(trials, len(search.cells), max_group)
    trained = 0
    with (
        _exclusive(experiment),
        database.study_errors(experiment / DATABASE),
        interrupts.watching(),  # Ctrl-C acts between batches, never inside a write
    ):
        quiet_optuna()
        studies = _Studies(optuna, search)
        done = sum(
            len(studies.trials(c)) - len(studies.trials(c, optuna.trial.TrialState.RUNNING))
            for c in search.cells
        )
        bar = progress_lib.bar(
            len(search.cells) * trials,
            search.name,
            "trial",
            progress,
            initial=min(done, len(search.cells) * trials),
        )
        try:
            while batch_trials := studies.next_batch(trials, per_cell):
                trained += _train_batch(
                    search, studies, batch_trials, make_executor, max_group, sinks
                )
                told = sum(
                    studies.tell(cell, number, experiment / cell.config(params).run_id)
                    for cell, number, params in batch_trials
                )
                if not told:
                    raise UserError(
                        f"{experiment}: no trial of the batch finished (their runs are still "
                        "pending: another aeexp holding them?); rerun to resume"
                    )
                bar.update(told)
                interrupts.check()
        except BaseException:
            bar.leave = False
            bar.close()
            raise
        bar.close()
        found = _collect(search, studies)
        found, confirmed = _confirm(
            search,
            studies,
            found,
            _plan_trainer(studies, make_executor, max_group, progress, sinks),
        )
        trained += confirmed
    _write_summary(search, found)
    figure = write_figure(search, found, experiment / FIGURE)
    sweep_file = finish(search, found) if finish is not None else None
    return TuneOutcome(search, found, trained, figure, sweep_file)
