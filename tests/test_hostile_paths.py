"""Hostile files and paths, round 3: bounded readers, checked path arguments, no hang.

Each CLI case runs ``python -m aeexp`` in a subprocess under the address-space limit of
test_hostile_input (a reader that believed a 4 GiB file would hit it) and a timeout (a FIFO
opened for reading would hang). Permission cases run as root too: the subprocess drops
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its bounding set through ``setpriv``.
"""

import json
import os
import shutil
import tracemalloc
from pathlib import Path

import pytest
from fakeruns import fake_run
from test_hostile_input import launch, snapshot

from aeexp import api
from aeexp.errors import UserError
from aeexp.io import paths, readers
from aeexp.store import rundir as store

# Address space for commands that import pandas and SciPy (SciPy.stats maps ~2 GB at import):
# a reader that believed a 4 GiB file would still hit it.
MEMORY_LIMIT = 3 << 30
RAW = {"loss": {"name": "mse"}, "train": {"epochs": 1}}
# Without these two capabilities root is held to file modes like any user.
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def cli(
    tmp_path: Path,
    *args: str,
    wrapper: tuple[str, ...] = (),
    keras_home: Path | None = None,
    bounded: bool = True,
) -> tuple[int, str, str]:
    """Run the CLI bounded; assert no traceback and nothing written beside tmp_path."""
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    mine = tmp_path.name

    def beside() -> set[str]:
        return {p for p in snapshot(tmp_path.parent) if p.split("/")[0] != mine}

    before = beside()
    # Keras writes keras.json into its home when it is first imported: training's cost.
    # Training needs TensorFlow's thread stacks: no address-space cap for it.
    memory = MEMORY_LIMIT if bounded else None
    result = launch(cwd, args, keras_home or cwd, memory, wrapper)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert beside() == before
    assert not any(cwd.iterdir()), list(cwd.iterdir())
    return result.returncode, result.stdout, result.stderr


def one_error(result: tuple[int, str, str]) -> str:
    """Return the message of a one-line, exit-2 error."""
    code, _, stderr = result
    lines = stderr.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("aeexp: error: "), stderr
    return lines[0].removeprefix("aeexp: error: ")


@pytest.fixture
def runs(tmp_path):
    """An output folder with one good run and the folder of its experiment."""
    cfg = fake_run(tmp_path / "runs", RAW, name="exp", ssim_mean=0.5, ssim_thesis=0.4)
    return cfg


def damaged(tmp_path: Path, content: str | None = None, sparse: int = 0, seed: int = 7) -> Path:
    """Write another run of experiment ``exp`` whose metrics.json is ``content`` (or sparse)."""
    cfg = fake_run(tmp_path / "runs", {**RAW, "seed": seed}, name="exp", ssim_mean=0.6)
    metrics = cfg.experiment_dir / cfg.run_id / store.METRICS
    metrics.unlink()
    if sparse:
        with open(metrics, "wb") as handle:
            handle.truncate(sparse)  # a 4 GiB hole: no disk used, but read() would fill it
    else:
        metrics.write_text(content or "")
    return metrics.parent


DEEP = "[" * 100_000 + "]" * 100_000
# Each damage, as one run of the experiment: a 4 GiB sparse file, JSON nested 100,000 deep,
# an empty object, an unknown status, a list.
DAMAGES = (None, DEEP, "{}", '{"status": "done"}', "[1, 2]")


def test_a_damaged_metrics_json_is_skipped_with_bounded_memory(tmp_path, runs):
    """One process reads every damage at once, under the memory cap: one line for each."""
    bad = [
        damaged(tmp_path, content, sparse=0 if content else 4 << 30, seed=7 + number)
        for number, content in enumerate(DAMAGES)
    ]
    assert all(store.read_metrics(run) is None for run in bad)  # pending: retrained later
    code, out, err = cli(tmp_path, "table", tmp_path / "runs" / "exp", "--metric", "ssim_mean")
    assert code == 0 and "0.500" in out
    lines = err.splitlines()
    assert len(lines) == len(bad) and all(any(f"skipping {b}" in x for x in lines) for b in bad)
    code, out, err = cli(tmp_path, "compare", tmp_path / "runs", tmp_path / "runs" / "exp")
    assert code == 0 and all(f"skipping {b}" in err for b in bad)


def test_a_sparse_metrics_json_costs_only_its_cap(tmp_path, runs):
    bad = damaged(tmp_path, sparse=4 << 30)
    tracemalloc.start()
    try:
        assert store.read_metrics(bad) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * readers.MAX_METRICS_BYTES


def sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text("name: exp\nconfig: {train.epochs: 1}\ngrid: {seed: [0, 7]}\n")
    return path


def test_dry_run_reads_a_sparse_metrics_json_as_pending(tmp_path):
    planned = api.plan(sweep_file(tmp_path), out=str(tmp_path / "runs"))
    run_dir = planned.runs[0].run_dir
    run_dir.mkdir(parents=True)
    with open(run_dir / store.METRICS, "wb") as handle:
        handle.truncate(4 << 30)
    args = ("sweep", sweep_file(tmp_path), "--out", tmp_path / "runs", "--dry-run")
    code, out, _ = cli(tmp_path, *args)
    assert code == 0 and f"{planned.runs[0].run_id}  pending" in out
    assert "2 runs: 0 done, 2 to train" in out


def test_an_empty_metrics_object_is_not_a_complete_run(tmp_path):
    assert store.metrics_problem({}) == "metrics.json is an empty object"
    assert store.metrics_problem({"status": "done"}).startswith("metrics.json has an unknown")
    assert store.metrics_problem({"status": "diverged"}) is None
    headline = api.RunResult(tmp_path, {"status": "completed", "ssim_mean": 0.5}, False).headline
    assert "ssim_mean 0.500" in headline and "ssim_thesis ?" in headline


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: Path("/dev/zero"), "/dev/zero: not a regular file"),
        (lambda p: (os.mkfifo(p / "fifo"), p / "fifo")[1], "fifo: not a regular file"),
        (lambda p: _write(p / "bin.yaml", b"# a\n\0\0"), "binary file, not YAML text"),
        (lambda p: _write(p / "latin.yaml", b"# caf\xe9\n"), "not UTF-8 text (byte 0xe9"),
        (lambda p: _write(p / "big.yaml", b"#" * (2 << 20)), "larger than 1 MiB"),
    ],
    ids=["/dev/zero", "fifo", "binary", "latin-1", "2 MiB"],
)
def test_select_tune_sweep_is_read_bounded(tmp_path, make, fragment):
    fake_run(tmp_path / "runs", {**RAW, "data": {"holdout": 1000}}, name="exp", ssim_mean=0.5)
    tune = make(tmp_path)
    args = ("select", tmp_path / "runs" / "exp", "--name", "final", "--out", tmp_path / "o.yaml")
    message = one_error(cli(tmp_path, *args, "--tune-sweep", tune))
    assert fragment in message


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


LONG = "n" * 300


@pytest.mark.parametrize(
    "args",
    [
        ("table", "{tmp}/" + LONG),
        ("select", "{tmp}/" + LONG, "--name", "x", "--out", "{tmp}/o.yaml"),
        ("select", "{tmp}/runs/exp", "--name", "x", "--out", "{tmp}/" + LONG),
        ("report", "beta", "{tmp}/" + LONG, "{tmp}/runs"),
        ("report", "thesis", "{tmp}/runs", "{tmp}/runs", "--out", "{tmp}/" + LONG),
        ("run", "{tmp}/c.yaml", "--out", "{tmp}/" + LONG),
        ("table", "{tmp}/runs/exp", "--figures", "{tmp}/" + LONG),
    ],
)
def test_a_name_too_long_for_the_filesystem_is_one_line(tmp_path, runs, args):
    (tmp_path / "c.yaml").write_text("train: {epochs: 1}\n")
    message = one_error(cli(tmp_path, *(a.format(tmp=tmp_path) for a in args)))
    assert "file name too long" in message


def test_compare_with_a_filter_too_long_for_a_path(tmp_path, runs):
    spec = "loss.name=" + "m" * 5000
    message = one_error(cli(tmp_path, "compare", spec, "loss.name=mse", "--root", tmp_path))
    assert message.startswith("compare: no run under the root matches")


def test_load_runs_on_a_name_too_long(tmp_path):
    with pytest.raises(UserError, match="file name too long"):
        api.load_runs(tmp_path / LONG)


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "no folder"])
def test_select_out_never_replaces_what_is_not_a_regular_file(tmp_path, runs, kind):
    target = tmp_path / "target"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        target.symlink_to("/dev/null")  # were it replaced, only this link would go
    elif kind == "folder":
        target.mkdir()
    else:
        target = tmp_path / "absent" / "o.yaml"
    args = ("select", tmp_path / "runs" / "exp", "--name", "final", "--out", target)
    message = one_error(cli(tmp_path, *args))
    assert "not a regular file" in message or "folder" in message
    if kind == "device":
        assert target.is_symlink() and Path("/dev/null").is_char_device()
    with pytest.raises(UserError):
        paths.output_file(target)


@pytest.mark.parametrize(
    "args",
    [
        ("run", "{tmp}/c.yaml", "--out", "{loop}"),
        ("run", "{tmp}/c.yaml", "--out", "{loop}/deeper"),
        ("report", "thesis", "{tmp}/runs", "{tmp}/runs", "--out", "{loop}"),
        ("table", "{tmp}/runs/exp", "--figures", "{loop}"),
        ("select", "{tmp}/runs/exp", "--name", "x", "--out", "{loop}"),
        ("table", "{loop}"),
    ],
)
def test_a_symlink_loop_is_one_line(tmp_path, runs, args):
    (tmp_path / "c.yaml").write_text("train: {epochs: 1}\n")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    message = one_error(cli(tmp_path, *(a.format(tmp=tmp_path, loop=loop) for a in args)))
    assert "symlink loop" in message


needs_setpriv = pytest.mark.skipif(
    shutil.which("setpriv") is None, reason="setpriv drops root's file-permission override"
)


def locked(folder: Path) -> None:
    folder.chmod(0)


@needs_setpriv
def test_table_on_a_folder_it_cannot_read(tmp_path, runs):
    folder = tmp_path / "runs" / "exp"
    locked(folder)
    try:
        message = one_error(cli(tmp_path, "table", folder, wrapper=NO_DAC))
    finally:
        folder.chmod(0o755)
    assert message.endswith(f"{folder}: permission denied")


@needs_setpriv
def test_a_run_folder_it_cannot_read_is_named_not_silently_skipped(tmp_path, runs):
    other = fake_run(tmp_path / "runs", {**RAW, "seed": 3}, name="exp", ssim_mean=0.7)
    hidden = other.experiment_dir / other.run_id
    locked(hidden)
    try:
        code, out, err = cli(
            tmp_path, "table", tmp_path / "runs", "--metric", "ssim_mean", wrapper=NO_DAC
        )
    finally:
        hidden.chmod(0o755)
    assert code == 0 and "0.500" in out
    assert f"skipping {hidden}: Permission denied" in err


@needs_setpriv
def test_dry_run_on_a_folder_it_cannot_read_says_so(tmp_path):
    planned = api.plan(sweep_file(tmp_path), out=str(tmp_path / "runs"))
    experiment = planned.runs[0].run_dir.parent
    experiment.mkdir(parents=True)
    locked(experiment)
    try:
        args = ("sweep", sweep_file(tmp_path), "--out", tmp_path / "runs", "--dry-run")
        message = one_error(cli(tmp_path, *args, wrapper=NO_DAC))
    finally:
        experiment.chmod(0o755)
    assert message.endswith("permission denied"), message


def test_json_nested_past_the_parser_is_refused_in_one_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text(DEEP)
    with pytest.raises(UserError, match="JSON nested too deeply"):
        readers.read_json(path)
    path.write_text(json.dumps({"a": 1}))
    assert readers.read_json(path) == {"a": 1}


# --- Round 3, second pass: what an adversarial review found after the first fixes ----------


@pytest.mark.parametrize(
    "args",
    [
        ("--mlflow", "http://a..b:5000"),
        ("--mlflow", f"http://{'a' * 64}.example:5000"),
        ("--executor", "ray", "--address", "a..b:1"),
        ("--executor", "ray", "--address", ""),
        ("--executor", "ray", "--address", "a\nb:1"),
        ("--out", ""),
        ("--set", "a." * 1000 + "b=1"),
        ("--set", "data.path=''"),
        ("--seed", "9" * 5000),
    ],
    ids=[
        "empty IDNA label",
        "IDNA label over 63",
        "ray host a..b",
        "empty address",
        "newline in address",
        "empty --out",
        "1,000 dotted parts",
        "empty data.path",
        "5,000-digit seed",
    ],
)
def test_odd_values_are_one_short_line(tmp_path, mnist_path, args):
    (tmp_path / "c.yaml").write_text(f"train: {{epochs: 1}}\ndata: {{path: '{mnist_path}'}}\n")
    message = one_error(cli(tmp_path, "run", tmp_path / "c.yaml", *args))
    assert len(message) <= 960


@pytest.mark.parametrize("command", [("table", "{runs}", "--figures", ""), ("report", "beta")])
def test_an_empty_output_path_is_refused(tmp_path, runs, command):
    args = [a.format(runs=tmp_path / "runs" / "exp") for a in command]
    if command[0] == "report":
        args += [str(tmp_path / "runs"), str(tmp_path / "runs"), "--out", ""]
    assert "an empty path" in one_error(cli(tmp_path, *args))


def test_a_history_field_past_csvs_limit_is_a_warning(tmp_path):
    from fakeruns import cell_raw, run_dir

    cfg = fake_run(tmp_path / "h", cell_raw("relu", "mse", "adam"), history=True, ssim_thesis=0.8)
    (run_dir(cfg) / store.HISTORY).write_text(
        "epoch,loss,val_loss,seconds\n1,0.5,0.4," + "9" * 140_000 + "\n"
    )
    code, _, err = cli(tmp_path, "table", tmp_path / "h" / "fake", "--figures", tmp_path / "f")
    assert code == 0 and "history.csv is not a readable CSV" in err


def test_a_zip_bomb_model_is_refused_before_keras_unpacks_it(tmp_path):
    import zipfile

    from aeexp.analysis import protocol

    bomb = tmp_path / "model.keras"
    with (
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("config.json", "w", force_zip64=True) as member,
    ):
        zeros = bytes(1 << 20)
        for _ in range((readers.MAX_MODEL_BYTES >> 20) + 1):
            member.write(zeros)
    assert bomb.stat().st_size < 2 << 20  # a couple of MB on disk
    with pytest.raises(protocol.UnusableModel, match="unpacks to 513 MiB, more than 512"):
        protocol.predict(bomb, __import__("numpy").zeros((1, 784), "float32"))


def test_a_data_path_that_is_a_device_is_named_as_such(tmp_path):
    message = one_error(cli(tmp_path, "data", "--path", "/dev/zero"))
    assert message == "/dev/zero (from data.path): not a regular file or a folder"


@pytest.mark.slow  # a real process trains; test_execute's damaged-run tests are the cheap one
def test_a_damaged_run_is_retrained_with_a_warning(tmp_path, mnist_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"name: exp\ndata: {{path: '{mnist_path}', train_limit: 512, test_limit: 100}}\n"
        "train: {epochs: 1}\n"
    )
    out = tmp_path / "out"
    keras = tmp_path / "keras"
    assert (
        cli(tmp_path, "run", config, "--out", out, "--quiet", keras_home=keras, bounded=False)[0]
        == 0
    )
    (run_dir,) = [p for p in (out / "exp").iterdir() if p.is_dir() and p.name[0] != "."]
    (run_dir / store.METRICS).write_text("{}")
    code, _, err = cli(
        tmp_path, "run", config, "--out", out, "--quiet", keras_home=keras, bounded=False
    )
    assert code == 0 and store.read_metrics(run_dir) is not None
    (warning,) = [line for line in err.splitlines() if line.startswith("aeexp: warning:")]
    assert f"{run_dir}: no readable metrics.json; kept as {out / 'exp' / '.damaged'}" in warning


def test_a_failed_runs_headline_says_why_and_a_diverged_one_when():
    failed = {"status": "failed", "reason": "ValueError: bad\nthing"}
    headline = api.RunResult(Path("."), failed, False).headline
    assert headline == "status failed: ValueError: bad thing"
    diverged = {"status": "diverged", "diverged_epoch": 3}
    assert api.RunResult(Path("."), diverged, False).headline == "status diverged at epoch 3"
