"""Tables pick each cell's best in the metric's direction; --compare only for ssim_thesis."""

import csv
import io

import fakeruns
import pytest
from click.testing import CliRunner

from aeexp import cli
from aeexp.analysis import figures, tables
from aeexp.errors import UserError
from aeexp.registry import vocab
from aeexp.store import rundir as store

# Two optimizers for one cell (ReLU-Sigmoid, MSE): Adam has the better SSIM and PSNR *and* the
# lower (better) MSE and validation loss, so the right answer is Adam for every metric.
ADAM = {"ssim_thesis": 0.80, "psnr_mean": 20.0, "mse": 0.010, "final_val_loss": 0.020}
ADAGRAD = {"ssim_thesis": 0.70, "psnr_mean": 15.0, "mse": 0.050, "final_val_loss": 0.080}


def fake_run(root, optimizer, seed=0, learning_rate=None, **metrics):
    """Write a complete ReLU-Sigmoid MSE run directory with the given metrics; no training."""
    opt = {"learning_rate": learning_rate} if learning_rate else {}
    cfg = fakeruns.fake_run(
        root, fakeruns.cell_raw("sigmoid", "mse", optimizer, seed, **opt), history=True, **metrics
    )
    return fakeruns.run_dir(cfg)


@pytest.fixture
def experiment(tmp_path):
    """Return an experiment folder where Adam beats Adagrad on every metric (two seeds each)."""
    for seed, jitter in ((0, 1.0), (1, 1.2)):
        fake_run(tmp_path, "adam", seed, **{k: v * jitter for k, v in ADAM.items()})
        fake_run(tmp_path, "adagrad", seed, **{k: v * jitter for k, v in ADAGRAD.items()})
    return tmp_path / "fake"


def table(*args):
    return CliRunner().invoke(cli.main, ["table", *map(str, args)])


def test_every_table_metric_has_a_direction():
    directed = {m.name for m in vocab.METRICS.values() if m.higher_is_better is not None}
    assert set(vocab.TABLE_METRICS) <= directed
    assert not vocab.higher_is_better("mse") and not vocab.higher_is_better("final_val_loss")
    assert vocab.higher_is_better("ssim_thesis") and vocab.higher_is_better("psnr_mean")
    with pytest.raises(ValueError, match="direction"):
        vocab.higher_is_better("ssim_std")


@pytest.mark.parametrize("metric", ["ssim_thesis", "psnr_mean", "mse", "final_val_loss"])
@pytest.mark.parametrize("by", ["best", "optimizer"])
def test_cells_pick_the_best_in_the_metrics_direction(experiment, metric, by):
    runs = store.load_runs(experiment)
    chosen = tables.cells(runs, metric, by)
    if by == "best":
        (stat,) = chosen.values()
        assert stat.config.optimizer.name == "adam"
        assert stat.n == 2 and stat.mean == pytest.approx(ADAM[metric] * 1.1)
    else:
        assert set(chosen) == {("ReLU-Sigmoid / Adam", "mse"), ("ReLU-Sigmoid / Adagrad", "mse")}


def test_by_optimizer_picks_the_lowest_error_among_learning_rates(tmp_path):
    fake_run(tmp_path, "adam", learning_rate=0.001, mse=0.03)
    fake_run(tmp_path, "adam", learning_rate=0.003, mse=0.01)
    fake_run(tmp_path, "adam", learning_rate=0.01, mse=0.02)
    (stat,) = tables.cells(store.load_runs(tmp_path / "fake"), "mse", by="optimizer").values()
    assert stat.config.optimizer.learning_rate == 0.003


def test_best_reads_the_direction_from_the_stats_or_the_argument(experiment):
    stats = tables.config_stats(store.load_runs(experiment), "mse")
    assert tables.best(stats).config.optimizer.name == "adam"
    assert tables.best(stats, "ssim_thesis").config.optimizer.name == "adagrad"  # Says "higher".
    unlabelled = [tables.ConfigStats(s.runs, s.values) for s in stats]
    with pytest.raises(ValueError, match="needs the metric"):
        tables.best(unlabelled)


@pytest.mark.parametrize("metric", ["mse", "final_val_loss", "psnr_mean"])
def test_table_command_shows_the_best_cell(experiment, metric):
    result = table(experiment, "--metric", metric)
    assert result.exit_code == 0, result.output
    row = result.output.splitlines()[2]
    assert row.startswith("| ReLU-Sigmoid |") and row.endswith(" Adam |"), row


def test_figures_show_each_cells_best_history(experiment, tmp_path, monkeypatch):
    from aeexp import plots

    panels = []
    monkeypatch.setattr(plots, "grouped_bars", lambda *args: None)
    monkeypatch.setattr(plots, "history_grid", lambda found, path: panels.extend(found))
    figures.write_figures(store.load_runs(experiment), "mse", tmp_path / "figures")
    (panel,) = panels
    assert "Adam (seed 0)" in panel[0]


def test_compare_puts_the_published_ssim_beside_the_measured_one(experiment):
    result = table(experiment, "--compare", "thesis")
    assert result.exit_code == 0, result.output
    header, _, row = result.output.splitlines()
    assert header == "| decoder | MSE | MSE thesis | MSE Δ |"
    assert row.endswith("| 0.855 Adam | +0.025 |"), row  # Mean over seeds 0.88 against 0.855.


@pytest.mark.parametrize("metric", ["psnr_mean", "ssim_thesis_viridis", "mse"])
@pytest.mark.parametrize("fmt", ["md", "csv"])
def test_compare_is_refused_for_metrics_the_thesis_did_not_publish(experiment, metric, fmt):
    result = table(experiment, "--metric", metric, "--compare", "thesis", "--format", fmt)
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("aeexp: error: --compare thesis needs --metric ssim_thesis"), line
    assert metric in line
    with pytest.raises(UserError, match="--compare thesis"):
        tables.long_rows(store.load_runs(experiment), metric, compare=True)


def csv_rows(result):
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_csv_has_the_thesis_columns_only_with_compare(experiment):
    (plain,) = csv_rows(table(experiment, "--format", "csv"))
    assert "thesis" not in plain and "difference" not in plain
    assert plain["optimizer"] == "adam" and float(plain["mean"]) == pytest.approx(0.88)
    (compared,) = csv_rows(table(experiment, "--format", "csv", "--compare", "thesis"))
    assert float(compared["thesis"]) == 0.855
    assert float(compared["difference"]) == pytest.approx(0.88 - 0.855)


# ------------------------------------------------------------- damaged run directories (issue 15)

DAMAGES = {
    "metrics missing": (store.METRICS, None),
    "metrics empty": (store.METRICS, ""),
    "metrics not json": (store.METRICS, "{not json"),
    "metrics not an object": (store.METRICS, "[1, 2]"),
    "metrics not utf-8": (store.METRICS, b"\xff\xfe\x00"),
    "config missing": (store.CONFIG, None),
    "config empty": (store.CONFIG, ""),
    "config not yaml": (store.CONFIG, "loss: [unclosed\n"),
    "config not a mapping": (store.CONFIG, "- a\n- b\n"),
    "config invalid": (store.CONFIG, "loss:\n  name: no_such_loss\n"),
    "config unknown key": (store.CONFIG, "colour: red\n"),
}


def damage(run_dir, name, content):
    path = run_dir / name
    if content is None:
        path.unlink()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_load_runs_skips_a_damaged_run_with_one_warning_line(experiment, case, capsys):
    good = store.load_runs(experiment)
    victim = sorted(p for p in experiment.iterdir() if p.is_dir())[0]
    damage(victim, *DAMAGES[case])
    capsys.readouterr()
    runs = store.load_runs(experiment)
    assert len(runs) == len(good) - 1 and victim not in {r.path for r in runs}
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"aeexp: warning: skipping {victim}: "), line


def test_table_command_reports_around_a_damaged_run(experiment):
    victim = sorted(p for p in experiment.iterdir() if p.is_dir())[0]
    (victim / store.METRICS).write_text("")
    result = table(experiment)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("\n") == 1 and "metrics.json is empty" in result.stderr
    assert result.stdout.splitlines()[2].startswith("| ReLU-Sigmoid |")


def test_load_runs_ignores_staging_folders_and_says_when_nothing_is_left(tmp_path, capsys):
    from fakeruns import cell_raw, fake_run

    cfg = fake_run(tmp_path, cell_raw("relu", "mse", "adam"), ssim_thesis=0.8)
    staging = cfg.experiment_dir / ".tmp-abc-1"
    staging.mkdir()
    (staging / store.CONFIG).write_text("broken: [")
    assert len(store.load_runs(tmp_path)) == 1
    assert capsys.readouterr().err == ""
    (cfg.experiment_dir / cfg.run_id / store.METRICS).write_text("garbage")
    with pytest.raises(UserError, match="no complete runs"):
        store.load_runs(tmp_path)
    assert capsys.readouterr().err.count("\n") == 1
