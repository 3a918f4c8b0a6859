"""Odd but readable run directories (issue 23): one warning line or one error line, never a crash.

Each case is a finished run whose files hold something aeexp would not write itself: a metric
that is text, a decoder the study has no column for, metadata of the wrong type, a history
without a column, a saved model that is garbage. The commands go through the real CLI.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from fakeruns import MACHINE, beta_raw, cell_raw, fake_run, run_dir

from aeexp.cli import main
from aeexp.store import rundir as store

WARNING = "aeexp: warning: "


def cli(*args: Any) -> Result:
    """Run the CLI in-process and return its result (stdout and stderr apart)."""
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(result: Result) -> str:
    """Assert exit 2 with one ``aeexp: error:`` line and no traceback; return the message."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aeexp: error: "), result.stderr
    return lines[0].removeprefix("aeexp: error: ")


def warnings_of(result: Result) -> list[str]:
    """Assert exit 0 and that stderr holds only aeexp's one-line warnings; return them."""
    assert result.exit_code == 0, (result.exit_code, result.output, result.exc_info)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("wrote ")]
    assert all(line.startswith(WARNING) for line in lines), result.stderr
    return [line.removeprefix(WARNING) for line in lines]


# --- 1. A metric that is not a number -----------------------------------------------------


def two_sides(root: Path, odd: dict[str, Any]) -> tuple[Path, Path, Path]:
    """Write sides a and b (two seeds each); seed 1 of a records ``odd``. Return a's odd run."""
    for seed in range(2):
        metrics = odd if seed == 1 else {"ssim_mean": 0.5, "ssim_thesis": 0.5}
        cfg = fake_run(root, cell_raw("relu", "mse", "adam", seed), name="a", **metrics)
        if seed == 1:
            odd_run = run_dir(cfg)
        fake_run(root, cell_raw("sigmoid", "mse", "adam", seed), name="b", ssim_mean=0.6 + seed)
    return root / "a", root / "b", odd_run


@pytest.mark.parametrize("value", ["high", [0.5, 0.6], {"gray": 0.5}, True])
def test_compare_counts_a_metric_that_is_not_a_number_as_missing(tmp_path, value):
    a, b, odd = two_sides(tmp_path, {"ssim_mean": value})
    result = cli("compare", a, b, "--metric", "ssim_mean")
    (warning,) = warnings_of(result)
    assert warning.startswith(f"{odd}: metrics.json has 'ssim_mean' = ")
    assert warning.endswith("not a finite number; counted as missing")
    assert "| ssim_mean | 0.5 (n=1) | 1.1 [" in result.stdout  # a's other seed; b's two


def test_table_and_reports_count_it_as_missing_too(tmp_path):
    """The same rule wherever runs become numbers: the table skips the value with a warning."""
    a, _, odd = two_sides(tmp_path, {"ssim_thesis": "0.9"})
    result = cli("table", a)
    assert warnings_of(result) == [
        f"{odd}: metrics.json has 'ssim_thesis' = '0.9', not a finite number; counted as missing"
    ]
    assert "| ReLU-ReLU | 0.500 Adam |" in result.stdout


# --- 2. Names that are not metrics, filters that are not one value -----------------------


@pytest.mark.parametrize(
    "metric, closest",
    [("ssim_maen", "; did you mean 'ssim_mean'?"), ("status", ""), ("path", ""), ("", "")],
)
def test_compare_refuses_a_name_that_is_not_a_metric(tmp_path, metric, closest):
    a, b, _ = two_sides(tmp_path, {"ssim_mean": 0.5})
    message = refused(cli("compare", a, b, "--metric", "ssim_mean", "--metric", metric))
    assert message.startswith(f"compare: unknown metric {metric!r} (valid: diverged_epoch, ")
    assert message.endswith(f"ssim_thesis_viridis, train_seconds){closest}")


@pytest.mark.parametrize("side", ["loss.name=[mse,bce]", "loss.name=[mse]", "seed={a: 1}"])
def test_compare_refuses_a_filter_value_that_is_a_list(tmp_path, side):
    two_sides(tmp_path, {"ssim_mean": 0.5})
    message = refused(cli("compare", side, "model.decoder_activation=relu", "--root", tmp_path))
    assert message.startswith(f"compare: {side!r}: a filter value must be a single value")


def test_compare_filters_a_column_that_holds_lists(tmp_path):
    """A list in a run's metrics.json is one value that no scalar filter matches."""
    two_sides(tmp_path, {"ssim_mean": 0.7, "tags": ["x", "y"]})
    for seed in range(3):
        fake_run(tmp_path, cell_raw("relu", "mse", "adagrad", seed), name="a", tags="x")
    result = cli("compare", "tags=x", "model.decoder_activation=sigmoid", "--root", tmp_path)
    assert warnings_of(result) == []
    assert "- A: tags=x (3 runs)" in result.stdout  # the adagrad runs, not the list's


# --- 3. A decoder the beta study has no label for ----------------------------------------


def beta_study(root: Path, decoders: tuple[str, ...] = ("relu",), **odd: Any) -> tuple[Path, Path]:
    """Write a small beta study and its tuning sweep; seed 0 of the study records ``odd``."""
    study, tune = root / "study", root / "tune"
    for decoder in decoders:
        for beta in (0.5, 1.0):
            raw = beta_raw(beta, "data_first", decoder, 0.001, holdout=100)
            fake_run(tune, raw, ssim_mean=0.5, machine=MACHINE)
            for seed in range(2):
                score = 0.6 + beta / 10 + seed / 100
                extra = odd if seed == 0 else {}
                metrics = {"ssim_mean": score, "ssim_thesis": score, "machine": MACHINE, **extra}
                fake_run(study, beta_raw(beta, "data_first", decoder, 0.001, seed), **metrics)
    return study / "fake", tune / "fake"


def test_beta_report_names_a_decoder_outside_the_thesis_by_its_own_name(tmp_path):
    study, tune = beta_study(tmp_path, ("relu", "tanh"))
    result = cli("report", "beta", study, tune, "--out", tmp_path / "out")
    assert warnings_of(result) == []
    text = (tmp_path / "out" / "REPORT.md").read_text()
    assert "3 decoder activations (relu, sigmoid, tanh)" in text
    assert "ReLU-tanh, d_β(x|y), data first" in text  # its table column and its verdict
    assert "- **ReLU-tanh, d_β(x|y), data first**: best beta(1,data_first)" in text
    assert (tmp_path / "out" / "figures" / "ssim_mean_vs_beta_tanh.png").is_file()


# --- 4. Metadata of the wrong type ---------------------------------------------------------

ODD_METADATA = {
    "load average is text": {"machine": {**MACHINE, "load_average": "high"}},
    "load average of text": {"machine": {**MACHINE, "load_average": ["high"]}},
    "machine is text": {"machine": "a big box"},
    "machine fields of the wrong type": {
        "machine": {"cpu_model": 42, "cpu_count": "two", "load_average": 1.5}
    },
    "versions a list": {"versions": ["tensorflow", "2.16"]},
    "versions text": {"versions": "tensorflow 2.16"},
    "finished_at without a time zone": {"finished_at": "2026-01-01T00:00:00"},
    "finished_at not a time": {"finished_at": "yesterday"},
    "finished_at a number": {"finished_at": 1767225600},
    "train_seconds text": {"train_seconds": "ten"},
    "train_seconds null": {"train_seconds": None},
    "train_seconds past year 1": {"train_seconds": 1e300},
    "data text": {"data": "mnist"},
    "data counts of the wrong type": {"data": {"train_images": "many", "test_images": [1]}},
}


def thesis_sweeps(root: Path, **odd: Any) -> tuple[Path, Path]:
    """Write one thesis cell's defaults (3 seeds) and tuned grid; seed 0 records ``odd``."""
    for seed in range(3):
        metrics = {"ssim_thesis": 0.79 + seed / 100, "ssim_mean": 0.6, "machine": MACHINE}
        metrics |= {"data": {"train_images": 60000, "test_images": 10000}}
        metrics |= odd if seed == 0 else {}
        fake_run(
            root, cell_raw("relu", "mse", "adagrad", seed), name="thesis-optimizers", **metrics
        )
    for lr in (0.01, 0.02):
        raw = cell_raw("relu", "mse", "adagrad", 0, learning_rate=lr)
        fake_run(root, raw, name="thesis-tuned", ssim_thesis=0.8, ssim_mean=0.6, machine=MACHINE)
    return root / "thesis-optimizers", root / "thesis-tuned"


@pytest.mark.parametrize("odd", ODD_METADATA.values(), ids=ODD_METADATA.keys())
def test_odd_metadata_costs_its_detail_not_the_report(tmp_path, odd):
    defaults, tuned = thesis_sweeps(tmp_path / "thesis", **odd)
    result = cli("report", "thesis", defaults, tuned, "--out", tmp_path / "thesis-out")
    assert warnings_of(result) == []
    text = (tmp_path / "thesis-out" / "REPORT.md").read_text()
    assert "- Wall-clock time of the sweeps: " in text and "- Machine: " in text
    study, tune = beta_study(tmp_path / "beta", **odd)
    assert warnings_of(cli("report", "beta", study, tune, "--out", tmp_path / "beta-out")) == []
    assert warnings_of(cli("table", defaults)) == []
    assert warnings_of(cli("compare", defaults, tuned)) == []


def test_odd_metadata_reads_as_unknown(tmp_path):
    """What the report says when no run's metadata is usable: unknown, not a made-up value."""
    odd = {"finished_at": "2026-01-01T00:00:00", "versions": ["tf"], "machine": "big"}
    for seed in range(2):
        fake_run(tmp_path, cell_raw("relu", "mse", "adagrad", seed), name="d", **odd)
        fake_run(tmp_path, cell_raw("relu", "mse", "adagrad", seed, learning_rate=0.1), **odd)
    result = cli("report", "thesis", tmp_path / "d", tmp_path / "fake", "--out", tmp_path / "o")
    assert warnings_of(result) == []
    text = (tmp_path / "o" / "REPORT.md").read_text()
    assert "- Wall-clock time of the sweeps: unknown (no run recorded when it finished" in text
    # A machine that is not a mapping is not a recorded one: the writer's is described.
    assert "- Machine: the runs did not record their machine;" in text
    assert "; versions not recorded." in text


def test_train_seconds_that_is_text_is_a_missing_metric_in_compare(tmp_path):
    a, b, odd = two_sides(tmp_path, {"ssim_mean": 0.5, "train_seconds": "ten"})
    result = cli("compare", a, b, "--metric", "train_seconds")
    assert warnings_of(result) == [
        f"{odd}: metrics.json has 'train_seconds' = 'ten', not a finite number; counted as missing"
    ]


# --- 5. A history.csv that cannot be drawn -------------------------------------------------

BAD_HISTORIES = {
    "no val_loss column": (
        b"epoch,loss,seconds\n1,0.5,1.0\n",
        "history.csv has no val_loss column",
    ),
    "text in a number column": (
        b"epoch,loss,val_loss,seconds\n1,0.5,low,1.0\n",
        "history.csv has a value that is not a number (line 2)",
    ),
    "a short row": (b"epoch,loss,val_loss,seconds\n1,0.5\n", "history.csv has a value that"),
    "no epochs": (b"epoch,loss,val_loss,seconds\n", "history.csv has no epochs"),
    "not text": (b"\xff\xfe\x00loss\n", "history.csv"),
}


@pytest.mark.parametrize("content, reason", BAD_HISTORIES.values(), ids=BAD_HISTORIES.keys())
def test_a_bad_history_is_left_out_of_the_figures_with_a_warning(tmp_path, content, reason):
    bad = fake_run(tmp_path, cell_raw("relu", "mse", "adam"), history=True, ssim_thesis=0.8)
    fake_run(tmp_path, cell_raw("sigmoid", "mse", "adam"), history=True, ssim_thesis=0.8)
    (run_dir(bad) / store.HISTORY).write_bytes(content)
    out = tmp_path / "figures"
    result = cli("table", tmp_path / "fake", "--figures", out)
    (warning,) = warnings_of(result)
    assert warning.startswith(f"skipping {run_dir(bad)}: {reason}")
    assert warning.endswith("; its loss history is not drawn")
    assert (out / "ssim_thesis_bars.png").is_file()
    assert (out / "ssim_thesis_best_loss_histories.png").is_file()  # the other cell's


def test_a_cell_falls_back_to_a_seed_with_a_readable_history(tmp_path):
    bad = fake_run(tmp_path, cell_raw("relu", "mse", "adam", 0), history=True, ssim_thesis=0.8)
    fake_run(tmp_path, cell_raw("relu", "mse", "adam", 1), history=True, ssim_thesis=0.8)
    (run_dir(bad) / store.HISTORY).write_text("epoch,loss\n1,0.5\n")
    out = tmp_path / "figures"
    (warning,) = warnings_of(cli("table", tmp_path / "fake", "--figures", out))
    assert str(run_dir(bad)) in warning
    assert (out / "ssim_thesis_best_loss_histories.png").is_file()


# --- 6. A saved model that is garbage -------------------------------------------------------


def _junk_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", "{not json")
        archive.writestr("model.weights.h5", os.urandom(64))
    return buffer.getvalue()


GARBAGE_MODELS = {
    "random bytes": os.urandom(100),
    "empty": b"",
    "zip of junk": _junk_zip(),
}


def test_a_garbage_model_is_skipped_in_the_protocol_noise(tmp_path, mnist_path):
    data = {"data": {"path": str(mnist_path), "test_limit": 1000}}
    garbage = {}
    for seed, (kind, content) in enumerate(GARBAGE_MODELS.items()):
        raw = cell_raw("relu", "mse", "adagrad", seed) | data
        cfg = fake_run(tmp_path, raw, name="thesis-optimizers", ssim_thesis=0.79 + seed / 100)
        (run_dir(cfg) / store.MODEL).write_bytes(content)
        garbage[kind] = run_dir(cfg)
    raw = cell_raw("relu", "mse", "adagrad", 0, learning_rate=0.01) | data
    fake_run(tmp_path, raw, name="thesis-tuned", ssim_thesis=0.8)
    result = cli(
        "report",
        "thesis",
        tmp_path / "thesis-optimizers",
        tmp_path / "thesis-tuned",
        "--out",
        tmp_path / "out",
    )
    assert result.exit_code == 0, (result.output, result.exc_info)
    assert "Traceback" not in result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith(WARNING)]
    assert len(warned) == len(garbage), result.stderr
    reasons = {
        "random bytes": "model.keras is not a .keras (zip) archive",
        "empty": "model.keras is not a .keras (zip) archive",
        "zip of junk": "model.keras cannot be loaded (",
    }
    for kind, path in garbage.items():
        (line,) = [w for w in warned if w.startswith(f"{WARNING}skipping {path}: ")]
        assert line.startswith(f"{WARNING}skipping {path}: {reasons[kind]}")
        assert line.endswith("; its protocol noise is not measured")
    text = (tmp_path / "out" / "REPORT.md").read_text()
    assert "not measured (no saved model)" in text


@pytest.mark.parametrize("shape", [(10,), (784,)], ids=["other input", "other output"])
def test_a_model_of_another_architecture_is_unusable(tmp_path, shape):
    """A loadable model that is not an autoencoder of 784 pixels is refused, not crashed on."""
    from aeexp.analysis.protocol import UnusableModel, predict
    from aeexp.env.backend import import_keras

    keras = import_keras()
    model = keras.Sequential([keras.Input(shape), keras.layers.Dense(3)])
    model.save(tmp_path / store.MODEL)
    with pytest.raises(UnusableModel, match=r"^model\.keras "):
        predict(tmp_path / store.MODEL, np.zeros((4, 784), "float32"))


# --- 7. Folders load_runs cannot read whole: one warning naming the folder and why --------


def test_a_run_folder_without_its_metrics_yet_is_named_not_passed_over(tmp_path, capsys):
    """A config.yaml alone (a run killed before its rename, copied by hand) is a skipped run."""
    done = fake_run(tmp_path, cell_raw("relu", "mse", "adam", 0))
    half = fake_run(tmp_path, cell_raw("relu", "mse", "adam", 1))
    (run_dir(half) / store.METRICS).unlink()
    assert [run.path for run in store.load_runs(tmp_path / "fake")] == [run_dir(done)]
    assert capsys.readouterr().err == f"{WARNING}skipping {run_dir(half)}: no metrics.json\n"


def test_a_metrics_json_that_is_a_folder_is_named_as_the_metrics_file(tmp_path, capsys):
    done = fake_run(tmp_path, cell_raw("relu", "mse", "adam", 0))
    odd = fake_run(tmp_path, cell_raw("relu", "mse", "adam", 1))
    (run_dir(odd) / store.METRICS).unlink()
    (run_dir(odd) / store.METRICS).mkdir()
    assert [run.path for run in store.load_runs(tmp_path / "fake")] == [run_dir(done)]
    reason = "metrics.json: is a directory, not a metrics file"
    assert capsys.readouterr().err == f"{WARNING}skipping {run_dir(odd)}: {reason}\n"


def test_a_history_csv_that_is_a_folder_is_named_as_the_history_file(tmp_path):
    odd = fake_run(tmp_path, cell_raw("relu", "mse", "adam"))
    (run_dir(odd) / store.HISTORY).mkdir()
    with pytest.raises(ValueError, match=r"^history\.csv: is a directory, not a history file$"):
        store.read_history(run_dir(odd))


def refuse_listing(monkeypatch, folder: Path, error: OSError) -> None:
    """Make os.walk's listing of ``folder`` fail with ``error`` (root lists a chmod 000 folder)."""
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(folder):
            raise error
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_a_folder_that_cannot_be_listed_is_named_in_a_warning(tmp_path, capsys, monkeypatch):
    done = fake_run(tmp_path, cell_raw("relu", "mse", "adam"))
    locked = tmp_path / "fake" / "locked"
    locked.mkdir()
    refuse_listing(monkeypatch, locked, PermissionError(13, "Permission denied", str(locked)))
    assert [run.path for run in store.load_runs(tmp_path / "fake")] == [run_dir(done)]
    assert capsys.readouterr().err == f"{WARNING}skipping {locked}: Permission denied\n"


def test_a_listing_error_without_a_reason_or_file_is_named_by_its_text(
    tmp_path, capsys, monkeypatch
):
    done = fake_run(tmp_path, cell_raw("relu", "mse", "adam"))
    locked = tmp_path / "fake" / "locked"
    locked.mkdir()
    refuse_listing(monkeypatch, locked, OSError("the listing broke off"))
    assert [run.path for run in store.load_runs(tmp_path / "fake")] == [run_dir(done)]
    warning = f"{WARNING}skipping {tmp_path / 'fake'}: the listing broke off\n"
    assert capsys.readouterr().err == warning
