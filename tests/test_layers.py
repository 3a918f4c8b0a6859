"""The layer rules hold: the import contracts in pyproject.toml, as `make lint` checks them.

Layers point down only, analysis never reads the API, engines never the driver or the
store, the floors import nothing above them, and no two modules import each other. A
broken contract names the import to remove.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def lint_imports(*options):
    """Run import-linter on this checkout (it puts the working folder first on the path)."""
    pytest.importorskip("importlinter", reason="import-linter comes with the dev extra")
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache", *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_are_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_module_has_a_layer():
    """The layers contract is exhaustive: a new module outside every layer breaks it."""
    from importlinter.api import read_configuration

    contracts = read_configuration(str(REPO / "pyproject.toml"))["contracts_options"]
    (layers,) = [c for c in contracts if c["type"] == "layers"]
    assert layers["exhaustive"] in (True, "True", "true")
    named = {
        name.strip() for layer in layers["layers"] for name in layer.replace(":", "|").split("|")
    }
    package = REPO / "aeexp"
    children = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    children |= {p.parent.name for p in package.glob("*/__init__.py")}
    assert named == children


def test_at_most_ten_modules_sit_outside_the_packages():
    """The folders are the architecture (issue 28): a new module finds its package."""
    loose = sorted(p.name for p in (REPO / "aeexp").glob("*.py"))
    assert len(loose) <= 10, loose
