"""The third-party package behind each of aeexp's optional features, as a pip requirement.

Messages name the package itself, not aeexp with an extra: no package index serves aeexp, so
that form fails wherever aeexp came from a clone or a wheel file.
pyproject.toml's extras hold the same requirements (a test keeps the two equal).
"""

from __future__ import annotations

REQUIREMENTS = {
    "tensorflow": "tensorflow>=2.16",
    "jax": "jax>=0.4.30",
    "ray": "ray>=2.40,<3",
    "mlflow": "mlflow>=2.10",
    "tune": "optuna>=4,<5",
}


def install_hint(extra: str) -> str:
    """Return the pip command that installs what ``extra`` needs, e.g. pip install 'ray>=2.40'."""
    return f"pip install '{REQUIREMENTS[extra]}'"
