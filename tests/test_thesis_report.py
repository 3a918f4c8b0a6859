"""The thesis report: per-cell verdicts under both protocol variants, from hand-made runs."""

import filecmp
import re
from pathlib import Path

import pytest
from fakeruns import MACHINE, cell_raw, fake_run, thesis_cells

from aeexp.analysis import cells as cells_lib
from aeexp.analysis import figures, protocol, verdicts
from aeexp.store import rundir as store
from aeexp.studies import thesis as report
from aeexp.studies import thesis_verdicts as sections

# Per cell: (gray offset, viridis offset, jitter scale) of our runs from the published value.
OFFSETS = {
    ("relu", "mse"): (0.0, 0.05, 1),  # gray equivalent, viridis different
    ("relu", "i_div1"): (-0.2, -0.2, 1),  # different under both
    ("relu", "i_div2"): (0.0, 0.0, 20),  # seeds too spread to decide: inconclusive
    ("sigmoid", "i_div1"): (-0.07, 0.0, 1),  # gray different, viridis equivalent
}
JITTER = (-0.001, 0.0, 0.001, 0.0005)
RATES = (0.5, 0.25)


def write_sweeps(tmp_path, seeds=3, diverge=(), machine=MACHINE):
    """Write the defaults sweep and the tuned grid (two rates) on ``seeds`` seeds, six cells.

    Rate 0.25 is the better point, except on seed 2 where 0.5 wins by a hair: each seed's
    best is its own pick.
    """
    extra = {"machine": machine} if machine else {}
    for decoder, loss, value, optimizer in thesis_cells():
        gray, viridis, scale = OFFSETS.get((decoder, loss), (0.0, 0.0, 1))

        def scores(seed, shift=0.0, value=value, gray=gray, viridis=viridis, scale=scale):
            j = scale * JITTER[seed % len(JITTER)]
            return {
                "ssim_thesis": value + gray + j + shift,
                "ssim_thesis_viridis": value + viridis + j + shift,
                "ssim_mean": 0.5 + j,
            }

        for seed in range(seeds):
            raw = cell_raw(decoder, loss, optimizer, seed)
            if (decoder, loss, seed) in diverge:
                fake_run(tmp_path, raw, name="thesis-optimizers", status="diverged")
            else:
                fake_run(tmp_path, raw, name="thesis-optimizers", **scores(seed), **extra)
            for lr in RATES:
                shift = (0.0001 if seed == 2 else -0.3) if lr == 0.5 else 0.0
                raw = cell_raw(decoder, loss, optimizer, seed, learning_rate=lr)
                fake_run(tmp_path, raw, name="thesis-tuned", **scores(seed, shift), **extra)
    return tmp_path / "thesis-optimizers", tmp_path / "thesis-tuned"


def write(tmp_path, out="out", **kwargs):
    defaults, tuned = write_sweeps(tmp_path / "runs", **kwargs)
    path = report.write_report(defaults, tuned, tmp_path / out)
    return path.read_text()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The default study's report, written once for the tests that only read it."""
    root = tmp_path_factory.mktemp("thesis-report")
    return write(root), root / "out"


@pytest.fixture(scope="module")
def four_seeds(tmp_path_factory):
    """The cells of a four-seed study, built once for the tests that only read them."""
    return build(tmp_path_factory.mktemp("four-seeds"), seeds=4)


def build(tmp_path, **kwargs):
    defaults, tuned = write_sweeps(tmp_path / "runs", **kwargs)
    return cells_lib.build_cells(
        store.load_runs(defaults), store.load_runs(tuned), protocol.Meter()
    )


def test_each_cell_gets_its_verdicts_gray_first(tmp_path):
    text = write(tmp_path, seeds=4)
    section = text.split("## Verdict, cell by cell", 1)[1].split("The rule, fixed", 1)[0]
    assert "- 3 equivalent, 2 different, 1 inconclusive, of 6 under gray (primary)." in section
    assert "- 3 equivalent, 2 different, 1 inconclusive, of 6 under viridis (secondary)." in section
    line = next(x for x in section.splitlines() if x.startswith("- **ReLU-ReLU MSE**"))
    assert "gray: equivalent (procedure, Adagrad, best of 2 rates per seed:" in line
    assert "; viridis: different (procedure" in line and "gap +0.050" in line
    line = next(x for x in section.splitlines() if x.startswith("- **ReLU-ReLU E_I2**"))
    assert "gray: inconclusive" in line
    closing = text.split("## Closing note", 1)[1]
    assert closing.count("- **") == 6 and "TOST p" in closing


def test_the_procedure_is_each_seeds_best_grid_point(tmp_path):
    cells = {(c.decoder, c.loss): c for c in build(tmp_path)}
    procedure = cells[("relu", "mse")].estimate(cells_lib.PRIMARY, "gray")
    rates = [r.config.optimizer.learning_rate for r in procedure.runs]
    assert procedure.seeds == (0, 1, 2) and rates == [0.25, 0.25, 0.5]
    grid_best = [max(v, w) for v, w in zip(*_per_rate(tmp_path, "relu", "mse"), strict=True)]
    assert procedure.values == pytest.approx(tuple(grid_best))


def _per_rate(tmp_path, decoder, loss):
    """Each rate's gray scores by seed, read back independently from the run directories."""
    runs = store.load_runs(tmp_path / "runs" / "thesis-tuned")
    found = {}
    for r in runs:
        if r.config.model.decoder_activation == decoder and r.config.loss.name == loss:
            rate = r.config.optimizer.learning_rate
            found.setdefault(rate, {})[r.config.seed] = r.metrics["ssim_thesis"]
    return [[found[rate][seed] for seed in sorted(found[rate])] for rate in RATES]


def test_verdicts_csv_is_the_rule_row_by_row(written):
    import csv

    _, out = written
    rows = list(csv.DictReader((out / sections.VERDICTS_FILE).open()))
    assert len(rows) == 6 * 2 * 2
    assert list(rows[0]) == list(sections.VERDICT_FIELDS)
    row = next(
        r
        for r in rows
        if r["cell"] == "ReLU-ReLU E_I1" and r["variant"] == "gray" and r["statistic"] == "defaults"
    )
    values = [0.526 - 0.2 + j for j in JITTER[:3]]
    expected = verdicts.judge(values, 0.526)
    assert float(row["gap"]) == pytest.approx(expected.gap)
    assert float(row["tost_p"]) == pytest.approx(expected.tost_p)
    assert row["verdict"] == "different" and row["holm_verdict"] == "different"


def test_report_counts_its_grid_and_cites_only_repository_files(tmp_path):
    text = write(tmp_path, diverge={("relu", "mse", 0)})
    assert "3 losses x 2 decoders x 5 optimizers" in text  # the thesis's five, counted
    assert (
        "THESIS.md" not in text
        and "[docs/explanation/ssim-protocol.md](../../docs/explanation/ssim-protocol.md)" in text
    )
    assert "2-3 completed seeds (of 3)" in text
    assert "nan" not in text.lower().replace("nadam", "")
    assert (Path(report.__file__).parents[2] / report.PROTOCOL_PAGE).is_file()


def test_report_has_intervals_holm_and_the_figures(written):
    text, out = written
    assert not re.search(r"\d ± \d", text)  # no mean ± std left: intervals instead
    assert "Holm-adjusted" in text and "[" in text
    figures = out / "figures"
    for _, loss, _, optimizer in thesis_cells():
        assert any(figures.glob(f"cell_{loss}_*_{optimizer}.png"))
    assert (figures / "ssim_thesis_bars.png").is_file()
    assert (figures / "ssim_thesis_viridis_bars.png").is_file()
    assert "No run directory holds a saved model" in text


def test_bars_mark_the_published_value(tmp_path, monkeypatch):
    from aeexp import plots

    calls = []
    monkeypatch.setattr(plots, "grouped_bars", lambda *args: calls.append(args))
    defaults, _ = write_sweeps(tmp_path / "runs")
    runs = store.load_runs(defaults)
    figures.write_figures(runs, "ssim_thesis", tmp_path / "f")
    figures.write_figures(runs, "ssim_mean", tmp_path / "f")
    gray, full = calls
    groups, markers = gray[0], gray[5]
    assert markers[groups.index("ReLU-Sigmoid\nE_I1")] == 0.632
    assert full[5] is None


def test_regenerating_the_report_is_byte_identical(tmp_path):
    defaults, tuned = write_sweeps(tmp_path / "runs")
    first = report.write_report(defaults, tuned, tmp_path / "a").parent
    second = report.write_report(defaults, tuned, tmp_path / "b").parent
    report.write_report(defaults, tuned, first)  # over itself, too
    names = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(first, second, [str(n) for n in names], shallow=False)
    assert not mismatch and not errors


def test_report_cli_writes_report_and_verdicts(tmp_path):
    from click.testing import CliRunner

    from aeexp.cli import main

    defaults, tuned = write_sweeps(tmp_path / "runs")
    args = ["report", "thesis", str(defaults), str(tuned)]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "REPORT.md").is_file()
    assert (tmp_path / "out" / sections.VERDICTS_FILE).is_file()
    assert "seeds 0-2" in (tmp_path / "out" / "REPORT.md").read_text()


GOLDEN = Path(__file__).parent / "golden" / "thesis-report.md"


def test_each_cells_verdict_as_data(four_seeds):
    cells = four_seeds
    found = {
        (c.decoder, c.loss): tuple(
            c.estimate(cells_lib.PRIMARY, v).judgement.verdict for v in protocol.VARIANTS
        )
        for c in cells
    }
    assert found == {
        ("relu", "mse"): ("equivalent", "different"),
        ("relu", "i_div1"): ("different", "different"),
        ("relu", "i_div2"): ("inconclusive", "inconclusive"),
        ("sigmoid", "mse"): ("equivalent", "equivalent"),
        ("sigmoid", "i_div1"): ("different", "equivalent"),
        ("sigmoid", "i_div2"): ("equivalent", "equivalent"),
    }


def test_a_cell_judged_against_its_neighbours_value_is_different(four_seeds):
    """Judged against a published value 0.05 away (another cell's), the rule says no."""
    for cell in four_seeds:
        procedure = cell.estimate(cells_lib.PRIMARY, "gray")
        if cell.label in ("ReLU-Sigmoid MSE", "ReLU-Sigmoid E_I2"):
            for shift in (-0.05, 0.05):
                assert verdicts.judge(procedure.values, cell.published + shift).verdict == (
                    "different"
                )


def test_the_prose_matches_the_one_golden_file(written):
    """The report's wording, checked once; regenerate the golden file on purpose only."""
    text, _ = written
    assert text == GOLDEN.read_text()


def test_the_verdicts_table_renders_the_same_from_the_csv(written):
    """What the README pastes: the table from verdicts.csv is the one REPORT.md shows."""
    import csv

    text, out = written
    rows = list(csv.DictReader((out / sections.VERDICTS_FILE).open()))
    assert sections.verdicts_markdown(rows) in text


def test_a_cell_without_runs_says_so_in_its_verdict_line():
    class NoRuns:
        label, optimizer_label, published = "MSE", "Adam", 0.5

        def estimate(self, statistic, variant):
            return None

    expected = "- **MSE** (Adam, published 0.500): no completed run of the grid."
    assert sections.verdict_line(NoRuns()) == expected
