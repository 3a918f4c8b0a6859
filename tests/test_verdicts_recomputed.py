"""The committed verdicts, recomputed from the committed runs CSVs by code of their own.

Nothing of aeexp's analysis is used here: pandas picks each seed's best grid point, SciPy
gives the t quantiles, and the rule is written out again from REPORT.md's statement of it.
Only the published values and the labels come from aeexp (they are facts, not analysis).
"""

import math
from pathlib import Path

import pandas
import pytest
from scipy import stats

from aeexp.registry import vocab
from aeexp.registry.published import THESIS_SSIM

RESULTS = Path(__file__).resolve().parents[1] / "results" / "thesis"
VERDICTS = RESULTS / "verdicts.csv"
MARGIN, ALPHA = 0.02, 0.05
VARIANTS = {"gray": "ssim_thesis", "viridis": "ssim_thesis_viridis"}


def rule(values: list[float], published: float) -> dict[str, float | str]:
    """The report's rule, from its own words: TOST at MARGIN, else the prediction interval."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    se = sd * math.sqrt(1 + 1 / n)
    gap = mean - published
    half = stats.t.ppf(0.975, n - 1) * se
    tost = max(stats.t.sf((gap + MARGIN) / se, n - 1), stats.t.cdf((gap - MARGIN) / se, n - 1))
    diff = 2 * stats.t.sf(abs(gap) / se, n - 1)  # below ALPHA exactly when P is outside the PI
    if tost < ALPHA:
        verdict = "equivalent"
    elif abs(gap) > half:
        verdict = "different"
    else:
        verdict = "inconclusive"
    return {"n": n, "mean": mean, "gap": gap, "tost_p": tost, "diff_p": diff, "verdict": verdict}


def cell_rows(frame: pandas.DataFrame, decoder: str, loss: str, optimizer: str):
    done = frame[frame["status"] == "completed"]
    return done[
        (done["decoder_activation"] == decoder)
        & (done["loss"] == loss)
        & (done["optimizer"] == optimizer)
    ]


def recomputed() -> dict[tuple[str, str, str], dict[str, float | str]]:
    tuned = pandas.read_csv(RESULTS / "thesis-tuned-runs.csv")
    defaults = pandas.read_csv(RESULTS / "thesis-optimizers-runs.csv")
    found = {}
    for (decoder, loss), (published, optimizer) in THESIS_SSIM.items():
        label = f"{vocab.DECODERS[decoder]} {vocab.loss_header(loss)}"
        for variant, metric in VARIANTS.items():
            grid = cell_rows(tuned, decoder, loss, optimizer).dropna(subset=[metric])
            best = grid.groupby("seed")[metric].max().tolist()
            found[(label, variant, "procedure")] = rule(best, published)
            own = cell_rows(defaults, decoder, loss, optimizer).dropna(subset=[metric])
            found[(label, variant, "defaults")] = rule(own[metric].tolist(), published)
    return found


def test_every_committed_verdict_recomputes_from_the_runs_csvs():
    committed = pandas.read_csv(VERDICTS)
    mine = recomputed()
    assert len(committed) == len(mine)
    for row in committed.to_dict("records"):
        expected = mine[(row["cell"], row["variant"], row["statistic"])]
        assert row["n"] == expected["n"]
        assert row["mean"] == pytest.approx(expected["mean"], abs=1e-12)
        assert row["gap"] == pytest.approx(expected["gap"], abs=1e-12)
        assert row["tost_p"] == pytest.approx(expected["tost_p"], rel=1e-9, abs=1e-15)
        assert row["verdict"] == expected["verdict"], row


def holm_rejects(p_values: list[float], alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down, from its definition: the k-th smallest of m p-values (k from 1) is
    rejected while every one before it was and it is below alpha / (m - k + 1)."""
    ranked = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for k, i in enumerate(ranked, start=1):
        if not p_values[i] < alpha / (len(p_values) - k + 1):
            break
        rejected[i] = True
    return rejected


def test_every_committed_holm_verdict_recomputes_from_the_runs_csvs():
    """Per statistic, the family is every cell and variant; each verdict keeps its own test.

    "equivalent" stays if its TOST p survives Holm over the family's TOST p-values,
    "different" if its two-sided p survives Holm over the two-sided ones; else inconclusive.
    """
    committed = pandas.read_csv(VERDICTS)
    mine = recomputed()
    assert all(r["n"] >= 2 for r in mine.values())  # every test ran: no NaN left out of m
    held = {}
    for statistic in ("procedure", "defaults"):
        family = [key for key in mine if key[2] == statistic]
        assert len(family) == 12
        tests = {"equivalent": "tost_p", "different": "diff_p"}
        survived = {
            verdict: dict(zip(family, holm_rejects([mine[k][p] for k in family]), strict=True))
            for verdict, p in tests.items()
        }
        for key in family:
            verdict = mine[key]["verdict"]
            kept = verdict in survived and survived[verdict][key]
            held[key] = verdict if kept or verdict == "inconclusive" else "inconclusive"
    for row in committed.to_dict("records"):
        expected = mine[(row["cell"], row["variant"], row["statistic"])]
        assert row["diff_p"] == pytest.approx(expected["diff_p"], rel=1e-9, abs=1e-15)
        assert row["holm_verdict"] == held[(row["cell"], row["variant"], row["statistic"])], row
    # The test can fail: Holm turns verdicts inconclusive, yet keeps some different.
    assert (committed["holm_verdict"] != committed["verdict"]).sum() >= 5
    assert set(committed["holm_verdict"]) == {"different", "inconclusive"}
    # And aeexp's Holm, given these p-values and verdicts, keeps what Holm's definition keeps.
    from aeexp.analysis.verdicts import Judgement, holm_verdicts

    for statistic in ("procedure", "defaults"):
        family = [key for key in mine if key[2] == statistic]
        judgements = [
            Judgement(**dict.fromkeys(Judgement.__dataclass_fields__, math.nan) | mine[key])
            for key in family
        ]
        assert holm_verdicts(judgements) == [held[key] for key in family]


README = RESULTS.parents[1] / "README.md"
REPRODUCE = RESULTS.parents[1] / "docs" / "how-to" / "reproduce.md"
PERFORMANCE = RESULTS.parents[1] / "docs" / "explanation" / "performance.md"
TABLE_START = "<!-- verdicts: rendered from results/thesis/verdicts.csv -->"
TABLE_END = "<!-- /verdicts -->"


def test_the_readme_shows_the_committed_verdicts():
    """The README's table is verdicts.csv's, rendered as REPORT.md renders it."""
    import csv

    from aeexp.studies.thesis_verdicts import verdicts_markdown

    with VERDICTS.open() as handle:
        rows = list(csv.DictReader(handle))
    for page in (README, REPRODUCE):
        shown = page.read_text().split(TABLE_START)[1].split(TABLE_END)[0]
        assert shown.strip() == verdicts_markdown(rows).strip(), page
    assert verdicts_markdown(rows) in (RESULTS / "REPORT.md").read_text()


def test_the_readmes_words_on_the_verdicts_are_the_csvs():
    """Each count and range the docs state beside the table, from verdicts.csv."""
    frame = pandas.read_csv(VERDICTS)
    primary = frame[frame["statistic"] == "procedure"]
    gray, viridis = (primary[primary["variant"] == v] for v in ("gray", "viridis"))
    text = " ".join(REPRODUCE.read_text().split())
    readme = " ".join(README.read_text().split())

    def counts(column, rows):
        found = rows[column].value_counts()
        return tuple(int(found.get(v, 0)) for v in ("equivalent", "different", "inconclusive"))

    assert counts("verdict", gray) == (4, 0, 2) and "Gray: 4 equivalent, 0 different, 2" in text
    assert "Gray: 4 equivalent, 0 different, 2 inconclusive;" in readme
    assert "4 of the 6 cells are equivalent to the published value within 0.02 SSIM" in readme
    assert "within 0.02 SSIM and none is different" in readme
    assert counts("verdict", viridis) == (1, 3, 2)
    assert "Viridis: 1 equivalent, 3 different, 2 inconclusive" in text
    assert "Viridis: 1 equivalent, 3 different, 2 inconclusive," in readme
    assert counts("holm_verdict", primary) == (0, 2, 10)
    assert "0 equivalent, 2 different, 10 inconclusive" in text
    assert (viridis["gap"] > 0).all() and (gray["gap"] < 0).all()
    assert f"{viridis['gap'].min():+.3f} to {viridis['gap'].max():+.3f}" in text
    assert f"{gray['gap'].min():.3f} to {gray['gap'].max():.4f}" in text
    inconclusive = gray[gray["verdict"] == "inconclusive"]
    widths = sorted((inconclusive["pi_hi"] - inconclusive["pi_lo"]).round(2))
    assert f"prediction intervals {widths[0]:.2f} and {widths[1]:.2f} wide" in text
    equivalent = gray[gray["verdict"] == "equivalent"]["tost_p"]
    assert f"{equivalent.min():.3f} to {equivalent.max():.3f} for the gray equivalents" in text


def test_the_readmes_training_time_is_the_runs_csvs():
    """25 groups of 29-30 runs and 175 min: each group's one train_seconds, summed."""
    frame = pandas.concat(
        pandas.read_csv(RESULTS / f"{name}-runs.csv")
        for name in ("thesis-optimizers", "thesis-tuned")
    )
    groups = frame.groupby("train_seconds").size()
    text = " ".join((REPRODUCE.read_text() + PERFORMANCE.read_text()).split())
    readme = " ".join(README.read_text().split())
    assert len(frame) == 740 and len(groups) == 25 and set(groups) == {29, 30}
    minutes = groups.index.to_series().sum() / 60
    assert f"25 lock-step groups of 29-30 runs: {minutes:.0f} min of group training" in text
    assert f"trained its 25 groups in {minutes:.0f} min" in text
    assert f"740 runs, about {minutes / 60:.0f} hours on 2 cores" in readme
