"""aeexp: reproduce and extend 'Autoencoder with New Loss Functions' (Haruguchi, 2019).

In a notebook: ``aeexp.run(config, **{"train.epochs": 5})``, ``aeexp.sweep(path)``,
``aeexp.load_runs(folder or runs CSV)`` (a pandas DataFrame), ``aeexp.compare(...)`` and
``aeexp.tune(search_file, trials=N)``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:  # one version, pyproject.toml's, as the installed package records it
    __version__ = version("aeexp")
except PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"


__all__ = ["compare", "load_runs", "run", "sweep", "tune"]


def __getattr__(name: str) -> Any:
    """Import the API on first use, so that ``import aeexp`` and ``aeexp --help`` stay light."""
    if name in ("run", "sweep", "tune", "load_runs"):
        from aeexp import api

        return getattr(api, name)
    if name == "compare":
        from aeexp.analysis.compare import compare

        return compare
    raise AttributeError(f"module 'aeexp' has no attribute {name!r}")
