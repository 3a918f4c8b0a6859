"""The bundled configs: named without a path, listed, copied out, run from outside the clone."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from test_cli import assert_one_line_error

from aeexp import api, cli
from aeexp.config import bundled, sweepfile

REPO = Path(__file__).resolve().parents[1]
CLONE_FILES = sorted((REPO / "configs").glob("*/*.yaml"))
# The smoke run: a bundled thesis cell on a few hundred images for one epoch.
TINY = ["--set", "train.epochs=1", "--set", "data.train_limit=300", "--set", "data.test_limit=100"]


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


@pytest.fixture
def outside(tmp_path, monkeypatch):
    """Work in an empty folder outside the repository, as a wheel's user does."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_file_under_configs_is_bundled_once_under_its_name():
    names = [f"{path.parent.name}/{path.stem}" for path in CLONE_FILES]
    found = bundled.catalog()
    assert sorted(found) == sorted(names)
    for path in CLONE_FILES:
        entry = found[f"{path.parent.name}/{path.stem}"]
        assert entry.path.samefile(path)  # the clone's file itself, not a copy
        assert entry.kind == bundled.KINDS[path.parent.name]


def test_the_listing_names_every_bundled_file_with_its_kind(outside):
    result = invoke("configs")
    assert result.exit_code == 0, result.output
    for name, entry in bundled.catalog().items():
        assert any(line.split()[:2] == [name, entry.kind] for line in result.output.splitlines())
    assert max(len(line) for line in result.output.splitlines()) <= 120


def test_a_bundled_thesis_cell_runs_by_name_from_outside_the_repository(
    outside, monkeypatch, mnist_path
):
    monkeypatch.setenv("AEEXP_DATA", str(mnist_path))
    result = invoke("run", "thesis/mse_relu-sigmoid_adam", *TINY, "--quiet")
    assert result.exit_code == 0, result.output
    run_dir = outside / result.stdout.splitlines()[0]
    assert run_dir.parent == outside / "results" / "mse_relu-sigmoid_adam"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["versions"]["aeexp"] == "0.2.0"


@pytest.mark.parametrize(
    ("command", "name", "runs"),
    [
        ("sweep", "sweeps/thesis-optimizers", 150),
        ("sweep", "sweeps/thesis-optimizers.yaml", 150),  # the file's name works too
        ("sweep", "thesis/mse_relu-sigmoid_adam", None),  # refused: a run config
    ],
)
def test_sweep_names_plan_the_bundled_file(outside, command, name, runs):
    result = invoke(command, name, "--dry-run")
    if runs is None:
        assert_one_line_error(result, "is a bundled run config", "aeexp run " + name)
        return
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith(f"{runs} runs: 0 done")


def test_a_real_path_wins_over_a_bundled_name(outside):
    mine = outside / "sweeps" / "thesis-optimizers.yaml"
    mine.parent.mkdir()
    mine.write_text("name: mine\ngrid: {seed: [0, 1]}\n")
    result = invoke("sweep", "sweeps/thesis-optimizers.yaml", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "2 runs: 0 done, 2 to train -> results/mine"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["run", "thesis/mse_relu-sigmoid_adm"], ["did you mean 'thesis/mse_relu-sigmoid_adam'?"]),
        (["run", "sweeps/thesis-optimizers"], ["aeexp sweep sweeps/thesis-optimizers"]),
        (["tune", "tune/thesis-cell", "--trials", "1"], ["did you mean 'tune/thesis-cells'?"]),
        (["sweep", "nowhere.yaml"], ["nowhere.yaml: no such file, nor a bundled sweep file"]),
        (["configs", "copy", "sweeps/thesis-optimisers", "x.yaml"], ["did you mean"]),
    ],
)
def test_an_unknown_or_misplaced_name_is_one_line_saying_what_to_type(outside, args, fragments):
    assert_one_line_error(invoke(*args), *fragments)
    assert list(outside.iterdir()) == []


def test_a_copy_is_the_bundled_file_with_a_schema_line_that_still_points_at_the_schema(outside):
    result = invoke("configs", "copy", "sweeps/thesis-optimizers", "mine.yaml")
    assert (result.exit_code, result.output) == (0, "wrote mine.yaml\n")
    copied = (outside / "mine.yaml").read_text().splitlines()
    original = bundled.find("sweeps/thesis-optimizers").path.read_text().splitlines()
    assert copied[1:] == original[1:]
    target = (outside / copied[0].removeprefix(sweepfile.MODELINE_PREFIX)).resolve()
    assert target == sweepfile.schema_folder() / sweepfile.SWEEP_SCHEMA_FILE
    jsonschema.validate(yaml.safe_load("\n".join(copied)), json.loads(target.read_text()))
    result = invoke("sweep", "mine.yaml", "--dry-run")
    assert result.output.splitlines()[-1].startswith("150 runs: 0 done")


def test_a_copy_into_a_folder_keeps_the_file_name_and_never_overwrites(outside):
    (outside / "mine").mkdir()
    result = invoke("configs", "copy", "tune/thesis-cells", "mine")
    assert result.exit_code == 0, result.output
    written = outside / "mine" / "thesis-cells.yaml"
    written.write_text("edited\n")
    again = invoke("configs", "copy", "tune/thesis-cells", "mine")
    assert_one_line_error(again, "already exists; aeexp configs copy never overwrites")
    assert written.read_text() == "edited\n"


def test_a_copy_goes_only_where_told(outside):
    assert_one_line_error(
        invoke("configs", "copy", "thesis/mse_relu-relu_adagrad", "no/such/folder.yaml"),
        "does not exist",
    )
    assert list(outside.iterdir()) == []


def test_a_notebook_names_bundled_files_too(outside):
    planned = api.plan("sweeps/thesis-optimizers", out="dry")
    assert len(planned.runs) == 150
    assert planned.experiment_dir == Path("dry") / "thesis-optimizers"
