"""Experiment tracking: each finished run logged to MLflow (the optional extra ``mlflow``).

The driver calls a sink after it wrote a run directory, so a sink sees exactly what the run
directory holds: the resolved config as params, the per-epoch losses and final metrics as
metrics, and every file as an artifact. A tracking server that fails costs a warning line,
never the run.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from aeexp import store
from aeexp.config import flatten_dotted
from aeexp.errors import UserError, clip
from aeexp.plan import PlannedRun
from aeexp.vocab import Status

# MLflow's own limits per log_batch call.
_PARAMS_PER_BATCH, _METRICS_PER_BATCH = 100, 1000


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def artifact_root(uri: str) -> str | None:
    """Return where a local store keeps artifacts: beside its database file.

    MLflow would otherwise put them in ./mlruns under whatever folder aeexp runs in. A
    server (http, databricks, ...) decides for itself.
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    database = Path(uri[len(prefix) :]).resolve()
    return (database.parent / f"{database.stem}-artifacts").as_uri()


class MlflowSink:
    """Logs each run to an MLflow tracking URI, one MLflow experiment per aeexp name."""

    def __init__(self, uri: str) -> None:
        try:
            import mlflow
        except ImportError:
            raise UserError("--mlflow needs MLflow: pip install 'aeexp[mlflow]'") from None
        self.entities = mlflow.entities
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        self.uri = uri
        self.artifact_root = artifact_root(uri)

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(name, artifact_location=self.artifact_root)

    def _epoch_metrics(self, run: PlannedRun, now: int) -> list[Any]:
        path = run.run_dir / store.HISTORY
        if not path.is_file():
            return []
        metric = self.entities.Metric
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [
            metric(key, float(row[column]), now, int(row["epoch"]))
            for row in rows
            for key, column in (("loss", "loss"), ("val_loss", "val_loss"))
        ]

    def log(self, run: PlannedRun) -> str:
        """Log one written run directory; return the MLflow run id."""
        metrics = store.read_metrics(run.run_dir) or {}
        now = int(time.time() * 1000)
        created = self.client.create_run(
            self._experiment_id(run.config.name),
            run_name=run.run_id,
            tags={"aeexp.run_id": run.run_id, "aeexp.status": str(metrics.get("status"))},
        )
        mlflow_id = created.info.run_id
        params = [
            self.entities.Param(key, clip(str(value), 6000))
            for key, value in flatten_dotted(run.config.resolved()).items()
        ]
        finals = [
            self.entities.Metric(key, float(value), now, 0)
            for key, value in metrics.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        for batch in _chunks(params, _PARAMS_PER_BATCH):
            self.client.log_batch(mlflow_id, params=list(batch))
        for batch in _chunks(self._epoch_metrics(run, now) + finals, _METRICS_PER_BATCH):
            self.client.log_batch(mlflow_id, metrics=list(batch))
        self.client.log_artifacts(mlflow_id, str(run.run_dir))
        status = "FINISHED" if metrics.get("status") == Status.COMPLETED else "FAILED"
        self.client.set_terminated(mlflow_id, status=status)
        return mlflow_id

    def __call__(self, run: PlannedRun) -> None:
        """Log ``run``; on any tracking failure say so on one line and go on."""
        try:
            self.log(run)
        except Exception as error:  # the run directory is written; tracking is a copy
            message = " ".join(str(error).split())
            print(f"aeexp: warning: MLflow at {self.uri}: {clip(message, 200)}", file=sys.stderr)
