"""Execution: failure isolation, damaged runs, containment, locks, and resuming after SIGKILL."""

import collections
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import pytest
from click.testing import CliRunner

from aeexp import api, cli
from aeexp.config import sweep as plan
from aeexp.errors import UserError, one_line
from aeexp.execute import driver as execute
from aeexp.execute.executors import JobResult
from aeexp.io import atomic, readers
from aeexp.store import ledger, locks
from aeexp.store import rundir as store

REPO = Path(__file__).resolve().parents[1]


def write_sweep(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def fake_artifacts(cfg, marker="trained"):
    metrics = {"run_id": cfg.run_id, "status": "completed", "by": marker}
    files = {
        store.CONFIG: atomic.encode_yaml(cfg.resolved()).encode(),
        store.METRICS: atomic.encode_json(metrics).encode(),
    }
    return store.RunArtifacts(cfg.run_id, metrics, files)


class FakeExecutor:
    """Trains nothing: ``train(configs)`` returns artifacts or raises, like a real group."""

    workers = 1

    def __init__(self, train=None):
        self.train = train or (lambda configs: [fake_artifacts(c) for c in configs])
        self.queue = deque()
        self.groups = []
        self.started_with = None
        self.cancelled = False

    def start(self, datasets):
        self.started_with = datasets

    def submit(self, job):
        self.queue.append(job)

    def outstanding(self):
        return len(self.queue)

    def next_result(self):
        job = self.queue.popleft()
        self.groups.append([c.run_id for c in job.configs])
        try:
            return JobResult(job, tuple(self.train(job.configs)))
        except Exception as error:
            return JobResult(job, error=one_line(error))

    def shutdown(self, cancel=False):
        self.cancelled = cancel


@pytest.fixture
def no_data(monkeypatch):
    """Skip loading MNIST: these tests train nothing."""

    class NoData:
        def check_batch(self, size):
            pass

    monkeypatch.setattr(execute, "load_dataset", lambda cfg: NoData())


def three_rates(tmp_path, name="g"):
    path = write_sweep(
        tmp_path, f"name: {name}\ngrid: {{optimizer.learning_rate: [0.1, 0.2, 0.3]}}\n"
    )
    return plan.plan_sweep(path, out=str(tmp_path / "out"))


def test_a_crashing_group_is_retrained_run_by_run(tmp_path, no_data):
    planned = three_rates(tmp_path)
    bad = planned.runs[1].run_id

    def train(configs):
        if any(c.run_id == bad for c in configs):
            raise RuntimeError("boom")
        return [fake_artifacts(c) for c in configs]

    fake = FakeExecutor(train)
    outcome = execute.execute(planned, fake, max_group=3)
    assert fake.groups[0] == [r.run_id for r in planned.runs]
    assert sorted(fake.groups[1:]) == sorted([r.run_id] for r in planned.runs)
    assert outcome.problems() == [(bad, "failed")]
    failed = readers.read_json(planned.runs[1].run_dir / store.METRICS)
    assert failed["reason"] == "RuntimeError: boom"
    with open(planned.experiment_dir / ledger.RUNS_CSV) as handle:
        rows = list(csv.DictReader(handle))
    assert [r["status"] for r in rows] == ["completed", "failed", "completed"]


def test_the_ledger_reads_each_run_once_then_keeps_the_results_in_hand(
    tmp_path, no_data, monkeypatch
):
    """runs.csv stays current after every job without re-reading every run after every job."""
    planned = three_rates(tmp_path)
    reads = []
    real_read = store.read_metrics
    monkeypatch.setattr(store, "read_metrics", lambda d: reads.append(d) or real_read(d))
    execute.execute(planned, FakeExecutor(), max_group=1)  # three jobs, runs.csv written 4 times
    # Once when planned, once when claimed (another driver may have finished it since).
    assert len(reads) == 2 * len(planned.runs)
    with open(planned.experiment_dir / ledger.RUNS_CSV) as handle:
        assert [r["status"] for r in csv.DictReader(handle)] == ["completed"] * 3


def test_rerun_failed_retrains_only_failed_runs(tmp_path, no_data):
    planned = three_rates(tmp_path)
    ledger.record_failure(planned.runs[0], "RuntimeError: earlier")
    execute.execute(planned, FakeExecutor(), max_group=3)
    assert ledger.run_status(planned.runs[0]) == "failed"
    fake = FakeExecutor()
    execute.execute(planned, fake, redo=frozenset({"pending", "failed"}))
    assert fake.groups == [[planned.runs[0].run_id]]
    assert ledger.run_status(planned.runs[0]) == "completed"


def test_every_data_setting_loads_once_before_any_group_trains(tmp_path, monkeypatch):
    path = write_sweep(tmp_path, "name: d\ngrid: {data.train_limit: [100, 200], seed: [0, 1]}\n")
    planned = plan.plan_sweep(path, out=str(tmp_path / "out"))
    loads = []

    class Loaded:
        def check_batch(self, size):
            pass

    monkeypatch.setattr(
        execute, "load_dataset", lambda cfg: loads.append(cfg.data.train_limit) or Loaded()
    )
    fake = FakeExecutor()
    execute.execute(planned, fake, max_group=1)
    assert loads == [100, 200] and len(fake.started_with) == 2
    assert len(fake.groups) == 4


@pytest.mark.parametrize(
    ("grid", "expected"),
    [
        ("data.path: ['{data}', '{absent}']", "no such file or directory"),
        ("data.test_limit: [200, 20]", "data.test_limit=20: the thesis SSIM needs"),
        ("train.batch_size: [256, 20000]", "train.batch_size 20000 is larger than the 1000"),
    ],
)
def test_bad_data_anywhere_stops_the_sweep_before_training(tmp_path, mnist_path, grid, expected):
    grid = grid.format(data=mnist_path, absent=tmp_path / "absent.npz")
    config = f"{{data.path: '{mnist_path}', data.train_limit: 1000}}"
    path = write_sweep(tmp_path, f"name: b\nconfig: {config}\ngrid: {{{grid}}}\n")
    planned = plan.plan_sweep(path, out=str(tmp_path / "out"))
    fake = FakeExecutor()
    with pytest.raises(UserError, match=expected):
        execute.execute(planned, fake)
    assert fake.groups == []


def test_cli_sweep_failure_exits_1_naming_the_run(tmp_path, monkeypatch, no_data):
    planned = three_rates(tmp_path, "f")
    bad = planned.runs[1].run_id

    def train(configs):
        if any(c.run_id == bad for c in configs):
            raise RuntimeError("boom")
        return [fake_artifacts(c) for c in configs]

    monkeypatch.setattr("aeexp.api.ExecutorOptions.make", lambda self: FakeExecutor(train))
    path = tmp_path / "s.yaml"
    result = CliRunner().invoke(cli.main, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert f"{bad} (failed)" in result.output
    assert "3 runs (3 trained now, 0 already complete)" in result.output


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "log"])
def test_progress_counts_runs_from_those_already_complete(
    terminal, tmp_path, monkeypatch, no_data, capsys
):
    monkeypatch.setattr("aeexp.api.ExecutorOptions.make", lambda self: FakeExecutor())
    monkeypatch.setattr("aeexp.execute.progress._animated", lambda: terminal)  # capsys's is no tty
    planned = three_rates(tmp_path, "bar")
    quiet = api.sweep(tmp_path / "s.yaml", out=str(tmp_path / "out"))
    assert len(quiet.trained) == 3 and capsys.readouterr().err == ""
    shutil.rmtree(planned.runs[2].run_dir)
    shown = api.sweep(tmp_path / "s.yaml", out=str(tmp_path / "out"), progress=True)
    assert shown.trained == [planned.runs[2].run_id]
    bar = capsys.readouterr().err
    if terminal:
        assert "bar:  67%" in bar and "2/3" in bar and "3/3" in bar
    else:  # one line at the end, counting the two runs complete before
        assert re.fullmatch(r"bar: 3/3 runs in \d\d:\d\d\n", bar), bar
    assert shown.summary().endswith("3 runs (1 trained now, 2 already complete)")


def test_a_damaged_run_is_moved_aside_and_retrained(tmp_path, no_data):
    planned = three_rates(tmp_path)
    execute.execute(planned, FakeExecutor())
    damaged = planned.runs[0].run_dir
    (damaged / store.METRICS).write_text("{not json")
    (planned.runs[1].run_dir / store.METRICS).write_text("")
    assert [ledger.run_status(r) for r in planned.runs] == ["pending", "pending", "completed"]
    fake = FakeExecutor()
    outcome = execute.execute(planned, fake)
    assert sorted(fake.groups[0]) == sorted(r.run_id for r in planned.runs[:2])
    assert len(outcome.moved_aside) == 2
    kept = outcome.moved_aside[0]
    assert kept.parent == planned.experiment_dir / store.DAMAGED
    assert (kept / store.METRICS).read_text() in ("{not json", "")
    assert [ledger.run_status(r) for r in planned.runs] == ["completed"] * 3


def test_a_user_folder_that_looks_like_staging_is_never_deleted(tmp_path, no_data):
    planned = three_rates(tmp_path)
    experiment = planned.experiment_dir
    experiment.mkdir(parents=True)
    mine = experiment / ".tmp-notes"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    lookalike = experiment / ".tmp-0123456789-host-notapid"
    lookalike.mkdir()
    # What a killed driver on this host leaves behind: our naming, a dead pid.
    stale = experiment / store.staging_name("abcdef0123").replace(str(os.getpid()), "999999999")
    stale = experiment / stale
    stale.mkdir()
    execute.execute(planned, FakeExecutor())
    assert (mine / "keep.txt").read_text() == "mine" and lookalike.is_dir()
    assert not stale.exists()


def test_staging_of_a_live_process_is_left_alone(tmp_path):
    experiment = tmp_path / "out" / "x"
    experiment.mkdir(parents=True)
    live = experiment / store.staging_name("abcdef0123")  # this very process
    live.mkdir()
    assert store.remove_stale_staging(experiment) == []
    assert live.is_dir()


def test_paths_outside_the_output_folder_are_refused(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    for path in (tmp_path / "elsewhere", root, root / ".." / "x", root / "a" / ".." / ".."):
        with pytest.raises(UserError, match="outside the output folder"):
            store.check_inside(root, path)
    assert store.check_inside(root, root / "a" / "b") == (root / "a" / "b").resolve()
    link = root / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(UserError, match="outside"):
        store.check_inside(root, link / "run")


def test_run_files_share_the_umask_mode_and_metrics_come_last(tmp_path):
    old = os.umask(0o022)
    try:
        run_dir = tmp_path / "out" / "x" / "abcdef0123"
        files = {store.METRICS: b"{}", store.CONFIG: b"a: 1\n", store.LOSS_PLOT: b"png"}
        store.write_run_files(run_dir, files, tmp_path / "out")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in run_dir.iterdir()}
    assert set(modes.values()) == {0o644}, modes
    atomic.write_text_atomic(tmp_path / "out" / "runs.csv", "a\n")
    assert (tmp_path / "out" / "runs.csv").stat().st_mode & 0o777 == 0o644


def test_two_drivers_never_train_a_run_twice(tmp_path, no_data):
    """Overlapping grids run at once on one folder: every run trained once, rows kept."""
    first = write_sweep(
        tmp_path, "name: c\ngrid: {optimizer.learning_rate: [0.1, 0.2, 0.3, 0.4]}\n", "a.yaml"
    )
    second = write_sweep(
        tmp_path, "name: c\ngrid: {optimizer.learning_rate: [0.3, 0.4, 0.5, 0.6]}\n", "b.yaml"
    )
    plans = [plan.plan_sweep(p, out=str(tmp_path / "out")) for p in (first, second)]
    trained, lock = [], threading.Lock()

    def slow_train(configs):
        with lock:
            trained.extend(c.run_id for c in configs)
        time.sleep(0.2)
        return [fake_artifacts(c) for c in configs]

    errors = []

    def drive(planned):
        try:
            execute.execute(planned, FakeExecutor(slow_train), max_group=1)
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=drive, args=(p,)) for p in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    everything = {r.run_id for p in plans for r in p.runs}
    assert sorted(trained) == sorted(everything)  # six runs, each once
    with open(plans[0].experiment_dir / ledger.RUNS_CSV) as handle:
        rows = [r["run_id"] for r in csv.DictReader(handle)]
    assert sorted(rows) == sorted(everything)


def test_a_run_cli_failure_is_recorded_and_exits_1(tmp_path, monkeypatch, no_data):
    config = tmp_path / "c.yaml"
    config.write_text("name: one\n")

    def crash(configs):
        raise RuntimeError("kaput")

    monkeypatch.setattr("aeexp.api.ExecutorOptions.make", lambda self: FakeExecutor(crash))
    result = CliRunner().invoke(cli.main, ["run", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "status failed" in result.output
    (run_dir,) = run_dirs(tmp_path / "out" / "one")
    assert json.loads((run_dir / store.METRICS).read_text())["reason"] == "RuntimeError: kaput"


TWELVE = """
name: twelve
config: {{data.path: {data}, data.train_limit: 512, data.test_limit: 200, train.epochs: 2}}
grid:
  loss.name: [mse, i_div1, i_div2]
  model.decoder_activation: [relu, sigmoid]
  seed: [0, 1]
"""


def sweep_command(path, out):
    return [
        sys.executable,
        "-m",
        "aeexp",
        "sweep",
        str(path),
        "--out",
        str(out),
        "--max-group",
        "2",
        "--quiet",
    ]


def run_dirs(experiment):
    return [p for p in experiment.iterdir() if p.is_dir() and not p.name.startswith(".")]


def complete_dirs(experiment):
    return sorted(p for p in experiment.iterdir() if p.is_dir() and store.is_complete(p))


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory, mnist_path):
    """Run a 12-run sweep, SIGKILL it midway, run it again to the end."""
    tmp = tmp_path_factory.mktemp("sigkill")
    path = write_sweep(tmp, TWELVE.format(data=mnist_path))
    out = tmp / "out"
    experiment = out / "twelve"
    process = subprocess.Popen(
        sweep_command(path, out),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if experiment.is_dir() and len(complete_dirs(experiment)) >= 4:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = {p.name: (p / store.METRICS).read_text() for p in complete_dirs(experiment)}
    resumed = subprocess.run(sweep_command(path, out), capture_output=True, text=True, timeout=600)
    return path, out, experiment, before, resumed


@pytest.mark.slow  # a real 12-run sweep, killed and resumed (~20 s)
def test_sigkilled_sweep_resumes_without_loss_or_repeats(killed_and_resumed):
    path, out, experiment, before, resumed = killed_and_resumed
    assert 0 < len(before) < 12, "the kill should land midway"
    assert resumed.returncode == 0, resumed.stderr
    done = complete_dirs(experiment)
    assert len(done) == 12
    for name, text in before.items():  # Runs finished before the kill were not redone.
        assert (experiment / name / store.METRICS).read_text() == text
    assert not [p for p in experiment.iterdir() if p.name.startswith(".tmp-")]
    with open(experiment / ledger.RUNS_CSV) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and {r["status"] for r in rows} == {"completed"}
    assert {r["run_id"] for r in rows} == {p.name for p in done}
    assert f"{12 - len(before)} trained now" in resumed.stdout

    again = subprocess.run(sweep_command(path, out), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "0 trained now, 12 already complete" in again.stdout


@pytest.mark.slow  # shares the killed sweep above
def test_table_thesis_layout_and_comparison(killed_and_resumed):
    _, _, experiment, _, _ = killed_and_resumed
    result = CliRunner().invoke(cli.main, ["table", str(experiment)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "| decoder | MSE | E_I1 | E_I2 |"
    assert lines[2].startswith("| ReLU-ReLU |") and lines[3].startswith("| ReLU-Sigmoid |")
    assert "(2) Adam" in lines[2]
    compared = CliRunner().invoke(cli.main, ["table", str(experiment), "--compare", "thesis"])
    assert "0.795 Adagrad" in compared.output and "0.880 Nadam" in compared.output
    as_csv = CliRunner().invoke(
        cli.main, ["table", str(experiment), "--format", "csv", "--metric", "ssim_mean"]
    )
    assert as_csv.output.splitlines()[0].startswith("decoder,loss,optimizer")
    assert len(as_csv.output.strip().splitlines()) == 7


@pytest.mark.slow  # shares the killed sweep above, a real process killed mid-run
def test_table_figures(killed_and_resumed, tmp_path):
    _, _, experiment, _, _ = killed_and_resumed
    result = CliRunner().invoke(cli.main, ["table", str(experiment), "--figures", str(tmp_path)])
    assert result.exit_code == 0
    for name in ("ssim_thesis_bars.png", "ssim_thesis_best_loss_histories.png"):
        assert (tmp_path / name).stat().st_size > 10_000


@pytest.mark.slow  # shares the killed sweep above
def test_table_mean_and_std_are_over_seeds(killed_and_resumed):
    import numpy as np

    from aeexp.analysis import tables

    _, _, experiment, _, _ = killed_and_resumed
    runs = store.load_runs(experiment)
    chosen = tables.cells(runs, "ssim_mean")
    stat = chosen[("ReLU-Sigmoid", "mse")]
    values = [
        json.loads((r.path / store.METRICS).read_text())["ssim_mean"]
        for r in runs
        if r.config.loss.name == "mse" and r.config.model.decoder_activation == "sigmoid"
    ]
    assert stat.n == 2
    assert stat.mean == pytest.approx(np.mean(values))
    assert stat.std == pytest.approx(np.std(values, ddof=1))


def count_metrics_reads(monkeypatch) -> collections.Counter:
    """Count the reads of each run's metrics.json from here on, by run id."""
    reads: collections.Counter = collections.Counter()
    original = store.read_metrics

    def counted(run_dir):
        reads[Path(run_dir).name] += 1
        return original(run_dir)

    monkeypatch.setattr(store, "read_metrics", counted)
    return reads


def test_aeexp_run_reads_its_metrics_once_and_once_more_under_the_lock(
    tmp_path, monkeypatch, no_data
):
    """One read per fact: the status before, the re-check under the run's lock, none after."""
    monkeypatch.setattr("aeexp.api.ExecutorOptions.make", lambda self: FakeExecutor())
    reads = count_metrics_reads(monkeypatch)
    first = api.run({"name": "once"}, out=str(tmp_path))
    assert first.trained_now and first.status == "completed"
    assert reads == {first.run_dir.name: 2}
    reads.clear()
    again = api.run({"name": "once"}, out=str(tmp_path))
    assert not again.trained_now and again.metrics == first.metrics
    assert reads == {first.run_dir.name: 1}


# --- Run-directory writes and the ledger, case by case (issue 29's mutation gaps) -----------


def test_an_old_staging_folder_of_a_dead_driver_is_removed_and_returned(tmp_path, monkeypatch):
    """--force's ``.tmp-old-<id>-...`` is aeexp's naming too: the cleanup must recognize it."""
    experiment = tmp_path / "out" / "x"
    experiment.mkdir(parents=True)
    old = experiment / store.staging_name("abcdef0123", old=True)
    old.mkdir()
    monkeypatch.setattr(store, "pid_alive", lambda pid: False)  # its writer is gone
    # And runs.csv's temporary file, its writer killed mid-write (a dead pid, this host).
    temp = experiment / f".tmp-file-999999999-{atomic.HOST_TAG}-{'0' * 32}-runs.csv"
    temp.write_text("a\n")
    assert sorted(store.remove_stale_staging(experiment)) == sorted([old, temp])
    assert not old.exists() and not temp.exists()


def test_stale_staging_whose_run_lock_is_held_is_left_alone(tmp_path, monkeypatch):
    """A driver holding the run's lock (on another host, say) may be renaming it into place."""
    experiment = tmp_path / "out" / "x"
    experiment.mkdir(parents=True)
    staging = experiment / store.staging_name("abcdef0123")
    staging.mkdir()
    monkeypatch.setattr(store, "pid_alive", lambda pid: False)
    with locks.run_lock(experiment, "abcdef0123"):
        assert store.remove_stale_staging(experiment) == []
    assert staging.is_dir()
    assert store.remove_stale_staging(experiment) == [staging]


def test_metrics_json_is_written_after_every_other_run_file(tmp_path, monkeypatch):
    """A run counts as complete once its metrics.json parses: the rest must be on disk first.

    model.keras sorts after metrics.json by name: only the writer's own order puts it before.
    """
    written = []
    real = store.write_new

    def write_new(path, data):
        written.append(path.name)
        real(path, data)

    monkeypatch.setattr(store, "write_new", write_new)
    files = {store.CONFIG: b"a: 1\n", store.METRICS: b"{}", store.MODEL: b"zip", "tb/events": b"e"}
    store.write_run_files(tmp_path / "out" / "x" / "abcdef0123", files, tmp_path / "out")
    assert written[-1] == store.METRICS
    assert sorted(written) == sorted(Path(name).name for name in files)


@pytest.mark.parametrize("name", [".hidden", "tb/.events", "../escape", "a/b/c"])
def test_a_run_file_name_that_is_hidden_or_climbs_out_is_refused(tmp_path, name):
    root = tmp_path / "out"
    run_dir = root / "x" / "abcdef0123"
    with pytest.raises(ValueError, match="is not a file or folder/file name"):
        store.write_run_files(run_dir, {store.CONFIG: b"a: 1\n", name: b"x"}, root)
    assert not run_dir.exists() and not (root / "x" / "escape").exists()
    assert [p.name for p in (root / "x").iterdir()] == []  # the staging folder is gone too


def test_a_refused_command_removes_the_folders_it_made_and_only_those(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    (root / "kept").mkdir()
    for folder, top in ((root / "a" / "b", root), (tmp_path / "c" / "d", None)):
        with pytest.raises(UserError), store.created_folders_undone(folder, top):
            store.ensure_writable(folder)
            raise UserError("refused after making the folder")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept", "out"]
    outside = tmp_path / "elsewhere" / "e"  # not under the root: never counted as made here
    with pytest.raises(UserError), store.created_folders_undone(outside, root):
        store.ensure_writable(outside)
        raise UserError("refused")
    assert outside.is_dir()


def test_a_ledger_given_a_runs_metrics_does_not_read_them_again(tmp_path, monkeypatch):
    planned = three_rates(tmp_path)
    first, *others = (r.run_id for r in planned.runs)
    reads = count_metrics_reads(monkeypatch)
    book = ledger.Ledger(planned, {first: {"run_id": first, "status": "completed"}})
    assert reads == dict.fromkeys(others, 1)  # the known run has no folder: read, it is pending
    assert book.statuses() == {first: "completed"} | dict.fromkeys(others, "pending")


def test_a_failure_record_is_held_inside_the_output_folder_too(tmp_path):
    """As a trained run's files are: an experiment folder linked elsewhere is refused."""
    planned = three_rates(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    planned.experiment_dir.parent.mkdir(parents=True)
    planned.experiment_dir.symlink_to(elsewhere)
    with pytest.raises(UserError, match="refusing to write outside the output folder"):
        ledger.record_failure(planned.runs[0], "RuntimeError: boom")
    assert list(elsewhere.iterdir()) == []
