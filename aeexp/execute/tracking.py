"""Experiment tracking: each finished run logged to MLflow (the optional extra ``mlflow``).

The driver calls a sink after it wrote a run directory, so a sink sees exactly what the run
directory holds: the resolved config as params, the per-epoch losses and final metrics as
metrics, and every file as an artifact. A tracking server that fails costs a warning line,
never the run.

``--mlflow`` accepts two forms, checked before anything trains:

- ``http(s)://HOST[:PORT][/PATH]``: a tracking server. It must accept a connection within
  :data:`reach.CONNECT_TIMEOUT` seconds; afterwards each MLflow request is bounded by
  :data:`HTTP_LIMITS`, so a server that dies mid-sweep costs seconds per run, not minutes.
- ``sqlite:///PATH``: a local store, a new file or an existing SQLite database; its
  artifacts go beside it in ``<stem>-artifacts``.

Anything else is refused on one line: MLflow's file store (``file://``, a plain path), an
empty URI and in-memory SQLite all write ``./mlruns`` (or ``./mlflow.db``) into whatever
folder aeexp runs in, outside ``--out``; other database URIs would too.
"""

from __future__ import annotations

import contextlib
import logging
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aeexp.config.run import flatten_dotted
from aeexp.config.sweep import PlannedRun
from aeexp.env.extras import install_hint
from aeexp.errors import UserError, clip, shorten
from aeexp.execute import reach
from aeexp.io import paths, readers
from aeexp.registry.vocab import Status
from aeexp.store import rundir as store

# MLflow's own limits per log_batch call.
_PARAMS_PER_BATCH, _METRICS_PER_BATCH = 100, 1000
ACCEPTED = "http(s)://HOST[:PORT][/PATH] for a tracking server or sqlite:///PATH for a local store"
SQLITE_HEADER = b"SQLite format 3\x00"
# MLflow's defaults (7 retries with growing back-off, 120 s per request) stall every run for
# minutes once a server is gone. With these a refused request fails in about 2 s and a server
# that accepts but never answers costs at most 3 x 10 s. A value the user set is kept.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


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


def _refuse(uri: str, problem: str) -> UserError:
    """Return the one-line error for a tracking URI aeexp cannot use."""
    return UserError(f"--mlflow {shorten(uri)}: {problem}")


def _check_server(uri: str) -> None:
    """Refuse an http(s) URI without a host, or whose server does not accept a connection."""
    parts = urlsplit(uri)
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:  # a port that is not a number or out of range
        raise _refuse(uri, f"not a valid URI; use {ACCEPTED}") from None
    if not parts.hostname:
        raise _refuse(uri, f"names no host; use {ACCEPTED}")
    reason = reach.unreachable_reason(parts.hostname, port)
    if reason is not None:
        raise _refuse(uri, f"no tracking server answers ({reason})")


def sqlite_path(uri: str) -> Path:
    """Return the database file of a ``sqlite:///PATH`` URI; refuse in-memory and other forms."""
    rest = uri[len("sqlite://") :]
    if rest in ("", "/", "/:memory:"):
        # MLflow would put the artifacts of an in-memory store in ./mlruns, outside --out.
        raise _refuse(uri, "an in-memory store keeps nothing; use sqlite:///PATH for a local store")
    if not rest.startswith("/"):
        raise _refuse(uri, "use sqlite:///PATH (three slashes) for a local store")
    return Path(rest[1:])


def _check_sqlite(uri: str) -> None:
    """Refuse a store path that is a folder, not an SQLite file, or in a missing folder."""
    path = sqlite_path(uri)
    try:
        found = paths.status(path)  # a name too long, a loop, no permission: one line
    except UserError as error:  # it names the path already; the URI would double it
        raise UserError(f"--mlflow: {error}") from None
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise _refuse(uri, f"{path} is a folder, not a database file")
    if found is None:
        if not paths.is_folder(path.parent):
            raise _refuse(uri, f"folder {path.parent} does not exist")
        return
    try:  # not open(): a FIFO would block, a device never end
        header = readers.read_head(path, len(SQLITE_HEADER), "database file")
    except UserError as error:  # it names the path already; the URI would double it
        raise UserError(f"--mlflow: {error}") from None
    if header and header != SQLITE_HEADER:  # SQLite takes an empty file as an empty database
        raise _refuse(uri, f"{path} is not an SQLite database")


def check_tracking_uri(uri: str) -> None:
    """Refuse, on one line and before anything trains, a tracking URI aeexp cannot use."""
    if not uri.strip():
        # MLflow would fall back to ./mlruns or ./mlflow.db in the working folder.
        raise UserError(f"--mlflow needs a tracking URI: {ACCEPTED}")
    try:
        scheme = urlsplit(uri).scheme.lower()
    except ValueError:  # e.g. an unbalanced [ in the host
        raise _refuse(uri, f"not a valid URI; use {ACCEPTED}") from None
    if scheme in ("http", "https"):
        _check_server(uri)
    elif scheme == "sqlite":
        _check_sqlite(uri)
    elif not scheme:
        raise _refuse(uri, f"not a URI; use {ACCEPTED}")
    elif scheme == "file" or len(scheme) == 1:  # C: is a Windows drive, not a scheme
        raise _refuse(
            uri, "MLflow's file store is not supported; use sqlite:///PATH for a local store"
        )
    else:
        raise _refuse(uri, f"not a supported tracking URI; use {ACCEPTED}")


def _http_limits() -> contextlib.AbstractContextManager[None]:
    """Bound MLflow's HTTP retries and timeouts for a block, unless the user set them."""
    return reach.environment_defaults(HTTP_LIMITS)


class MlflowSink:
    """Logs each run to an MLflow tracking URI, one MLflow experiment per aeexp name."""

    def __init__(self, uri: str) -> None:
        check_tracking_uri(uri)
        try:
            import mlflow
        except ImportError:
            raise UserError(f"--mlflow needs MLflow: {install_hint('mlflow')}") from None
        # MLflow and its migrations log at INFO to stderr ("Creating initial MLflow database
        # tables..."): not the user's business, and it breaks the one-line rule on a fault.
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.entities = mlflow.entities
        self.uri = uri
        self.artifact_root = artifact_root(uri)
        try:
            with _http_limits():
                self.client = mlflow.MlflowClient(tracking_uri=uri)
                # One real request: a store MLflow cannot open or a server that is not MLflow's
                # fails here, on one line, rather than after the first run trained.
                self.client.search_experiments(max_results=1)
        except Exception as error:
            message = " ".join(str(error).split()) or type(error).__name__
            raise UserError(f"--mlflow {uri!r}: {clip(message, 200)}") from None

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(name, artifact_location=self.artifact_root)

    def _epoch_metrics(self, run: PlannedRun, now: int) -> list[Any]:
        metric = self.entities.Metric
        try:
            rows = store.read_history(run.run_dir)  # none for a failed run
        except ValueError:
            return []  # aeexp wrote it just now; damaged meanwhile, it is not logged
        return [
            metric(key, row[column], now, int(row["epoch"]))
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
        # MLflow's statuses: a tuner's pruned trial was stopped on purpose, not broken.
        mlflow_status = {Status.COMPLETED: "FINISHED", Status.PRUNED: "KILLED"}
        status = mlflow_status.get(metrics.get("status"), "FAILED")
        self.client.set_terminated(mlflow_id, status=status)
        return mlflow_id

    def __call__(self, run: PlannedRun) -> None:
        """Log ``run``; on any tracking failure say so on one line and go on."""
        try:
            with _http_limits():
                self.log(run)
        except Exception as error:  # the run directory is written; tracking is a copy
            message = " ".join(str(error).split())
            print(f"aeexp: warning: MLflow at {self.uri}: {clip(message, 200)}", file=sys.stderr)
