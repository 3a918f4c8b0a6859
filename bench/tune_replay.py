"""Replay ``aeexp tune`` on the grid's recorded curves: how often does one search meet the target?

    python bench/tune_replay.py [--searches 100] [--runs-dir DIR] [--json PATH] [--md PATH]

``make tune-bench`` trains one search per sampler seed, a handful at most: a few draws of a
chance event. This replays many. A replayed trial trains nothing: it is given the per-epoch
validation losses and the final holdout SSIM of the grid's run at the nearest learning rate
(in log space), from the files ``make tune-bench`` committed in ``bench/tune_vs_grid_runs``.
Everything else is ``aeexp tune``'s own code: the search file is read by ``read_search``
with the benchmark's settings (so each cell's study name, and hence the sampler seed of each
batch, is the real one), trials are asked in the same batches from the sampler the driver
builds, and each batch's members are stopped by the driver's ``PruningRule`` against the
snapshot of the study's finished trials, after every epoch but the last, as the engine asks.

It replays the committed search file (8 trials per cell in batches of 2, as ``make
tune-bench`` runs it) and a few changes of it (``SETTINGS``): more trials, a later start of
pruning, no pruning. It is a tabular benchmark (in the manner of HPOBench or NAS-Bench-201):
a replayed trial can be only as lucky as the grid's run at that rate was, where a real one
draws its own single-seed noise. So it measures how well the search finds and keeps the
grid's best rates at a third of the epochs, the part of the target that is about the search.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tune_vs_grid as bench  # noqa: E402  (this folder is on sys.path when run as a script)

from aeexp.tuning import driver  # noqa: E402
from aeexp.tuning import search as search_lib  # noqa: E402
from aeexp.tuning.stop import (  # noqa: E402
    PruningRule,
    Snapshot,
    TrialRef,
    intermediate_values,
    quiet_optuna,
)

LEARNING_RATE = "optimizer.learning_rate"


@dataclass(frozen=True)
class Setting:
    """A way to run the search: trials and batch per cell, and what it changes in the file."""

    name: str
    trials: int
    batch: int
    changes: dict[str, Any]  # top-level keys of the search file replaced


WARM_15 = {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 15, "interval_steps": 1}
SETTINGS = (
    Setting("as committed", 8, 2, {}),
    Setting("12 trials", 12, 2, {}),
    Setting("24 trials", 24, 2, {}),
    Setting("pruning from epoch 15", 8, 2, {"pruner": WARM_15}),
    Setting("no pruning", 8, 2, {"pruner": "none"}),
    Setting("no pruning, 16 trials", 16, 2, {"pruner": "none"}),
)


@dataclass(frozen=True)
class GridCell:
    """A cell of the trained grid: its learning rates (ascending), final values and curves."""

    rates: np.ndarray
    values: list[float | None]  # the metric of a completed run, else None
    curves: list[list[float]]  # each run's validation loss per epoch

    def nearest(self, rate: float) -> int:
        """Return the index of the grid's learning rate nearest ``rate`` in log space."""
        return int(np.argmin(np.abs(np.log(self.rates) - math.log(rate))))

    @property
    def best(self) -> float:
        """Return the grid's best value in this cell."""
        return max(v for v in self.values if v is not None)


def read_grid(folder: Path) -> dict[tuple[str, str, str], GridCell]:
    """Return each cell of the grid ``make tune-bench`` trained, from its committed CSVs."""
    runs = pandas.read_csv(folder / "grid-runs.csv")
    histories = pandas.read_csv(folder / "grid-histories.csv").sort_values(["run_id", "epoch"])
    curves = {run: list(rows["val_loss"]) for run, rows in histories.groupby("run_id")}
    cells = {}
    for key, rows in runs.groupby(["loss", "decoder_activation", "optimizer"]):
        rows = rows.sort_values("learning_rate")
        values = [
            float(v) if status == "completed" else None
            for v, status in zip(rows[bench.METRIC], rows["status"], strict=True)
        ]
        cells[tuple(key)] = GridCell(
            rows["learning_rate"].to_numpy(float), values, [curves[r] for r in rows["run_id"]]
        )
    return cells


def read_search(setting: Setting, cells: int) -> search_lib.Search:
    """Return the benchmark's search file, changed as ``setting`` says, read as the bench does."""
    raw = {**bench.yamlio.read_yaml(bench.SEARCH), **setting.changes}
    raw["grid"] = raw["grid"][:cells]
    defaults = argparse.Namespace(epochs=50, holdout=10_000, train_limit=None, test_limit=None)
    raw["config"] = {**raw.get("config", {}), **bench.settings(defaults)}
    return search_lib.read_search(raw)


def trained_epochs(rule: PruningRule, name: str, curve: list[float]) -> int:
    """Return the epochs a member with this curve trains before the rule stops it."""
    for epoch in range(1, len(curve)):  # asked after every epoch but the last
        if rule.stop(epoch, {name: curve[:epoch]}):
            return epoch
    return len(curve)


@dataclass(frozen=True)
class CellReplay:
    """A replayed search of one cell: its best value, the epochs trained, the rates asked."""

    best: float | None
    epochs: int
    rates: tuple[float, ...]  # in the order the sampler proposed them


def replay_cell(
    search: search_lib.Search, cell: search_lib.Cell, grid: GridCell, trials: int, batch: int
) -> CellReplay:
    """Return a replayed search of one cell, trained on nothing but the grid's records."""
    import optuna

    state = optuna.trial.TrialState
    maximize = search.metric.maximize
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        direction="maximize" if maximize else "minimize",
        study_name=cell.study_name,
    )
    best, epochs, rates = None, 0, []
    while (asked := len(study.trials)) < trials:
        study.sampler = search.sampler.build(
            driver.sampler_seed(search.seed, cell.study_name, asked)
        )
        members = [study.ask(cell.distributions()) for _ in range(min(batch, trials - asked))]
        finished = tuple(study.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED)))
        snapshot = Snapshot(maximize, search.pruner.build(), finished)
        refs = {str(m.number): TrialRef(cell.study_name, m.number) for m in members}
        rule = PruningRule(refs, {cell.study_name: snapshot})
        for member in members:
            rates.append(member.params[LEARNING_RATE])
            index = grid.nearest(rates[-1])
            curve, value = grid.curves[index], grid.values[index]
            trained = trained_epochs(rule, str(member.number), curve)
            epochs += trained
            for step, loss in intermediate_values(curve[:trained], maximize).items():
                member.report(loss, step)
            if trained < len(curve) or value is None:
                study.tell(member, state=state.PRUNED)
            else:
                study.tell(member, value)
                best = value if best is None else max(best, value)
    return CellReplay(best, epochs, tuple(rates))


def grid_key(cell: search_lib.Cell) -> tuple[str, str, str]:
    """Return the grid cell a search cell is compared with: its loss, decoder, optimizer."""
    return bench.cell_key(cell.config({space.key: space.samples()[0] for space in cell.spaces}))


def replay(search: search_lib.Search, grid: dict, trials: int, batch: int) -> dict[str, Any]:
    """Return one replayed search: each cell within the target or not, the epochs, the verdict."""
    rows, epochs = {}, 0
    for cell in search.cells:
        key = grid_key(cell)
        replayed = replay_cell(search, cell, grid[key], trials, batch)
        epochs += replayed.epochs
        rows[" / ".join(key)] = bench.within(grid[key].best, replayed.best)
    ratio = epochs / sum(len(curve) for g in grid.values() for curve in g.curves)
    met = all(rows.values()) and ratio <= bench.TARGET_EPOCHS
    return {"within": rows, "epochs_ratio": ratio, "met": met}


def wilson(successes: int, total: int) -> tuple[float, float]:
    """Return the 95% Wilson interval of a proportion."""
    from scipy.stats import binomtest

    interval = binomtest(successes, total).proportion_ci(0.95, method="wilson")
    return interval.low, interval.high


def summary(setting: Setting, replays: list[dict[str, Any]]) -> dict[str, Any]:
    """Return how often a setting's searches met the target, with its interval and epochs."""
    met = sum(r["met"] for r in replays)
    low, high = wilson(met, len(replays))
    ratios = [r["epochs_ratio"] for r in replays]
    cells = {cell: sum(r["within"][cell] for r in replays) for cell in replays[0]["within"]}
    return {
        "setting": setting.name,
        "trials": setting.trials,
        "batch": setting.batch,
        "searches": len(replays),
        "met": met,
        "interval": [low, high],
        "epochs_median": float(np.median(ratios)),
        "epochs_max": max(ratios),
        "cells_within": cells,
    }


def markdown(summaries: list[dict[str, Any]]) -> str:
    """Return one row per setting: how often the target was met, the epochs, each cell's hits."""
    total = summaries[0]["searches"]
    cells = list(summaries[0]["cells_within"])
    lines = [
        f"`aeexp tune` replayed on the grid's recorded curves ({total} searches per setting, "
        f"sampler seeds 0-{total - 1}): how many meet the target (every cell within "
        f"{bench.TARGET_SSIM} SSIM of the grid's best, at <= {bench.TARGET_EPOCHS:.3f} of its "
        f"epochs), and in how many each cell is within {bench.TARGET_SSIM}",
        "",
        "| setting | trials x batch | target met (95% Wilson) | epochs/grid median (max) | "
        + " | ".join(cells)
        + " |",
        "|---|---:|---:|---:|" + "---:|" * len(cells),
    ]
    for row in summaries:
        low, high = row["interval"]
        hits = " | ".join(str(row["cells_within"][cell]) for cell in cells)
        lines.append(
            f"| {row['setting']} | {row['trials']} x {row['batch']} | {row['met']}/{total} "
            f"({low:.0%}-{high:.0%}) | {row['epochs_median']:.3f} ({row['epochs_max']:.3f}) "
            f"| {hits} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=100, help="sampler seeds 0..N-1")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "bench" / "tune_vs_grid_runs")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "tune_replay.json")
    parser.add_argument("--md", type=Path, default=REPO / "bench" / "tune_replay.md")
    args = parser.parse_args()
    driver.require_optuna()
    quiet_optuna()
    grid = read_grid(args.runs_dir)
    summaries, replays = [], {}
    for setting in SETTINGS:
        search = read_search(setting, len(grid))
        replays[setting.name] = [
            replay(replace(search, seed=seed), grid, setting.trials, setting.batch)
            for seed in range(args.searches)
        ]
        summaries.append(summary(setting, replays[setting.name]))
        print(f"{setting.name}: met by {summaries[-1]['met']}/{args.searches}", flush=True)
    text = markdown(summaries)
    print("\n" + text)
    record = {"searches": args.searches, "summaries": summaries, "replays": replays}
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    args.md.write_text(text)
    print(f"wrote {args.json} and {args.md}")


if __name__ == "__main__":
    main()
