"""Executor benchmark on real MNIST: the thesis grid through local and Ray, in one invocation.

    python bench/executors.py [--epochs N] [--seeds K] [--json PATH]

Trains the thesis's 30 configurations (3 losses x 2 decoders x 5 optimizers) for ``--seeds``
seeds through ``aeexp.execute.driver`` (so files are written as in a real sweep, into a temporary
folder) with:

* ``local``: the driver's own process, TensorFlow's default thread pools;
* ``ray 1x1``: one Ray worker with one CPU (one TensorFlow thread);
* ``ray 2x1``: two Ray workers with one CPU each;
* ``ray 1x2``: one Ray worker with two CPUs (two threads), the baseline the 2x1 layout must
  beat for Ray to pay on one machine.

It prints runs per minute (wall time of the whole sweep, Ray's start-up included), the
speed-up over ``local`` and over ``ray 1x2``, Ray's start-up time, and the overhead per group
(the driver's round trip minus the time the worker spent training and evaluating). It
checks that every layout gave the same numbers as ``local``, bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aeexp.config import sweep as plan  # noqa: E402
from aeexp.execute import driver as execute  # noqa: E402
from aeexp.execute.executors import JobResult  # noqa: E402
from aeexp.execute.local import LocalExecutor  # noqa: E402
from aeexp.execute.ray import RayExecutor  # noqa: E402
from aeexp.store import rundir as store  # noqa: E402

DATA = Path(os.environ.get("AEEXP_DATA") or REPO.parent / "shared" / "data" / "mnist.npz")
# The thesis-optimizers sweep's grid with fewer seeds and epochs.
GRID = """name: bench
grid:
  loss.name: [mse, i_div1, i_div2]
  model.decoder_activation: [relu, sigmoid]
  optimizer.name: [adagrad, adam, adadelta, nadam, adamax]
  seed: {seeds}
"""
# name -> (workers, CPUs per worker); None is the local executor.
LAYOUTS: dict[str, tuple[int, int] | None] = {
    "local": None,
    "ray 1x1": (1, 1),
    "ray 2x1": (2, 1),
    "ray 1x2": (1, 2),
}
CIRCUMSTANCES = {"train_seconds", "eval_seconds", "finished_at", "machine", "group_size"}


class Timed:
    """Wraps an executor to record each job's worker time and round trip, and its start-up."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.results: list[JobResult] = []
        self.start_seconds = 0.0

    @property
    def workers(self) -> int:
        return self.inner.workers

    def start(self, datasets: Any) -> None:
        started = time.perf_counter()
        self.inner.start(datasets)
        self.start_seconds = time.perf_counter() - started

    def submit(self, job: Any) -> None:
        self.inner.submit(job)

    def outstanding(self) -> int:
        return self.inner.outstanding()

    def next_result(self) -> JobResult:
        result = self.inner.next_result()
        self.results.append(result)
        return result

    def shutdown(self, cancel: bool = False) -> None:
        self.inner.shutdown(cancel)


def make(layout: tuple[int, int] | None) -> Any:
    if layout is None:
        return LocalExecutor()
    workers, cpus = layout
    return RayExecutor(cpus_per_worker=cpus, max_workers=workers)


def numbers(run_dir: Path) -> tuple[dict, str]:
    metrics = store.read_metrics(run_dir)
    history = (run_dir / store.HISTORY).read_text().splitlines()
    kept = {k: v for k, v in metrics.items() if k not in CIRCUMSTANCES}
    return kept, "\n".join(",".join(line.split(",")[:3]) for line in history)


def measure(name: str, layout: tuple[int, int] | None, epochs: int, seeds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aeexp-bench-") as out:
        sweep = Path(out) / "bench.yaml"
        sweep.write_text(GRID.format(seeds=list(range(seeds))))
        planned = plan.plan_sweep(sweep, [f"train.epochs={epochs}"], out=str(Path(out) / "runs"))
        timed = Timed(make(layout))
        started = time.perf_counter()
        execute.execute(planned, timed)
        wall = time.perf_counter() - started
        computed = {run.run_id: numbers(run.run_dir) for run in planned.runs}
    overheads = [r.round_trip_seconds - r.worker_seconds for r in timed.results]
    return {
        "layout": name,
        "runs": len(planned.runs),
        "groups": len(timed.results),
        "wall_seconds": wall,
        "start_seconds": timed.start_seconds,
        "runs_per_minute": 60 * len(planned.runs) / wall,
        "overhead_per_group_seconds": statistics.mean(overheads),
        "worker_seconds": sum(r.worker_seconds for r in timed.results),
        "numbers": computed,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    local = next(r for r in rows if r["layout"] == "local")
    baseline = next(r for r in rows if r["layout"] == "ray 1x2")
    print(
        f"\n{'layout':9s} {'runs':>5s} {'groups':>6s} {'wall s':>8s} {'runs/min':>9s} "
        f"{'vs local':>9s} {'vs 1x2':>7s} {'start s':>8s} {'overhead/group s':>17s}  same numbers"
    )
    for row in rows:
        same = "yes" if row["numbers"] == local["numbers"] else "NO"
        print(
            f"{row['layout']:9s} {row['runs']:5d} {row['groups']:6d} {row['wall_seconds']:8.1f} "
            f"{row['runs_per_minute']:9.2f} {local['wall_seconds'] / row['wall_seconds']:8.2f}x "
            f"{baseline['wall_seconds'] / row['wall_seconds']:6.2f}x {row['start_seconds']:8.1f} "
            f"{row['overhead_per_group_seconds']:17.2f}  {same}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run")
    parser.add_argument("--seeds", type=int, default=2, help="seeds of the 30-run grid")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "executors.json")
    args = parser.parse_args()
    os.environ.setdefault("AEEXP_DATA", str(DATA))
    rows = []
    for name, layout in LAYOUTS.items():
        print(f"training {30 * args.seeds} runs x {args.epochs} epochs: {name}", flush=True)
        rows.append(measure(name, layout, args.epochs, args.seeds))
    print_table(rows)
    summary = [{k: v for k, v in row.items() if k != "numbers"} for row in rows]
    args.json.write_text(json.dumps({"epochs": args.epochs, "rows": summary}, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
