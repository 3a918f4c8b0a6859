"""Sweeps: expand a grid into validated run configs (planning), then train them (execution).

Planning is pure and fast: it reads the sweep file, expands the grid, validates every point
and computes run ids, so ``--dry-run`` and errors need no TensorFlow. Execution trains the
pending runs in lock-step groups, isolates failures, and keeps ``runs.csv`` current.
"""

from __future__ import annotations

import itertools
import math
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeexp import config as config_lib
from aeexp import optimizers, results
from aeexp.config import RunConfig
from aeexp.errors import UserError, is_finite_number, valid_and_closest

RUNS_CSV = "runs.csv"
FAILED = "failed"
METRIC_COLUMNS = (
    "ssim_thesis",
    "ssim_thesis_viridis",
    "ssim_mean",
    "ssim_std",
    "ssim_median",
    "psnr_mean",
    "mse",
    "final_loss",
    "final_val_loss",
    "diverged_epoch",
    "train_seconds",
)
DESCRIPTIVE_COLUMNS = ("loss", "decoder_activation", "optimizer", "learning_rate", "seed")
_SWEEP_KEYS = {"name", "base", "config", "grid"}


@dataclass(frozen=True)
class PlannedRun:
    """One point of the grid: its resolved config and the grid values that made it."""

    config: RunConfig
    point: dict[str, Any]

    @property
    def run_dir(self) -> Path:
        """Return where this run's directory lives."""
        return self.config.experiment_dir / self.config.run_id


@dataclass(frozen=True)
class SweepPlan:
    """Every run of a sweep, in grid order, without duplicates."""

    name: str
    experiment_dir: Path
    grid_keys: tuple[str, ...]
    runs: tuple[PlannedRun, ...]


def expand_values(key: str, values: Any) -> list[Any]:
    """Return the list of values for one grid key; ``{start, stop, step}`` is inclusive."""
    if isinstance(values, Mapping) and set(values) == {"start", "stop", "step"}:
        start, stop, step = (values[k] for k in ("start", "stop", "step"))
        if not all(is_finite_number(v) for v in (start, stop, step)) or step <= 0:
            raise UserError(f"grid.{key}: start, stop, step must be finite numbers with step > 0")
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count < 1:
            raise UserError(f"grid.{key}: start {start} is past stop {stop}, so the range is empty")
        return [round(start + i * step, 12) for i in range(count)]
    if not isinstance(values, list) or not values:
        raise UserError(f"grid.{key}: expected a non-empty list or {{start, stop, step}}")
    return values


def expand_grid(grid: Any) -> list[dict[str, Any]]:
    """Return the points of a grid: a mapping's cartesian product, or a list's union."""
    blocks = grid if isinstance(grid, list) else [grid]
    if not blocks:
        raise UserError("grid: empty; give at least one dotted key with a list of values")
    points: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, Mapping) or not block:
            raise UserError("grid: expected a mapping of dotted keys to lists, or a list of them")
        for key in block:
            if not isinstance(key, str):
                raise UserError(f"grid: {key!r} is not a dotted config key such as train.epochs")
        keys = list(block)
        value_lists = [expand_values(k, block[k]) for k in keys]
        points.extend(
            dict(zip(keys, combo, strict=True)) for combo in itertools.product(*value_lists)
        )
    return points


def describe_point(point: Mapping[str, Any]) -> str:
    """Return ``key=value, ...`` for messages and tables."""
    return ", ".join(f"{k}={_compact(v)}" for k, v in point.items())


def _compact(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)


def _base_config(sweep: Mapping[str, Any], sweep_path: Path) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if sweep.get("base") is not None:
        raw = config_lib.read_yaml(sweep_path.parent / str(sweep["base"]))
    inline = sweep.get("config") or {}
    if not isinstance(inline, Mapping):
        raise UserError(f"{sweep_path}: 'config' must be a mapping of run-config keys")
    for key, value in inline.items():
        raw = config_lib.set_dotted(raw, key, value)
    return raw


def plan(
    sweep_path: str | Path, overrides: Iterable[str] = (), out: str | None = None
) -> SweepPlan:
    """Read a sweep file and return its validated runs; raise UserError naming a bad point."""
    sweep_path = Path(sweep_path)
    sweep = config_lib.read_yaml(sweep_path)
    for key in sweep:
        if key not in _SWEEP_KEYS:
            message = valid_and_closest(key, _SWEEP_KEYS)
            raise UserError(f"{sweep_path}: {key}: unknown key{message}")
    if "grid" not in sweep:
        raise UserError(f"{sweep_path}: missing 'grid'")
    name = str(sweep.get("name") or sweep_path.stem)
    points = expand_grid(sweep["grid"])
    overrides = list(overrides)
    _check_overrides(overrides, [key for point in points for key in point])
    base = config_lib.apply_overrides(_base_config(sweep, sweep_path), overrides)
    base["name"] = name
    if out is not None:
        base = config_lib.set_dotted(base, "output.dir", out)
    runs: dict[str, PlannedRun] = {}
    for index, point in enumerate(points, start=1):
        raw = base
        for key, value in point.items():
            raw = config_lib.set_dotted(raw, key, value)
        source = f"{sweep_path}: point {index} ({describe_point(point)})"
        cfg = config_lib.validate(raw, source=source)
        runs.setdefault(cfg.run_id, PlannedRun(cfg, point))
    keys = tuple(dict.fromkeys(k for p in points for k in p))
    experiment_dir = next(iter(runs.values())).config.experiment_dir
    return SweepPlan(name, experiment_dir, keys, tuple(runs.values()))


def _check_overrides(overrides: Sequence[str], grid_keys: Iterable[str]) -> None:
    """Refuse a ``--set`` the grid would silently overwrite, or a sweep's name."""
    grid = {_canonical(key) for key in grid_keys}
    for text in overrides:
        key = _canonical(config_lib.parse_override(text)[0])
        if key == "name":
            raise UserError(f"--set {text!r}: a sweep's name comes from its 'name' key")
        for other in sorted(grid):
            # Either key may hold the other: a grid of optimizer mappings replaces any
            # --set optimizer.learning_rate, and a grid of learning rates overrides part of
            # --set optimizer={...}.
            if key == other or key.startswith(f"{other}.") or other.startswith(f"{key}."):
                raise UserError(
                    f"--set {text!r}: the grid sets {other}, which would silently win; "
                    f"change the grid instead"
                )


def _canonical(key: str) -> str:
    """Return a dotted key with optimizer aliases resolved (optimizer.lr -> .learning_rate)."""
    parts = key.split(".")
    if len(parts) > 1 and parts[0] == "optimizer":
        parts[1] = optimizers.ALIASES.get(parts[1], parts[1])
    return ".".join(parts)


def run_status(run: PlannedRun) -> str:
    """Return ``completed``, ``diverged``, ``failed`` or ``pending``."""
    if not results.is_complete(run.run_dir):
        return "pending"
    return results.read_json(run.run_dir / results.METRICS).get("status", "completed")


def to_do(sweep: SweepPlan, rerun_failed: bool = False) -> list[PlannedRun]:
    """Return the runs still to train: pending ones, and failed ones if asked."""
    redo = {"pending", FAILED} if rerun_failed else {"pending"}
    return [run for run in sweep.runs if run_status(run) in redo]


def group_runs(runs: Sequence[PlannedRun], max_group: int) -> list[list[PlannedRun]]:
    """Split runs into lock-step groups sharing data, train settings and seed."""
    from aeexp.runner import group_key

    by_key: dict[Any, list[PlannedRun]] = {}
    for run in runs:
        by_key.setdefault(group_key(run.config), []).append(run)
    groups = []
    for members in by_key.values():
        groups.extend(members[i : i + max_group] for i in range(0, len(members), max_group))
    return groups


def record_failure(run: PlannedRun, reason: str) -> None:
    """Write a complete run directory that says the run failed and why."""
    with results.staged_run_dir(run.run_dir) as staging:
        results.write_yaml(staging / results.CONFIG, run.config.resolved())
        results.write_json(
            staging / results.METRICS,
            {
                "run_id": run.config.run_id,
                "name": run.config.name,
                "status": FAILED,
                "reason": reason,
            },
        )


def train_isolated(group: Sequence[PlannedRun], dataset: Any, quiet: bool) -> None:
    """Train a group; if it fails, retrain its members one by one so one bad run fails alone."""
    from aeexp import runner

    try:
        runner.train_group([r.config for r in group], dataset, quiet=quiet)
        return
    except (KeyboardInterrupt, UserError):
        raise
    except Exception:  # a crash inside one run must not stop the sweep
        if len(group) == 1:
            record_failure(group[0], _last_error_line())
            return
    for run in group:
        # Members the group wrote before it crashed are done: training them again would cost
        # time and replace their directories. A run failed earlier (--rerun-failed) is redone.
        if run_status(run) in ("pending", FAILED):
            train_isolated([run], dataset, quiet)


def _last_error_line() -> str:
    lines = traceback.format_exc().strip().splitlines()
    return lines[-1][:300] if lines else "unknown error"


def summary_rows(sweep: SweepPlan) -> list[dict[str, Any]]:
    """Return one runs.csv row per planned run: id, status, grid values, metrics."""
    rows = []
    for run in sweep.runs:
        row: dict[str, Any] = {"run_id": run.config.run_id, "status": run_status(run)}
        row |= {k: _compact(v) for k, v in run.point.items()}
        row |= describe_config(run.config)
        if row["status"] != "pending":
            metrics = results.read_json(run.run_dir / results.METRICS)
            row |= {k: metrics.get(k) for k in METRIC_COLUMNS}
            row["reason"] = metrics.get("reason", "")
        rows.append(row)
    return rows


def describe_config(cfg: RunConfig) -> dict[str, Any]:
    """Return the descriptive columns every table needs, from a resolved config."""
    params = cfg.loss.params()
    loss = cfg.loss.name if not params else f"{cfg.loss.name}({params['beta']:g},{params['order']})"
    return {
        "loss": loss,
        "decoder_activation": cfg.model.decoder_activation,
        "optimizer": cfg.optimizer.name,
        "learning_rate": cfg.optimizer.params["learning_rate"],
        "seed": cfg.seed,
    }


def write_summary(sweep: SweepPlan) -> Path:
    """Rewrite ``runs.csv`` atomically and return its path."""
    rows = summary_rows(sweep)
    fields = [
        "run_id",
        "status",
        *sweep.grid_keys,
        *(c for c in DESCRIPTIVE_COLUMNS if c not in sweep.grid_keys),
        *METRIC_COLUMNS,
        "reason",
    ]
    path = sweep.experiment_dir / RUNS_CSV
    results.write_csv(path, rows, fields)
    return path


def execute(
    sweep: SweepPlan,
    max_group: int,
    rerun_failed: bool = False,
    quiet: bool = False,
    on_group_done: Callable[[int], None] | None = None,
) -> None:
    """Train every run still to do, group by group, keeping runs.csv current."""
    from aeexp import runner

    pending = to_do(sweep, rerun_failed)
    results.ensure_writable(sweep.experiment_dir)
    results.remove_stale_staging(sweep.experiment_dir)
    # Every data setting is loaded (and checked) before the first group trains, so a bad one
    # anywhere in the grid stops the sweep at once rather than after hours of training.
    datasets: dict[Any, Any] = {}
    for run in pending:
        if run.config.data not in datasets:
            datasets[run.config.data] = runner.load_dataset(run.config)
    for group in group_runs(pending, max_group):
        train_isolated(group, datasets[group[0].config.data], quiet)
        write_summary(sweep)
        if on_group_done is not None:
            on_group_done(len(group))
    write_summary(sweep)


def problems(sweep: SweepPlan) -> list[tuple[PlannedRun, str]]:
    """Return the runs that diverged or failed, with their status."""
    statuses = [(run, run_status(run)) for run in sweep.runs]
    return [(run, status) for run, status in statuses if status in ("diverged", FAILED)]
