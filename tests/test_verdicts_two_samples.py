"""The two-sample rule (one engine's seeds against another's): numbers and error rates.

The Monte Carlo tests draw both sides as the backends report sees them: n = 5 seeds each
from normal distributions whose means differ by an offset. The seed sd 0.02 is the order
the committed thesis runs show (0.003-0.03).
"""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from aeexp.analysis import verdicts
from aeexp.analysis.verdicts import (
    DIFFERENT,
    EQUIVALENT,
    INCONCLUSIVE,
    NOT_TESTABLE,
    compare_samples,
)

DRAWS = 10_000
N = 5
SD = 0.02


def simulate(offset: float, sd: float = SD, n: int = N, seed: int = 0) -> dict[str, float]:
    """Return how often each verdict comes out when mean(a) - mean(b) is ``offset``."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.8 + offset, sd, size=(DRAWS, n))
    b = rng.normal(0.8, sd, size=(DRAWS, n))
    found = [compare_samples(x, y).verdict for x, y in zip(a, b, strict=True)]
    return {v: found.count(v) / DRAWS for v in verdicts.VERDICTS}


def test_at_zero_offset_different_comes_out_about_five_percent_of_the_time():
    # Welch's test is close to exact at equal variances; 10,000 draws: sd of a rate ~0.002.
    rates = simulate(0.0)
    assert 0.035 <= rates[DIFFERENT] <= 0.06, rates


def test_equivalence_holds_its_level_at_the_margin():
    # At |offset| = margin TOST's null holds: "equivalent" at most ALPHA of the time.
    for sign, sd in ((1, 0.003), (-1, 0.01)):
        rates = simulate(sign * verdicts.MARGIN, sd=sd, seed=1)
        assert rates[EQUIVALENT] <= 0.056, (sign, sd, rates)


def test_at_twice_the_margin_most_draws_are_not_equivalent():
    assert simulate(-2 * verdicts.MARGIN)[EQUIVALENT] < 0.05
    # A precise procedure finds the offset: mostly "different".
    assert simulate(2 * verdicts.MARGIN, sd=0.004)[DIFFERENT] > 0.9


def test_a_precise_procedure_at_zero_offset_is_equivalent():
    assert simulate(0.0, sd=0.003)[EQUIVALENT] > 0.8


def test_numbers_against_scipy():
    a = [0.71, 0.69, 0.72, 0.70, 0.73]
    b = [0.66, 0.67, 0.64, 0.68, 0.65]
    c = compare_samples(a, b)
    assert c.gap == pytest.approx(np.mean(a) - np.mean(b))
    welch = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert c.diff_p == pytest.approx(welch.pvalue)
    assert c.df == pytest.approx(welch.df)
    low, high = welch.confidence_interval(0.95)
    assert (c.ci_lo, c.ci_hi) == pytest.approx((low, high))
    # TOST as two shifted one-sided Welch tests.
    margin = verdicts.MARGIN
    above = scipy_stats.ttest_ind(a, np.add(b, -margin), equal_var=False, alternative="greater")
    below = scipy_stats.ttest_ind(a, np.add(b, margin), equal_var=False, alternative="less")
    assert c.tost_p == pytest.approx(max(above.pvalue, below.pvalue))
    assert c.verdict == DIFFERENT  # a gap of 0.046 with small spread
    assert compare_samples(a, b, margin=c.min_margin * 1.001).tost_p < verdicts.ALPHA
    assert compare_samples(a, b, margin=c.min_margin * 0.999).tost_p > verdicts.ALPHA


def test_verdicts_follow_the_tests():
    rng = np.random.default_rng(5)
    for _ in range(50):
        a, b = rng.normal(0.7, 0.01, 5), rng.normal(0.7 + rng.uniform(-0.04, 0.04), 0.01, 5)
        c = compare_samples(a, b)
        if c.tost_p < verdicts.ALPHA:
            assert c.verdict == EQUIVALENT
        else:
            assert (c.verdict == DIFFERENT) == (c.diff_p < verdicts.ALPHA)


def test_untestable_and_one_sided_spread():
    assert compare_samples([0.5], [0.5, 0.6]).verdict == NOT_TESTABLE
    assert compare_samples([0.5, 0.5], [0.5, 0.5]).verdict == NOT_TESTABLE
    # One side without spread still has a standard error: the other side's.
    c = compare_samples([0.5, 0.5, 0.5], [0.49, 0.5, 0.51])
    assert c.verdict == EQUIVALENT and c.df == pytest.approx(2.0)
    assert compare_samples([0.5, 0.56, 0.44], [0.5, 0.52, 0.48]).verdict == INCONCLUSIVE


def test_holm_applies_to_comparisons_too():
    rng = np.random.default_rng(3)
    family = [
        compare_samples(rng.normal(0.7 + d, 0.01, 5), rng.normal(0.7, 0.01, 5))
        for d in np.linspace(-0.05, 0.05, 12)
    ]
    held = verdicts.holm_verdicts(family)
    for c, h in zip(family, held, strict=True):
        if h in (EQUIVALENT, DIFFERENT):
            assert h == c.verdict


def test_two_seeds_on_a_side_are_enough_to_compare():
    a, b = [0.81, 0.84], [0.80, 0.79, 0.83]
    result = verdicts.compare_samples(a, b)
    assert result.verdict != verdicts.NOT_TESTABLE
    expected = scipy_stats.ttest_ind(a, b, equal_var=False).pvalue
    assert result.diff_p == pytest.approx(expected, rel=1e-12)
