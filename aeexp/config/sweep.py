"""Planning: a config or a sweep file -> validated runs, their ids, and lock-step groups.

Pure and fast: no TensorFlow, not even transitively, so ``--dry-run``, errors and the Ray
driver's planning answer at once. A single ``aeexp run`` is planned as a sweep of one.
Work is bounded before it starts: a grid is counted before it is expanded.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aeexp.config import run as config_lib
from aeexp.config.run import RunConfig
from aeexp.errors import UserError, clip, is_finite_number, shorten, valid_and_closest
from aeexp.io import yamlio
from aeexp.registry import optimizers
from aeexp.registry.vocab import DEFAULT_MAX_RUNS

_SWEEP_KEYS = {"name", "base", "config", "grid"}


@dataclass(frozen=True)
class PlannedRun:
    """One point of the grid: its resolved config and the grid values that made it."""

    config: RunConfig
    point: dict[str, Any]

    @property
    def run_id(self) -> str:
        """Return the run's id, a hash of its resolved config."""
        return self.config.run_id

    @property
    def run_dir(self) -> Path:
        """Return where this run's directory lives."""
        return self.config.experiment_dir / self.config.run_id


@dataclass(frozen=True)
class SweepPlan:
    """Every run of a sweep (or a single run), in grid order, without duplicates."""

    name: str
    output_dir: Path
    grid_keys: tuple[str, ...]
    runs: tuple[PlannedRun, ...]

    @property
    def experiment_dir(self) -> Path:
        """Return ``<output>/<name>``, where the runs and ``runs.csv`` live."""
        return self.output_dir / self.name

    @property
    def backend(self) -> str:
        """Return the backend every run trains on (a plan never mixes them)."""
        return self.runs[0].config.train.backend


def _range_count(key: str, values: Mapping[str, Any]) -> int:
    start, stop, step = (values[k] for k in ("start", "stop", "step"))
    if not all(is_finite_number(v) for v in (start, stop, step)) or step <= 0:
        raise UserError(f"grid.{key}: start, stop, step must be finite numbers with step > 0")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count < 1:
        raise UserError(f"grid.{key}: start {start} is past stop {stop}, so the range is empty")
    return count


def key_text(key: Any) -> str:
    """Return a mapping key for a message: a string as it is (bounded), anything else repr'd."""
    return clip(key) if isinstance(key, str) else shorten(key)


def _is_range(values: Any) -> bool:
    return isinstance(values, Mapping) and set(values) == {"start", "stop", "step"}


def count_values(key: str, values: Any) -> int:
    """Return how many values one grid key takes, without expanding a range."""
    if _is_range(values):
        return _range_count(key, values)
    if not isinstance(values, list) or not values:
        raise UserError(f"grid.{key}: expected a non-empty list or {{start, stop, step}}")
    return len(values)


def expand_values(key: str, values: Any) -> list[Any]:
    """Return the list of values for one grid key; ``{start, stop, step}`` is inclusive."""
    count = count_values(key, values)
    if not _is_range(values):
        return values
    start, step = values["start"], values["step"]
    return [round(start + i * step, 12) for i in range(count)]


def _blocks(grid: Any) -> list[Mapping[str, Any]]:
    blocks = grid if isinstance(grid, list) else [grid]
    if not blocks:
        raise UserError("grid: empty; give at least one dotted key with a list of values")
    for block in blocks:
        if not isinstance(block, Mapping) or not block:
            raise UserError("grid: expected a mapping of dotted keys to lists, or a list of them")
        for key in block:
            if not isinstance(key, str):
                raise UserError(
                    f"grid: {shorten(key)} is not a dotted config key such as train.epochs"
                )
    return blocks


def count_points(grid: Any) -> int:
    """Return how many points a grid expands to, counting rather than expanding."""
    return sum(
        math.prod(count_values(key, values) for key, values in block.items())
        for block in _blocks(grid)
    )


def expand_grid(grid: Any, max_runs: int = DEFAULT_MAX_RUNS) -> list[dict[str, Any]]:
    """Return the points of a grid: a mapping's cartesian product, or a list's union."""
    total = count_points(grid)
    if total > max_runs:
        raise UserError(
            f"grid: {total:,} points, more than the limit of {max_runs:,}; "
            "split the sweep or raise --max-runs"
        )
    points: list[dict[str, Any]] = []
    for block in _blocks(grid):
        keys = list(block)
        value_lists = [expand_values(k, block[k]) for k in keys]
        points.extend(
            dict(zip(keys, combo, strict=True)) for combo in itertools.product(*value_lists)
        )
    return points


def describe_point(point: Mapping[str, Any]) -> str:
    """Return ``key=value, ...`` for messages and tables."""
    return ", ".join(f"{k}={compact(v)}" for k, v in point.items())


def compact(value: Any) -> str:
    """Return a grid value as a short string; a mapping as ``{k: v, ...}``."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)


def base_config(sweep: Mapping[str, Any], sweep_path: Path) -> dict[str, Any]:
    """Return a sweep's (or search file's) base config with its inline ``config`` applied."""
    raw: dict[str, Any] = {}
    if sweep.get("base") is not None:
        raw = yamlio.read_yaml(sweep_path.parent / str(sweep["base"]))
    inline = sweep.get("config") or {}
    if not isinstance(inline, Mapping):
        raise UserError(f"{sweep_path}: 'config' must be a mapping of run-config keys")
    return config_lib.override(raw, dotted=inline)


def sweep_name(sweep: Mapping[str, Any], sweep_path: Path) -> str:
    """Return a sweep's (or search file's) checked name: its ``name``, else the file's stem."""
    if sweep.get("name") is None:  # the file's stem: say where a strange name came from
        hint = " (the name defaults to the file's name without .yaml: set 'name:')"
        return config_lib.check_name(sweep_path.stem, f"{sweep_path}: name{hint}")
    return config_lib.check_name(sweep["name"], f"{sweep_path}: name")


def read_sweep(source: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], Path]:
    """Return a sweep's mapping and the path its ``base`` is relative to and errors name.

    A mapping (from a notebook) stands for a file ``sweep.yaml`` in the current folder.
    """
    if isinstance(source, Mapping):
        sweep = dict(source)
        if sweep.get("name") is None:
            raise UserError("sweep: a sweep given as a mapping needs a 'name'")
        return sweep, Path("sweep.yaml")
    return yamlio.read_yaml(source), Path(source)


def plan_sweep(
    source: str | Path | Mapping[str, Any],
    overrides: Iterable[str] = (),
    out: str | Path | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> SweepPlan:
    """Read a sweep (a file, or its mapping) and return its validated runs.

    Raises UserError naming a bad key, a bad grid or the first bad point.
    """
    sweep, sweep_path = read_sweep(source)
    for key in sweep:
        if key not in _SWEEP_KEYS:
            message = valid_and_closest(key, _SWEEP_KEYS)
            raise UserError(f"{sweep_path}: {key_text(key)}: unknown key{message}")
    if "grid" not in sweep:
        raise UserError(f"{sweep_path}: missing 'grid'")
    name = sweep_name(sweep, sweep_path)
    points = expand_grid(sweep["grid"], max_runs)
    overrides = list(overrides)
    check_overrides(overrides, [key for point in points for key in point])
    base = config_lib.override(base_config(sweep, sweep_path), overrides, {"name": name}, out=out)
    runs: dict[str, PlannedRun] = {}
    for index, point in enumerate(points, start=1):
        raw = config_lib.override(base, dotted=point)
        where = f"{sweep_path}: point {index} ({clip(describe_point(point), 160)})"
        cfg = config_lib.validate(raw, source=where)
        runs.setdefault(cfg.run_id, PlannedRun(cfg, point))
    _check_one_backend(runs.values(), sweep_path)
    keys = tuple(dict.fromkeys(k for p in points for k in p))
    first = next(iter(runs.values())).config
    return SweepPlan(name, Path(first.output.dir), keys, tuple(runs.values()))


def _check_one_backend(runs: Iterable[PlannedRun], sweep_path: Path) -> None:
    """Refuse a grid whose runs train on different backends.

    Keras takes its backend once per process, so one sweep's groups, trained in one process
    (or on one set of Ray workers), cannot use two; two sweeps, one per backend, can.
    """
    backends = sorted({run.config.train.backend for run in runs})
    if len(backends) > 1:
        raise UserError(
            f"{sweep_path}: the grid mixes train.backend values ({', '.join(backends)}); "
            "a process holds one Keras backend, so give each backend a sweep of its own"
        )


def plan_run(config: RunConfig) -> SweepPlan:
    """Return the plan of a single run: a sweep of one, with no grid."""
    return SweepPlan(config.name, Path(config.output.dir), (), (PlannedRun(config, {}),))


def check_overrides(overrides: Sequence[str], grid_keys: Iterable[str]) -> None:
    """Refuse a ``--set`` the grid would silently overwrite, or a sweep's name."""
    grid = {canonical_key(key) for key in grid_keys}
    for text in overrides:
        key = canonical_key(config_lib.parse_override(text)[0])
        if key == "name":
            raise UserError(f"--set {shorten(text)}: a sweep's name comes from its 'name' key")
        for other in sorted(grid):
            # Either key may hold the other: a grid of optimizer mappings replaces any
            # --set optimizer.learning_rate, and a grid of learning rates overrides part of
            # --set optimizer={...}.
            if key == other or key.startswith(f"{other}.") or other.startswith(f"{key}."):
                raise UserError(
                    f"--set {shorten(text)}: the grid sets {other}, which would silently win; "
                    f"change the grid instead"
                )


def canonical_key(key: str) -> str:
    """Return a dotted key with optimizer aliases resolved (optimizer.lr -> .learning_rate)."""
    parts = key.split(".")
    if len(parts) > 1 and parts[0] == "optimizer":
        parts[1] = optimizers.ALIASES.get(parts[1], parts[1])
    return ".".join(parts)


def group_key(config: RunConfig) -> tuple[Any, ...]:
    """Return what members of one lock-step group must share: data, training, seed."""
    return (config.data, config.train, config.seed)


def _even_chunks(members: Sequence[PlannedRun], count: int) -> list[list[PlannedRun]]:
    """Split ``members`` into ``count`` consecutive chunks whose sizes differ by at most one."""
    size, extra = divmod(len(members), count)
    chunks, start = [], 0
    for index in range(count):
        stop = start + size + (index < extra)
        chunks.append(list(members[start:stop]))
        start = stop
    return chunks


def group_runs(
    runs: Sequence[PlannedRun], max_group: int, workers: int = 1
) -> list[list[PlannedRun]]:
    """Split runs into lock-step groups sharing data, train settings and seed.

    Each set of runs that may share a group is cut into equal chunks of at most
    ``max_group``; with several workers, into a multiple of their number, so that no worker
    idles while another trains a last oversized group. Grouping never changes a run's
    numbers: a member ends where it would have ended trained alone.
    """
    by_key: dict[Any, list[PlannedRun]] = {}
    for run in runs:
        by_key.setdefault(group_key(run.config), []).append(run)
    groups = []
    for members in by_key.values():
        count = math.ceil(len(members) / max_group)
        count = min(len(members), math.ceil(count / workers) * workers)
        groups.extend(_even_chunks(members, count))
    return groups
