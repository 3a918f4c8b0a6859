"""Output that cannot go out: stdout on a full disk or a closed pipe, a sweep refused early.

Each is one line on stderr and exit code 2, with no traceback, no progress bar left above
it and no folder left behind. Real subprocesses: the interpreter's own flush at exit is part
of what is checked.
"""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading

import pytest

from tests.fakeruns import cell_raw, fake_run

ERROR = "aeexp: error: "


def aeexp(*args, cwd, stdout=None):
    """Run the command line in a subprocess; return it with stderr as text, \r kept."""
    process = subprocess.run(
        [sys.executable, "-m", "aeexp", *args],
        cwd=cwd,
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=300,
    )
    process.stderr = process.stderr.decode(errors="replace")  # text=True would turn \r into \n
    return process


def aeexp_to(stderr, *args, cwd):
    """Run the command line with its stderr on ``stderr`` (a file or a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "aeexp", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        timeout=300,
    )


def aeexp_logged(*args, cwd):
    """Run the command line with stderr to a file, as nohup or a CI job does; return the log."""
    log = cwd / "stderr.log"
    with open(log, "wb") as stderr:
        process = aeexp_to(stderr, *args, cwd=cwd)
    process.stderr = log.read_bytes().decode(errors="replace")
    return process


def aeexp_on_a_terminal(*args, cwd):
    """Run the command line with stderr on a pseudo-terminal; return what it drew there."""
    master, slave = pty.openpty()
    # A terminal of 80 columns: tqdm draws nothing on one that reports a width of 0.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    drawn = []

    def read() -> None:  # drain as it runs: a full pty buffer would block the writer
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO once the last writer has closed it
                return
            if not chunk:
                return
            drawn.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        process = aeexp_to(slave, *args, cwd=cwd)
    finally:
        os.close(slave)
        reader.join(timeout=60)
        os.close(master)
    process.stderr = b"".join(drawn).decode(errors="replace").replace("\r\n", "\n")
    return process


def rendered(stderr):
    """Return the lines a terminal would show: \\r and cursor-up overwrite, as for tqdm."""
    lines, row, col = [[]], 0, 0
    i = 0
    while i < len(stderr):
        if stderr.startswith("\x1b[A", i):
            row, i = max(row - 1, 0), i + 3
            continue
        char = stderr[i]
        i += 1
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
        else:
            lines[row][col : col + 1] = [char]
            col += 1
        while len(lines) <= row:
            lines.append([])
    shown = ["".join(line).rstrip() for line in lines]
    while shown and not shown[-1]:
        shown.pop()
    return shown


def assert_one_line(process, *needles):
    assert process.returncode == 2, process.stderr
    lines = rendered(process.stderr)
    assert len(lines) == 1 and lines[0].startswith(ERROR), process.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder of two fake runs for table and compare."""
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        raw = cell_raw("sigmoid", "mse", "adam", seed=seed)
        fake_run(root, raw, name=f"r{seed}", ssim_thesis=0.8 + seed / 100)
    return root


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    path = folder / "s.yaml"
    path.write_text("name: s\nconfig:\n  data: {train_limit: 1000}\ngrid:\n  seed: [0, 1]\n")
    return path


COMMANDS = {
    "schema": lambda runs, sweep: ["schema"],
    "schema-sweep": lambda runs, sweep: ["schema", "--kind", "sweep"],
    "sweep-dry-run": lambda runs, sweep: ["sweep", str(sweep), "--dry-run", "--out", "o"],
    "table": lambda runs, sweep: ["table", str(runs)],
    "compare": lambda runs, sweep: ["compare", str(runs), str(runs)],
    "env": lambda runs, sweep: ["env"],
    "help": lambda runs, sweep: ["--help"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_stdout_on_a_full_disk_is_one_line(command, runs, sweep_file, tmp_path):
    with open("/dev/full", "w") as full:
        process = aeexp(*COMMANDS[command](runs, sweep_file), cwd=tmp_path, stdout=full)
    assert_one_line(process, "cannot write the output: No space left on device")
    assert "Exception ignored" not in process.stderr
    assert not (tmp_path / "o").exists()


def test_stdout_to_a_closed_pipe_is_one_line(tmp_path):
    reader, writer = os.pipe()
    os.close(reader)  # nobody will read: a write fails with EPIPE
    try:
        process = aeexp("schema", cwd=tmp_path, stdout=writer)
    finally:
        os.close(writer)
    assert_one_line(process, "cannot write the output: Broken pipe")


@pytest.mark.parametrize(
    "batch, why",
    [(60001, "less than or equal to 60000"), (2000, "larger than the 1000 training images")],
    ids=["refused-by-validation", "refused-by-the-data"],
)
def test_a_sweep_refused_before_training_leaves_no_folder_and_no_bar(
    batch, why, sweep_file, mnist_path, tmp_path, monkeypatch
):
    monkeypatch.setenv("AEEXP_DATA", str(mnist_path))
    args = ["sweep", str(sweep_file), "--out", "out", "--set", f"train.batch_size={batch}"]
    process = aeexp(*args, cwd=tmp_path)
    assert_one_line(process, why)  # the run bar had started: it is erased, not left above
    assert not (tmp_path / "out").exists()


def test_rendered_keeps_a_bar_left_above_the_error():
    # The check above can fail: a bar closed without erasing stays on its own line.
    stderr = "\rs:   0%|  | 0/2\rs:   0%|  | 0/2\naeexp: error: boom\n"
    assert rendered(stderr) == ["s:   0%|  | 0/2", "aeexp: error: boom"]
    assert rendered("\rs:   0%|  | 0/2\r" + " " * 20 + "\raeexp: error: boom\n") == [
        "aeexp: error: boom"
    ]


def refused_by_the_data(sweep_file):
    """Return the arguments of a sweep refused once its bar is up: a batch past the data."""
    return ["sweep", str(sweep_file), "--out", "out", "--set", "train.batch_size=2000"]


def test_a_refused_sweep_logged_to_a_file_starts_with_the_error(
    sweep_file, mnist_path, tmp_path, monkeypatch
):
    monkeypatch.setenv("AEEXP_DATA", str(mnist_path))
    process = aeexp_logged(*refused_by_the_data(sweep_file), cwd=tmp_path)
    assert process.returncode == 2, process.stderr
    assert process.stderr.startswith(ERROR) and "\r" not in process.stderr, repr(process.stderr)
    assert process.stderr.count("\n") == 1


def test_a_refused_sweep_on_a_terminal_still_draws_then_erases_its_bar(
    sweep_file, mnist_path, tmp_path, monkeypatch
):
    # The other side of the test above: a terminal keeps its animated bar.
    monkeypatch.setenv("AEEXP_DATA", str(mnist_path))
    process = aeexp_on_a_terminal(*refused_by_the_data(sweep_file), cwd=tmp_path)
    assert "0/2" in process.stderr and "\r" in process.stderr, repr(process.stderr)
    assert_one_line(process, "larger than the 1000 training images")


@pytest.mark.slow  # trains in a real process; test_api's progress tests are the cheap version
@pytest.mark.parametrize(
    "command",
    [["run", "c.yaml"], ["sweep", "s.yaml"]],
    ids=["run", "sweep"],
)
def test_training_logged_to_a_file_writes_lines_not_frames(
    command, mnist_path, tmp_path, monkeypatch
):
    monkeypatch.setenv("AEEXP_DATA", str(mnist_path))
    config = "name: c\ndata: {train_limit: 256, test_limit: 100}\ntrain: {epochs: 2}\n"
    (tmp_path / "c.yaml").write_text(config)
    (tmp_path / "s.yaml").write_text("name: s\nbase: c.yaml\ngrid:\n  seed: [0, 1]\n")
    process = aeexp_logged(*command, "--out", "out", cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    assert "\r" not in process.stderr, repr(process.stderr)
    # The run's epoch bar is erased when it ends: nothing to say. A sweep's bar is kept: its
    # summary is one line.
    expected = [] if command[0] == "run" else ["s: 2/2 runs in"]
    assert [line[: len("s: 2/2 runs in")] for line in process.stderr.splitlines()] == expected
