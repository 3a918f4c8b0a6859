"""The search file: a sweep's ``name``, ``base``, ``config`` and ``grid``, plus what to search.

```yaml
name: lr-search
base: ../thesis/mse_relu-sigmoid_adam.yaml      # relative to this file
grid: {train.epochs: [50], data.holdout: [10000]}   # fixed values: each point is one cell
search: {optimizer.learning_rate: {log_uniform: [1.0e-5, 3.0]}}
metric: {name: ssim_mean, direction: maximize}
seed: 0                                          # the sampler's
sampler: {name: tpe, n_startup_trials: 10}
pruner: {name: median, n_startup_trials: 5, n_warmup_steps: 0, interval_steps: 1}
```

Each grid point is a cell with its own study; a block of a list-valued grid may carry its own
``search``, merged over the top-level one. Everything is checked here, before Optuna or
TensorFlow loads: every cell's config at every end of every range and every option.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aeexp.config import run as config_lib
from aeexp.config import sweep as plan
from aeexp.config.run import MAX_SEED, RunConfig
from aeexp.errors import UserError, clip, shorten, valid_and_closest
from aeexp.io import yamlio
from aeexp.registry import vocab
from aeexp.registry.datasets import DEFAULT_DATASET
from aeexp.tuning.space import Space, describe_params, describe_value, parse_space

SEARCH_KEYS = (
    "name",
    "base",
    "config",
    "grid",
    "search",
    "metric",
    "seed",
    "sampler",
    "pruner",
    "confirm",
)
# Trials of a cell train in lock-step, so they must share what a group shares (data, training,
# seed); a name or output folder is not a hyperparameter.
FIXED_SECTIONS = ("seed", "data", "train", "name", "output")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SamplerSpec(_Section):
    """Which Optuna sampler proposes trials: TPE (the default) or uniformly at random."""

    name: Literal["tpe", "random"] = "tpe"
    # Trials drawn at random before TPE models the results (Optuna's default: 10).
    n_startup_trials: int = Field(10, ge=0, le=10_000)

    def build(self, seed: int) -> Any:
        """Return the Optuna sampler, seeded."""
        import warnings

        import optuna

        if self.name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        with warnings.catch_warnings():  # constant_liar is "experimental" in Optuna 4
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # constant_liar: trials asked together in a batch are steered apart, not alike.
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=self.n_startup_trials, constant_liar=True
            )


class PrunerSpec(_Section):
    """Which Optuna pruner stops trials at epoch boundaries: median (the default), or none."""

    name: Literal["median", "percentile", "none"] = "median"
    n_startup_trials: int = Field(5, ge=0, le=10_000)  # complete trials before any pruning
    n_warmup_steps: int = Field(0, ge=0, le=10_000)  # epochs a trial always trains
    interval_steps: int = Field(1, ge=1, le=10_000)  # epochs between pruning checks
    percentile: float | None = Field(None, ge=0, le=100)  # percentile: prune below this one

    def build(self) -> Any:
        """Return the Optuna pruner."""
        import optuna

        if self.name == "none":
            return optuna.pruners.NopPruner()
        steps = {
            "n_startup_trials": self.n_startup_trials,
            "n_warmup_steps": self.n_warmup_steps,
            "interval_steps": self.interval_steps,
        }
        if self.name == "median":
            return optuna.pruners.MedianPruner(**steps)
        return optuna.pruners.PercentilePruner(self.percentile, **steps)

    @property
    def active(self) -> bool:
        """Return whether this pruner may stop a trial."""
        return self.name != "none"


class ConfirmSpec(_Section):
    """Which best trials train again on more seeds before a cell's best is named (0: none)."""

    top: int = Field(0, ge=0, le=100)  # a cell's best completed trials trained again
    seeds: int = Field(1, ge=1, le=100)  # more seeds each: the cell's seed + 1, + 2, ...

    def offsets(self) -> range:
        """Return what each confirming run adds to the cell's seed: 1, 2, ..., ``seeds``."""
        return range(1, self.seeds + 1) if self.top else range(0)


class MetricSpec(_Section):
    """What a trial's value is (a metric of metrics.json) and whether higher is better."""

    name: str = "ssim_mean"
    direction: Literal["maximize", "minimize"] | None = None

    @property
    def maximize(self) -> bool:
        """Return whether a higher value is better."""
        return self.direction == "maximize"


@dataclass(frozen=True)
class Cell:
    """One grid point: its fixed values, its base config and its search spaces: one study."""

    index: int  # 1-based, in the file's order
    point: dict[str, Any]
    raw: dict[str, Any]  # the base config with the point applied; validated with each trial
    spaces: tuple[Space, ...]
    study_name: str

    @property
    def label(self) -> str:
        """Return the cell's fixed values, e.g. ``loss.name=mse, seed=0`` (or ``base config``)."""
        return plan.describe_point(self.point) if self.point else "base config"

    def config(self, params: Mapping[str, Any], where: str = "") -> RunConfig:
        """Return the cell's validated config with the searched ``params`` set."""
        raw = config_lib.override(self.raw, dotted=params)
        shown = describe_params(params)
        return config_lib.validate(raw, source=where or f"cell {self.index} ({shown})")

    def distributions(self) -> dict[str, Any]:
        """Return the Optuna distribution of each searched key."""
        return {space.key: space.distribution() for space in self.spaces}

    @property
    def plotted(self) -> Space:
        """Return the space a figure puts on its x axis: the learning rate, else a range."""
        by_key = {space.key: space for space in self.spaces}
        if "optimizer.learning_rate" in by_key:
            return by_key["optimizer.learning_rate"]
        return next((s for s in self.spaces if s.is_range), self.spaces[0])


@dataclass(frozen=True)
class Search:
    """A parsed, checked search file."""

    name: str
    path: Path
    output_dir: Path
    cells: tuple[Cell, ...]
    metric: MetricSpec
    seed: int
    sampler: SamplerSpec
    pruner: PrunerSpec
    on_test_set: bool
    confirm: ConfirmSpec = ConfirmSpec()

    @property
    def experiment_dir(self) -> Path:
        """Return ``<out>/<name>``: the trials' run directories, runs.csv, the study database."""
        return self.output_dir / self.name

    @property
    def keys(self) -> tuple[str, ...]:
        """Return every grid and searched key, in order (runs.csv's point columns)."""
        keys = [k for cell in self.cells for k in cell.point]
        keys += [space.key for cell in self.cells for space in cell.spaces]
        return tuple(dict.fromkeys(keys))


def _section(model: type[_Section], raw: Any, where: str) -> Any:
    """Return a validated settings section, or raise one line naming the bad key."""
    if isinstance(raw, str) and "name" in model.model_fields:
        raw = {"name": raw}  # ``pruner: none``, ``metric: ssim_mean``
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: expected a mapping, got {shorten(raw)}")
    try:
        return model.model_validate(dict(raw))
    except ValidationError as error:
        item = error.errors(include_input=False, include_url=False)[0]
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key" + valid_and_closest(item["loc"][-1], model.model_fields)
        raise UserError(
            clip(f"{where}.{location}: {message}" if location else f"{where}: {message}")
        ) from None


def _metric(raw: Any, where: str) -> MetricSpec:
    """Return the metric, its direction from the registry unless given (and then agreeing)."""
    spec = _section(MetricSpec, raw, where)
    known = vocab.METRICS.get(spec.name)
    if known is None:
        raise UserError(
            f"{where}: unknown metric {shorten(spec.name)}"
            f"{valid_and_closest(spec.name, vocab.METRICS)}"
        )
    if not known.completed:
        ranked = [name for name, metric in vocab.METRICS.items() if metric.completed]
        raise UserError(
            f"{where}: {spec.name} is recorded only by runs that did not complete, so no "
            f"completed trial would have a value to rank; use one of {', '.join(ranked)}"
        )
    if known.higher_is_better is None:
        if spec.direction is None:
            raise UserError(f"{where}: {spec.name} has no known direction; give direction")
        return spec
    natural = "maximize" if known.higher_is_better else "minimize"
    if spec.direction not in (None, natural):
        raise UserError(
            f"{where}: {spec.name} is better {'higher' if known.higher_is_better else 'lower'}, "
            f"so direction {spec.direction} would search for the worst; use {natural}"
        )
    return spec.model_copy(update={"direction": natural})


def _spaces(raw: Any, where: str) -> dict[str, Space]:
    """Return the spaces of a ``search`` mapping, by canonical key."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: expected a mapping of dotted config keys to spaces")
    spaces: dict[str, Space] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            raise UserError(f"{where}: {shorten(key)} is not a dotted config key")
        canonical = plan.canonical_key(key)
        if canonical in spaces:
            raise UserError(f"{where}: {key} and {spaces[canonical].key} name the same key")
        spaces[canonical] = parse_space(canonical, value, f"{where}.{key}")
    return spaces


def _blocks(grid: Any, where: str) -> list[tuple[dict[str, Any], Any]]:
    """Return each grid block without its ``search``, and that search (None if it has none)."""
    if grid is None:
        return [({}, None)]
    blocks = grid if isinstance(grid, list) else [grid]
    if not blocks:
        raise UserError(f"{where}: empty; give a mapping of dotted keys to lists, or leave it out")
    split = []
    for block in blocks:
        if not isinstance(block, Mapping):
            raise UserError(
                f"{where}: expected a mapping of dotted keys to lists, or a list of them"
            )
        split.append(({k: v for k, v in block.items() if k != "search"}, block.get("search")))
    return split


def _check_key(space: Space, cell_point: Mapping[str, Any], pruner: PrunerSpec, where: str) -> None:
    """Refuse a key that must not be searched: shared by a lock-step group, or fixed already."""
    head = space.key.split(".", 1)[0]
    if head in FIXED_SECTIONS:
        raise UserError(
            f"{where}: {space.key} cannot be searched: a cell's trials train in lock-step and "
            "share data, training settings and seed (put it in the grid instead)"
        )
    if head == "loss" and pruner.active:
        raise UserError(
            f"{where}: {space.key} cannot be searched with a pruner: trials are pruned by their "
            "validation loss, which must be the same loss to compare (use pruner: none)"
        )
    fixed = {plan.canonical_key(k) for k in cell_point}
    for key in fixed:
        if key == space.key or space.key.startswith(f"{key}.") or key.startswith(f"{space.key}."):
            raise UserError(f"{where}: {space.key} is both searched and fixed by the grid ({key})")


def _study_name(cell_config: RunConfig, spaces: Iterable[Space], metric: MetricSpec) -> str:
    """Return a cell's study name: a hash of what it searches, so an edited cell starts afresh."""
    searched = {space.key for space in spaces}
    flat = config_lib.flatten_dotted(
        {k: v for k, v in cell_config.resolved().items() if k not in ("name", "output")}
    )
    fixed = {k: v for k, v in flat.items() if k not in searched and v is not None}
    if fixed.get("data.name") == DEFAULT_DATASET:  # as in run ids: MNIST's studies keep names
        del fixed["data.name"]
    content = {
        "config": fixed,
        "search": {space.key: space.spec() for space in spaces},
        "metric": [metric.name, metric.direction],
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode())
    return f"cell-{digest.hexdigest()[:10]}"


def _check_holdout(cfg: RunConfig, on_test_set: bool, where: str) -> None:
    """Refuse a cell scored on the test set unless asked for by name, as ``aeexp select`` does."""
    if cfg.data.holdout is None and not on_test_set:
        raise UserError(
            f"{where}: no data.holdout, so trials would be scored on the TEST SET; set "
            "data.holdout (e.g. in the grid: data.holdout: [10000]) or pass --on-test-set"
        )
    if cfg.data.holdout is not None and on_test_set:
        raise UserError(
            f"{where}: --on-test-set, but data.holdout is set, so trials are scored on a training "
            "holdout; tune without --on-test-set"
        )


def _read(source: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], Path]:
    """Return the search file's mapping and the path its ``base`` is relative to."""
    if isinstance(source, Mapping):
        if source.get("name") is None:
            raise UserError("search: a search given as a mapping needs a 'name'")
        return dict(source), Path("search.yaml")
    return yamlio.read_yaml(source), Path(source)


def read_search(
    source: str | Path | Mapping[str, Any],
    overrides: Iterable[str] = (),
    out: str | None = None,
    *,
    seed: int | None = None,
    on_test_set: bool = False,
    max_cells: int = vocab.DEFAULT_MAX_RUNS,
    trials: int | None = None,
) -> Search:
    """Read and check a search file (or its mapping); raise a one-line UserError on a mistake.

    ``max_cells`` bounds the cells, or with ``trials`` the cells x trials, checked as soon as
    the grid is expanded: before any config is validated, so the time spent refusing a space
    too large is bounded by the file, not by the space it describes.
    """
    raw, path = _read(source)
    where = clip(str(path), 300)
    for key in raw:
        if key not in SEARCH_KEYS:
            raise UserError(
                f"{where}: {plan.key_text(key)}: unknown key{valid_and_closest(key, SEARCH_KEYS)}"
            )
    name = plan.sweep_name(raw, path)
    metric = _metric(raw.get("metric"), f"{where}: metric")
    sampler = _section(SamplerSpec, raw.get("sampler"), f"{where}: sampler")
    pruner = _section(PrunerSpec, raw.get("pruner"), f"{where}: pruner")
    if pruner.name == "percentile" and pruner.percentile is None:
        raise UserError(f"{where}: pruner: percentile needs percentile (0-100)")
    confirm = _section(ConfirmSpec, raw.get("confirm"), f"{where}: confirm")
    seed = raw.get("seed", 0) if seed is None else seed
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise UserError(
            f"{where}: seed: expected a whole number in 0..{MAX_SEED}, got {shorten(seed)}"
        )
    shared = _spaces(raw.get("search"), f"{where}: search")
    blocks = _blocks(raw.get("grid"), f"{where}: grid")
    overrides = list(overrides)
    searched_anywhere = set(shared)
    cells_points: list[tuple[dict[str, Any], dict[str, Space], str]] = []
    for number, (block, own) in enumerate(blocks, start=1):
        block_where = f"{where}: grid block {number}" if len(blocks) > 1 else f"{where}: grid"
        spaces = shared | _spaces(own, f"{block_where}: search")
        searched_anywhere |= set(spaces)
        points = plan.expand_grid(block, max_cells) if block else [{}]
        cells_points += [(point, spaces, block_where) for point in points]
        if len(cells_points) > max_cells:
            raise UserError(f"{where}: more than {max_cells:,} cells; raise --max-runs or split it")
    _check_size(len(cells_points), trials, max_cells, confirm)
    _check_searched_overrides(overrides, searched_anywhere)
    plan.check_overrides(overrides, [k for p, _, _ in cells_points for k in p])
    base = config_lib.override(plan.base_config(raw, path), overrides, {"name": name}, out=out)
    cells, output_dir, checked, backends, seeds = [], None, set(), set(), []
    for index, (point, spaces, block_where) in enumerate(cells_points, start=1):
        cell_where = f"{where}: cell {index} ({clip(plan.describe_point(point), 160)})"
        if not spaces:
            raise UserError(
                f"{cell_where}: nothing to search; give 'search' at the top or in its block"
            )
        for space in spaces.values():
            _check_key(space, point, pruner, f"{block_where}: search")
        cell_raw = config_lib.override(base, dotted=point)
        first = _check_configs(cell_raw, spaces.values(), cell_where, checked)
        _check_holdout(first, on_test_set, cell_where)
        _check_confirm_seeds(first, confirm, cell_where)
        backends.add(first.train.backend)
        study = _study_name(first, spaces.values(), metric)
        output_dir = output_dir or Path(first.output.dir)
        cells.append(Cell(index, point, cell_raw, tuple(spaces.values()), study))
        seeds.append(first.seed)
    seen: dict[str, Cell] = {}
    for cell in cells:
        twin = seen.setdefault(cell.study_name, cell)
        if twin is not cell:  # one study per cell: the same cell twice would share it
            raise UserError(f"{where}: cell {cell.index} ({cell.label}) repeats cell {twin.index}")
    assert output_dir is not None  # there is at least one cell
    _check_one_backend(backends, where)
    _check_reruns_apart(cells, seeds, confirm, where)
    return Search(
        name, path, output_dir, tuple(cells), metric, seed, sampler, pruner, on_test_set, confirm
    )


def _check_confirm_seeds(cfg: RunConfig, confirm: ConfirmSpec, where: str) -> None:
    """Refuse confirming seeds past the largest seed a run may have."""
    if confirm.top and cfg.seed + confirm.seeds > MAX_SEED:
        raise UserError(
            f"{where}: confirm: seeds {cfg.seed + 1}-{cfg.seed + confirm.seeds} go past the "
            f"largest seed, {MAX_SEED}; lower the cell's seed or confirm.seeds"
        )


def _check_reruns_apart(
    cells: list[Cell], seeds: list[int], confirm: ConfirmSpec, where: str
) -> None:
    """Refuse cells alike but for a seed within ``confirm.seeds`` of each other's.

    A rerun of one would be, run id and all, a trial of the other: it would be read, pruned
    or not, instead of trained.
    """
    if not confirm.top:
        return
    alike: dict[str, list[tuple[int, Cell]]] = {}
    for cell, seed in zip(cells, seeds, strict=True):
        # Spaces are left out: two cells' spaces may share a value even when they differ.
        rest = {k: v for k, v in cell.raw.items() if k != "seed"}
        alike.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append((seed, cell))
    for group in alike.values():
        group.sort(key=lambda item: item[0])
        for (low, first), (high, second) in zip(group, group[1:], strict=False):
            if high - low <= confirm.seeds:
                raise UserError(
                    f"{where}: cells {first.index} and {second.index} differ only by their seed "
                    f"({low} and {high}), so a rerun of cell {first.index} on seed {high} would "
                    f"be a trial of cell {second.index}; put the cells' seeds more than "
                    f"confirm.seeds ({confirm.seeds}) apart"
                )


def _check_searched_overrides(overrides: Iterable[str], searched: Iterable[str]) -> None:
    """Refuse a ``--set`` of a searched key: each trial draws its own value, which would win."""
    for text in overrides:
        key = plan.canonical_key(config_lib.parse_override(text)[0])
        for other in sorted(searched):
            if key == other or key.startswith(f"{other}.") or other.startswith(f"{key}."):
                raise UserError(
                    f"--set {shorten(text)}: the search draws {other}, so the value set would "
                    "be overwritten; change the search instead"
                )


def _check_size(cells: int, trials: int | None, max_runs: int, confirm: ConfirmSpec) -> None:
    """Refuse cells x (trials + reruns) above ``max_runs`` (``--max-runs``)."""
    if trials is None:
        return
    reruns = min(confirm.top, trials) * len(confirm.offsets())
    runs = cells * (trials + reruns)
    if runs > max_runs:
        counted = f"{trials} trials" + (f" + {reruns} reruns" if reruns else "")
        raise UserError(
            f"{cells} cells x {'(' + counted + ')' if reruns else counted} = {runs:,} runs, more "
            f"than the limit of {max_runs:,}; lower --trials"
            f"{', confirm.top or confirm.seeds' if reruns else ''} or raise --max-runs"
        )


def _check_one_backend(backends: set[str], where: str) -> None:
    """Refuse cells on different backends, as a sweep's grid is: best.yaml must be one sweep."""
    if len(backends) > 1:
        raise UserError(
            f"{where}: the grid mixes train.backend values ({', '.join(sorted(backends))}); "
            "a process holds one Keras backend, so give each backend a search of its own"
        )


def _validity_class(raw: Mapping[str, Any], key: str) -> tuple[str, Any]:
    """Return what a searched value's validity depends on besides itself: its section's name.

    A section validates its own fields, and only ``loss.name`` and ``optimizer.name`` decide
    which keys and values the others accept; so one cell per such name stands for them all.
    """
    section = key.split(".", 1)[0]
    found = raw.get(section)
    return section, found.get("name") if isinstance(found, Mapping) else None


def _check_configs(
    raw: Mapping[str, Any],
    spaces: Iterable[Space],
    where: str,
    checked: set[tuple[str, str, Any]],
) -> RunConfig:
    """Validate a cell at its spaces' first values, and each value once per validity class.

    ``checked`` holds the (key, validity class) pairs whose every value is known good, so the
    work is the cells plus the values times the section names, never cells x values.
    """
    spaces = list(spaces)
    firsts = {space.key: space.samples()[0] for space in spaces}
    first = config_lib.validate(config_lib.override(raw, dotted=firsts), source=where)
    for space in spaces:
        seen = (space.key, *_validity_class(raw, space.key))
        if seen in checked:
            continue
        for value in space.samples()[1:]:
            values = firsts | {space.key: value}
            shown = f"{where}: search {space.key}={describe_value(value)}"
            config_lib.validate(config_lib.override(raw, dotted=values), source=shown)
        checked.add(seen)
    return first
