"""A faulty machine: a full disk mid-run, outputs under a file: one line, exit 2, no debris."""

import errno
import os

import pytest
from click.testing import CliRunner

from aeexp import cli
from tests.fakeruns import cell_raw, fake_run


def one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aeexp: error: "), lines
    for needle in needles:
        assert needle in lines[0]


def test_a_full_disk_while_a_run_is_written_leaves_nothing_behind(tmp_path, monkeypatch):
    from tests.test_execute import FakeExecutor

    config = tmp_path / "c.yaml"
    config.write_text("name: full\n")
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
    monkeypatch.setattr("aeexp.execute.load_dataset", lambda cfg: _NoData())
    monkeypatch.setattr("aeexp.api.ExecutorOptions.make", lambda self: FakeExecutor())
    result = CliRunner().invoke(cli.main, ["run", str(config), "--out", str(tmp_path / "out")])
    one_line_error(result, "No space left on device")
    experiment = tmp_path / "out" / "full"
    assert [p.name for p in experiment.iterdir() if not p.name.startswith(".locks")] == []


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
