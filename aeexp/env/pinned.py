"""The locked versions of the packages that decide a run's numbers, and this process's agreement.

An installed wheel has no lock file beside it, so ``make lock`` copies the pins of these
packages from each ``requirements/lock-py3.X.txt`` into ``aeexp/env/locked.json`` (package data):
``python -m aeexp.env.pinned requirements/lock-py3.*.txt`` writes it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from importlib import metadata, resources
from pathlib import Path

# The packages whose versions decide a run's numbers: the backends, the model and optimizers,
# the arrays, and the SSIM evaluation (scikit-image on SciPy's filters).
DECIDING = ("tensorflow", "keras", "numpy", "scipy", "scikit-image", "jax", "jaxlib")
LOCKED_FILE = "locked.json"
INSTALL_HINT = "'make install' installs the locked versions"
# TensorFlow ships under several distribution names; any of them is TensorFlow.
_ALIASES = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu")}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def canonical(name: str) -> str:
    """Return a distribution name normalised as PEP 503 does (``ML_Dtypes`` -> ``ml-dtypes``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, str]:
    """Return every ``name==version`` pin of a requirements lock, names normalised."""
    return {canonical(name): version for name, version in _PIN.findall(text)}


def python_key() -> str:
    """Return the ``3.X`` key this Python's lock is filed under."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def locked_pins() -> dict[str, dict[str, str]]:
    """Return the shipped pins: Python version -> package -> version."""
    text = resources.files("aeexp.env").joinpath(LOCKED_FILE).read_text()
    return json.loads(text)


def installed_version(name: str) -> str | None:
    """Return the installed version of ``name`` (any of TensorFlow's names), or None."""
    for candidate in _ALIASES.get(name, (name,)):
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def differences() -> list[str]:
    """Return one phrase per deciding package installed at a version other than the lock's.

    A package that is not installed decides nothing and is not a difference. A Python with
    no lock is one difference: nothing says which versions it should have.
    """
    pins = locked_pins().get(python_key())
    if pins is None:
        return [f"python {python_key()} (no lock; locked: {', '.join(sorted(locked_pins()))})"]
    found = []
    for name in DECIDING:
        have = installed_version(name)
        if have is not None and name in pins and have != pins[name]:
            found.append(f"{name} {have} (lock {pins[name]})")
    return found


def is_locked() -> bool:
    """Return whether every deciding package that is installed has its locked version."""
    return not differences()


def warning() -> str | None:
    """Return the one warning line for a run outside the locked environment, or None."""
    found = differences()
    if not found:
        return None
    return f"warning: not the locked environment: {'; '.join(found)}; {INSTALL_HINT}"


def report() -> list[str]:
    """Return ``aeexp env``'s lines on agreement with the lock."""
    found = differences()
    if not found:
        return [f"lock: agrees (python {python_key()}: {', '.join(_agreeing())})"]
    return [f"lock: differs: {phrase}" for phrase in found] + [f"lock: {INSTALL_HINT}"]


def _agreeing() -> list[str]:
    """Return the installed deciding packages, each with its (locked) version."""
    return [f"{n} {v}" for n in DECIDING if (v := installed_version(n)) is not None]


def pins_from_locks(paths: Iterable[Path]) -> dict[str, dict[str, str]]:
    """Return the deciding packages' pins of each ``lock-py3.X.txt``, keyed by its Python."""
    pins = {}
    for path in sorted(paths):
        match = re.fullmatch(r"lock-py(\d+\.\d+)\.txt", path.name)
        if match is None:
            raise ValueError(f"{path}: a lock's name is lock-py3.X.txt")
        locked = parse_lock(path.read_text())
        pins[match[1]] = {name: locked[name] for name in DECIDING if name in locked}
    return pins


def render(pins: dict[str, dict[str, str]]) -> str:
    """Return the package-data file's text for ``pins`` (stable, so diffs stay small)."""
    return json.dumps(pins, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> None:
    """Write aeexp/env/locked.json from the lock files named in ``argv``."""
    target = Path(__file__).with_name(LOCKED_FILE)
    target.write_text(render(pins_from_locks(Path(p) for p in argv)))
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
