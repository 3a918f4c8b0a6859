"""The lock: its pins, the package data that ships them, the results made in it, the checks."""

import re
from pathlib import Path
from types import SimpleNamespace

import fakeruns
import pytest
from click.testing import CliRunner

from aeexp import api, cli
from aeexp.env import pinned
from aeexp.errors import UserError
from aeexp.execute import runner
from aeexp.store import ledger

ROOT = Path(__file__).resolve().parent.parent
LOCKS = sorted((ROOT / "requirements").glob("lock-py3.*.txt"))
RESULTS = pinned.parse_lock((ROOT / "requirements" / "results.txt").read_text())
REPORTS = [ROOT / "results" / study / "REPORT.md" for study in ("thesis", "beta", "backends")]
# How a report's machine line lists a run's versions: "..., tensorflow 2.21.0, keras 3.15.1."
VERSION = re.compile(r"(python|tensorflow|keras|numpy|scikit-image|jax|jaxlib) (\d[\w.]*\d)")


def test_there_is_a_lock_for_each_supported_python():
    assert [path.name for path in LOCKS] == [f"lock-py3.{minor}.txt" for minor in (11, 12, 13)]


@pytest.mark.parametrize("lock", LOCKS, ids=lambda path: path.name)
def test_each_lock_pins_the_versions_that_made_the_results_with_hashes(lock):
    text = lock.read_text()
    pins = pinned.parse_lock(text)
    assert {name: pins.get(name) for name in RESULTS} == RESULTS
    # Every pin carries at least one hash, so pip --require-hashes accepts the file.
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    unhashed = [entry.split()[0] for entry in entries if "--hash=sha256:" not in entry]
    assert unhashed == [] and len(entries) == len(pins) > 100


def test_the_shipped_pins_are_the_locks_pins():
    shipped = (ROOT / "aeexp" / "env" / pinned.LOCKED_FILE).read_text()
    assert shipped == pinned.render(pinned.pins_from_locks(LOCKS)), "run 'make lock'"
    assert pinned.locked_pins() == pinned.pins_from_locks(LOCKS)
    assert set(pinned.locked_pins()["3.11"]) == set(pinned.DECIDING)


@pytest.mark.parametrize("report", REPORTS, ids=lambda path: path.parent.name)
def test_the_committed_results_were_made_in_the_locked_environment(report):
    lines = [line for line in report.read_text().splitlines() if "as its runs recorded it" in line]
    assert lines, f"{report} has no machine line"
    for line in lines:
        recorded = dict(VERSION.findall(line))
        python = ".".join(recorded.pop("python").split(".")[:2])
        locked = pinned.locked_pins()[python]
        assert recorded and {name: locked[name] for name in recorded} == recorded, line


def test_the_locks_python_floor_is_the_projects():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11"' in pyproject and 'target-version = "py311"' in pyproject


@pytest.fixture
def numpy_by_hand(monkeypatch):
    """Pretend NumPy 2.3.0 is installed; everything else as it is."""
    real = pinned.installed_version
    monkeypatch.setattr(
        pinned, "installed_version", lambda name: "2.3.0" if name == "numpy" else real(name)
    )


@pytest.fixture
def as_locked(monkeypatch):
    """Pretend every deciding package is installed at this Python's locked version."""
    pins = pinned.locked_pins()[pinned.python_key()]
    monkeypatch.setattr(pinned, "installed_version", pins.get)


def test_a_hand_changed_numpy_is_the_one_difference(as_locked, monkeypatch):
    assert pinned.is_locked() and pinned.warning() is None
    locked = pinned.locked_pins()[pinned.python_key()]["numpy"]
    monkeypatch.setattr(pinned, "installed_version", lambda name: {"numpy": "2.3.0"}.get(name))
    assert pinned.differences() == [f"numpy 2.3.0 (lock {locked})"]
    assert pinned.warning() == (
        f"warning: not the locked environment: numpy 2.3.0 (lock {locked}); "
        "'make install' installs the locked versions"
    )


def test_a_package_that_is_not_installed_is_no_difference(monkeypatch):
    monkeypatch.setattr(pinned, "installed_version", lambda name: None)
    assert pinned.is_locked()


def test_a_python_without_a_lock_is_a_difference(as_locked, monkeypatch):
    monkeypatch.setattr(pinned, "python_key", lambda: "3.14")
    assert pinned.differences() == ["python 3.14 (no lock; locked: 3.11, 3.12, 3.13)"]


def test_the_installed_version_of_tensorflow_under_another_name(monkeypatch):
    seen = []

    def version(name):
        seen.append(name)
        if name != "tensorflow-cpu":
            raise pinned.metadata.PackageNotFoundError(name)
        return "2.21.0"

    monkeypatch.setattr(pinned.metadata, "version", version)
    assert pinned.installed_version("tensorflow") == "2.21.0"
    assert seen == ["tensorflow", "tensorflow-cpu"]


def test_env_says_the_lock_agrees(as_locked):
    output = "\n".join(api.environment())
    assert "lock: agrees (python 3." in output and "lock: differs" not in output


def test_env_names_what_differs(numpy_by_hand):
    lines = api.environment()
    assert [line for line in lines if line.startswith("lock: differs")] == [
        f"lock: differs: numpy 2.3.0 (lock {pinned.locked_pins()[pinned.python_key()]['numpy']})"
    ]


def _refuse(*args, **kwargs):
    raise UserError("stopped before training")


# What each command needs besides its file to reach the library call.
REQUIRED = {"run": [], "sweep": [], "tune": ["--trials", "1"]}


@pytest.mark.parametrize("command", ["run", "sweep", "tune"])
def test_run_sweep_and_tune_print_one_warning_line_naming_the_package(
    command, numpy_by_hand, monkeypatch, tmp_path
):
    monkeypatch.setattr(api, command, _refuse)  # the warning comes before any work
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\n")
    result = CliRunner().invoke(cli.main, [command, str(spec), *REQUIRED[command]])
    assert result.exit_code == 2
    warned = [line for line in result.output.splitlines() if "warning" in line]
    assert len(warned) == 1 and warned[0].startswith("aeexp: warning: not the locked environment")
    assert "numpy 2.3.0" in warned[0] and "tensorflow" not in warned[0]


@pytest.mark.parametrize("command", ["run", "sweep", "tune"])
def test_no_warning_in_the_locked_environment(command, as_locked, monkeypatch, tmp_path):
    monkeypatch.setattr(api, command, _refuse)
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\n")
    result = CliRunner().invoke(cli.main, [command, str(spec), *REQUIRED[command]])
    assert result.exit_code == 2 and "warning" not in result.output


@pytest.mark.parametrize(("fixture", "locked"), [("as_locked", True), ("numpy_by_hand", False)])
def test_metrics_json_records_whether_the_run_was_locked(fixture, locked, request):
    request.getfixturevalue(fixture)
    config = SimpleNamespace(train=SimpleNamespace(backend="tensorflow"))
    dataset = SimpleNamespace(name="mnist", source="x", sha256="0", train_images=[], eval_images=[])
    assert runner._shared_metrics([config], dataset, 1.0)["locked_environment"] is locked


def test_runs_from_before_the_field_load_beside_runs_with_it(tmp_path):
    old = fakeruns.fake_run(tmp_path, {"seed": 0}, ssim_mean=0.5)
    new = fakeruns.fake_run(tmp_path, {"seed": 1}, ssim_mean=0.6, locked_environment=False)
    frame = ledger.load_runs(tmp_path / "fake").set_index("run_id")
    assert frame["ssim_mean"].to_dict() == {old.run_id: 0.5, new.run_id: 0.6}
    assert frame["locked_environment"].isna().to_dict() == {old.run_id: True, new.run_id: False}
