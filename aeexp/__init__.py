"""aeexp: reproduce and extend 'Autoencoder with New Loss Functions' (Haruguchi, 2019).

In a notebook: ``aeexp.run(config, **{"train.epochs": 5})``, ``aeexp.sweep(path)``,
``aeexp.load_runs(folder)`` (a pandas DataFrame) and ``aeexp.compare(...)``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["compare", "load_runs", "run", "sweep"]


def __getattr__(name: str) -> Any:
    """Import the API on first use, so that ``import aeexp`` and ``aeexp --help`` stay light."""
    if name in ("run", "sweep", "load_runs"):
        from aeexp import api

        return getattr(api, name)
    if name == "compare":
        from aeexp.analysis.compare import compare

        return compare
    raise AttributeError(f"module 'aeexp' has no attribute {name!r}")
