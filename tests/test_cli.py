"""The CLI as a user meets it: exit codes, one-line errors, a short end-to-end run."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from aeexp import cli
from aeexp.errors import UserError
from aeexp.store import rundir as store

SMALL = [
    "--set",
    "data.train_limit=600",
    "--set",
    "data.test_limit=300",
    "--set",
    "train.epochs=2",
    "--set",
    "train.batch_size=128",
]


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    """Exit 2, nothing on stdout, one ``aeexp: error:`` line on stderr naming the problem."""
    assert result.exit_code == 2, result.output
    assert result.stdout == "", result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aeexp: error:"), result.output
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


@pytest.fixture
def config_file(tmp_path, mnist_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(f"data: {{path: {mnist_path}}}\nmodel: {{decoder_activation: sigmoid}}\n")
    return path


def test_help_is_fast_and_does_not_import_tensorflow():
    code = (
        "import sys; from click.testing import CliRunner; from aeexp import cli; "
        "r = CliRunner().invoke(cli.main, ['run', '--help']); "
        "assert r.exit_code == 0 and 'CONFIG' in r.output; "
        "assert 'tensorflow' not in sys.modules, 'help imported TensorFlow'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("loss: {name: msee}", "did you mean 'mse'"),
        ("train: {epochs: -1}", "train.epochs"),
        ("train: [unclosed", "malformed YAML"),
        ("optimizer: {name: adam, learning_rate: -1}", "learning_rate"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert_one_line_error(invoke("run", path, "--out", tmp_path / "out"), fragment)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "{cfg}", "--seed", "-1"], "run: Invalid value for '--seed'"),
        (["run", "{cfg}", "--bogus"], "run: No such option '--bogus'"),
        (["run", "{cfg}", "--set"], "run: Option '--set' requires an argument"),
        (["run"], "run: Missing argument 'CONFIG'"),
        (["run", "{tmp}"], "run: Invalid value for 'CONFIG'"),  # A directory.
        (["sweep", "x.yaml", "--max-group", "0"], "sweep: Invalid value for '--max-group'"),
        (["sweep", "x.yaml", "--max-group", "many"], "'--max-group'"),
        (["sweep"], "sweep: Missing argument 'SWEEP'"),
        (["sweep", "{tmp}"], "Invalid value for 'SWEEP'"),
        (["table"], "table: Missing argument 'RUNS'"),
        (["table", "{cfg}"], "table: Invalid value for 'RUNS'"),  # A file, not a CSV.
        (["table", "{tmp}", "--metric", "ssim"], "table: Invalid value for '--metric'"),
        (["table", "{tmp}", "--by", "seed"], "'--by'"),
        (["data", "--path"], "data: Option '--path' requires an argument"),
        (["data", "surplus"], "data: Got unexpected extra argument (surplus)"),
        (["report", "thesis", "{tmp}"], "report thesis: Missing argument 'TUNED_DIR'"),
        (["bogus"], "No such command 'bogus'"),
        (["--bogus"], "No such option '--bogus'"),
    ],
)
def test_usage_errors_are_one_line(tmp_path, args, fragment):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("{}\n")
    args = [a.format(cfg=cfg, tmp=tmp_path) for a in args]
    assert_one_line_error(invoke(*args), fragment)


def test_usage_error_in_a_real_process(tmp_path):
    """The installed entry point, not only CliRunner: one line, exit 2, nothing on stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "aeexp", "run", tmp_path / "c.yaml", "--seed", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "aeexp: error: run: Invalid value for '--seed': expected a whole number in "
        "0..9223372036854775807, got -1"
    ]


def test_help_and_version_are_untouched():
    for args in (["--help"], ["run", "--help"], ["report", "-h"]):
        result = invoke(*args)
        assert result.exit_code == 0 and result.stdout.startswith("Usage:"), result.output
    version = invoke("--version")
    assert version.exit_code == 0 and "version" in version.stdout
    bare = invoke()  # No command: click shows the help, as it always did.
    assert "Commands:" in bare.output and "aeexp: error" not in bare.output


def test_ctrl_c_exits_130(monkeypatch):
    from aeexp import gradcheck
    from aeexp.data import sources as data

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "summary", interrupted)
    monkeypatch.setattr(gradcheck, "run_checks", interrupted)
    for command in ("data", "gradcheck"):  # With and without @_reports_user_errors.
        result = invoke(command)
        assert result.exit_code == 130 and "interrupted" in result.stderr, result.output
        assert "Traceback" not in result.output


def test_user_error_in_any_command_is_one_line(monkeypatch):
    from aeexp import gradcheck

    def refuses(*args, **kwargs):
        raise UserError("no can do")

    monkeypatch.setattr(gradcheck, "run_checks", refuses)
    assert_one_line_error(invoke("gradcheck"), "aeexp: error: no can do")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("grid: {loss.name: [mse, msee], seed: [0]}", ["{path}", "unknown loss 'msee'"]),
        ("grid: [unclosed", ["{path}", "malformed YAML"]),
        ("grd: {seed: [0]}", ["{path}", "unknown key"]),
        ("grid: {seed: []}", ["grid.seed"]),
    ],
)
def test_bad_sweep_file_exits_2_with_one_line(tmp_path, text, fragments):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    result = invoke("sweep", path, "--out", tmp_path / "out")
    assert_one_line_error(result, *(f.format(path=path) for f in fragments))
    assert not (tmp_path / "out").exists()


def test_table_of_a_folder_without_runs(tmp_path):
    (tmp_path / "empty" / "half-written").mkdir(parents=True)
    assert_one_line_error(invoke("table", tmp_path / "empty"), "no complete runs found")
    assert_one_line_error(invoke("table", tmp_path / "absent"), "no such folder")


def test_data_with_a_truncated_npz(tmp_path):
    whole, cut = tmp_path / "whole.npz", tmp_path / "cut.npz"
    np.savez_compressed(
        whole,
        x_train=np.zeros((50, 28, 28), "uint8"),
        y_train=np.zeros(50, "uint8"),
        x_test=np.zeros((20, 28, 28), "uint8"),
        y_test=np.zeros(20, "uint8"),
    )
    assert invoke("data", "--path", whole).exit_code == 0
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert_one_line_error(invoke("data", "--path", cut), str(cut), "truncated")


def test_missing_config_file(tmp_path):
    assert_one_line_error(invoke("run", tmp_path / "nope.yaml"), "no such file")


def test_corrupt_data_file(tmp_path):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"not a zip at all")
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{path: {bad}}}")
    result = invoke("run", config, "--out", tmp_path / "out")
    assert_one_line_error(result, str(bad))
    assert list((tmp_path / "out").glob("*/*")) == []


def test_unwritable_output_folder(tmp_path, config_file):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_one_line_error(invoke("run", config_file, "--out", blocker / "sub"), "not writable")


def test_data_command_reports_source_and_hash(mnist_path):
    result = invoke("data", "--path", mnist_path)
    assert result.exit_code == 0
    assert "150767cbe69c5b8a" in result.output and "(10000, 28, 28)" in result.output.replace(
        "[10000, 28, 28]", "(10000, 28, 28)"
    )


def test_run_end_to_end(tmp_path, config_file):
    import keras

    out = tmp_path / "out"
    result = invoke("run", config_file, "--out", out, "--quiet", *SMALL)
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in (out / "tiny").iterdir() if p.is_dir() and p.name[0] != "."]
    assert str(run_dir) in result.output and "ssim_thesis" in result.output
    for name in (
        store.CONFIG,
        store.HISTORY,
        store.METRICS,
        store.LOSS_PLOT,
        store.RECONSTRUCTIONS,
        store.MODEL,
    ):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / store.METRICS).read_text())
    assert metrics["status"] == "completed" and metrics["run_id"] == run_dir.name
    assert len(metrics["ssim_thesis_per_digit"]) == 10
    assert np.mean(metrics["ssim_thesis_per_digit"]) == pytest.approx(metrics["ssim_thesis"])
    for key in (
        "ssim_thesis_viridis",
        "ssim_mean",
        "ssim_std",
        "ssim_median",
        "psnr_mean",
        "mse",
        "final_loss",
        "final_val_loss",
        "train_seconds",
        "versions",
        "locked_environment",
        "machine",
    ):
        assert key in metrics
    history = (run_dir / store.HISTORY).read_text().splitlines()
    assert history[0] == "epoch,loss,val_loss,seconds" and len(history) == 3
    assert float(history[-1].split(",")[2]) == pytest.approx(metrics["final_val_loss"])
    model = keras.saving.load_model(run_dir / store.MODEL)
    assert model.output_shape == (None, 784)
    # Saved uncompiled and of Keras's own layers: the file names no aeexp module, so moving
    # aeexp's modules (issue 28) can never stop a model.keras from loading.
    with zipfile.ZipFile(run_dir / store.MODEL) as archive:
        assert "aeexp" not in archive.read("config.json").decode()

    again = invoke("run", config_file, "--out", out, "--quiet", *SMALL)
    assert again.exit_code == 0 and "already complete" in again.output
    forced = invoke("run", config_file, "--out", out, "--quiet", "--force", *SMALL)
    assert forced.exit_code == 0
    assert json.loads((run_dir / store.METRICS).read_text())["ssim_mean"] == pytest.approx(
        metrics["ssim_mean"], abs=0
    )
    assert sorted(p.name for p in (out / "tiny").iterdir() if p.name[0] != ".") == [
        run_dir.name,
        "runs.csv",
    ]
