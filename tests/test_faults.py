"""A faulty machine: a full disk mid-run, outputs under a file: one line, exit 2, no debris."""

import errno
import os
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner
from test_execute import FakeExecutor, no_data, three_rates  # noqa: F401 (a fixture)

from aeexp import cli
from aeexp.errors import UserError
from aeexp.execute import driver as execute
from aeexp.store import locks
from tests.fakeruns import cell_raw, fake_run


def one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aeexp: error: "), lines
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "existing-folder"])
def test_a_full_disk_while_a_run_is_written_leaves_nothing_behind(tmp_path, monkeypatch, existing):
    from tests.test_execute import FakeExecutor

    config = tmp_path / "c.yaml"
    config.write_text("name: full\n")
    experiment = tmp_path / "out" / "full"
    if existing:  # kept, as it was; else made by the run and removed with it
        experiment.mkdir(parents=True)
    synced = []
    real_fsync = os.fsync

    def fill_up(fd):
        # The disk fills after the first file is flushed: ext4 and XFS report a full disk
        # at fsync, when delayed allocation finally asks for the blocks.
        if synced:
            raise OSError(errno.ENOSPC, "No space left on device")
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fill_up)
    monkeypatch.setattr("aeexp.execute.driver.load_dataset", lambda cfg: _NoData())
    monkeypatch.setattr("aeexp.api.ExecutorOptions.make", lambda self: FakeExecutor())
    result = CliRunner().invoke(cli.main, ["run", str(config), "--out", str(tmp_path / "out")])
    one_line_error(result, "No space left on device")
    if existing:
        assert list(experiment.iterdir()) == []  # no run, no staging, no .locks
    else:
        assert not (tmp_path / "out").exists()


def test_a_sweep_that_ends_leaves_no_lock_files(tmp_path, monkeypatch):
    from tests.test_execute import FakeExecutor

    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: g\ngrid:\n  seed: [0, 1]\n")
    monkeypatch.setattr("aeexp.execute.driver.load_dataset", lambda cfg: _NoData())
    monkeypatch.setattr("aeexp.api.ExecutorOptions.make", lambda self: FakeExecutor())
    for _ in range(2):  # training, then finding every run complete
        result = CliRunner().invoke(cli.main, ["sweep", str(sweep), "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert not (tmp_path / "g" / locks.LOCKS).exists()


def test_a_lock_another_process_holds_is_never_removed(tmp_path):
    folder = tmp_path / locks.LOCKS
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(folder / "0123456789.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        locks.run_lock(tmp_path, "abcdefabcd").acquire()  # free: released below, then removed
        locks.run_lock(tmp_path, "abcdefabcd").release()
        locks.remove_lock_files(tmp_path)
        assert sorted(p.name for p in folder.iterdir()) == ["0123456789.lock", "notes.txt"]
    finally:
        holder.kill()
        holder.wait()
    locks.remove_lock_files(tmp_path)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]  # a user's file keeps the folder


HOLD_LOCK = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1], timeout=0)
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_driver_waiting_on_a_lock_survives_its_folder_being_removed(tmp_path):
    holder = locks.run_lock(tmp_path, "0123456789")
    holder.acquire()
    waited = []

    def wait():  # as _Claims.wait_for does, here with a deadline rather than forever
        lock = locks.run_lock(tmp_path, "0123456789")
        lock.acquire(timeout=10)
        waited.append(lock.is_locked)
        lock.release()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)  # the waiter polls
    holder.release()
    locks.remove_lock_files(tmp_path)  # may run before the waiter's next poll
    waiter.join(15)
    assert waited == [True]


class _NoData:
    def check_batch(self, size):
        pass


def test_table_figures_under_a_file_is_one_line(tmp_path):
    fake_run(tmp_path / "runs", cell_raw("sigmoid", "mse", "adam"), ssim_thesis=0.8, history=True)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = CliRunner().invoke(
        cli.main, ["table", str(tmp_path / "runs"), "--figures", str(blocker / "figs")]
    )
    one_line_error(result, "a-file")


def test_select_out_under_a_file_is_one_line(tmp_path):
    for rate in (0.001, 0.002):
        raw = cell_raw("sigmoid", "mse", "adam", learning_rate=rate)
        fake_run(tmp_path / "tune", {**raw, "data": {"holdout": 10000}}, ssim_mean=rate * 100)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = CliRunner().invoke(
        cli.main,
        ["select", str(tmp_path / "tune"), "--name", "final", "--out", str(blocker / "s.yaml")],
    )
    one_line_error(result, "a-file")
    assert blocker.read_text() == ""


@pytest.mark.parametrize("target", ["report thesis", "report beta"])
def test_a_report_under_a_file_is_one_line(tmp_path, target):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    runs = tmp_path / "runs"
    fake_run(runs, cell_raw("sigmoid", "mse", "adam"), ssim_thesis=0.8)
    args = [*target.split(), str(runs), str(runs), "--out", str(blocker / "report")]
    one_line_error(CliRunner().invoke(cli.main, args), "a-file")


def test_a_killed_writers_temporary_file_is_removed_on_resume(tmp_path):
    """runs.csv is written through a temporary file; a SIGKILL mid-write leaves it behind."""
    import subprocess
    import sys

    from aeexp.io import atomic
    from aeexp.store import rundir as store

    atomic.write_text_atomic(tmp_path / "runs.csv", "run_id\n")  # learn the naming
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    tag = atomic.HOST_TAG
    stale = tmp_path / f".tmp-file-{dead}-{tag}-{'0' * 32}-runs.csv"
    live = tmp_path / f".tmp-file-{os.getpid()}-{tag}-{'1' * 32}-runs.csv"
    mine = tmp_path / ".tmp-notes"
    for path in (stale, live, mine):
        path.write_text("x")
    assert store.remove_stale_staging(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and mine.exists()


def _folder_where_the_lock_goes(experiment):
    (experiment / locks.LOCKS / "runs.csv.lock").mkdir(parents=True)
    return "runs.csv.lock", "Is a directory"


def _file_where_the_lock_folder_goes(experiment):
    experiment.mkdir(parents=True)
    (experiment / locks.LOCKS).write_text("mine")
    return locks.LOCKS, "File exists"


def _symlink_where_the_lock_goes(experiment):
    (experiment / locks.LOCKS).mkdir(parents=True)
    (experiment / locks.LOCKS / "runs.csv.lock").symlink_to(experiment.parent / "victim")
    return "runs.csv.lock", "a symbolic link"


@pytest.mark.parametrize(
    "obstacle",
    [_folder_where_the_lock_goes, _file_where_the_lock_folder_goes, _symlink_where_the_lock_goes],
)
@pytest.mark.usefixtures("no_data")
def test_something_in_a_locks_way_is_one_line_before_training(tmp_path, obstacle):
    """Not a traceback after training: the lock runs.csv is written under is tried first."""
    planned = three_rates(tmp_path)
    name, reason = obstacle(planned.experiment_dir)
    executor = FakeExecutor()
    with pytest.raises(UserError, match=reason) as caught:
        execute.execute(planned, executor)
    assert name in str(caught.value) and "\n" not in str(caught.value)
    assert executor.groups == [], "trained before the lock was found unusable"
    assert not (tmp_path / "victim").exists()


@pytest.mark.parametrize("kind", ["folder", "symlink"])
def test_something_in_the_study_locks_way_is_one_line(tmp_path, kind):
    experiment = tmp_path / "exp"
    experiment.mkdir()
    if kind == "folder":
        (experiment / locks.TUNE_LOCK).mkdir()
    else:
        (experiment / locks.TUNE_LOCK).symlink_to(tmp_path / "victim")
    with pytest.raises(UserError, match="cannot take aeexp's lock here"):
        locks.study_lock(experiment).acquire()
    assert not (tmp_path / "victim").exists()
