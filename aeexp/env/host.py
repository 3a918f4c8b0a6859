"""The machine a process runs on, as runs record it and reports describe it."""

from __future__ import annotations

import os
import platform
from typing import Any


def _proc_field(path: str, prefix: str) -> str:
    """Return the value of the first ``prefix: value`` line of a /proc file, or 'unknown'."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def cpu_model() -> str:
    """Return the CPU's model name."""
    return _proc_field("/proc/cpuinfo", "model name")


def usable_cpus() -> int:
    """Return how many CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def memory_gib() -> float | None:
    """Return the machine's memory in GiB, if /proc says."""
    kib = _proc_field("/proc/meminfo", "MemTotal").split()[0]
    return int(kib) / 2**20 if kib.isdigit() else None


def record() -> dict[str, Any]:
    """Return what a run stores of its host: CPU, counts and the load as it finished."""
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "system": f"{platform.system()} {platform.machine()}",
        "load_average": load,
    }
