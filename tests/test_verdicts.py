"""The reproduction rule: its numbers against independent formulas, its error rates simulated.

The Monte Carlo tests draw a cell as the report sees it: n = 5 seeds of the author's
procedure and one more draw, the published value, from the same normal distribution (or
shifted by an offset). The seed sd 0.02 is the order the committed runs show (0.003-0.03).
"""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from aeexp.analysis import verdicts
from aeexp.analysis.verdicts import DIFFERENT, EQUIVALENT, INCONCLUSIVE, NOT_TESTABLE, judge

DRAWS = 20_000
N = 5
SD = 0.02


def simulate(offset: float, sd: float = SD, n: int = N, seed: int = 0) -> dict[str, float]:
    """Return how often each verdict comes out when P = one draw shifted by ``offset``."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.8, sd, size=(DRAWS, n))
    published = rng.normal(0.8, sd, size=DRAWS) + offset
    found = [judge(v, p).verdict for v, p in zip(values, published, strict=True)]
    return {v: found.count(v) / DRAWS for v in verdicts.VERDICTS}


def test_at_zero_offset_different_comes_out_about_five_percent_of_the_time():
    rates = simulate(0.0)
    # (P - m) / (s sqrt(1 + 1/n)) is t(n - 1) exactly; 20,000 draws: sd of a rate ~0.0015.
    assert 0.043 <= rates[DIFFERENT] <= 0.057, rates


def test_at_twice_the_margin_most_draws_are_not_equivalent():
    for sign in (1, -1):
        rates = simulate(sign * 2 * verdicts.MARGIN)
        assert rates[EQUIVALENT] < 0.05, rates
    # With a precise procedure the rule does find the offset: mostly "different".
    assert simulate(2 * verdicts.MARGIN, sd=0.004)[DIFFERENT] > 0.9


def test_a_precise_procedure_at_zero_offset_is_equivalent():
    # The rule can say yes too: sd 0.003 (the ReLU-Sigmoid MSE cell's order) and no offset.
    assert simulate(0.0, sd=0.003)[EQUIVALENT] > 0.8


def test_equivalence_holds_its_level_at_the_margin():
    # At |offset| = margin the null of TOST holds: "equivalent" at most ALPHA of the time.
    for sd in (0.003, 0.01):
        assert simulate(verdicts.MARGIN, sd=sd, seed=1)[EQUIVALENT] <= 0.055


def test_numbers_against_independent_formulas():
    values = [0.51, 0.55, 0.49, 0.53, 0.52]
    published = 0.632
    j = judge(values, published)
    m, s, n = np.mean(values), np.std(values, ddof=1), len(values)
    se = s * math.sqrt(1 + 1 / n)
    t975 = scipy_stats.t.ppf(0.975, n - 1)
    assert j.gap == pytest.approx(m - published)
    assert (j.pi_lo, j.pi_hi) == pytest.approx((m - t975 * se, m + t975 * se))
    # TOST as two shifted one-sided tests.
    lower = scipy_stats.t.sf((m - published + verdicts.MARGIN) / se, n - 1)
    upper = scipy_stats.t.cdf((m - published - verdicts.MARGIN) / se, n - 1)
    assert j.tost_p == pytest.approx(max(lower, upper))
    assert j.verdict == DIFFERENT  # 0.632 is far above every value
    # The smallest passing margin is where TOST's p crosses ALPHA.
    assert judge(values, published, margin=j.min_margin * 1.001).tost_p < verdicts.ALPHA
    assert judge(values, published, margin=j.min_margin * 0.999).tost_p > verdicts.ALPHA


@pytest.mark.parametrize("seed", range(20))
def test_different_is_exactly_outside_the_prediction_interval(seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(0.7, 0.02, 4)
    published = float(rng.normal(0.7, 0.05))
    j = judge(values, published)
    outside = not j.pi_lo <= published <= j.pi_hi
    assert outside == (j.diff_p < verdicts.ALPHA)
    if j.verdict != EQUIVALENT:
        assert (j.verdict == DIFFERENT) == outside


def test_untestable_statistics():
    assert judge([0.5], 0.5).verdict == NOT_TESTABLE
    assert judge([0.5, 0.5], 0.5).verdict == NOT_TESTABLE  # no spread
    assert judge([0.5, 0.52, 0.54], 0.52).verdict == INCONCLUSIVE


def test_holm_over_a_family_is_never_bolder_than_each_test():
    rng = np.random.default_rng(3)
    family = [judge(rng.normal(0.7, 0.01, 5), 0.7 + d) for d in np.linspace(-0.05, 0.05, 12)]
    held = verdicts.holm_verdicts(family)
    for j, h in zip(family, held, strict=True):
        if h in (EQUIVALENT, DIFFERENT):
            assert h == j.verdict  # Holm withdraws verdicts, it makes none
    assert held.count(INCONCLUSIVE) >= [j.verdict for j in family].count(INCONCLUSIVE)


def test_counts_name_every_verdict():
    assert verdicts.counts([EQUIVALENT, DIFFERENT, DIFFERENT]) == (
        "1 equivalent, 2 different, 0 inconclusive"
    )


@pytest.mark.parametrize("values", [[0.5], [0.5, 0.5]])
def test_an_untestable_cell_still_reports_its_mean_and_gap(values):
    result = judge(values, 0.4)
    assert result.verdict == NOT_TESTABLE
    assert result.mean == 0.5
    assert result.gap == pytest.approx(0.1)
