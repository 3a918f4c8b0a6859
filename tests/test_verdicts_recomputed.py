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

from aeexp import vocab
from aeexp.studies.published import THESIS_SSIM

RESULTS = Path(__file__).resolve().parents[1] / "results" / "thesis"
VERDICTS = RESULTS / "verdicts.csv"
MARGIN, ALPHA = 0.02, 0.05
VARIANTS = {"gray": "ssim_thesis", "viridis": "ssim_thesis_viridis"}

pytestmark = pytest.mark.skipif(
    not VERDICTS.is_file(), reason="results/thesis/verdicts.csv is not committed yet"
)


def rule(values: list[float], published: float) -> dict[str, float | str]:
    """The report's rule, from its own words: TOST at MARGIN, else the prediction interval."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    se = sd * math.sqrt(1 + 1 / n)
    gap = mean - published
    half = stats.t.ppf(0.975, n - 1) * se
    tost = max(stats.t.sf((gap + MARGIN) / se, n - 1), stats.t.cdf((gap - MARGIN) / se, n - 1))
    if tost < ALPHA:
        verdict = "equivalent"
    elif abs(gap) > half:
        verdict = "different"
    else:
        verdict = "inconclusive"
    return {"n": n, "mean": mean, "gap": gap, "tost_p": tost, "verdict": verdict}


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
