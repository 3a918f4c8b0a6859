"""``aeexp tune`` against the author's grid, on the six thesis cells, on the same holdout metric.

    python bench/tune_vs_grid.py [--trials 8] [--batch 2] [--search-seeds 0,1,2] [--epochs 50]
                                 [--holdout 10000] [--train-limit N] [--test-limit N]
                                 [--cells K] [--replay-seeds 1] [--out DIR]
                                 [--executor local|ray]
                                 [--json PATH] [--md PATH] [--runs-dir DIR]

The grid is ``configs/sweeps/thesis-tuned.yaml`` (each cell's optimizer and the author's
learning rates: 118 points) on seed 0 only, scored on the last ``--holdout`` training images
(``data.holdout``) instead of the test set. The search is ``configs/tune/thesis-cells.yaml``:
the same cells, each searched over the author's range by ``aeexp tune`` with pruning, once
per sampler seed (``--search-seeds``: one search is one draw of the sampler's randomness, so
several say how often the target is met, not whether it was once). Both train through the
same executor into ``--out`` (a temporary folder unless given, so both start from nothing).
For each cell it prints the best ``ssim_mean`` each finds (and at which learning rate), the
epochs each trained, the wall time of each side, and the **regret** of each side's pick:
the best expected test SSIM over the grid's rates minus the expected test SSIM at the rate
picked (``bench/tune_truth.py``: seed means of the thesis-tuned runs, on the test set the
picks never saw). A search is judged by it (regret <= 0.01 and <= 0.02 per cell, at a third
of the grid's epochs or less); ``bench/tune_replay.py`` replays 100 searches to say how
often a search meets that, of which these are a few real draws.

``--runs-dir`` receives each side's runs.csv and the grid's per-epoch validation losses
(``grid-histories.csv``), from which ``bench/tune_replay.py`` replays the search offline, and
the runs.csv of the grid on each of ``--replay-seeds`` (``grid-seed1-runs.csv``: as long
again as the grid), whose values the replay gives a search's confirming reruns (``confirm``).

``--reuse-grid`` takes the grid from ``--runs-dir`` and ``--json`` instead of training it
again: training is deterministic, so only the searches change when the search file does.
``--rescore`` trains nothing: it scores the searches ``--json`` recorded against the truth
as it is now (after more seeds refine it), and rewrites ``--json`` and ``--md``.

A quick end-to-end check of the script itself (not a measurement):
``python bench/tune_vs_grid.py --epochs 2 --train-limit 1500 --holdout 500 --cells 2 --trials 3``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tune_truth  # noqa: E402  (this folder is on sys.path when run as a script)

import aeexp  # noqa: E402
from aeexp.io import yamlio  # noqa: E402
from aeexp.store import rundir as store  # noqa: E402

DATA = Path(os.environ.get("AEEXP_DATA") or REPO.parent / "shared" / "data" / "mnist.npz")
GRID = REPO / "configs" / "sweeps" / "thesis-tuned.yaml"
SEARCH = REPO / "configs" / "tune" / "thesis-cells.yaml"
METRIC = "ssim_mean"
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


def run_grid(
    args: argparse.Namespace, out: Path, executor: dict[str, Any], seed: int = 0
) -> dict[str, Any]:
    """Train the author's grid on one seed, scored on the holdout; return each cell's runs."""
    sweep = yamlio.read_yaml(GRID)
    blocks = [{**block, "seed": [seed]} for block in sweep["grid"][: args.cells]]
    name = "grid" if seed == 0 else f"grid-seed{seed}"
    mapping = {"name": name, "config": settings(args), "grid": blocks}
    started = time.perf_counter()
    outcome = aeexp.sweep(mapping, out=str(out), progress=args.progress, **executor)
    wall = time.perf_counter() - started
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    runs = store.load_runs(outcome.experiment_dir)
    for run in runs:
        cell = cells.setdefault(cell_key(run.config), {"epochs": 0, "points": []})
        cell["epochs"] += int(run.metrics.get("epochs_trained") or 0)
        value = run.metrics.get(METRIC) if run.metrics.get("status") == "completed" else None
        cell["points"].append((run.config.optimizer.learning_rate, value))
    for cell in cells.values():
        cell["points"].sort()
        cell["best"], cell["lr"] = best_point(cell["points"])
    return {
        "wall_seconds": wall,
        "runs": len(outcome.plan.runs),
        "cells": cells,
        "dir": str(outcome.experiment_dir),
        "run_dirs": [run.path for run in runs],  # read once; keep_runs copies their histories
    }


def reuse_grid(args: argparse.Namespace) -> dict[str, Any]:
    """Return the grid trained by an earlier run, from ``--runs-dir`` and its JSON record.

    Training is deterministic (the same config and seed give the same numbers, bit for bit),
    so a rerun that changes only the search need not train the grid again (17 minutes). Its
    wall time is the one recorded when it was trained; the grid's settings must match.
    """
    if not (args.json.is_file() and (args.runs_dir / "grid-runs.csv").is_file()):
        raise SystemExit(f"--reuse-grid: no grid trained before in {args.json} and {args.runs_dir}")
    record = json.loads(args.json.read_text())
    trained = {k: record["args"][k] for k in ("epochs", "holdout", "train_limit", "test_limit")}
    if trained != {k: getattr(args, k) for k in trained} or record["args"]["cells"] != args.cells:
        raise SystemExit(f"--reuse-grid: {args.json} recorded a grid with other settings")
    with open(args.runs_dir / "grid-runs.csv", newline="") as handle:
        runs = list(csv.DictReader(handle))
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in runs:
        key = (row["loss"], row["decoder_activation"], row["optimizer"])
        cell = cells.setdefault(key, {"epochs": 0, "points": []})
        cell["epochs"] += run_epochs(row, args.epochs)
        value = float(row[METRIC]) if row["status"] == "completed" else None
        cell["points"].append((float(row["learning_rate"]), value))
    for cell in cells.values():
        cell["points"].sort()
        cell["best"], cell["lr"] = best_point(cell["points"])
    wall = record["searches"][0]["grid_wall_seconds"]
    return {
        "wall_seconds": wall,
        "runs": sum(len(c["points"]) for c in cells.values()),
        "cells": cells,
        "dir": None,
        "run_dirs": [],
    }


def run_epochs(row: dict[str, Any], epochs: int) -> int:
    """Return the epochs a runs.csv row trained: to its pruned or diverged epoch, else all."""
    for column in ("pruned_epoch", "diverged_epoch"):
        stopped = row.get(column)
        if stopped not in (None, "") and stopped == stopped:  # neither blank nor NaN
            return int(float(stopped))
    return epochs


def best_point(points: list[tuple[float, float | None]]) -> tuple[float | None, float | None]:
    """Return the best value among (learning rate, value) points and its learning rate."""
    scored = [(value, lr) for lr, value in points if value is not None]
    return max(scored) if scored else (None, None)


def run_tune(
    args: argparse.Namespace, out: Path, executor: dict[str, Any], seed: int
) -> dict[str, Any]:
    """Search each cell with ``aeexp tune``; return each cell's best and the epochs trained."""
    search = yamlio.read_yaml(SEARCH)
    search["grid"] = search["grid"][: args.cells]
    search["config"] = {**search.get("config", {}), **settings(args)}
    search["seed"] = seed
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
    return {
        "seed": seed,
        "wall_seconds": wall,
        "trials": len(outcome.trials),
        "cells": cells,
        "dir": str(outcome.experiment_dir),
    }


def regret(truth: tune_truth.CellTruth, rate: float | None) -> float | None:
    """Return the regret of picking ``rate``, scored at the grid rate nearest it."""
    return None if rate is None else truth.regret(truth.nearest(rate))


def compare(grid: dict[str, Any], tune: dict[str, Any], truth: dict) -> dict[str, Any]:
    """Return one search's per-cell rows, with both picks' regrets, and its epochs."""
    rows = []
    for key, mine in grid["cells"].items():
        theirs = tune["cells"].get(key, {})
        gap = None
        if mine["best"] is not None and theirs.get("best") is not None:
            gap = mine["best"] - theirs["best"]  # positive: the grid found better
        rows.append(
            {
                "cell": " / ".join(key),
                "grid": mine,
                "tune": theirs,
                "gap": gap,
                "grid_regret": regret(truth[key], mine["lr"]),
                "tune_regret": regret(truth[key], theirs.get("lr")),
            }
        )
    grid_epochs = sum(r["grid"]["epochs"] for r in rows)
    tune_epochs = sum(r["tune"].get("epochs", 0) for r in rows)
    within = {
        str(delta): sum(tune_truth.within(r["tune_regret"], delta) for r in rows)
        for delta in tune_truth.DELTAS
    }
    return {
        "search_seed": tune["seed"],
        "rows": rows,
        "grid_epochs": grid_epochs,
        "tune_epochs": tune_epochs,
        "epochs_ratio": tune_epochs / grid_epochs if grid_epochs else float("nan"),
        "grid_wall_seconds": grid["wall_seconds"],
        "tune_wall_seconds": tune["wall_seconds"],
        "cells_within": within,
    }


def number(value: Any, spec: str) -> str:
    """Return a value formatted, or a dash when there is none."""
    return "-" if value is None else format(value, spec)


def markdown(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """Return the comparison as a markdown table per search and a line per search."""
    lines = [
        f"`aeexp tune` ({args.trials} trials per cell, batches of {args.batch}, sampler seeds "
        f"{args.search_seeds}) against the author's grid, seed 0, {args.epochs} epochs, "
        f"{METRIC} on data.holdout={args.holdout}; each pick's regret on the test set "
        "(bench/tune_truth.py)",
        "",
        "| cell | grid best | at lr | sampler seed | tune best | at lr | grid - tune "
        "| grid regret | tune regret | grid epochs | tune epochs | tune trials (pruned) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for index, row in enumerate(results[0]["rows"]):
        grid = row["grid"]
        for result in results:
            mine = result["rows"][index]
            tune = mine["tune"]
            lines.append(
                f"| {row['cell']} | {number(grid['best'], '.4f')} | {number(grid['lr'], '.3g')} "
                f"| {result['search_seed']} | {number(tune.get('best'), '.4f')} "
                f"| {number(tune.get('lr'), '.3g')} | {number(mine['gap'], '+.4f')} "
                f"| {number(mine['grid_regret'], '.4f')} | {number(mine['tune_regret'], '.4f')} "
                f"| {grid['epochs']} | {tune.get('epochs', 0)} "
                f"| {tune.get('trials', 0)} ({tune.get('pruned', 0)}) |"
            )
    cells = len(results[0]["rows"])
    lines.append("")
    for result in results:
        within = result["cells_within"]
        lines.append(
            f"- Sampler seed {result['search_seed']}: epochs tune/grid = "
            f"{result['epochs_ratio']:.3f} (target <= {TARGET_EPOCHS:.3f}); cells whose pick "
            f"has regret <= 0.01: {within['0.01']}/{cells}, <= 0.02: {within['0.02']}/{cells}; "
            f"wall: grid {result['grid_wall_seconds']:.0f} s, tune "
            f"{result['tune_wall_seconds']:.0f} s."
        )
    return "\n".join(lines) + "\n"


def keep_runs(
    grid: dict[str, Any], tunes: list[dict[str, Any]], folder: Path, more: dict[int, Path]
) -> None:
    """Copy each side's runs.csv into ``folder``, with the grid's per-epoch validation losses.

    ``more`` holds the folder of the grid on each further seed, whose runs.csv alone is kept.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for tune in tunes:
        shutil.copyfile(
            Path(tune["dir"]) / "runs.csv", folder / f"tune-seed{tune['seed']}-runs.csv"
        )
    for seed, where in more.items():
        shutil.copyfile(where / "runs.csv", folder / f"grid-seed{seed}-runs.csv")
    if grid["dir"] is None:  # reused: its files are the ones already there
        return
    shutil.copyfile(Path(grid["dir"]) / "runs.csv", folder / "grid-runs.csv")
    with open(folder / "grid-histories.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run_id", "epoch", "val_loss"])
        for run_dir in grid["run_dirs"]:
            for row in store.read_history(run_dir):
                writer.writerow([run_dir.name, int(row["epoch"]), repr(float(row["val_loss"]))])


def rescore(path: Path) -> tuple[list[dict[str, Any]], argparse.Namespace]:
    """Return the searches recorded in ``path`` scored again against the truth as it is now.

    The picks, epochs and wall times are the ones recorded: only the regrets change, when more
    seeds refine the truth. Returns them with the arguments they were trained with.
    """
    record = json.loads(path.read_text())
    truth = tune_truth.read_truth()
    results = []
    for search in record["searches"]:
        keys = [tuple(row["cell"].split(" / ")) for row in search["rows"]]
        grid = {
            "wall_seconds": search["grid_wall_seconds"],
            "cells": {k: row["grid"] for k, row in zip(keys, search["rows"], strict=True)},
        }
        tune = {
            "seed": search["search_seed"],
            "wall_seconds": search["tune_wall_seconds"],
            "cells": {k: row["tune"] for k, row in zip(keys, search["rows"], strict=True)},
        }
        results.append(compare(grid, tune, truth))
    return results, argparse.Namespace(**record["args"])


def seeds(text: str) -> list[int]:
    """Return the seeds of a comma-separated option (``""``: none)."""
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="trials per cell")
    parser.add_argument("--batch", type=int, default=2, help="trials per cell per batch")
    parser.add_argument(
        "--search-seeds", default="0,1,2", help="the sampler seeds: one search for each"
    )
    parser.add_argument(
        "--replay-seeds",
        default="1",
        help="the grid's further seeds, whose final values the replay gives confirming reruns "
        "(bench/tune_replay.py; runs.csv kept as grid-seed<N>-runs.csv; '' for none)",
    )
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
    parser.add_argument(
        "--reuse-grid",
        action="store_true",
        help="take the grid from --runs-dir and --json (trained before) instead of training it",
    )
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "tune_vs_grid.json")
    parser.add_argument("--md", type=Path, default=REPO / "bench" / "tune_vs_grid.md")
    parser.add_argument(
        "--runs-dir", type=Path, default=REPO / "bench" / "tune_vs_grid_runs", help="runs CSVs"
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="train nothing: score the searches recorded in --json against the truth as it is now",
    )
    args = parser.parse_args()
    if args.rescore:
        results, recorded = rescore(args.json)
        write(results, recorded, args.json, args.md)
        return
    os.environ.setdefault("AEEXP_DATA", str(DATA))
    executor: dict[str, Any] = {"executor": args.executor}
    if args.address is not None:
        executor["address"] = args.address
    if args.cpus_per_worker is not None:
        executor["cpus_per_worker"] = args.cpus_per_worker
    with tempfile.TemporaryDirectory(prefix="aeexp-tune-bench-") as scratch:
        out = args.out or Path(scratch)
        print(f"grid: {GRID.name}, seed 0, {args.cells} cell(s)", flush=True)
        grid = reuse_grid(args) if args.reuse_grid else run_grid(args, out / "grid", executor)
        more = {}
        for seed in [] if args.reuse_grid else seeds(args.replay_seeds):
            print(f"grid: {GRID.name}, seed {seed}, for the replay's reruns", flush=True)
            more[seed] = Path(run_grid(args, out / "grid", executor, seed)["dir"])
        tunes = []
        for seed in seeds(args.search_seeds):
            print(f"tune: {SEARCH.name}, {args.trials} trials per cell, seed {seed}", flush=True)
            tunes.append(run_tune(args, out / f"tune-seed{seed}", executor, seed))
        keep_runs(grid, tunes, args.runs_dir, more)
    truth = tune_truth.read_truth()
    results = [compare(grid, tune, truth) for tune in tunes]
    write(results, args, args.json, args.md)
    print(f"and {args.runs_dir}")


def write(
    results: list[dict[str, Any]], args: argparse.Namespace, json_path: Path, md: Path
) -> None:
    """Print the comparison and write it as JSON (with the arguments) and markdown."""
    text = markdown(results, args)
    print("\n" + text)
    record = {"args": vars(args), "searches": results}
    json_path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    md.write_text(text)
    print(f"wrote {json_path} and {md}")


if __name__ == "__main__":
    main()
