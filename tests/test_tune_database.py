"""Hostile input, round 4: the study file tune.db, and what a search file can promise up front.

A damaged, foreign or odd ``tune.db`` ends in one line naming the file and the way out, with
every finished run kept; after the file is moved aside the study is rebuilt from the run
directories without training anything again. The same cases run through the real command
(with root's file-mode override dropped for the permission ones) and through the real API.
"""

import dataclasses
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_execute import no_data  # noqa: F401 (a fixture no_tune_data extends)
from test_hostile_paths import NO_DAC, cli, one_error
from test_tune import SEARCH, no_tune_data, tune, write  # noqa: F401 (a fixture)

import aeexp
from aeexp.config import run as config_lib
from aeexp.errors import UserError
from aeexp.execute import driver as execute
from aeexp.tuning import database, driver, search

optuna = pytest.importorskip("optuna")


def _random_bytes(db: Path) -> None:
    db.write_bytes(os.urandom(5000))


def _cut_in_half(db: Path) -> None:
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


def _broken_header(db: Path) -> None:
    db.write_bytes(b"SQLite format 4\x00" + db.read_bytes()[16:])


def _broken_page_size(db: Path) -> None:
    raw = bytearray(db.read_bytes())
    raw[16:18] = b"\x00\x03"  # not a power of two: SQLite refuses the file
    db.write_bytes(bytes(raw))


def _sparse_5_gib(db: Path) -> None:
    with open(db, "r+b") as handle:
        handle.truncate(5 << 30)  # no disk used; a reader that believed it would fill memory


def _folder(db: Path) -> None:
    db.unlink()
    db.mkdir()


def _fifo(db: Path) -> None:
    db.unlink()
    os.mkfifo(db)


def _link_to_device(db: Path) -> None:
    db.unlink()
    db.symlink_to("/dev/zero")


def _link_loop(db: Path) -> None:
    db.unlink()
    (db.parent / "loop").symlink_to("loop")
    db.symlink_to("loop")


def _dangling_link(db: Path) -> None:
    db.unlink()
    db.symlink_to(db.parent.parent.parent / "elsewhere.db")  # beside the output folder


def _sqlite_with(db: Path, *statements: str) -> None:
    db.unlink()
    with sqlite3.connect(db) as connection:
        for statement in statements:
            connection.execute(statement)


def _clashing_tables(db: Path) -> None:
    _sqlite_with(db, "CREATE TABLE studies (x TEXT)", "INSERT INTO studies VALUES ('mine')")


def _foreign_tables(db: Path) -> None:
    _sqlite_with(db, "CREATE TABLE accounts (owner TEXT)")


DAMAGE = {
    "random bytes": (_random_bytes, "not an SQLite database"),
    "cut in half": (_cut_in_half, "damaged SQLite database"),
    "broken header": (_broken_header, "not an SQLite database"),
    "broken page size": (_broken_page_size, "damaged SQLite database"),
    "sparse, 5 GiB": (_sparse_5_gib, "larger than 4 GiB"),
    "a folder": (_folder, "is a directory"),
    "a FIFO": (_fifo, "not a regular file"),
    "a link to a device": (_link_to_device, "a symbolic link"),
    "a link loop": (_link_loop, "a symbolic link"),
    "a dangling link": (_dangling_link, "a symbolic link"),
    "tables that clash": (_clashing_tables, "table studies is not Optuna's"),
    "another program's tables": (_foreign_tables, "another program (tables accounts)"),
}


@pytest.fixture(scope="module")
def fake_study(tmp_path_factory):
    """A finished study of 6 trials (the fake executor's runs), made once for the module."""
    folder = tmp_path_factory.mktemp("fake")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(driver, "load_dataset", lambda cfg: _NoData())
        patch.setattr(execute, "load_dataset", lambda cfg: _NoData())
        return folder, tune(folder)


class _NoData:
    def check_batch(self, size: int) -> None:
        pass


@pytest.fixture
def finished(tmp_path, fake_study, no_tune_data):  # noqa: F811 (the fixture, not the import)
    """A copy of the finished study in tmp_path: its outcome and its runs' modification times."""
    folder, outcome = fake_study
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    outcome = dataclasses.replace(
        outcome, search=dataclasses.replace(outcome.search, output_dir=tmp_path / "out")
    )
    runs = {p: p.stat().st_mtime_ns for p in outcome.experiment_dir.glob("*/metrics.json")}
    return outcome, runs


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_or_foreign_study_is_one_line_through_the_api(tmp_path, finished, case):
    outcome, runs = finished
    damage, fragment = DAMAGE[case]
    damage(outcome.database)
    with pytest.raises(UserError) as caught:
        aeexp.tune(write(tmp_path), trials=6, out=tmp_path / "out", progress=False)
    message = str(caught.value)
    assert "\n" not in message and fragment in message and "tune.db" in message, message
    assert "rebuilds the study from the finished runs" in message
    assert {p: p.stat().st_mtime_ns for p in runs} == runs, "a finished run was touched"
    assert not (tmp_path / "elsewhere.db").exists(), "SQLite wrote through the link"


def test_moved_aside_the_study_is_rebuilt_without_training(tmp_path, finished):
    outcome, runs = finished
    _random_bytes(outcome.database)
    outcome.database.rename(outcome.database.with_name("tune.db.damaged"))
    trained = []
    again = tune(tmp_path, trained=trained)
    assert trained == [] and again.trained == 0
    assert [(t.run_id, t.state) for t in again.trials] == [
        (t.run_id, t.state) for t in outcome.trials
    ]


def test_an_empty_study_file_is_a_new_study(tmp_path, finished):
    outcome, _ = finished
    outcome.database.write_bytes(b"")
    trained = []
    assert tune(tmp_path, trained=trained).trained == 0 and trained == []


def test_a_study_in_a_folder_whose_name_reads_as_a_url_stays_in_it(
    tmp_path,
    no_tune_data,  # noqa: F811 (the fixture, not the import)
):
    """In 'sqlite:///a?b/tune.db' the '?' starts a query: the study went to a file 'a'."""
    outcome = tune(tmp_path, out="a?mode=ro#x")
    assert outcome.database.is_file() and outcome.database.parent.parent.name == "a?mode=ro#x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a?mode=ro#x", "s.yaml"]


def test_the_schema_read_is_optunas():
    """The check reads Optuna's own table list: the tables it makes, with their columns."""
    tables = database.optuna_tables()
    assert {"studies", "trials", "trial_values", "version_info"} <= set(tables)
    assert {"study_id", "study_name"} <= tables["studies"]


# --- The real command, bounded, as root without its file-mode override -----------------------


@pytest.fixture
def on_real_data(finished, tmp_path, mnist_path):
    """The copied study's search file with MNIST named in it (the command has no AEEXP_DATA)."""
    outcome, _ = finished
    path = write(tmp_path, SEARCH.replace("config: {", f"config: {{data.path: '{mnist_path}', "))
    return path, outcome.database


def _read_only(db: Path) -> None:
    db.chmod(0o444)


def _unreadable(db: Path) -> None:
    db.chmod(0)


COMMAND_CASES = {
    "random bytes": (_random_bytes, "not an SQLite database"),
    "a link to a device": (_link_to_device, "a symbolic link"),
    "tables that clash": (_clashing_tables, "is not Optuna's"),
    "read-only": (_read_only, "attempt to write a readonly database"),
    "unreadable": (_unreadable, "permission denied"),
}


@pytest.mark.parametrize("case", COMMAND_CASES)
def test_the_command_says_what_is_wrong_with_the_study_on_one_line(tmp_path, on_real_data, case):
    path, db = on_real_data
    damage, fragment = COMMAND_CASES[case]
    damage(db)
    runs = {p: p.stat().st_mtime_ns for p in db.parent.glob("*/metrics.json")}
    message = one_error(cli(tmp_path, "tune", path, "--trials", "3", "--out", db.parent.parent,
                            "--quiet", wrapper=tuple(NO_DAC)))  # fmt: skip
    assert str(db) in message and fragment in message, message
    assert {p: p.stat().st_mtime_ns for p in runs} == runs


# --- What a search file promises is checked before anything trains ----------------------------


def test_a_grid_of_two_backends_is_refused_before_training(tmp_path):
    text = SEARCH.replace("grid:\n", "grid:\n  - train.backend: [jax]\n", 1)
    with pytest.raises(UserError, match="mixes train.backend values"):
        search.read_search(write(tmp_path, text))


@pytest.mark.parametrize("metric", ["pruned_epoch", "diverged_epoch"])
def test_a_metric_no_completed_trial_records_is_refused(tmp_path, metric):
    text = SEARCH + f"metric: {{name: {metric}, direction: minimize}}\n"
    with pytest.raises(UserError, match="no completed trial would have a value"):
        search.read_search(write(tmp_path, text))


def _counting_validations(monkeypatch) -> list[int]:
    """Count config validations: the work of checking a search file."""
    calls = [0]
    validate = config_lib.validate

    def counted(*args, **kwargs):
        calls[0] += 1
        return validate(*args, **kwargs)

    monkeypatch.setattr(config_lib, "validate", counted)
    return calls


def huge(tmp_path, rates: int, choices: int) -> Path:
    """A search of ``rates`` x 10 seeds cells, each choosing among ``choices`` epsilons."""
    grid = [round(1e-3 * (i + 1), 6) for i in range(rates)]
    options = [round(1e-4 * (i + 1), 6) for i in range(choices)]
    return write(
        tmp_path,
        "name: huge\nconfig: {data.holdout: 100}\n"
        f"grid: {{optimizer.learning_rate: {grid}, seed: {list(range(10))}}}\n"
        f"search: {{optimizer.epsilon: {{choice: {options}}}}}\n",
    )


def test_a_space_too_large_is_refused_before_any_config_is_checked(tmp_path, monkeypatch):
    calls = _counting_validations(monkeypatch)
    with pytest.raises(UserError, match="1000 cells x 1000000 trials"):
        search.read_search(huge(tmp_path, 100, 1000), max_cells=1_000_000, trials=1_000_000)
    assert calls[0] == 0


def test_checking_a_search_costs_its_cells_plus_its_values(tmp_path, monkeypatch):
    """Each cell once, each choice once per optimizer name: never cells x choices."""
    calls = _counting_validations(monkeypatch)
    spec = search.read_search(huge(tmp_path, 100, 1000), max_cells=10_000, trials=1)
    assert len(spec.cells) == 1000
    assert calls[0] == 1000 + 999


def _disk_full_at(size: int):
    """Return a preexec_fn under which files cannot grow past ``size`` bytes (EFBIG, no kill)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_a_disk_that_fills_while_the_study_is_written_is_one_line(tmp_path, mnist_path):
    """SQLite cannot grow tune.db past 16 KiB: one line naming it, exit 2, nothing beside."""
    path = write(tmp_path, SEARCH.replace("config: {", f"config: {{data.path: '{mnist_path}', "))
    command = [sys.executable, "-m", "aeexp", "tune", str(path), "--trials", "2", "--out",
               str(tmp_path / "out"), "--quiet"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          preexec_fn=_disk_full_at(16 << 10))  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "tune.db: the study database failed" in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.yaml"]
