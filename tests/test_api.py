"""The notebook surface: aeexp.run, aeexp.sweep, aeexp.load_runs, TensorBoard and MLflow."""

import json
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fakeruns import cell_raw, fake_run, run_dir

import aeexp
from aeexp import cli
from aeexp.errors import UserError, UserTypeError
from aeexp.execute import progress
from aeexp.store import rundir as store


def tiny(mnist_path, tmp_path, **extra):
    return {
        "name": "tiny",
        "data": {"path": str(mnist_path), "train_limit": 512, "test_limit": 200},
        "train": {"epochs": 2},
        "output": {"dir": str(tmp_path / "out")},
        **extra,
    }


@pytest.fixture(scope="module")
def notebook_run(tmp_path_factory, mnist_path):
    """One tiny run through aeexp.run with a dotted override and TensorBoard on."""
    tmp = tmp_path_factory.mktemp("api")
    config = tiny(mnist_path, tmp)
    return aeexp.run(config, tensorboard=True, **{"model.decoder_activation": "relu"})


def test_run_takes_a_mapping_and_dotted_overrides(notebook_run):
    assert notebook_run.trained_now and notebook_run.status == "completed"
    config = (notebook_run.run_dir / store.CONFIG).read_text()
    assert "decoder_activation: relu" in config
    assert list(notebook_run.history.columns) == ["epoch", "loss", "val_loss", "seconds"]
    assert len(notebook_run.history) == 2
    assert notebook_run.metrics["final_val_loss"] == notebook_run.history["val_loss"].iloc[-1]


def test_a_complete_run_is_not_trained_again(notebook_run, mnist_path):
    again = aeexp.run(
        tiny(mnist_path, notebook_run.run_dir.parents[2]),
        **{"model.decoder_activation": "relu"},
    )
    assert not again.trained_now and again.run_dir == notebook_run.run_dir


def test_tensorboard_events_hold_the_losses_and_the_reconstructions(notebook_run):
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(
        str(notebook_run.run_dir / "tensorboard"), size_guidance={"tensors": 0}
    )
    events.Reload()
    tags = events.Tags()
    assert {"loss/train", "loss/validation", "reconstructions"} <= set(tags["tensors"])
    history = notebook_run.history
    for tag, column in (("loss/train", "loss"), ("loss/validation", "val_loss")):
        logged = events.Tensors(tag)
        assert [e.step for e in logged] == [1, 2]
        values = [float(tf.make_ndarray(e.tensor_proto)) for e in logged]
        assert values == pytest.approx(list(history[column]), rel=1e-6)


def test_sweep_takes_a_mapping_and_load_runs_reads_it(tmp_path, mnist_path):
    sweep = {
        "name": "pair",
        "config": {
            "data.path": str(mnist_path),
            "data.train_limit": 512,
            "data.test_limit": 200,
            "train.epochs": 1,
        },
        "grid": {"loss.name": ["mse", "i_div2"]},
    }
    outcome = aeexp.sweep(sweep, out=tmp_path / "out")  # a Path, as a notebook passes it
    assert len(outcome.trained) == 2 and outcome.problems() == []
    runs = aeexp.load_runs(outcome.experiment_dir)
    assert sorted(runs["loss.name"]) == ["i_div2", "mse"]
    assert set(runs["status"]) == {"completed"}
    for column in ("run_id", "path", "optimizer.learning_rate", "ssim_mean", "versions.keras"):
        assert column in runs
    assert runs["ssim_mean"].between(0, 1).all()


def test_load_runs_skips_a_damaged_run_with_one_warning(tmp_path, capsys):
    good = fake_run(tmp_path, cell_raw("sigmoid", "mse", "adam"), ssim_mean=0.8)
    bad = fake_run(tmp_path, cell_raw("sigmoid", "mse", "adam", seed=1), ssim_mean=0.7)
    (run_dir(bad) / store.METRICS).write_text("{broken")
    runs = aeexp.load_runs(tmp_path)
    assert list(runs["run_id"]) == [good.run_id] or list(runs["path"]) == [str(run_dir(good))]
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and str(run_dir(bad)) in warning[0]


def sides(tmp_path):
    rng = np.random.default_rng(0)
    a = [0.80 + 0.01 * rng.standard_normal() for _ in range(5)]
    b = [0.85 + 0.01 * rng.standard_normal() for _ in range(5)]
    for seed, (x, y) in enumerate(zip(a, b, strict=True)):
        fake_run(tmp_path, cell_raw("sigmoid", "mse", "adam", seed=seed), ssim_mean=x)
        fake_run(tmp_path, cell_raw("sigmoid", "i_div2", "adam", seed=seed), ssim_mean=y)
    return a, b


def test_compare_filters_welch_and_the_keys_that_differ(tmp_path):
    from scipy import stats

    a, b = sides(tmp_path)
    comparison = aeexp.compare(
        "loss.name=mse", "loss.name=i_div2", root=tmp_path, metrics=["ssim_mean"]
    )
    assert list(comparison.differing) == ["loss.name"]
    (row,) = comparison.rows
    assert row.intervals[0].mean == pytest.approx(np.mean(a))
    assert row.differences[1] == pytest.approx(np.mean(b) - np.mean(a))
    assert row.p_values[1] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    result = CliRunner().invoke(
        cli.main, ["compare", "loss.name=mse", "loss.name=i_div2", "--root", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "| loss.name | mse | i_div2 |" in result.output and "ssim_mean" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["loss.name=mse"], "at least two sides"),
        (["loss.name=mse", "loss.nam=x"], "did you mean 'loss.name'"),
        (["loss.name=mse", "loss.name=bce"], "no run under the root matches"),
        (["loss.name=mse", "nowhere"], "no such folder"),
    ],
)
def test_compare_mistakes_are_one_line(tmp_path, args, message):
    sides(tmp_path)
    result = CliRunner().invoke(cli.main, ["compare", *args, "--root", str(tmp_path)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert message in line.replace('"', "'")


def test_mlflow_gets_params_epoch_losses_metrics_and_files(notebook_run, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    from aeexp.config.sweep import PlannedRun
    from aeexp.execute.tracking import MlflowSink

    config = aeexp.config.run.resolve(notebook_run.run_dir / store.CONFIG)
    planned = PlannedRun(config, {})
    assert planned.run_dir == notebook_run.run_dir
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_id = MlflowSink(uri).log(planned)
    client = mlflow.MlflowClient(tracking_uri=uri)
    logged = client.get_run(mlflow_id)
    assert logged.data.params["loss.name"] == "mse"
    assert logged.data.params["model.decoder_activation"] == "relu"
    assert logged.data.metrics["ssim_mean"] == pytest.approx(notebook_run.metrics["ssim_mean"])
    steps = client.get_metric_history(mlflow_id, "val_loss")
    assert [m.step for m in steps] == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(mlflow_id)}
    assert {"metrics.json", "model.keras", "tensorboard"} <= artifacts
    # A local store keeps its artifacts beside its database, not in the working folder.
    assert (tmp_path / "mlflow-artifacts").is_dir() and not Path("mlruns").exists()


def test_env_lists_the_devices_and_says_when_there_is_no_gpu():
    result = CliRunner().invoke(cli.main, ["env"])
    assert result.exit_code == 0
    assert "tensorflow:" in result.output and "device: CPU" in result.output
    assert "gpu: none visible to TensorFlow" in result.output


def test_a_user_error_from_the_api_is_an_exception(tmp_path):
    with pytest.raises(UserError, match="unknown loss 'msee'"):
        aeexp.run({"loss": {"name": "msee"}, "output": {"dir": str(tmp_path)}})
    with pytest.raises(UserError, match="needs a 'name'"):
        aeexp.sweep({"grid": {"seed": [0]}})


def test_metrics_json_names_no_gpu_on_a_cpu_run(notebook_run):
    metrics = json.loads((notebook_run.run_dir / store.METRICS).read_text())
    assert "gpus" not in metrics


@pytest.mark.parametrize("kernel", [False, True], ids=["log", "notebook"])
def test_progress_is_lines_in_a_log_and_a_bar_in_a_notebook(
    kernel, tmp_path, mnist_path, monkeypatch, capsys
):
    # Both write to a stderr that is no terminal (capsys's): a notebook's is not one either.
    if kernel:  # what a Jupyter kernel has imported
        monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setattr(progress, "LINE_INTERVAL", 0.0)  # in a log, a line at every update
    config = tiny(mnist_path, tmp_path)
    sweep = {"name": "pair", "config": config, "grid": {"loss.name": ["mse", "i_div2"]}}
    aeexp.sweep(sweep, progress=True)
    stderr = capsys.readouterr().err
    if kernel:
        assert "\r" in stderr and "2/2" in stderr
        return
    assert "\r" not in stderr
    lines = stderr.splitlines()
    # One lock-step group of two epochs, then the runs it wrote; the kept bar's close repeats
    # no count already shown.
    group = lines[0].split(":")[0]
    assert [re.sub(r" in \d\d:\d\d.*", "", line) for line in lines] == [
        f"{group}: 1/2 epochs",
        f"{group}: 2/2 epochs",
        "pair: 1/2 runs",
        "pair: 2/2 runs",
    ]
    assert "loss=" in lines[0]


def _sweep_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ngrid:\n  seed: [0, 1]\n")
    return path


def _search_file(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: t\nconfig: {data: {holdout: 100}}\n"
        "search: {optimizer.learning_rate: {log_uniform: [0.001, 0.1]}}\n"
    )
    return path


WHOLE = "expected a whole number in"
# (function, its first argument, the bad keyword, the exception type, the message's end).
BAD_ARGUMENTS = {
    "run int": ("run", 5, {}, UserTypeError, "'CONFIG': expected a path, a bundled name or a "),
    "run None": ("run", None, {}, UserTypeError, "'CONFIG': expected a path"),
    "run list": ("run", ["c.yaml"], {}, UserTypeError, "got list ['c.yaml']"),
    "run overrides [1]": ("run", {}, {"overrides": [1]}, UserTypeError, "'--set': expected a list"),
    "run overrides str": ("run", {}, {"overrides": "seed=1"}, UserTypeError, "got str 'seed=1'"),
    "run mlflow 5": ("run", {}, {"mlflow": 5}, UserTypeError, "'--mlflow': expected a string"),
    "run seed str": ("run", {}, {"seed": "3"}, UserTypeError, f"'--seed': {WHOLE} 0.."),
    "run seed 2^64": ("run", {}, {"seed": 2**64}, UserError, f"got {2**64}"),
    "run force 'no'": ("run", {}, {"force": "no"}, UserTypeError, "expected True or False"),
    "sweep int": ("sweep", 5, {}, UserTypeError, "'SWEEP': expected a path"),
    "sweep max_group 0": ("sweep", "s", {"max_group": 0}, UserError, f"{WHOLE} 1..1000000, got 0"),
    "sweep max_group -1": ("sweep", "s", {"max_group": -1}, UserError, "got -1"),
    "sweep max_runs 2^64": ("sweep", "s", {"max_runs": 2**64}, UserError, "'--max-runs'"),
    "sweep mlflow 5": ("sweep", "s", {"mlflow": 5}, UserTypeError, "'--mlflow'"),
    "sweep address 5": ("sweep", "s", {"address": 5}, UserTypeError, "'--address': expected a"),
    "sweep cpus 0": ("sweep", "s", {"cpus_per_worker": 0}, UserError, "'--cpus-per-worker'"),
    "run cpus str": ("run", {}, {"cpus_per_worker": "2"}, UserTypeError, "got str '2'"),
    "tune None": ("tune", None, {}, UserTypeError, "'SEARCH': expected a path"),
    "tune trials 0": ("tune", "t", {"trials": 0}, UserError, f"'--trials': {WHOLE} 1.."),
    "tune batch str": ("tune", "t", {"batch": "2"}, UserTypeError, "'--batch'"),
    "tune batch 0": ("tune", "t", {"batch": 0}, UserError, "'--batch'"),
    "tune top -1": ("tune", "t", {"top": -1}, UserError, "'--top'"),
    "tune top 1.5": ("tune", "t", {"top": 1.5}, UserTypeError, "got float 1.5"),
    "tune top 2^64": ("tune", "t", {"top": 2**64}, UserError, f"got {2**64}"),
    "tune top True": ("tune", "t", {"top": True}, UserTypeError, "got bool True"),
    "tune seeds int": ("tune", "t", {"seeds": 5}, UserTypeError, "'--seeds'"),
    "tune seeds million": ("tune", "t", {"seeds": range(10**6)}, UserTypeError, "got range"),
    "tune seeds list": ("tune", "t", {"seeds": [0] * 10**6}, UserError, "1,000,000 seeds"),
    "tune seeds negative": ("tune", "t", {"seeds": [-1]}, UserError, "got -1"),
    "tune sweep_name 5": ("tune", "t", {"sweep_name": 5}, UserTypeError, "'--name'"),
    "load_runs int": ("load_runs", 5, {}, UserTypeError, "'RUNS': expected a path, got int 5"),
    "load_runs None": ("load_runs", None, {}, UserTypeError, "'RUNS'"),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_a_bad_argument_is_refused_before_anything_is_read(case, tmp_path, monkeypatch):
    function, first, keywords, kind, message = BAD_ARGUMENTS[case]
    monkeypatch.chdir(tmp_path)
    if first in ("s", "t"):
        first = {"s": _sweep_file, "t": _search_file}[first](tmp_path)
    before = sorted(tmp_path.iterdir())
    if function == "tune":
        keywords = {"trials": 2, **keywords}
    with pytest.raises(kind) as raised:
        getattr(aeexp, function)(first, **keywords)
    text = str(raised.value)
    assert text.startswith(f"{function}: Invalid value for ") and message in text, text
    assert isinstance(raised.value, ValueError)  # what a notebook catches
    assert isinstance(raised.value, TypeError) == (kind is UserTypeError)
    assert sorted(tmp_path.iterdir()) == before  # nothing written: refused at the boundary


def test_seeds_as_text_are_parsed_before_anything_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the line the CLI prints for --seeds 0-1000000
    with pytest.raises(UserError, match=r"^--seeds '0-1000000': more than 1000 seeds$"):
        aeexp.tune(_search_file(tmp_path), trials=2, seeds="0-1000000")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.yaml"]


def test_compare_checks_its_sides_and_options(tmp_path):
    with pytest.raises(UserTypeError, match=r"^compare: Invalid value for 'SIDE': .* got int 5"):
        aeexp.compare(str(tmp_path), 5)
    with pytest.raises(UserTypeError, match="'--metric': expected a list of metric names"):
        aeexp.compare(str(tmp_path), str(tmp_path), metrics="mse")
    with pytest.raises(UserTypeError, match="'--root': expected a path"):
        aeexp.compare("a=b", "a=c", root=5)


@pytest.mark.parametrize(
    ("keyword", "value", "argv"),
    [
        ("max_group", 0, ["sweep", "{sweep}", "--max-group", "0"]),
        ("max_runs", -1, ["sweep", "{sweep}", "--max-runs", "-1"]),
        ("seed", 2**64, ["run", "{config}", "--seed", str(2**64)]),
        ("cpus_per_worker", 0, ["sweep", "{sweep}", "--cpus-per-worker", "0"]),
    ],
)
def test_the_api_raises_the_line_the_cli_prints(keyword, value, argv, tmp_path):
    sweep, config = _sweep_file(tmp_path), tmp_path / "c.yaml"
    config.write_text("train: {epochs: 1}\n")
    argv = [part.format(sweep=sweep, config=config) for part in argv]
    result = CliRunner().invoke(cli.main, argv)
    assert result.exit_code == 2
    with pytest.raises(UserError) as raised:
        getattr(aeexp, argv[0])(argv[1], **{keyword: value})
    assert result.stderr == f"aeexp: error: {raised.value}\n"
