"""What both studies' reports say alike: the machine, the wall clock, seeds, copied figures."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
from collections.abc import Sequence
from pathlib import Path

from aeexp import host, store, vocab
from aeexp.analysis import tables
from aeexp.analysis.tables import ConfigStats
from aeexp.store import Run

# A run may record its host under this key of metrics.json: ``cpu_model`` (str), ``cpu_count``
# (int) and ``load_average`` (the 1, 5 and 15-minute averages when it finished).
MACHINE_KEY = "machine"


def _versions(runs: Sequence[Run]) -> str:
    """Return the library versions of the first run that recorded them."""
    versions = next((r.metrics["versions"] for r in runs if r.metrics.get("versions")), {})
    return ", ".join(f"{k} {v}" for k, v in versions.items()) or "versions not recorded"


def _span(values: Sequence[float], fmt: str = "g") -> str:
    """Return ``a`` or ``a-b`` for the smallest and largest of ``values``."""
    low, high = min(values), max(values)
    return f"{low:{fmt}}" if low == high else f"{low:{fmt}}-{high:{fmt}}"


def _recorded_machine(runs: Sequence[Run]) -> str | None:
    """Describe the host the runs recorded, or return None if none did."""
    hosts = [r.metrics[MACHINE_KEY] for r in runs if isinstance(r.metrics.get(MACHINE_KEY), dict)]
    if not hosts:
        return None
    models = sorted({str(h.get("cpu_model", "unknown CPU")) for h in hosts})
    cpus = [h["cpu_count"] for h in hosts if isinstance(h.get("cpu_count"), int)]
    loads = [float(h["load_average"][0]) for h in hosts if h.get("load_average")]
    parts = ["; ".join(models)]
    if cpus:
        parts.append(f"{_span(cpus)} CPUs")
    if loads:
        parts.append(f"1-minute load average {_span(loads, '.2f')} as runs finished")
    return "the machine that ran the sweeps, as its runs recorded it: " + ", ".join(parts)


def _this_machine() -> str:
    """Describe the machine writing the report: CPU, count, memory and load right now."""
    memory = host.memory_gib()
    load = (
        "load average {:.2f}/{:.2f}/{:.2f} (1/5/15 minutes) while writing it".format(
            *os.getloadavg()
        )
        if hasattr(os, "getloadavg")
        else "load unknown"
    )
    return (
        "the runs did not record their machine; this is the machine that wrote the report: "
        f"{host.cpu_model()}, {os.cpu_count()} CPUs ({host.usable_cpus()} usable), "
        f"{f'{memory:.0f} GiB' if memory else 'unknown'} memory, "
        f"{platform.system()} {platform.machine()}, {load}"
    )


def copy_summaries(sweep_dirs: Sequence[Path], out_dir: Path) -> None:
    """Copy each sweep's runs.csv beside the report as ``<sweep name>-runs.csv``."""
    for folder in sweep_dirs:
        if (folder / "runs.csv").is_file():
            shutil.copyfile(folder / "runs.csv", out_dir / f"{folder.name}-runs.csv")


def machine_description(runs: Sequence[Run]) -> str:
    """Return which machine ran the runs (if they recorded it, else this one) and the versions."""
    return f"{_recorded_machine(runs) or _this_machine()}; {_versions(runs)}"


def elapsed_seconds(runs: Sequence[Run]) -> float:
    """Return the wall-clock span from the first run's start to the last run's end."""
    ends = [
        dt.datetime.fromisoformat(r.metrics["finished_at"])
        for r in runs
        if "finished_at" in r.metrics
    ]
    starts = [
        dt.datetime.fromisoformat(r.metrics["finished_at"])
        - dt.timedelta(seconds=r.metrics.get("train_seconds", 0.0))
        for r in runs
        if "finished_at" in r.metrics
    ]
    return (max(ends) - min(starts)).total_seconds() if ends else 0.0


def wall_clock_line(runs: Sequence[Run]) -> str:
    """Return the measured wall-clock time of the runs, as a report's bullet."""
    return (
        f"- Wall-clock time of the sweeps: {elapsed_seconds(runs) / 60:.1f} minutes, measured "
        "from the first run's start to the last run's end (pauses between resumed sweeps "
        "included)."
    )


def not_completed(runs: Sequence[Run]) -> int:
    """Return how many runs diverged or failed."""
    return sum(not vocab.is_completed(r.metrics) for r in runs)


def seeds_text(stats: Sequence[ConfigStats]) -> str:
    """Return the completed seeds per configuration: ``5 seeds`` or ``3-5 completed seeds``."""
    counts = [s.n for s in stats] or [0]
    planned = max((len(s.runs) for s in stats), default=0)
    if min(counts) == max(counts) == planned:
        return f"{planned} seed{'' if planned == 1 else 's'}"
    return f"{_span(counts)} completed seeds (of {planned})"


def seed_list(runs: Sequence[Run]) -> str:
    """Return the seeds the runs used: ``seed 0`` or ``seeds 0, 1, 2``."""
    seeds = sorted({r.config.seed for r in runs})
    return f"seed{'' if len(seeds) == 1 else 's'} {', '.join(map(str, seeds))}"


def training_text(runs: Sequence[Run]) -> str:
    """Return the epochs and batch size the runs' configs used, e.g. ``50 epochs, batch 256``."""
    epochs = sorted({r.config.train.epochs for r in runs})
    batches = sorted({r.config.train.batch_size for r in runs})
    unit = "epoch" if epochs == [1] else "epochs"
    return f"{'/'.join(map(str, epochs))} {unit}, batch {'/'.join(map(str, batches))}"


def example_run(stat: ConfigStats, image: str = store.RECONSTRUCTIONS) -> Run | None:
    """Return the first completed seed that wrote ``image``, or None."""
    return next(
        (r for r in stat.runs if vocab.is_completed(r.metrics) and (r.path / image).is_file()),
        None,
    )


def copy_figure(run: Run | None, image: str, target: Path) -> bool:
    """Copy a run's figure to ``target``; remove a stale ``target`` if there is none."""
    if run is None or not (run.path / image).is_file():
        target.unlink(missing_ok=True)
        return False
    shutil.copyfile(run.path / image, target)
    return True


def fmt(stat: ConfigStats | None, with_optimizer: bool = False) -> str:
    """Return ``mean [95% t interval] (n)``, the single value, or why there is none."""
    if stat is None:
        return "n/a"
    if not stat.n:  # Every seed diverged or failed: a mean would print as nan.
        return f"n/a (0 of {len(stat.runs)} completed)"
    text = tables.format_value(stat, style="ci")
    return f"{text} {stat.optimizer_label}" if with_optimizer else text
