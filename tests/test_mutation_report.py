"""The committed mutation report (make mutate) measures every module that decides the numbers.

Reads bench/mutate.py's map and bench/mutation.md only: no mutmut, no framework.
"""

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("mutate", REPO / "bench" / "mutate.py")
mutate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mutate)  # stdlib only at import: the map is read without mutmut

MEASURED = {path for group in mutate.GROUPS.values() for path in group["modules"]}


def in_scope(root: Path = REPO) -> set[str]:
    found = set()
    for entry in mutate.SCOPE:
        path = root / entry
        files = [path] if path.suffix == ".py" else path.rglob("*.py")
        found |= {f.relative_to(root).as_posix() for f in files if f.name != "__init__.py"}
    return found


def unaccounted(modules: set[str]) -> set[str]:
    """Modules in scope that are neither measured nor said to be unmeasured, and stale entries."""
    return modules ^ (MEASURED | set(mutate.NOT_MEASURED))


def test_every_module_in_scope_is_measured_or_says_why_not():
    assert unaccounted(in_scope()) == set()
    assert not MEASURED & set(mutate.NOT_MEASURED)
    assert all(reason.strip() for reason in mutate.NOT_MEASURED.values())


def test_a_new_module_in_scope_fails_the_check(tmp_path):
    new = tmp_path / "aeexp" / "store" / "new_store.py"
    new.parent.mkdir(parents=True)
    new.write_text("def f():\n    return 1\n")
    assert unaccounted(in_scope() | in_scope(tmp_path)) == {"aeexp/store/new_store.py"}


@pytest.mark.parametrize("group", sorted(mutate.GROUPS))
def test_every_function_a_group_names_exists(group):
    # A renamed function would silently leave the group with nothing to mutate.
    for path, spec in mutate.GROUPS[group]["modules"].items():
        names = mutate.functions_of(REPO / path)
        for pattern in [p.lstrip("!") for p in spec or []]:
            assert any(mutate.fnmatch.fnmatch(n, pattern) for n in names), (path, pattern)
        assert mutate.selected(REPO, path, spec), path


def test_every_guarding_test_exists():
    for group in mutate.GROUPS.values():
        given = [f for files in group.get("given_tests", {}).values() for f in files]
        for test in [*group["tests"], *group.get("child_tests", []), *given]:
            assert (REPO / test).is_file(), test
        assert set(group.get("given_tests", {})) <= set(group["modules"])


def test_the_committed_report_measures_exactly_these_modules():
    report = mutate.REPORT.read_text()
    assert sorted(re.findall(r"^\| `([^`]+)` \|", report, re.M)) == sorted(MEASURED)
    assert "UNEXPLAINED" not in report
    for row in re.findall(r"^\| `[^`]+` \|.*$", report, re.M):
        assert int(row.split("|")[4]) > 0, row  # every module had mutants tested
