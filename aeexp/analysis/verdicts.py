"""The reproduction rule, declared before any result is read, with its error rates known.

The published value P is one draw of the author's procedure (the best point of a tuning
grid on one seed, measured once). Our n values are n more draws of the same procedure, one
per seed, with mean m and standard deviation s; the gap is d = m - P. P and a new draw both
vary with the seed, so the standard error of d is s * sqrt(1 + 1/n), on n - 1 degrees of
freedom. Three verdicts:

* **equivalent**: two one-sided t-tests (TOST) at ``ALPHA`` reject |d| >= ``MARGIN``; a
  difference smaller than the margin is, by the rule, none that matters (this wins when the
  other test also rejects);
* **different**: P lies outside the 95% prediction interval m +- t(0.975, n-1) * se, the
  interval for one more draw;
* **inconclusive**: neither.

``MARGIN`` is 0.02 SSIM, fixed in the code before any run of this study was read: below the
smallest published gap between two losses in one row of the thesis table (0.025), so an
"equivalent" cell cannot be confused with its neighbour. The ten-image protocol's own spread
is shared by P and our values (same images), so it stays out of the rule. Holm's correction
over a family of cells is reported beside the per-cell verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from aeexp.analysis import stats

MARGIN = 0.02
ALPHA = 0.05
EQUIVALENT = "equivalent"
DIFFERENT = "different"
INCONCLUSIVE = "inconclusive"
NOT_TESTABLE = "not testable"  # fewer than two values, or no spread among them
VERDICTS = (EQUIVALENT, DIFFERENT, INCONCLUSIVE, NOT_TESTABLE)


@dataclass(frozen=True)
class Judgement:
    """The rule applied to one statistic against one published value."""

    n: int
    mean: float
    sd: float
    published: float
    gap: float  # mean - published
    pi_lo: float  # the 95% prediction interval for one more draw
    pi_hi: float
    tost_p: float  # the larger of the two one-sided p-values
    diff_p: float  # two-sided p of the gap: below ALPHA exactly when P is outside the PI
    min_margin: float  # the smallest margin at which TOST would pass at ALPHA
    verdict: str

    def row(self) -> dict[str, float | int | str]:
        """Return the judgement as one flat mapping (a CSV row)."""
        return asdict(self)


def judge(values: Sequence[float], published: float, margin: float = MARGIN) -> Judgement:
    """Return the verdict of ``values`` (one per seed) against ``published``."""
    from scipy.stats import t

    data = np.asarray(values, dtype=float)
    n = int(data.size)
    mean = float(data.mean()) if n else math.nan
    sd = float(data.std(ddof=1)) if n >= 2 else math.nan
    gap = mean - published
    if n < 2 or sd == 0.0:
        nan = math.nan
        return Judgement(n, mean, sd, published, gap, nan, nan, nan, nan, nan, NOT_TESTABLE)
    df = n - 1
    se = sd * math.sqrt(1 + 1 / n)
    half = float(t.ppf(1 - ALPHA / 2, df)) * se
    tost_p = max(float(t.sf((gap + margin) / se, df)), float(t.cdf((gap - margin) / se, df)))
    diff_p = float(2 * t.sf(abs(gap) / se, df))
    min_margin = abs(gap) + float(t.ppf(1 - ALPHA, df)) * se
    if tost_p < ALPHA:
        verdict = EQUIVALENT
    elif not mean - half <= published <= mean + half:
        verdict = DIFFERENT
    else:
        verdict = INCONCLUSIVE
    return Judgement(
        n, mean, sd, published, gap, mean - half, mean + half, tost_p, diff_p, min_margin, verdict
    )


def holm_verdicts(judgements: Sequence[Judgement]) -> list[str]:
    """Return each verdict that survives Holm's correction over the family, else inconclusive.

    Each verdict keeps its own test: "equivalent" stays if its TOST p-value, Holm-adjusted
    over the family, is below ALPHA; "different" if its two-sided p-value is.
    """
    tost = stats.holm([j.tost_p for j in judgements])
    diff = stats.holm([j.diff_p for j in judgements])
    kept = {EQUIVALENT: tost, DIFFERENT: diff}
    return [
        j.verdict if j.verdict not in kept or kept[j.verdict][i] < ALPHA else INCONCLUSIVE
        for i, j in enumerate(judgements)
    ]


def counts(verdicts: Sequence[str]) -> str:
    """Return e.g. ``1 equivalent, 2 different, 3 inconclusive`` (every verdict, even 0)."""
    shown = [v for v in VERDICTS if v != NOT_TESTABLE or v in verdicts]
    return ", ".join(f"{verdicts.count(v)} {v}" for v in shown)
