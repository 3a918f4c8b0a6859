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

:func:`compare_samples` is the same rule for two samples of one procedure run two ways
(e.g. the TensorFlow and the JAX engine, several seeds each): the gap is the difference of
the two means, its standard error and degrees of freedom Welch's; TOST at ``MARGIN`` says
equivalent, Welch's two-sided test at ``ALPHA`` says different, neither is inconclusive.
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
    half = stats.t_ppf(1 - ALPHA / 2, df) * se
    tost_p = max(stats.t_sf((gap + margin) / se, df), stats.t_cdf((gap - margin) / se, df))
    diff_p = 2 * stats.t_sf(abs(gap) / se, df)
    min_margin = abs(gap) + stats.t_ppf(1 - ALPHA, df) * se
    if tost_p < ALPHA:
        verdict = EQUIVALENT
    elif not mean - half <= published <= mean + half:
        verdict = DIFFERENT
    else:
        verdict = INCONCLUSIVE
    return Judgement(
        n, mean, sd, published, gap, mean - half, mean + half, tost_p, diff_p, min_margin, verdict
    )


@dataclass(frozen=True)
class Comparison:
    """The rule applied to two samples (``a`` against ``b``), one value per seed each."""

    n_a: int
    mean_a: float
    sd_a: float
    n_b: int
    mean_b: float
    sd_b: float
    gap: float  # mean_a - mean_b
    se: float  # Welch's standard error of the gap
    df: float  # Welch-Satterthwaite degrees of freedom
    ci_lo: float  # the 95% Welch interval of the gap
    ci_hi: float
    tost_p: float  # the larger of the two one-sided p-values
    diff_p: float  # Welch's two-sided p of the gap
    min_margin: float  # the smallest margin at which TOST would pass at ALPHA
    verdict: str

    def row(self) -> dict[str, float | int | str]:
        """Return the comparison as one flat mapping (a CSV row)."""
        return asdict(self)


def t_rule(gap: float, se: float, df: float, margin: float = MARGIN) -> dict[str, float | str]:
    """Return the two-sample rule on a gap with its t standard error and degrees of freedom.

    The 95% interval, TOST's larger one-sided p, the two-sided p, the smallest passing
    margin and the verdict: equivalent if TOST rejects, else different if the two-sided
    test does, else inconclusive. Welch's comparison and the paired one share it.
    """
    half = stats.t_ppf(1 - ALPHA / 2, df) * se
    tost_p = max(stats.t_sf((gap + margin) / se, df), stats.t_cdf((gap - margin) / se, df))
    diff_p = 2 * stats.t_sf(abs(gap) / se, df)
    if tost_p < ALPHA:
        verdict = EQUIVALENT
    elif diff_p < ALPHA:
        verdict = DIFFERENT
    else:
        verdict = INCONCLUSIVE
    return {
        "ci_lo": gap - half,
        "ci_hi": gap + half,
        "tost_p": tost_p,
        "diff_p": diff_p,
        "min_margin": abs(gap) + stats.t_ppf(1 - ALPHA, df) * se,
        "verdict": verdict,
    }


def compare_samples(a: Sequence[float], b: Sequence[float], margin: float = MARGIN) -> Comparison:
    """Return the verdict on mean(a) - mean(b): equivalent, different, or inconclusive."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n_a, n_b = int(x.size), int(y.size)
    mean_a = float(x.mean()) if n_a else math.nan
    mean_b = float(y.mean()) if n_b else math.nan
    sd_a = float(x.std(ddof=1)) if n_a >= 2 else math.nan
    sd_b = float(y.std(ddof=1)) if n_b >= 2 else math.nan
    samples = {"n_a": n_a, "mean_a": mean_a, "sd_a": sd_a, "n_b": n_b, "mean_b": mean_b}
    samples |= {"sd_b": sd_b, "gap": mean_a - mean_b}
    if n_a < 2 or n_b < 2 or (sd_a == 0.0 and sd_b == 0.0):
        untested = dict.fromkeys(("se", "df", "ci_lo", "ci_hi", "tost_p", "diff_p"), math.nan)
        return Comparison(**samples, **untested, min_margin=math.nan, verdict=NOT_TESTABLE)
    gap = samples["gap"]
    var_a, var_b = sd_a**2 / n_a, sd_b**2 / n_b
    se = math.sqrt(var_a + var_b)
    df = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    return Comparison(**samples, se=se, df=df, **t_rule(gap, se, df, margin))


def holm_verdicts(judgements: Sequence[Judgement | Comparison]) -> list[str]:
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
