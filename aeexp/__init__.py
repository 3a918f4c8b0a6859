"""aeexp: reproduce and extend 'Autoencoder with New Loss Functions' (Haruguchi, 2019).

In a notebook: ``aeexp.run(config, **{"train.epochs": 5})``, ``aeexp.sweep(path)``,
``aeexp.load_runs(folder or runs CSV)`` (a pandas DataFrame), ``aeexp.compare(...)`` and
``aeexp.tune(search_file, trials=N)``. A mistake raises ``aeexp.UserError`` (a ValueError)
with the one line the command line would print.
"""

from __future__ import annotations

from typing import Any

# From the source, not the install's metadata: an editable install made before a version bump
# still reports the version of the code it runs.
from aeexp._version import __version__ as __version__
from aeexp.errors import UserError as UserError

__all__ = ["UserError", "compare", "load_runs", "run", "sweep", "tune"]


def __getattr__(name: str) -> Any:
    """Import the API on first use, so that ``import aeexp`` and ``aeexp --help`` stay light."""
    if name in __all__:
        from aeexp import api

        return getattr(api, name)
    raise AttributeError(f"module 'aeexp' has no attribute {name!r}")
