"""What a wheel carries and says: one version, install hints that work, pyproject in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import aeexp
from aeexp import cli
from aeexp.env.extras import REQUIREMENTS, install_hint

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; aeexp itself needs no TOML reader
REPO = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_the_version_is_written_once_and_read_by_pyproject_and_the_cli():
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "aeexp._version.__version__"}
    assert aeexp.__version__ == "0.2.0"
    result = CliRunner().invoke(cli.main, ["--version"])
    assert result.output.strip().endswith(f"version {aeexp.__version__}")


def test_each_install_hint_is_its_extra_in_pyproject():
    extras = PYPROJECT["project"]["optional-dependencies"]
    for extra, requirement in REQUIREMENTS.items():
        assert extras[extra] == [requirement], extra


def test_no_message_tells_to_install_aeexp_from_an_index():
    # No index serves aeexp: "pip install 'aeexp[tune]'" fails for every user.
    pattern = re.compile(r"pip install ['\"]?aeexp\[")
    offenders = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "aeexp").rglob("*.py"))
        if pattern.search(path.read_text())
    ]
    assert offenders == []


def test_tune_help_names_the_same_requirement_as_its_error():
    result = CliRunner().invoke(cli.main, ["tune", "--help"], env={"COLUMNS": "200"})
    assert install_hint("tune") in " ".join(result.output.split())
