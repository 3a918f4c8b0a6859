"""The run ledger: each run's status, the sweep's runs.csv, failure records, the runs table.

Everything that says what became of runs lives here: a status read from a run directory,
``runs.csv`` rewritten under its lock from what the driver read once and then wrote (keeping
other sweeps' rows),
the directory that records a failed run, and ``load_runs``'s DataFrame for a notebook.
Analysis reads runs through here and the store, never through the API.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeexp.config import run as config_lib
from aeexp.config.run import RunConfig
from aeexp.config.sweep import PlannedRun, SweepPlan, compact
from aeexp.errors import UserError
from aeexp.io import atomic, readers
from aeexp.registry.datasets import DEFAULT_DATASET
from aeexp.registry.losses import loss_key
from aeexp.registry.vocab import SUMMARY_METRICS, Status, status_of
from aeexp.store import locks, runs_csv
from aeexp.store import rundir as store

if TYPE_CHECKING:
    import pandas

RUNS_CSV = "runs.csv"
DESCRIPTIVE_COLUMNS = ("loss", "decoder_activation", "optimizer", "learning_rate", "seed")
# Recorded like a grid key when a plan's dataset is not MNIST, so a runs.csv read back (a
# clone's table) names its dataset; an MNIST sweep's runs.csv keeps the columns it had.
DATASET_COLUMN = "data.name"


def run_status(run: PlannedRun) -> str:
    """Return ``completed``, ``diverged``, ``failed`` or ``pending`` (absent or damaged)."""
    return status_of(store.read_metrics(run.run_dir))


def plan_statuses(plan: SweepPlan) -> dict[str, str]:
    """Return each planned run's status now, by run id, in the plan's order."""
    return Ledger(plan).statuses()


def to_do(plan: SweepPlan, redo: frozenset[str] = frozenset({Status.PENDING})) -> list[PlannedRun]:
    """Return the runs whose status is in ``redo`` (pending ones, by default)."""
    return Ledger(plan).to_do(redo)


class Ledger:
    """A plan's runs and their metrics: read from disk once, then kept from results in hand.

    The driver records each run it writes (and each failure) here, so keeping runs.csv
    current costs no re-reading of every run after every job. A run another driver may have
    written is re-read on its own (``refresh``).
    """

    def __init__(
        self, plan: SweepPlan, known: Mapping[str, Mapping[str, Any] | None] | None = None
    ) -> None:
        """Read each planned run's metrics, except those ``known`` already holds (by run id)."""
        self.plan = plan
        known = known or {}
        self.metrics = {
            run.run_id: known[run.run_id]
            if run.run_id in known
            else store.read_metrics(run.run_dir)
            for run in plan.runs
        }

    def status(self, run: PlannedRun) -> str:
        """Return the run's status as last read or recorded."""
        return status_of(self.metrics[run.run_id])

    def statuses(self) -> dict[str, str]:
        """Return each planned run's status, by run id, in the plan's order."""
        return {run.run_id: self.status(run) for run in self.plan.runs}

    def to_do(self, redo: frozenset[str] = frozenset({Status.PENDING})) -> list[PlannedRun]:
        """Return the runs whose status is in ``redo``."""
        return [run for run in self.plan.runs if self.status(run) in redo]

    def refresh(self, run: PlannedRun) -> str:
        """Re-read one run from its directory (another driver may have written it)."""
        self.metrics[run.run_id] = store.read_metrics(run.run_dir)
        return self.status(run)

    def record(self, run_id: str, metrics: Mapping[str, Any]) -> None:
        """Keep the metrics of a run just written."""
        self.metrics[run_id] = dict(metrics)

    def write(self) -> Path:
        """Rewrite ``runs.csv`` atomically, keeping rows other sweeps of this name wrote there."""
        path = self.plan.experiment_dir / RUNS_CSV
        rows = summary_rows(self.plan, self.metrics)
        with locks.summary_lock(self.plan.experiment_dir):
            others, other_fields = _other_rows(path, {row["run_id"] for row in rows})
            fields = _summary_fields(self.plan)
            fields += [f for f in other_fields if f not in fields]
            atomic.write_csv(path, rows + others, fields)
        return path


def describe_config(cfg: RunConfig) -> dict[str, Any]:
    """Return the descriptive columns every table needs, from a resolved config."""
    return {
        "loss": loss_key(cfg),
        "decoder_activation": cfg.model.decoder_activation,
        "optimizer": cfg.optimizer.name,
        "learning_rate": cfg.optimizer.learning_rate,
        "seed": cfg.seed,
    }


def summary_rows(
    plan: SweepPlan, metrics_by_id: Mapping[str, Mapping[str, Any] | None]
) -> list[dict[str, Any]]:
    """Return one runs.csv row per planned run: id, status, grid values, metrics."""
    rows = []
    dataset_field = _dataset_field(plan)
    for run in plan.runs:
        metrics = metrics_by_id[run.run_id]
        row: dict[str, Any] = {"run_id": run.run_id, "status": status_of(metrics)}
        row |= {k: compact(v) for k, v in run.point.items()}
        if dataset_field:
            row[DATASET_COLUMN] = run.config.data.name
        row |= describe_config(run.config)
        if metrics is not None:
            row |= {k: metrics.get(k) for k in SUMMARY_METRICS}
            row["reason"] = metrics.get("reason", "")
        rows.append(row)
    return rows


def _dataset_field(plan: SweepPlan) -> tuple[str, ...]:
    """Return ``(data.name,)`` if some run is not on MNIST and the grid does not record it."""
    if DATASET_COLUMN in plan.grid_keys:
        return ()
    other = any(run.config.data.name != DEFAULT_DATASET for run in plan.runs)
    return (DATASET_COLUMN,) if other else ()


def _summary_fields(plan: SweepPlan) -> list[str]:
    return [
        "run_id",
        "status",
        *plan.grid_keys,
        *_dataset_field(plan),
        *(c for c in DESCRIPTIVE_COLUMNS if c not in plan.grid_keys),
        *SUMMARY_METRICS,
        "reason",
    ]


def _other_rows(path: Path, mine: set[str]) -> tuple[list[dict[str, str]], list[str]]:
    """Return the rows and columns of an existing runs.csv that belong to other plans."""
    try:
        reader = csv.DictReader(io.StringIO(readers.read_text(path, readers.MAX_SUMMARY_BYTES)))
        rows = [r for r in reader if r.get("run_id") and r["run_id"] not in mine]
        return rows, list(reader.fieldnames or [])
    except (UserError, csv.Error):
        return [], []  # absent, oversized or damaged: rebuilt from this plan's run directories


def record_failure(run: PlannedRun, reason: str) -> dict[str, Any]:
    """Write a complete run directory that says the run failed and why; return its metrics."""
    metrics = {
        "run_id": run.run_id,
        "name": run.config.name,
        "status": Status.FAILED,
        "reason": reason,
    }
    files = {
        store.CONFIG: atomic.encode_yaml(run.config.resolved()).encode(),
        store.METRICS: atomic.encode_json(metrics).encode(),
    }
    store.write_run_files(run.run_dir, files, run_root(run))
    return metrics


def run_root(run: PlannedRun) -> Path:
    """Return the output folder a run must stay inside."""
    return Path(run.config.output.dir)


def run_record(run_dir: Path, cfg: RunConfig, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Return one DataFrame row: ids, the config as dotted keys, every metric."""
    row = {
        "run_id": metrics.get("run_id", cfg.run_id),
        "name": cfg.name,
        "status": status_of(metrics),
        "path": str(run_dir),
    }
    row |= config_lib.flatten_dotted({k: v for k, v in cfg.resolved().items() if k != "name"})
    scores = {k: v for k, v in metrics.items() if k not in ("run_id", "name", "status")}
    row |= {k: v for k, v in config_lib.flatten_dotted(scores).items() if k not in row}
    return row


def load_runs(path: str | Path) -> pandas.DataFrame:
    """Return one row per run under ``path``, unchecked: :func:`aeexp.api.load_runs` checks it."""
    import pandas

    found = runs_csv.locate(path)
    if found is not None:
        return runs_csv.read_frame(found)
    rows = [run_record(r.path, r.config, r.metrics) for r in store.load_runs(path)]
    return pandas.DataFrame(rows)
