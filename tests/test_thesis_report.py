"""The thesis report: per-cell verdicts under both protocol variants, from hand-made runs."""

import filecmp
import re
from pathlib import Path

import pytest
from fakeruns import MACHINE, cell_raw, fake_run, thesis_cells

from aeexp import store
from aeexp.analysis import cells as cells_lib
from aeexp.analysis import figures, protocol, tables
from aeexp.studies import thesis as report

# Per cell: (gray offset, viridis offset) of our runs from the published value.
OFFSETS = {
    ("relu", "mse"): (0.0, 0.05),  # gray agrees
    ("relu", "i_div1"): (-0.2, -0.2),  # nothing agrees
    ("sigmoid", "i_div1"): (-0.07, 0.0),  # viridis only
}
JITTER = (-0.01, 0.0, 0.01, 0.005)


def write_sweeps(tmp_path, seeds=3, tuned_seeds=(1, 2, 3), diverge=(), machine=MACHINE):
    """Write defaults, tuned (seed 0, two rates) and tuned-seeds sweeps for the six cells."""
    extra = {"machine": machine} if machine else {}
    for decoder, loss, value, optimizer in thesis_cells():
        gray, viridis = OFFSETS.get((decoder, loss), (0.0, 0.0))

        def scores(seed, shift=0.0, value=value, gray=gray, viridis=viridis):
            j = JITTER[seed % len(JITTER)]
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
        for lr, shift in ((0.5, -0.3), (0.25, 0.0)):
            raw = cell_raw(decoder, loss, optimizer, 0, learning_rate=lr)
            fake_run(tmp_path, raw, name="thesis-tuned", **scores(0, shift), **extra)
        for seed in tuned_seeds:
            raw = cell_raw(decoder, loss, optimizer, seed, learning_rate=0.25)
            fake_run(tmp_path, raw, name="thesis-tuned-seeds", **scores(seed), **extra)
    return (
        tmp_path / "thesis-optimizers",
        tmp_path / "thesis-tuned",
        tmp_path / "thesis-tuned-seeds",
    )


def write(tmp_path, out="out", **kwargs):
    defaults, tuned, reruns = write_sweeps(tmp_path / "runs", **kwargs)
    path = report.write_report(defaults, tuned, tmp_path / out, reruns)
    return path.read_text()


def test_each_cell_gets_its_verdict_and_the_statistic_it_rests_on(tmp_path):
    text = write(tmp_path)
    verdicts = text.split("## Verdict, cell by cell", 1)[1].split("Agreement rule", 1)[0]
    assert "Of the 6 cells: 4 reproduced under gray, 1 reproduced under viridis only, " in text
    line = next(x for x in verdicts.splitlines() if x.startswith("- **ReLU-ReLU MSE**"))
    assert "reproduced under gray; rests on gray, tuned (Adagrad lr=0.25, seeds 1-3)" in line
    line = next(x for x in verdicts.splitlines() if x.startswith("- **ReLU-Sigmoid E_I1**"))
    assert "reproduced under viridis only; rests on viridis, tuned" in line
    assert "Under gray the closest is gray," in line and "-0.070 from the published" in line
    line = next(x for x in verdicts.splitlines() if x.startswith("- **ReLU-ReLU E_I1**"))
    assert "not reproduced; closest:" in line and "-0.200 from the published" in line
    # The closing note repeats the six verdicts with their numbers.
    closing = text.split("## Closing note", 1)[1]
    assert closing.count("- **") == 6 and "tolerance of ±" in closing


def test_the_rule_is_a_prediction_interval_with_seed_and_protocol_terms():
    from scipy import stats as scipy_stats

    values = (0.80, 0.82, 0.81, 0.83)
    stat = tables.ConfigStats(runs=(), values=values, metric="ssim_thesis")
    noise = protocol.ProtocolNoise(
        (protocol.ModelNoise(None, {"gray": (0.80, 0.84, 0.82)}),), "gray"
    )
    estimate = cells_lib.Estimate("defaults", "gray", stat, noise, 0.9, (0, 1, 2, 3))
    s, p, n = float(stat.std), 0.02, 4
    expected = scipy_stats.t.ppf(0.975, n - 1) * (s**2 * (1 + 1 / n) + p**2) ** 0.5
    assert estimate.protocol_sd == pytest.approx(p)
    assert estimate.tolerance == pytest.approx(expected)
    assert estimate.agrees == (abs(stat.mean - 0.9) <= expected)
    without = cells_lib.Estimate(
        "defaults", "gray", stat, protocol.ProtocolNoise((), "gray"), 0.9, (0, 1, 2, 3)
    )
    assert without.tolerance < estimate.tolerance  # the protocol term widens it
    single = tables.ConfigStats(runs=(), values=(0.9,), metric="ssim_thesis")
    lone = cells_lib.Estimate("defaults", "gray", single, noise, 0.9, (0,))
    assert not lone.agrees  # one seed has no spread to weigh a gap against


def test_tuned_statistic_never_reuses_the_selecting_seed(tmp_path):
    # The reruns include seed 0 again: it must not enter the tuned estimate.
    defaults, tuned, reruns = write_sweeps(tmp_path / "runs", tuned_seeds=(0, 1, 2))
    cells = cells_lib.build_cells(
        store.load_runs(defaults),
        store.load_runs(tuned),
        store.load_runs(reruns),
        protocol.Meter(),
    )
    for cell in cells:
        for variant in protocol.VARIANTS:
            assert cell.estimate("tuned", variant).seeds == (1, 2)


def test_without_reruns_the_tuned_statistic_is_missing_and_said_so(tmp_path):
    defaults, tuned, _ = write_sweeps(tmp_path / "runs")
    text = report.write_report(defaults, tuned, tmp_path / "out").read_text()
    assert "no rerun of the tuned grid over seeds was given" in text
    assert "| tuned | no completed run |" in text


def test_report_counts_its_grid_and_cites_only_repository_files(tmp_path):
    text = write(tmp_path, diverge={("relu", "mse", 0)})
    assert "3 losses x 2 decoders x 5 optimizers" in text  # the thesis's five, counted
    assert "THESIS.md" not in text and "[docs/protocol.md](../../docs/protocol.md)" in text
    assert "2-3 completed seeds (of 3)" in text
    assert "nan" not in text.lower().replace("nadam", "")
    assert (Path(report.__file__).parents[2] / report.PROTOCOL_PAGE).is_file()


def test_report_has_intervals_holm_and_the_figures(tmp_path):
    text = write(tmp_path)
    assert not re.search(r"\d ± \d", text)  # no mean ± std left: intervals instead
    assert "Holm-adjusted" in text and "[" in text
    figures = tmp_path / "out" / "figures"
    for _, loss, _, optimizer in thesis_cells():
        assert any(figures.glob(f"cell_{loss}_*_{optimizer}.png"))
    assert (figures / "ssim_thesis_bars.png").is_file()
    assert (figures / "ssim_thesis_viridis_bars.png").is_file()
    assert "No run directory holds a saved model" in text


def test_bars_mark_the_published_value(tmp_path, monkeypatch):
    from aeexp import plots

    calls = []
    monkeypatch.setattr(plots, "grouped_bars", lambda *args: calls.append(args))
    defaults, _, _ = write_sweeps(tmp_path / "runs")
    runs = store.load_runs(defaults)
    figures.write_figures(runs, "ssim_thesis", tmp_path / "f")
    figures.write_figures(runs, "ssim_mean", tmp_path / "f")
    gray, full = calls
    groups, markers = gray[0], gray[5]
    assert markers[groups.index("ReLU-Sigmoid\nE_I1")] == 0.632
    assert full[5] is None


def test_regenerating_the_report_is_byte_identical(tmp_path):
    defaults, tuned, reruns = write_sweeps(tmp_path / "runs")
    first = report.write_report(defaults, tuned, tmp_path / "a", reruns).parent
    second = report.write_report(defaults, tuned, tmp_path / "b", reruns).parent
    report.write_report(defaults, tuned, first, reruns)  # over itself, too
    names = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(first, second, [str(n) for n in names], shallow=False)
    assert not mismatch and not errors


def test_report_cli_takes_the_reruns(tmp_path):
    from click.testing import CliRunner

    from aeexp.cli import main

    defaults, tuned, reruns = write_sweeps(tmp_path / "runs")
    args = ["report", "thesis", str(defaults), str(tuned), "--tuned-seeds", str(reruns)]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "REPORT.md").is_file()
    assert "seeds 1-3" in (tmp_path / "out" / "REPORT.md").read_text()


GOLDEN = Path(__file__).parent / "golden" / "thesis-report.md"


def test_each_cells_verdict_as_data(tmp_path):
    defaults, tuned, reruns = write_sweeps(tmp_path / "runs")
    cells = cells_lib.build_cells(
        store.load_runs(defaults), store.load_runs(tuned), store.load_runs(reruns), protocol.Meter()
    )
    verdicts = {
        (c.decoder, c.loss): (c.verdict[0], c.verdict[1].statistic, c.verdict[1].variant)
        for c in cells
    }
    gray = (cells_lib.REPRODUCED_GRAY, "tuned", "gray")
    assert verdicts == {
        ("relu", "mse"): gray,
        ("relu", "i_div1"): (cells_lib.NOT_REPRODUCED, "defaults", "gray"),
        ("relu", "i_div2"): gray,
        ("sigmoid", "mse"): gray,
        ("sigmoid", "i_div1"): (cells_lib.REPRODUCED_VIRIDIS, "tuned", "viridis"),
        ("sigmoid", "i_div2"): gray,
    }


def test_the_prose_matches_the_one_golden_file(tmp_path):
    """The report's wording, checked once; regenerate the golden file on purpose only."""
    defaults, tuned, reruns = write_sweeps(tmp_path / "runs")
    text = report.write_report(defaults, tuned, tmp_path / "out", reruns).read_text()
    assert text == GOLDEN.read_text()
