"""The environment-variable page against the variables the package's source reads and sets."""

import re
from pathlib import Path

import docpages

PACKAGE = Path(__file__).resolve().parents[1] / "aeexp"
PAGE = "docs/reference/environment-variables.md"
# A variable's name as a string literal: upper-case words joined by underscores (Ray's own
# settings keep a lower-case tail, as RAY_gcs_server_port_wait_time_s does).
NAME = re.compile(r"[\"']([A-Z][A-Z0-9]*_[A-Za-z0-9_]+)[\"']")


def source_variables() -> set[str]:
    """Return the variable names in every package module that touches os.environ."""
    found: set[str] = set()
    for module in PACKAGE.rglob("*.py"):
        text = module.read_text()
        if "environ" in text:
            found |= set(NAME.findall(text))
    return found


def page_variables(section: str) -> set[str]:
    """Return the variables a section of the page lists in its table's first column."""
    text = docpages.text(PAGE)
    body = text.split(f"## {section}")[1].split("\n## ")[0]
    rows = [line.split("|")[1] for line in body.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Za-z0-9_]+)`", row)}


def test_every_variable_the_package_uses_is_on_the_page():
    listed = page_variables("Read by aeexp") | page_variables("Set by aeexp")
    assert source_variables(), "the pattern found no variable: it no longer matches the code"
    assert source_variables() <= listed, sorted(source_variables() - listed)


def test_the_page_lists_no_variable_the_package_no_longer_uses():
    listed = page_variables("Read by aeexp") | page_variables("Set by aeexp")
    assert listed <= source_variables(), sorted(listed - source_variables())


def test_the_project_tools_variables_are_read_where_the_page_says():
    """The tests', notebook's and benchmark's variables appear in the files named beside them."""
    text = docpages.text(PAGE)
    body = text.split("## Read by the project's own tools")[1]
    for line in body.splitlines():
        if not line.startswith("| `"):
            continue
        names = re.findall(r"`([A-Z0-9_]+)`", line.split("|")[1])
        files = re.findall(r"`([\w./-]+\.(?:py|ipynb))`|\]\(\.\./([\w/.-]+\.ipynb)\)", line)
        paths = [docpages.REPO / (a or f"docs/{b}") for a, b in files]
        assert names and paths, line
        read = "".join(path.read_text() for path in paths)
        for name in names:
            stem = name.rsplit("_", 1)[0] + "_" if name.startswith("AEEXP_DEVICE_") else name
            assert stem in read, (name, paths)
