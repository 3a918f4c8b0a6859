"""``aeexp tune`` against the author's grid, on the six thesis cells, on the same holdout metric.

    python bench/tune_vs_grid.py [--trials 8] [--batch 2] [--epochs 50] [--holdout 10000]
                                 [--train-limit N] [--test-limit N] [--cells K] [--out DIR]
                                 [--executor local|ray] [--json PATH] [--md PATH]

The grid is ``configs/sweeps/thesis-tuned.yaml`` (each cell's optimizer and the author's
learning rates: 118 points) on seed 0 only, scored on the last ``--holdout`` training images
(``data.holdout``) instead of the test set. The search is ``configs/tune/thesis-cells.yaml``:
the same cells, each searched over the author's range by ``aeexp tune`` with pruning. Both
train through the same executor into ``--out`` (a temporary folder unless given, so both
start from nothing). For each cell it prints the best ``ssim_mean`` each finds (and at which
learning rate), the epochs each trained, and the wall time of each side; the target is the
search within 0.005 SSIM of the grid's best in every cell at a third of its epochs or less.

A quick end-to-end check of the script itself (not a measurement):
``python bench/tune_vs_grid.py --epochs 2 --train-limit 1500 --holdout 500 --cells 2 --trials 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aeexp  # noqa: E402
from aeexp import store, yamlio  # noqa: E402

DATA = Path(os.environ.get("AEEXP_DATA") or REPO.parent / "shared" / "data" / "mnist.npz")
GRID = REPO / "configs" / "sweeps" / "thesis-tuned.yaml"
SEARCH = REPO / "configs" / "tune" / "thesis-cells.yaml"
METRIC = "ssim_mean"
TARGET_SSIM = 0.005  # the search's best may trail the grid's by at most this much
TARGET_EPOCHS = 1 / 3  # of the grid's epochs, at most


def cell_key(cfg: Any) -> tuple[str, str, str]:
    """Return the key both sides share for a cell: loss, decoder activation, optimizer."""
    return (cfg.loss.name, cfg.model.decoder_activation, cfg.optimizer.name)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """Return the dotted config both sides train with (epochs, holdout, data limits)."""
    chosen = {"train.epochs": args.epochs, "data.holdout": args.holdout}
    if args.train_limit is not None:
        chosen["data.train_limit"] = args.train_limit
    if args.test_limit is not None:
        chosen["data.test_limit"] = args.test_limit
    return chosen


def run_grid(args: argparse.Namespace, out: Path, executor: dict[str, Any]) -> dict[str, Any]:
    """Train the author's grid on seed 0, scored on the holdout; return each cell's best."""
    sweep = yamlio.read_yaml(GRID)
    blocks = [{**block, "seed": [0]} for block in sweep["grid"][: args.cells]]
    mapping = {"name": "grid", "config": settings(args), "grid": blocks}
    started = time.perf_counter()
    outcome = aeexp.sweep(mapping, out=str(out), progress=args.progress, **executor)
    wall = time.perf_counter() - started
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    for run in store.load_runs(outcome.experiment_dir):
        cell = cells.setdefault(cell_key(run.config), {"best": None, "lr": None, "epochs": 0})
        cell["epochs"] += int(run.metrics.get("epochs_trained") or 0)
        value = run.metrics.get(METRIC) if run.metrics.get("status") == "completed" else None
        if value is not None and (cell["best"] is None or value > cell["best"]):
            cell["best"], cell["lr"] = value, run.config.optimizer.learning_rate
    return {"wall_seconds": wall, "runs": len(outcome.plan.runs), "cells": cells}


def run_tune(args: argparse.Namespace, out: Path, executor: dict[str, Any]) -> dict[str, Any]:
    """Search each cell with ``aeexp tune``; return each cell's best and the epochs trained."""
    search = yamlio.read_yaml(SEARCH)
    search["grid"] = search["grid"][: args.cells]
    search["config"] = {**search.get("config", {}), **settings(args)}
    started = time.perf_counter()
    outcome = aeexp.tune(
        search,
        trials=args.trials,
        batch=args.batch,
        out=str(out),
        seeds="0",
        progress=args.progress,
        **executor,
    )
    wall = time.perf_counter() - started
    cells = {}
    for cell in outcome.search.cells:
        best = outcome.best(cell)
        first = cell.config(best[0].params) if best else cell.config(outcome.of(cell)[0].params)
        cells[cell_key(first)] = {
            "best": best[0].value if best else None,
            "lr": best[0].params.get("optimizer.learning_rate") if best else None,
            "epochs": outcome.epochs(cell),
            "trials": len(outcome.of(cell)),
            "pruned": sum(t.status == "pruned" for t in outcome.of(cell)),
        }
    return {"wall_seconds": wall, "trials": len(outcome.trials), "cells": cells}


def compare(grid: dict[str, Any], tune: dict[str, Any]) -> dict[str, Any]:
    """Return per-cell rows and the verdict against the targets."""
    rows = []
    for key, mine in grid["cells"].items():
        theirs = tune["cells"].get(key, {})
        gap = None
        if mine["best"] is not None and theirs.get("best") is not None:
            gap = mine["best"] - theirs["best"]  # positive: the grid found better
        rows.append({"cell": " / ".join(key), "grid": mine, "tune": theirs, "gap": gap})
    grid_epochs = sum(r["grid"]["epochs"] for r in rows)
    tune_epochs = sum(r["tune"].get("epochs", 0) for r in rows)
    close = [r["gap"] is not None and r["gap"] <= TARGET_SSIM for r in rows]
    ratio = tune_epochs / grid_epochs if grid_epochs else float("nan")
    return {
        "rows": rows,
        "grid_epochs": grid_epochs,
        "tune_epochs": tune_epochs,
        "epochs_ratio": ratio,
        "grid_wall_seconds": grid["wall_seconds"],
        "tune_wall_seconds": tune["wall_seconds"],
        "cells_within_target": sum(close),
        "met": all(close) and ratio <= TARGET_EPOCHS,
    }


def markdown(result: dict[str, Any], args: argparse.Namespace) -> str:
    """Return the comparison as a markdown table and a verdict line."""

    def number(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [
        f"`aeexp tune` ({args.trials} trials per cell, batches of {args.batch}) against the "
        f"author's grid, seed 0, {args.epochs} epochs, {METRIC} on data.holdout={args.holdout}",
        "",
        "| cell | grid best | at lr | tune best | at lr | grid - tune | grid epochs "
        "| tune epochs | tune trials (pruned) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        grid, tune = row["grid"], row["tune"]
        lines.append(
            f"| {row['cell']} | {number(grid['best'], '.4f')} | {number(grid['lr'], '.3g')} "
            f"| {number(tune.get('best'), '.4f')} | {number(tune.get('lr'), '.3g')} "
            f"| {number(row['gap'], '+.4f')} | {grid['epochs']} | {tune.get('epochs', 0)} "
            f"| {tune.get('trials', 0)} ({tune.get('pruned', 0)}) |"
        )
    lines += [
        f"| **all** | | | | | | **{result['grid_epochs']}** | **{result['tune_epochs']}** | |",
        "",
        f"Epochs: tune/grid = {result['epochs_ratio']:.3f} (target <= {TARGET_EPOCHS:.3f}); "
        f"cells within {TARGET_SSIM} SSIM of the grid's best: {result['cells_within_target']}/"
        f"{len(result['rows'])}; wall: grid {result['grid_wall_seconds']:.0f} s, tune "
        f"{result['tune_wall_seconds']:.0f} s. Target met: {'yes' if result['met'] else 'NO'}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="trials per cell")
    parser.add_argument("--batch", type=int, default=2, help="trials per cell per batch")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--holdout", type=int, default=10_000)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--cells", type=int, default=6, help="the first K thesis cells")
    parser.add_argument("--out", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--executor", default="local")
    parser.add_argument("--address", default=None)
    parser.add_argument("--cpus-per-worker", type=int, default=None)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "tune_vs_grid.json")
    parser.add_argument("--md", type=Path, default=REPO / "bench" / "tune_vs_grid.md")
    args = parser.parse_args()
    os.environ.setdefault("AEEXP_DATA", str(DATA))
    executor: dict[str, Any] = {"executor": args.executor}
    if args.address is not None:
        executor["address"] = args.address
    if args.cpus_per_worker is not None:
        executor["cpus_per_worker"] = args.cpus_per_worker
    with tempfile.TemporaryDirectory(prefix="aeexp-tune-bench-") as scratch:
        out = args.out or Path(scratch)
        print(f"grid: {GRID.name}, seed 0, {args.cells} cell(s)", flush=True)
        grid = run_grid(args, out / "grid", executor)
        print(f"tune: {SEARCH.name}, {args.trials} trials per cell", flush=True)
        tune = run_tune(args, out / "tune", executor)
    result = compare(grid, tune)
    text = markdown(result, args)
    print("\n" + text)
    args.json.write_text(json.dumps({"args": vars(args), **result}, indent=2, default=str) + "\n")
    args.md.write_text(text)
    print(f"wrote {args.json} and {args.md}")


if __name__ == "__main__":
    main()
