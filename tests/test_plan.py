"""Planning: grid expansion, counting, validation, overrides, run ids and grouping."""

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from aeexp import cli
from aeexp.config import sweep as plan
from aeexp.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def write_sweep(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_grid_product_union_and_ranges():
    assert plan.expand_grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    assert plan.expand_grid([{"a": [1]}, {"b": [2, 3]}]) == [{"a": 1}, {"b": 2}, {"b": 3}]
    assert plan.expand_values("lr", {"start": 0.9, "stop": 1.0, "step": 0.005}) == [
        round(0.9 + i * 0.005, 12) for i in range(21)
    ]
    assert len(plan.expand_values("lr", {"start": 0.0005, "stop": 0.0095, "step": 0.0005})) == 19


@pytest.mark.parametrize(
    "grid",
    [
        {"a": []},
        {"a": 3},
        [],
        {"a": {"start": 0, "stop": 1, "step": 0}},
        {"a": {"start": 0, "stop": float("inf"), "step": 1}},
        {"a": {"start": 0, "stop": 1, "step": float("nan")}},
        {"a": {"start": False, "stop": True, "step": 1}},
        {1: [0, 1]},
    ],
)
def test_bad_grids_are_user_errors(grid):
    with pytest.raises(UserError):
        plan.expand_grid(grid)


def test_an_empty_range_is_a_user_error_naming_the_key(tmp_path):
    with pytest.raises(UserError, match=r"^grid\.seed: start 5 is past stop 0"):
        plan.expand_values("seed", {"start": 5, "stop": 0, "step": 1})
    path = write_sweep(tmp_path, "grid: {seed: {start: 5, stop: 0, step: 1}}\n")
    with pytest.raises(UserError, match="grid.seed"):
        plan.plan_sweep(path)


@pytest.mark.parametrize(
    ("grid", "override"),
    [
        ("seed: [0, 1]", "seed=7"),
        ("seed: [0, 1]", " seed = 7"),
        ("optimizer.learning_rate: [0.1]", "optimizer.lr=0.2"),
        ("optimizer: [{name: adam}]", "optimizer.learning_rate=0.2"),
        ("optimizer.learning_rate: [0.1]", "optimizer={name: sgd}"),
    ],
)
def test_set_of_a_key_the_grid_sets_is_refused(tmp_path, grid, override):
    path = write_sweep(tmp_path, f"grid: {{{grid}}}\n")
    with pytest.raises(UserError, match="the grid sets") as caught:
        plan.plan_sweep(path, [override])
    assert repr(override) in str(caught.value)


def test_set_of_other_keys_applies_to_every_run(tmp_path):
    path = write_sweep(tmp_path, "grid: {seed: [0, 1], optimizer.learning_rate: [0.1]}\n")
    planned = plan.plan_sweep(path, ["train.epochs=2", "optimizer.name=sgd"])
    assert {(r.config.train.epochs, r.config.optimizer.name) for r in planned.runs} == {(2, "sgd")}
    with pytest.raises(UserError, match="name comes from"):
        plan.plan_sweep(path, ["name=other"])


def test_cli_sweep_set_of_a_grid_key_exits_2(tmp_path):
    path = write_sweep(tmp_path, "grid: {seed: [0, 1]}\n")
    result = CliRunner().invoke(cli.main, ["sweep", str(path), "--set", "seed=7", "--dry-run"])
    assert result.exit_code == 2
    assert "seed" in result.output and len(result.output.strip().splitlines()) == 1


def test_plan_sections_dedupe_and_names(tmp_path):
    (tmp_path / "base.yaml").write_text("train: {epochs: 3}\n")
    path = write_sweep(
        tmp_path,
        """
name: demo
base: base.yaml
grid:
  optimizer: [{name: adagrad, learning_rate: 0.01}, {name: adam}, {name: adagrad}]
  seed: [0, 1]
""",
    )
    planned = plan.plan_sweep(path, out=str(tmp_path / "out"))
    # {name: adagrad} resolves to learning_rate 0.01 as well: one run, not two.
    assert len(planned.runs) == 4
    assert planned.experiment_dir == tmp_path / "out" / "demo"
    assert {r.config.train.epochs for r in planned.runs} == {3}
    assert {r.config.name for r in planned.runs} == {"demo"}


def test_bad_point_is_named(tmp_path):
    path = write_sweep(tmp_path, "grid: {loss.name: [mse, msee], seed: [0]}\n")
    with pytest.raises(UserError, match=r"point 2 \(loss.name=msee, seed=0\).*did you mean"):
        plan.plan_sweep(path)


def test_unknown_sweep_key(tmp_path):
    with pytest.raises(UserError, match="grd: unknown key.*did you mean 'grid'"):
        plan.plan_sweep(write_sweep(tmp_path, "grd: {seed: [0]}\n"))


def test_committed_run_ids_do_not_move():
    """Planning the thesis sweeps gives exactly the run ids of the committed results."""
    for name in ("thesis-optimizers", "thesis-tuned"):
        planned = plan.plan_sweep(REPO / "configs" / "sweeps" / f"{name}.yaml")
        with open(REPO / "results" / "thesis" / f"{name}-runs.csv") as handle:
            rows = list(csv.DictReader(handle))
        # The committed runs' seeds: a sweep that gained seeds keeps the ids it had.
        seeds = {int(row["seed"]) for row in rows}
        kept = [run.config.run_id for run in planned.runs if run.config.seed in seeds]
        assert kept == [row["run_id"] for row in rows]


def test_a_huge_grid_is_refused_before_it_is_expanded(tmp_path):
    """10^12 range points and a 10^6-point product are counted, not built."""
    with pytest.raises(UserError, match=r"1,000,000,000,001 points, more than the limit"):
        plan.expand_grid({"seed": {"start": 0, "stop": 10**12, "step": 1}})
    product = {f"k{i}": list(range(10)) for i in range(6)}
    assert plan.count_points(product) == 10**6
    with pytest.raises(UserError, match="raise --max-runs"):
        plan.expand_grid(product)
    assert len(plan.expand_grid({"a": list(range(100)), "b": [0, 1]}, max_runs=200)) == 200


def test_a_sweep_name_must_be_one_plain_folder_name(tmp_path):
    for name in ("..", ".", "a/b", ".hidden"):
        path = write_sweep(tmp_path, f"name: '{name}'\ngrid: {{seed: [0]}}\n")
        with pytest.raises(UserError, match="name"):
            plan.plan_sweep(path, out=str(tmp_path / "out"))
    dots = write_sweep(tmp_path, "grid: {seed: [0]}\n", name="...yaml")  # stem '..'
    with pytest.raises(UserError, match="name"):
        plan.plan_sweep(dots, out=str(tmp_path / "out"))


def _runs(count, seeds=(0,)):
    from aeexp.config.run import validate

    return [
        plan.PlannedRun(
            validate({"seed": seed, "optimizer": {"learning_rate": 0.001 * (i + 1)}}), {}
        )
        for seed in seeds
        for i in range(count)
    ]


def test_groups_share_a_key_and_are_cut_evenly():
    groups = plan.group_runs(_runs(118), max_group=30)
    assert [len(g) for g in groups] == [30, 30, 29, 29]
    groups = plan.group_runs(_runs(30, seeds=(0, 1)), max_group=30)
    assert [len(g) for g in groups] == [30, 30]
    assert all(len({r.config.seed for r in g}) == 1 for g in groups)


def test_several_workers_get_a_multiple_of_their_number_of_groups():
    # Five seeds of 30 on two workers: ten groups of 15, not five of 30 (3 rounds vs 2.5).
    groups = plan.group_runs(_runs(30, seeds=range(5)), max_group=30, workers=2)
    assert [len(g) for g in groups] == [15] * 10
    assert [len(g) for g in plan.group_runs(_runs(1), max_group=30, workers=4)] == [1]


def test_planning_and_the_driver_import_no_tensorflow():
    """Planning, the driver and the Ray executor's module stay light: no TensorFlow, even
    transitively, so --dry-run, errors and a cluster's driver answer at once."""
    import subprocess
    import sys

    code = (
        "import sys, aeexp.config.sweep, aeexp.execute.driver, aeexp.api, aeexp.execute.ray;"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ("5-1", "expected a range"),
        ("0-99999999999", "more than 1000 seeds"),
        ("a,b", "expected a range"),
        ("-3", "expected a range"),
        ("99999999999999999999", "at most 1000 seeds in 0..9223372036854775807"),
    ],
)
def test_select_seeds_are_a_bounded_non_empty_list(seeds, message):
    from aeexp.analysis.selection import parse_seeds

    with pytest.raises(UserError, match=message):
        parse_seeds(seeds)
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4] and parse_seeds("1,3") == [1, 3]
