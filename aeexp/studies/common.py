"""What both studies' reports say alike: the machine, the wall clock, seeds, copied figures."""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aeexp.analysis import tables
from aeexp.analysis.tables import ConfigStats
from aeexp.env import host
from aeexp.io import atomic, readers
from aeexp.registry import vocab
from aeexp.registry.datasets import DATASETS, DEFAULT_DATASET
from aeexp.store import rundir as store
from aeexp.store.ledger import RUNS_CSV
from aeexp.store.rundir import Run

# A run may record its host under this key of metrics.json: ``cpu_model`` (str), ``cpu_count``
# (int) and ``load_average`` (the 1, 5 and 15-minute averages when it finished).
MACHINE_KEY = "machine"


@dataclass(frozen=True)
class Metadata:
    """What a run's metrics.json says about how it ran; None (or empty) where it is unusable."""

    finished_at: dt.datetime | None  # time-zone aware
    train_seconds: float | None
    machine: bool  # whether it recorded a machine at all
    cpu_model: str | None
    cpu_count: int | None
    load_average: float | None  # the 1-minute average
    versions: dict[str, str]
    train_images: int | None
    test_images: int | None


def metadata(run: Run) -> Metadata:
    """Read a run's metadata tolerantly: a field of the wrong type counts as not recorded.

    Metadata describes a report, it does not decide one: a hand-edited or foreign
    metrics.json (a string load average, a list of versions, a time without a zone) costs
    that line its detail, never the report. Every renderer reads the fields through here.
    """
    metrics = run.metrics
    machine = metrics.get(MACHINE_KEY)
    host = machine if isinstance(machine, dict) else {}
    data = metrics.get("data")
    data = data if isinstance(data, dict) else {}
    return Metadata(
        finished_at=_aware_time(metrics.get("finished_at")),
        train_seconds=_seconds(metrics.get("train_seconds")),
        machine=isinstance(machine, dict),
        cpu_model=_text(host.get("cpu_model")),
        cpu_count=_count(host.get("cpu_count")),
        load_average=_first_number(host.get("load_average")),
        versions=_version_map(metrics.get("versions")),
        train_images=_count(data.get("train_images")),
        test_images=_count(data.get("test_images")),
    )


def _aware_time(value: object) -> dt.datetime | None:
    """Return an ISO time with a zone; a naive one cannot be placed beside the others."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _seconds(value: object) -> float | None:
    """Return a non-negative finite duration, else None."""
    number = tables.as_number(value)
    return number if number is not None and number >= 0 else None


def _text(value: object) -> str | None:
    """Return a non-empty string, else None."""
    return value if isinstance(value, str) and value.strip() else None


def _count(value: object) -> int | None:
    """Return a non-negative int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _first_number(value: object) -> float | None:
    """Return the first of a list of load averages if it is a number, else None."""
    if isinstance(value, list | tuple) and value:
        return tables.as_number(value[0])
    return None


def _version_map(value: object) -> dict[str, str]:
    """Return the library versions recorded as name -> version strings; others are dropped."""
    if not isinstance(value, dict):
        return {}
    return {
        str(name): str(version)
        for name, version in value.items()
        if isinstance(version, str | int | float) and not isinstance(version, bool)
    }


def _versions(runs: Sequence[Run]) -> str:
    """Return the library versions of the first run that recorded them."""
    versions = next((v for r in runs if (v := metadata(r).versions)), {})
    return ", ".join(f"{k} {v}" for k, v in versions.items()) or "versions not recorded"


def _span(values: Sequence[float], fmt: str = "g") -> str:
    """Return ``a`` or ``a-b`` for the smallest and largest of ``values``."""
    low, high = min(values), max(values)
    return f"{low:{fmt}}" if low == high else f"{low:{fmt}}-{high:{fmt}}"


def _recorded_machine(runs: Sequence[Run]) -> str | None:
    """Describe the host the runs recorded, or return None if none did."""
    hosts = [m for m in map(metadata, runs) if m.machine]
    if not hosts:
        return None
    models = sorted({h.cpu_model or "unknown CPU" for h in hosts})
    cpus = [h.cpu_count for h in hosts if h.cpu_count is not None]
    loads = [h.load_average for h in hosts if h.load_average is not None]
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
    """Copy each sweep's runs.csv beside the report as ``<sweep name>-runs.csv``.

    Read within the summary bound and written by rename, so a link already standing at the
    copy's name is replaced, never written through to a file outside the report's folder.
    """
    for folder in sweep_dirs:
        if (folder / RUNS_CSV).is_file():
            data = readers.read_bytes(folder / RUNS_CSV, readers.MAX_SUMMARY_BYTES, "runs CSV")
            atomic.write_bytes_atomic(out_dir / f"{folder.name}-{RUNS_CSV}", data)


def machine_description(runs: Sequence[Run]) -> str:
    """Return which machine ran the runs (if they recorded it, else this one) and the versions."""
    return f"{_recorded_machine(runs) or _this_machine()}; {_versions(runs)}"


def _start(meta: Metadata) -> dt.datetime | None:
    """Return when a run started: its end minus its training time (none recorded: zero)."""
    if meta.finished_at is None:
        return None
    try:
        return meta.finished_at - dt.timedelta(seconds=meta.train_seconds or 0.0)
    except OverflowError:  # a duration reaching past year 1: not a real one
        return None


def elapsed_seconds(runs: Sequence[Run]) -> float:
    """Return the wall-clock span from the first run's start to the last run's end."""
    found = [(m.finished_at, _start(m)) for m in map(metadata, runs)]
    ends = [end for end, start in found if end is not None and start is not None]
    starts = [start for end, start in found if end is not None and start is not None]
    return (max(ends) - min(starts)).total_seconds() if ends else 0.0


def wall_clock_line(runs: Sequence[Run]) -> str:
    """Return the measured wall-clock time of the runs, as a report's bullet."""
    if not any(m.finished_at is not None for m in map(metadata, runs)):
        return (
            "- Wall-clock time of the sweeps: unknown (no run recorded when it finished, "
            "with its time zone)."
        )
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
    """Return the epochs and batch size the runs' configs used, e.g. ``50 epochs, batch 256``.

    A dataset other than MNIST (the default) is named too: ``..., on Fashion-MNIST``.
    """
    epochs = sorted({r.config.train.epochs for r in runs})
    batches = sorted({r.config.train.batch_size for r in runs})
    unit = "epoch" if epochs == [1] else "epochs"
    text = f"{'/'.join(map(str, epochs))} {unit}, batch {'/'.join(map(str, batches))}"
    name = tables.dataset_of(runs)
    return text if name == DEFAULT_DATASET else f"{text}, on {DATASETS[name].title}"


def example_run(stat: ConfigStats, image: str = store.RECONSTRUCTIONS) -> Run | None:
    """Return the first completed seed that wrote ``image``, or None."""
    return next(
        (r for r in stat.runs if vocab.is_completed(r.metrics) and (r.path / image).is_file()),
        None,
    )


def copy_figure(run: Run | None, image: str, target: Path) -> bool:
    """Copy a run's figure to ``target``; remove a stale ``target`` if there is none.

    By a bounded read and a rename, as ``copy_summaries``: a link at ``target`` is replaced.
    """
    if run is None or not (run.path / image).is_file():
        target.unlink(missing_ok=True)
        return False
    data = readers.read_bytes(run.path / image, readers.MAX_SUMMARY_BYTES, "figure")
    atomic.write_bytes_atomic(target, data)
    return True


def fmt(stat: ConfigStats | None, with_optimizer: bool = False) -> str:
    """Return ``mean [95% t interval] (n)``, the single value, or why there is none."""
    if stat is None:
        return "n/a"
    if not stat.n:  # Every seed diverged or failed: a mean would print as nan.
        return f"n/a (0 of {len(stat.runs)} completed)"
    text = tables.format_value(stat, style="ci")
    return f"{text} {stat.optimizer_label}" if with_optimizer else text
