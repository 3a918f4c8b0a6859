"""Runs CSVs (a sweep's runs.csv, a report's committed <sweep>-runs.csv) as table and compare input.

A fresh clone has the committed CSVs and no run directory. The numbers are checked against
pandas computations of the CSV and against the committed reports, which were written from
the run directories; a CSV written by the ledger must give the table its run folders give.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from test_hostile_input import aeexp as cli_error

import aeexp
from aeexp import api, cli
from aeexp.analysis import compare, tables
from aeexp.errors import UserError
from aeexp.io import atomic
from aeexp.registry.published import THESIS_SSIM
from aeexp.store import ledger, runs_csv
from aeexp.store import rundir as store

REPO = Path(__file__).resolve().parents[1]
TUNED = REPO / "results/thesis/thesis-tuned-runs.csv"
OPTIMIZERS = REPO / "results/thesis/thesis-optimizers-runs.csv"
JAX = REPO / "results/backends/thesis-cells-jax-runs.csv"
COMMITTED = sorted(REPO.glob("results/**/*-runs.csv")) + sorted(
    REPO.glob("bench/tune_*/*-runs.csv")
)
LOSS_HEADERS = {"MSE": "mse", "E_I1": "i_div1", "E_I2": "i_div2"}
ROWS = {"ReLU-ReLU": "relu", "ReLU-Sigmoid": "sigmoid"}
CELL = re.compile(r"^(?P<mean>\d\.\d{3}) (?:± \d\.\d{3} |\[[^]]*\] )?\((?P<n>\d+)\) (?P<opt>.+)$")


def table_cells(text: str) -> dict[tuple[str, str], tuple[float, int, str]]:
    """Return (row, loss column) -> (mean, n, optimizer label) from a Markdown table."""
    lines = [line.strip("|").split(" | ") for line in text.strip().splitlines()]
    header, body = [h.strip() for h in lines[0]], lines[2:]
    found = {}
    for line in body:
        for column, cell in zip(header[1:], line[1:], strict=True):
            match = CELL.match(cell.strip())
            if column in LOSS_HEADERS and match:
                found[(line[0].strip(), column)] = (
                    float(match["mean"]),
                    int(match["n"]),
                    match["opt"],
                )
    return found


def best_by_pandas(path: Path, metric: str = "ssim_thesis") -> dict[tuple[str, str], tuple]:
    """Return each thesis cell's best (mean over seeds, n, optimizer, rate), by pandas alone."""
    frame = pd.read_csv(path)
    done = frame[frame["status"] == "completed"]
    means = done.groupby(["decoder_activation", "loss", "optimizer", "learning_rate"])[metric]
    stats = means.agg(["mean", "count"]).reset_index()
    best = stats.loc[stats.groupby(["decoder_activation", "loss"])["mean"].idxmax()]
    return {
        (r.decoder_activation, r.loss): (r.mean, r.count, r.optimizer, r.learning_rate)
        for r in best.itertuples()
    }


def test_the_thesis_table_from_the_committed_tuned_csv_is_pandas_best_and_the_thesis():
    text = tables.render(TUNED, compare=True)
    printed = table_cells(text)
    expected = best_by_pandas(TUNED)
    assert len(printed) == 6
    for (row, column), (mean, n, label) in printed.items():
        decoder, loss = ROWS[row], LOSS_HEADERS[column]
        best_mean, count, optimizer, rate = expected[(decoder, loss)]
        assert mean == pytest.approx(best_mean, abs=5e-4) and n == count == 5
        assert label.lower().startswith(optimizer) and label.endswith(f"lr={rate:g}")
        published = THESIS_SSIM[(decoder, loss)][0]
        assert f"| {published:.3f} " in text and f"{best_mean - published:+.3f}" in text


def test_the_tuned_table_matches_the_committed_report():
    """Each printed cell is the report's row for the same cell and rate (written from runs)."""
    report = (REPO / "results/thesis/REPORT.md").read_text()
    for (row, column), (mean, n, label) in table_cells(tables.render(TUNED)).items():
        rate = label.rsplit("lr=", 1)[1]
        line = re.search(
            rf"^\| {row} {column} \| {re.escape(rate)} \| (\S+) .*\((\d)\)", report, re.M
        )
        assert line is not None, (row, column, rate)
        assert float(line[1]) == mean and int(line[2]) == n


def test_the_optimizers_table_matches_the_committed_per_optimizer_table():
    committed = table_cells((REPO / "results/thesis/ssim_thesis_by_optimizer.md").read_text())
    printed = table_cells(tables.render(OPTIMIZERS, by="optimizer"))
    assert len(printed) == 30 and printed == committed


def write_plan_runs(tmp_path: Path) -> Path:
    """Write a small sweep's run directories by hand and its runs.csv by the ledger."""
    sweep = {
        "name": "grid",
        "config": {"train": {"epochs": 3}},
        "grid": {
            "loss.name": ["mse", "i_div2"],
            "optimizer.learning_rate": [0.001, 0.002],
            "seed": [0, 1, 2],
        },
    }
    plan = api.plan(sweep, out=tmp_path)
    for index, run in enumerate(plan.runs):
        score = 0.5 + 0.01 * index + (0.1 if run.config.loss.name == "mse" else 0.0)
        metrics = {"run_id": run.run_id, "status": "completed", "ssim_thesis": score}
        metrics |= {"ssim_mean": score / 2, "mse": 0.02, "psnr_mean": 17.0 + index}
        files = {
            store.CONFIG: atomic.encode_yaml(run.config.resolved()).encode(),
            store.METRICS: atomic.encode_json(metrics).encode(),
        }
        store.write_run_files(run.run_dir, files, tmp_path)
    ledger.Ledger(plan).write()
    return plan.experiment_dir


@pytest.mark.parametrize("metric", ["ssim_thesis", "ssim_mean", "mse", "psnr_mean"])
@pytest.mark.parametrize("fmt", ["md", "csv"])
def test_a_runs_csv_gives_the_table_its_run_folders_give(tmp_path, metric, fmt):
    folder = write_plan_runs(tmp_path)
    from_runs = tables.render(folder, metric, fmt, by="optimizer")
    assert tables.render(folder / ledger.RUNS_CSV, metric, fmt, by="optimizer") == from_runs


def test_load_runs_of_a_csv_has_the_folders_config_keys_and_metrics(tmp_path):
    folder = write_plan_runs(tmp_path)
    runs = aeexp.load_runs(folder).sort_values("run_id", ignore_index=True)
    recorded = aeexp.load_runs(folder / ledger.RUNS_CSV).sort_values("run_id", ignore_index=True)
    assert len(recorded) == len(runs) == 12
    assert set(recorded["name"]) == {"grid"}
    assert all(p.startswith(str(folder / ledger.RUNS_CSV) + ":") for p in recorded["path"])
    shared = ["run_id", "status", "loss.name", "optimizer.learning_rate", "seed", "ssim_thesis"]
    pd.testing.assert_frame_equal(recorded[shared], runs[shared], check_dtype=False)
    assert "train.epochs" not in recorded  # the base config is not in a runs.csv: not made up


def test_run_directories_win_over_the_runs_csv_beside_them(tmp_path):
    folder = write_plan_runs(tmp_path)
    assert runs_csv.locate(folder) is None
    (folder / ledger.RUNS_CSV).write_text("damaged")  # not read: the run directories are
    assert len(aeexp.load_runs(folder)) == 12


def test_a_folder_holding_one_runs_csv_stands_for_it(tmp_path):
    (tmp_path / "notes.csv").write_text("not,a,runs,csv\n")  # not named like one: ignored
    (tmp_path / "thesis-cells-jax-runs.csv").write_bytes(JAX.read_bytes())
    assert runs_csv.locate(tmp_path) == tmp_path / "thesis-cells-jax-runs.csv"
    assert tables.render(tmp_path) == tables.render(JAX)
    assert set(aeexp.load_runs(tmp_path)["name"]) == {"thesis-cells-jax"}


def test_a_folder_holding_several_runs_csvs_is_ambiguous():
    message = cli_error_in_process("table", str(REPO / "results/thesis"))
    assert "holds 2 runs CSVs (thesis-optimizers-runs.csv, thesis-tuned-runs.csv)" in message
    assert message.endswith("name one of them")


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_every_committed_runs_csv_reads_whole(path):
    frame = aeexp.load_runs(path)
    expected = pd.read_csv(path)
    expected = expected[expected["status"] != "pending"]
    assert list(frame["run_id"]) == list(expected["run_id"])
    assert frame["ssim_thesis"].to_numpy() == pytest.approx(expected["ssim_thesis"].to_numpy())
    assert tables.render(path, "ssim_mean").count("\n") >= 2


def test_compare_one_cell_of_two_committed_csvs_matches_the_backends_report():
    """ReLU-Sigmoid MSE Adam: TensorFlow 0.8422 ± 0.0025 (5), JAX 0.8408 ± 0.0057 (5)."""
    where = "loss.name=mse,model.decoder_activation=sigmoid,optimizer.name=adam"
    result = compare.compare(str(OPTIMIZERS), str(JAX), metrics=["ssim_thesis"], where=where)
    tf, jax = (side.values("ssim_thesis") for side in result.sides)
    assert len(tf) == len(jax) == 5
    report = (REPO / "results/backends/REPORT.md").read_text()
    line = "| ReLU-Sigmoid, MSE, Adam | ssim_thesis | 0.8422 ± 0.0025 (5) | 0.8408 ± 0.0057 (5) |"
    assert line in report
    assert (round(pd.Series(tf).mean(), 4), round(pd.Series(tf).std(), 4)) == (0.8422, 0.0025)
    assert (round(pd.Series(jax).mean(), 4), round(pd.Series(jax).std(), 4)) == (0.8408, 0.0057)
    assert compare.CSV_CAVEAT in result.render()


def test_filters_select_from_a_root_csv():
    result = compare.compare(
        "optimizer.name=adam", "optimizer.name=nadam", root=OPTIMIZERS, where="loss.name=i_div2"
    )
    frame = pd.read_csv(OPTIMIZERS)
    for side, name in zip(result.sides, ("adam", "nadam"), strict=True):
        chosen = frame[(frame["optimizer"] == name) & (frame["loss"] == "i_div2")]
        assert sorted(side.values("ssim_mean")) == sorted(chosen["ssim_mean"])
    assert result.differing["optimizer.name"] == ["adam", "nadam"]
    assert compare.CSV_NOTE not in result.render()  # one sweep: one base config
    mixed = compare.compare(str(JAX), "optimizer.name=adam", root=OPTIMIZERS)
    assert compare.CSV_NOTE in mixed.render()  # two sweeps: what a CSV does not say may differ


def test_where_that_no_run_of_a_side_meets_is_one_line():
    where = "optimizer.name=adagrad,loss.name=i_div2"  # the JAX cells trained AdaDelta there
    with pytest.raises(UserError, match=rf"no run of .*jax-runs.csv matches {where}$"):
        compare.compare(str(OPTIMIZERS), str(JAX), where=where)


def test_figures_need_run_directories(tmp_path):
    message = cli_error_in_process("table", str(JAX), "--figures", str(tmp_path / "figs"))
    assert "--figures needs run directories" in message
    assert not (tmp_path / "figs").exists()


def cli_error_in_process(*args: str) -> str:
    """Invoke the CLI in-process; assert exit 2 and one error line; return the message."""
    result = CliRunner().invoke(cli.main, list(args))
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aeexp: error: "), result.stderr
    return lines[0]


# --- Damaged and foreign CSVs ---------------------------------------------------------------

HEADER = JAX.read_text().splitlines()[0]
ROW = JAX.read_text().splitlines()[1]


def with_cell(column: str, value: str, row: str = ROW) -> str:
    """Return ``row`` of the JAX CSV with ``column`` set to ``value``."""
    cells = next(csv.reader([row]))
    cells[HEADER.split(",").index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(cells)
    return buffer.getvalue()


def other_run(row: str = ROW) -> str:
    return with_cell("run_id", "0123456789", row)


TEXT_CASES = {
    "empty": ("", "empty, not a runs CSV"),
    "header only": (HEADER + "\n", "no trained runs in it"),
    "foreign": ("a,b\n1,2\n", "not a runs CSV (no run_id, status, loss, decoder_activation"),
    "no metric": (
        HEADER.replace(",ssim_thesis,", ",x,") + "\n" + ROW + "\n",
        "not a runs CSV (no ssim_thesis column)",
    ),
    "text metric": (f"{HEADER}\n{with_cell('ssim_mean', 'high')}\n", "ssim_mean holds 'high'"),
    "text rate": (f"{HEADER}\n{with_cell('learning_rate', 'fast')}\n", "learning_rate holds"),
    "fractional seed": (f"{HEADER}\n{with_cell('seed', '1.5')}\n", "not a whole number"),
    "negative seed": (f"{HEADER}\n{with_cell('seed', '-1')}\n", "seed"),
    "unknown loss": (f"{HEADER}\n{with_cell('loss', 'l1')}\n", "loss 'l1' is not a loss"),
    "loss disagrees": (
        f"{HEADER}\n{with_cell('loss.name', 'i_div1')}\n",
        "loss.name is 'i_div1', its descriptive column says 'mse'",
    ),
    "optimizer disagrees": (
        f"{HEADER}\n{with_cell('optimizer', 'adam')}\n",
        "optimizer.name is 'adagrad', its descriptive column says 'adam'",
    ),
    "unknown optimizer": (
        f"{HEADER}\n{with_cell('optimizer.name', 'lion', with_cell('optimizer', 'lion'))}\n",
        "unknown optimizer 'lion'",
    ),
    "unknown status": (f"{HEADER}\n{with_cell('status', 'done')}\n", "status 'done' is none of"),
    "duplicated id": (
        f"{HEADER}\n{ROW}\n{ROW}\n",
        "line 3: run 'b9623b8d13' again (first at line 2)",
    ),
    "short row": (f"{HEADER}\n{ROW}\n1,2\n", "line 3 has 2 fields, the header 23"),
    "column twice": (f"{HEADER},seed\n{ROW},0\n", "column 'seed' appears twice"),
    "list in a grid key": (f"{HEADER}\n{with_cell('loss.name', '[mse]')}\n", "not a single value"),
    "too many columns": (",".join(f"c{i}" for i in range(101)) + "\n", "101 columns"),
    "too many rows": (
        HEADER + "\n" + f"{ROW}\n" * (runs_csv.MAX_ROWS + 1),
        f"more than {runs_csv.MAX_ROWS} rows",
    ),
    "huge field": (f"{HEADER}\n{ROW}{'x' * 200_000}\n", "not a readable CSV (field larger"),
}
BYTE_CASES = {
    "binary": (b"\x00\x01\x02" * 100, "binary file, not UTF-8 text (NUL byte at offset 0)"),
    "not utf-8": (HEADER.encode() + b"\n\xff\xfe\n", "not UTF-8 text (byte 0xff at line 2)"),
}


def write_case(tmp_path: Path, content: str | bytes, name: str = "bad-runs.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


ALL_CASES = {**TEXT_CASES, **BYTE_CASES}


@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_a_damaged_csv_is_one_user_error_in_process(tmp_path, case):
    content, fragment = ALL_CASES[case]
    path = write_case(tmp_path, content)
    for read in (aeexp.load_runs, tables.render, runs_csv.load_runs):
        with pytest.raises(UserError) as caught:
            read(path)
        assert fragment in str(caught.value) and "\n" not in str(caught.value)


SPECIAL = ["oversized", "fifo", "device", "folder", "absent", "symlink loop"]


def make_special(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """Make a path named .csv that is not a readable runs CSV; return it and the message."""
    path = tmp_path / f"{kind.replace(' ', '-')}-runs.csv"
    if kind == "oversized":  # sparse: 64 MiB and a byte, costing no disk
        with path.open("wb") as file:
            file.truncate(64 * 1024 * 1024 + 1)
        return path, "larger than 64 MiB, too large for a runs CSV"
    if kind == "fifo":
        os.mkfifo(path)
        return path, "not a regular file"
    if kind == "device":
        path.symlink_to("/dev/zero")
        return path, "not a regular file"
    if kind == "folder":
        path.mkdir()
        return path, "no complete runs found"
    if kind == "symlink loop":
        path.symlink_to(path.name)
        return path, "symlink loop"
    return path, "no such file"


@pytest.mark.parametrize("kind", SPECIAL)
def test_a_path_that_is_no_csv_file_is_one_user_error_in_process(tmp_path, kind):
    path, fragment = make_special(tmp_path, kind)
    with pytest.raises(UserError, match=re.escape(fragment)):
        aeexp.load_runs(path)
    assert fragment in cli_error_in_process("table", str(path))


CLI_CASES = ["empty", "header only", "text metric", "duplicated id", "too many rows", "huge field"]


# compare imports pandas and SciPy, ~570 MB of address space before it reads a byte.
COMPARE_MEMORY = 1 << 30


@pytest.mark.slow  # real processes; the in-process cases above are the cheap version
@pytest.mark.parametrize("case", [*CLI_CASES, *BYTE_CASES])
def test_a_damaged_csv_through_the_real_cli_is_one_line(tmp_path, case):
    content, fragment = ALL_CASES[case]
    path = write_case(tmp_path, content)
    assert fragment in cli_error(tmp_path, "table", str(path))
    message = cli_error(tmp_path, "compare", str(path), str(JAX), memory=COMPARE_MEMORY)
    assert fragment in message


@pytest.mark.slow  # real processes; the in-process case above is the cheap version
@pytest.mark.parametrize("kind", SPECIAL)
def test_a_path_that_is_no_csv_file_through_the_real_cli_is_one_line(tmp_path, kind):
    path, fragment = make_special(tmp_path, kind)
    assert fragment in cli_error(tmp_path, "table", str(path))
    side = cli_error(tmp_path, "compare", str(JAX), str(path), memory=COMPARE_MEMORY)
    root = ("compare", "--root", str(path), "seed=0", "seed=1")
    assert fragment in side and fragment in cli_error(tmp_path, *root, memory=COMPARE_MEMORY)


def many_runs(rows: int, padding: int) -> str:
    """Return a runs CSV of ``rows`` distinct runs, each with ``padding`` bytes of a note."""
    lines = [f"{HEADER},note"]
    for i in range(rows):
        row = with_cell("seed", str(i), with_cell("run_id", f"{i:010x}"))
        lines.append(f"{row},{'p' * padding}")
    return "\n".join(lines) + "\n"


MOST_ROWS = min(runs_csv.MAX_ROWS, runs_csv.MAX_CELLS // 24)  # of the JAX CSV and a note


@pytest.mark.slow  # real processes at the size caps
@pytest.mark.parametrize(
    ("rows", "padding"),
    [(MOST_ROWS + 1, 1), (400, 100_000), (MOST_ROWS + 1, 2_900)],
    ids=["most rows", "longest cells", "near 64 MiB"],
)
def test_the_largest_csvs_stay_within_the_cli_memory_limits(tmp_path, rows, padding):
    """At the caps, read whole or refused at once, under the launcher's address-space caps."""
    path = write_case(tmp_path, many_runs(rows, padding), "big-runs.csv")
    assert path.stat().st_size < 64 << 20
    refused = f"more than {MOST_ROWS} rows of 24 columns"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    from test_hostile_input import launch

    table = launch(cwd, ["table", str(path), "--metric", "ssim_mean"], keras_home=cwd)
    both = launch(cwd, ["compare", str(path), str(JAX)], keras_home=cwd, memory=COMPARE_MEMORY)
    for result in (table, both):
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        if rows > MOST_ROWS:
            assert result.returncode == 2 and refused in result.stderr
        else:
            assert result.returncode == 0, result.stderr[-2000:]


def test_a_non_finite_metric_is_missing_with_a_warning_naming_the_line(tmp_path, capsys):
    path = write_case(tmp_path, f"{HEADER}\n{with_cell('ssim_thesis', 'nan')}\n{other_run()}\n")
    text = tables.render(path)
    assert "(n=" not in text and "0.788" in text  # the other run's value, alone
    warning = capsys.readouterr().err
    assert f"{path}:2 has 'ssim_thesis' = nan, not a finite number" in warning
    assert "metrics.json" not in warning


def test_pending_rows_are_left_out(tmp_path):
    pending = with_cell("status", "pending", other_run())
    for column in ("ssim_thesis", "ssim_mean"):
        pending = with_cell(column, "", pending)
    frame = aeexp.load_runs(write_case(tmp_path, f"{HEADER}\n{ROW}\n{pending}\n"))
    assert list(frame["run_id"]) == ["b9623b8d13"] and not math.isnan(frame["ssim_thesis"][0])


# --- The how-to page ---------------------------------------------------------------------------

DOC = REPO / "docs/how-to/compare.md"


def documented_outputs() -> list[tuple[str, str]]:
    """Return each documented command whose output the page shows, with that output."""
    text = DOC.read_text()
    shown = re.findall(
        r"```bash\n(aeexp [^\n]+)\n```\n\n(?:[^`]*?\n)?```text\n(.*?)```", text, re.S
    )
    return [(command, output) for command, output in shown]


def test_the_page_shows_what_its_commands_print(monkeypatch):
    monkeypatch.chdir(REPO)
    shown = documented_outputs()
    assert len(shown) == 4  # the thesis table, a folder's CSV, two comparisons
    for command, output in shown:
        result = CliRunner().invoke(cli.main, command.split()[1:])
        assert result.exit_code == 0, (command, result.output)
        assert result.stdout == output, command


def test_load_runs_of_run_folders_has_each_runs_experiment_name(tmp_path):
    """As a runs.csv's frame has (above): the name is the config's, kept apart from its keys."""
    folder = write_plan_runs(tmp_path)
    runs = aeexp.load_runs(folder)
    assert len(runs) == 12 and set(runs["name"]) == {"grid"}


def test_summary_rows_name_a_dataset_off_mnist_and_give_a_finished_run_a_reason(tmp_path):
    """Off MNIST, each row records data.name (not a grid key here); a finished run's reason is
    '' (none given), a pending run has no metrics and so no reason at all."""
    sweep = {"name": "f", "config": {"data": {"name": "fashion_mnist"}}, "grid": {"seed": [0, 1]}}
    plan = api.plan(sweep, out=tmp_path)
    done, pending = (run.run_id for run in plan.runs)
    rows = ledger.summary_rows(plan, {done: {"status": "completed"}, pending: None})
    assert [row[ledger.DATASET_COLUMN] for row in rows] == ["fashion_mnist"] * 2
    assert rows[0]["reason"] == "" and "reason" not in rows[1]
    ledger.Ledger(plan).write()
    with (plan.experiment_dir / ledger.RUNS_CSV).open() as handle:
        assert [row["data.name"] for row in csv.DictReader(handle)] == ["fashion_mnist"] * 2
