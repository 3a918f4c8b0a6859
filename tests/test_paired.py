"""The paired rule: its numbers against SciPy's tests, its power against simulation, its errors.

Simulations draw n normal per-seed differences with a known sd and a known true gap, and
apply TOST and the paired t-test vectorised in NumPy: an implementation independent of
aeexp's, to hold the exact power integral and the verdict's error rates to.
"""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from aeexp.analysis import paired
from aeexp.analysis.verdicts import ALPHA, DIFFERENT, EQUIVALENT, MARGIN, NOT_TESTABLE

DRAWS = 20_000


def simulated(n: int, sd: float, gap: float, seed: int = 0) -> dict[str, float]:
    """Return how often TOST passes and the paired test rejects, over DRAWS studies."""
    rng = np.random.default_rng(seed)
    d = rng.normal(gap, sd, size=(DRAWS, n))
    mean, se = d.mean(axis=1), d.std(axis=1, ddof=1) / math.sqrt(n)
    lower = scipy_stats.t.sf((mean + MARGIN) / se, n - 1)
    upper = scipy_stats.t.cdf((mean - MARGIN) / se, n - 1)
    equivalent = np.maximum(lower, upper) < ALPHA
    different = ~equivalent & (2 * scipy_stats.t.sf(np.abs(mean) / se, n - 1) < ALPHA)
    return {EQUIVALENT: equivalent.mean(), DIFFERENT: different.mean()}


def test_numbers_against_scipys_paired_tests():
    a = [0.71, 0.69, 0.74, 0.70, 0.72, 0.73]
    b = [0.70, 0.70, 0.72, 0.69, 0.70, 0.73]
    c = paired.compare_pairs(a, b)
    d = np.subtract(a, b)
    assert c.gap == pytest.approx(d.mean()) and c.sd == pytest.approx(d.std(ddof=1))
    assert c.diff_p == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue)
    above = scipy_stats.ttest_1samp(d, -MARGIN, alternative="greater").pvalue
    below = scipy_stats.ttest_1samp(d, MARGIN, alternative="less").pvalue
    assert c.tost_p == pytest.approx(max(above, below))
    assert c.verdict == EQUIVALENT
    # The smallest passing margin is where TOST's p crosses ALPHA.
    at = paired.compare_pairs(a, b, margin=c.min_margin)
    assert at.tost_p == pytest.approx(ALPHA)
    low, high = scipy_stats.t.interval(0.95, len(d) - 1, d.mean(), scipy_stats.sem(d))
    assert (c.ci_lo, c.ci_hi) == pytest.approx((low, high))


def test_pairs_that_do_not_pair_or_do_not_vary_are_not_judged():
    with pytest.raises(ValueError, match="pairs need one of each"):
        paired.compare_pairs([0.1, 0.2], [0.1])
    assert paired.compare_pairs([0.5], [0.4]).verdict == NOT_TESTABLE
    same = paired.compare_pairs([0.5, 0.6], [0.4, 0.5])  # every difference 0.1: sd 0
    assert same.verdict == NOT_TESTABLE and same.pairs_needed == 0


@pytest.mark.parametrize(
    ("n", "sd", "gap"),
    [(5, 0.01, 0.0), (5, 0.02, 0.0), (8, 0.015, 0.01), (5, 1e-5, 0.0), (2, 1e-4, 0.0)],
)
def test_the_power_integral_is_what_simulation_finds(n, sd, gap):
    exact = paired.tost_power(n, sd, gap=gap)
    found = simulated(n, sd, gap)[EQUIVALENT]
    # 20,000 draws: the sd of a simulated rate is at most 0.0035.
    assert found == pytest.approx(exact, abs=0.012), (exact, found)


def test_pairs_needed_is_the_first_count_with_the_power():
    sd = 0.03
    needed = paired.pairs_needed(sd)
    assert paired.tost_power(needed, sd) >= paired.TARGET_POWER
    assert paired.tost_power(needed - 1, sd) < paired.TARGET_POWER
    assert paired.pairs_needed(0.001) == 2  # two pairs already decide so precise a difference
    assert paired.pairs_needed(1e-6) == 2  # the engines' float rounding only: still two
    assert paired.pairs_needed(10.0) == paired.MAX_PAIRS  # the search's end, said so


def test_at_the_margin_equivalent_comes_out_at_most_alpha_of_the_time():
    """TOST's level: a true gap of exactly the margin is called equivalent <= 5%."""
    for sd in (0.005, 0.02):
        assert simulated(5, sd, MARGIN, seed=1)[EQUIVALENT] <= ALPHA + 0.006
        assert paired.tost_power(5, sd, gap=MARGIN) <= ALPHA + 1e-9


def test_the_rule_can_say_each_thing():
    """Zero gap and precise pairs: equivalent; a gap of three margins: different."""
    assert simulated(5, 0.005, 0.0)[EQUIVALENT] > 0.95
    assert simulated(5, 0.005, 3 * MARGIN)[DIFFERENT] > 0.95
    rng = np.random.default_rng(3)
    base = rng.normal(0.7, 0.03, 5)
    assert paired.compare_pairs(base + rng.normal(0, 0.003, 5), base).verdict == EQUIVALENT
    assert paired.compare_pairs(base + 0.06 + rng.normal(0, 0.003, 5), base).verdict == DIFFERENT


def test_a_row_carries_the_power_and_the_pairs_needed():
    row = paired.compare_pairs([0.70, 0.72, 0.69], [0.69, 0.70, 0.70]).row()
    assert {"verdict", "tost_p", "power", "pairs_needed", "margin"} <= set(row)
    assert 0.0 <= row["power"] <= 1.0 and row["pairs_needed"] >= 2


def test_pairs_needed_is_where_simulated_tost_power_first_reaches_80_percent():
    """At the sd of an undecided cell, simulate TOST at pairs_needed and one pair fewer."""
    sd, draws = 0.015, 40_000
    needed = paired.pairs_needed(sd)
    rng = np.random.default_rng(0)
    for n, reaches in ((needed, True), (needed - 1, False)):
        d = rng.normal(0.0, sd, size=(draws, n))
        mean, se = d.mean(axis=1), d.std(axis=1, ddof=1) / math.sqrt(n)
        lower = scipy_stats.t.sf((mean + MARGIN) / se, n - 1)
        upper = scipy_stats.t.cdf((mean - MARGIN) / se, n - 1)
        power = (np.maximum(lower, upper) < ALPHA).mean()
        assert (power >= 0.8 - 0.01) if reaches else (power < 0.8 + 0.01)


def independent_power_of_two_pairs(sd: float) -> float:
    """Return TOST's power with 2 pairs at true gap 0, integrated over the sample sd's law.

    With one degree of freedom the sample sd is sd * |Z|, Z standard normal, so the power is
    a smooth integral over z: no chi-square density, no quad, no bound taken from paired.py.
    """
    from scipy.integrate import trapezoid

    t = scipy_stats.t.ppf(1 - ALPHA, 1)
    se = sd / math.sqrt(2)
    z = np.linspace(0.0, 40.0, 400_001)
    half = MARGIN - t * (sd * z) / math.sqrt(2)  # TOST passes while |mean| < half
    inside = np.clip(scipy_stats.norm.cdf(half / se) - scipy_stats.norm.cdf(-half / se), 0, None)
    return float(trapezoid(inside * 2 * scipy_stats.norm.pdf(z), z))


@pytest.mark.parametrize("ratio", [1.5, 3.0, 5.0, 8.0])
def test_the_power_integral_reaches_as_far_as_tost_can_pass(ratio):
    """ratio = margin / (t * se): the larger, the further out the sample variance may lie."""
    sd = MARGIN * math.sqrt(2) / (ratio * scipy_stats.t.ppf(1 - ALPHA, 1))
    assert paired.tost_power(2, sd) == pytest.approx(independent_power_of_two_pairs(sd), abs=1e-6)


def test_too_few_pairs_give_nan_quietly():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" on a report's way
        empty = paired.compare_pairs([], [])
    assert empty.n == 0 and math.isnan(empty.gap) and empty.verdict == NOT_TESTABLE
    for untested in (empty, paired.compare_pairs([0.5], [0.4])):
        assert all(math.isnan(v) for v in (untested.se, untested.ci_lo, untested.tost_p))
    flat = paired.compare_pairs([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])  # three pairs, sd 0
    assert (flat.n, flat.df, flat.verdict) == (3, 2, NOT_TESTABLE)
