"""Confidence intervals, Welch tests and multiple-comparison corrections, via SciPy.

Every interval is a Student-t interval over seeds (runs are few, 2-5, so a bootstrap would
have almost nothing to resample). Every family of pairwise claims a report makes is
corrected with Holm's step-down method, which holds the family-wise error rate at the
nominal level without assuming the tests are independent.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE


# Student's t through the SciPy ufuncs scipy.stats.t evaluates (its _cdf, _sf and _ppf call
# exactly these): the same bits, without the ~200 us of argument handling per scalar call,
# which dominated every verdict and the Monte Carlo tests of the rules' error rates.
def t_cdf(x: float, df: float) -> float:
    """Return Student's t CDF at ``x`` with ``df`` degrees of freedom."""
    from scipy import special

    return float(special.stdtr(df, x))


def t_sf(x: float, df: float) -> float:
    """Return Student's t survival function (1 - CDF) at ``x``."""
    from scipy import special

    return float(special.stdtr(df, -x))


def t_ppf(q: float, df: float) -> float:
    """Return Student's t quantile of probability ``q``."""
    from scipy import special

    return float(special.stdtrit(df, q))


@dataclass(frozen=True)
class Interval:
    """A mean and its two-sided confidence interval; ``low == high == mean`` for one value."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        """Return half the interval's width (0 for a single value)."""
        return (self.high - self.low) / 2

    def text(self, digits: int = 3) -> str:
        """Return ``mean [low, high]`` (or the single value with ``n=1``)."""
        if self.n < 2:
            return f"{self.mean:.{digits}f} (n=1, no interval)"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    """Return the two-sided Student-t quantile for ``n`` values (``n - 1`` degrees of freedom)."""
    if n < 2:
        return math.nan
    return t_ppf(0.5 + confidence / 2, n - 1)


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Return the t confidence interval of the mean of ``values``."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values: an interval needs at least one")
    mean = float(data.mean())
    if data.size == 1:
        return Interval(mean, mean, mean, 1)
    half = t_quantile(data.size, confidence) * float(data.std(ddof=1)) / math.sqrt(data.size)
    return Interval(mean, mean - half, mean + half, int(data.size))


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Return the two-sided Welch t-test p-value, or NaN if either side cannot be tested."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or b.size < 2 or (a.std() == 0.0 and b.std() == 0.0):
        return math.nan
    with warnings.catch_warnings():
        # Near-identical seeds make SciPy warn of precision loss; the p-value is still usable.
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Return Holm's step-down adjusted p-values, in the input order; NaN stays NaN.

    Sorted ascending, the i-th of m p-values (i from 0) becomes ``(m - i) * p``, made
    non-decreasing along the order and capped at 1; NaN entries (tests that could not be
    run) are left out of m.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    running = 0.0
    for rank, index in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def p_text(raw: float, adjusted: float) -> str:
    """Return ``Welch p = a, Holm-adjusted b`` or why there is no test."""
    if math.isnan(raw):
        return "no Welch test: it needs two seeds on each side and some spread"
    verdict = "significant" if adjusted < ALPHA else "not significant"
    return f"Welch p = {raw:.2g}, Holm-adjusted {adjusted:.2g}: {verdict} at {ALPHA:g}"


class PairTests:
    """A report's family of pairwise claims: Welch tests, Holm-adjusted together.

    A report renders its claims twice: the first pass records every pair asked for (and
    gets placeholder text), :meth:`freeze` runs the tests and the correction over the whole
    family, the second pass gets the final text. Pairs are keyed by their values, so the
    same comparison asked twice is one test.
    """

    def __init__(self) -> None:
        self._pairs: dict[tuple[tuple[float, ...], tuple[float, ...]], int] = {}
        self._raw: list[float] = []
        self._adjusted: list[float] | None = None

    def __len__(self) -> int:
        """Return how many tests could be run (the family's size m)."""
        return sum(not math.isnan(p) for p in self._raw)

    def text(self, a: Sequence[float], b: Sequence[float]) -> str:
        """Return the pair's ``Welch p = ..., Holm-adjusted ...`` (after :meth:`freeze`)."""
        key = (tuple(a), tuple(b))
        if self._adjusted is None:
            if key not in self._pairs:
                self._pairs[key] = len(self._raw)
                self._raw.append(welch_p(a, b))
            return ""
        index = self._pairs.get(key)
        if index is None:
            raise KeyError("a pair the first pass did not record; render the same claims")
        return p_text(self._raw[index], self._adjusted[index])

    def freeze(self) -> None:
        """Adjust every recorded p-value (Holm) over the family."""
        self._adjusted = holm(self._raw)
