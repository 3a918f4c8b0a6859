"""The verdict rule on paired differences: two procedures run on the same seeds, seed by seed.

With ``train.init: shared`` a seed gives both engines the same initial weights and shuffles,
so the per-seed differences d_i = a_i - b_i carry the engines' difference without the seed's
own variation. The rule is :mod:`aeexp.analysis.verdicts`'s, on the differences: the paired
t statistic has standard error sd(d) / sqrt(n) on n - 1 degrees of freedom; TOST at the
margin says equivalent, the two-sided paired t-test at ``ALPHA`` says different, neither is
inconclusive. Beside each verdict: the smallest margin TOST would pass, its power at the
margin if the engines agreed exactly (the observed sd taken as the truth), and how many
pairs would give that power ``TARGET_POWER`` (what a study must train to decide a cell).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from aeexp.analysis import stats
from aeexp.analysis.verdicts import (
    ALPHA,
    MARGIN,
    NOT_TESTABLE,
    t_rule,
)

TARGET_POWER = 0.8
MAX_PAIRS = 1000  # pairs_needed's search stops here: more seeds than any study would train


@dataclass(frozen=True)
class PairedComparison:
    """The rule applied to per-seed differences ``a - b``."""

    n: int  # pairs
    gap: float  # mean of the differences
    sd: float  # their sample standard deviation
    se: float  # sd / sqrt(n)
    df: int  # n - 1
    ci_lo: float  # the 95% t interval of the mean difference
    ci_hi: float
    tost_p: float  # the larger of the two one-sided p-values
    diff_p: float  # the paired t-test's two-sided p
    min_margin: float  # the smallest margin at which TOST would pass at ALPHA
    verdict: str
    margin: float = MARGIN

    @cached_property
    def power(self) -> float:
        """Return TOST's power at the margin if the true gap were 0 and ``sd`` the true sd."""
        return tost_power(self.n, self.sd, self.margin)

    @cached_property
    def pairs_needed(self) -> int:
        """Return the fewest pairs giving ``TARGET_POWER`` at this sd (``MAX_PAIRS``: more)."""
        return pairs_needed(self.sd, self.margin) if self.sd > 0 else 0

    def row(self) -> dict[str, float | int | str]:
        """Return the comparison as one flat mapping (a CSV row), power and pairs included."""
        return asdict(self) | {"power": self.power, "pairs_needed": self.pairs_needed}


def compare_pairs(
    a: Sequence[float], b: Sequence[float], margin: float = MARGIN
) -> PairedComparison:
    """Return the verdict on the mean of ``a[i] - b[i]``; the two must pair seed by seed."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} values against {len(b)}: pairs need one of each per seed")
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = int(d.size)
    gap = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n >= 2 else math.nan
    if n < 2 or sd == 0.0:
        nan = math.nan
        untested = dict(se=nan, df=max(n - 1, 0), ci_lo=nan, ci_hi=nan, tost_p=nan, diff_p=nan)
        return PairedComparison(
            n, gap, sd, **untested, min_margin=nan, verdict=NOT_TESTABLE, margin=margin
        )
    df = n - 1
    se = sd / math.sqrt(n)
    return PairedComparison(n, gap, sd, se, df, **t_rule(gap, se, df, margin), margin=margin)


def tost_power(n: int, sd: float, margin: float = MARGIN, gap: float = 0.0) -> float:
    """Return the probability that paired TOST at ``ALPHA`` passes with n pairs.

    Exact for normal differences: given the sample sd s, TOST passes when the mean lies
    within margin - t * s / sqrt(n) of zero; the mean is normal and s^2 (n - 1) / sd^2 is
    chi-square on n - 1 degrees of freedom, so the power is one integral over the latter.
    """
    from scipy import integrate
    from scipy import stats as scipy_stats

    if n < 2 or not sd > 0:
        return math.nan
    df = n - 1
    t = stats.t_ppf(1 - ALPHA, df)
    se = sd / math.sqrt(n)
    # TOST can pass only while the interval is not empty: u below this bound.
    u_max = (margin / (t * se)) ** 2 * df

    def passes(u: float) -> float:
        half = margin - t * se * math.sqrt(u / df)
        inside = scipy_stats.norm.cdf((half - gap) / se) - scipy_stats.norm.cdf((-half - gap) / se)
        return max(inside, 0.0) * scipy_stats.chi2.pdf(u, df)

    # Beyond the chi-square's far tail nothing is left to add; a huge u_max (a precise pair,
    # sd far below the margin) would otherwise hide the law's whole mass from quad.
    upper = min(u_max, float(scipy_stats.chi2.isf(1e-15, df)))
    value, _ = integrate.quad(passes, 0.0, upper, limit=200)
    return float(min(max(value, 0.0), 1.0))


def pairs_needed(sd: float, margin: float = MARGIN, power: float = TARGET_POWER) -> int:
    """Return the fewest pairs whose TOST reaches ``power`` at true gap 0 and this sd."""
    if not sd > 0:
        return 2
    low, high = 2, 2
    while tost_power(high, sd, margin) < power:
        if high >= MAX_PAIRS:
            return MAX_PAIRS
        low, high = high, min(2 * high, MAX_PAIRS)
    while low < high:  # power grows with n: bisect for the first n that reaches it
        middle = (low + high) // 2
        if tost_power(middle, sd, margin) >= power:
            high = middle
        else:
            low = middle + 1
    return high
