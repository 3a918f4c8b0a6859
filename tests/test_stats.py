"""Intervals and corrections against hand computations and SciPy's own routines."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats as scipy_stats

from aeexp.analysis import stats


def test_holm_matches_a_hand_computation():
    # m = 4. Sorted: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.5 (x1 = 0.5).
    assert stats.holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    # Monotone: 0.04 x 2 = 0.08 would fall below the first adjusted 0.1 (0.05 x 2): it is raised.
    assert stats.holm([0.05, 0.04]) == pytest.approx([0.08, 0.08])
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    adjusted = stats.holm([math.nan, 0.01, 0.04])  # NaN: a test not run, not counted in m
    assert math.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.02, 0.04])
    assert stats.holm([]) == []


def test_holm_is_never_below_the_raw_p_and_never_above_bonferroni():
    p = np.random.default_rng(0).random(12) ** 3
    adjusted = np.array(stats.holm(p))
    assert np.all(adjusted >= p) and np.all(adjusted <= np.minimum(1, p * len(p)) + 1e-15)


def test_t_interval_matches_scipy():
    values = [0.80, 0.82, 0.79, 0.85, 0.81]
    interval = stats.t_interval(values)
    low, high = scipy_stats.t.interval(
        0.95, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values)
    )
    assert (interval.low, interval.high) == pytest.approx((low, high))
    assert interval.text() == f"{np.mean(values):.3f} [{low:.3f}, {high:.3f}]"
    single = stats.t_interval([0.5])
    assert single.low == single.high == 0.5 and "no interval" in single.text()


def test_welch_matches_scipy_and_refuses_what_it_cannot_test():
    a, b = [0.8, 0.82, 0.81], [0.7, 0.75, 0.72, 0.71]
    assert stats.welch_p(a, b) == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert math.isnan(stats.welch_p([0.8], b)) and math.isnan(stats.welch_p([1, 1], [2, 2]))
    assert "no Welch test" in stats.p_text(math.nan, math.nan)
    assert stats.p_text(0.001, 0.004).endswith("Holm-adjusted 0.004: significant at 0.05")


def test_one_seed_on_either_side_is_no_welch_test_whatever_scipy_answers(monkeypatch):
    """The guard refuses one seed on a side by itself; SciPy's own NaN there is not relied on.

    The SciPy pinned today returns NaN for a one-element sample, so a guard weakened to
    refuse only when both sides have one seed still returned NaN; a stand-in SciPy that
    answers tells them apart.
    """
    monkeypatch.setattr(scipy_stats, "ttest_ind", lambda *_, **__: SimpleNamespace(pvalue=0.5))
    b = [0.7, 0.75, 0.72, 0.71]
    assert stats.welch_p([0.8, 0.81], b) == 0.5  # the stand-in is asked when the test can run
    for one, other in [([0.8], b), (b, [0.8]), ([], b)]:
        assert math.isnan(stats.welch_p(one, other)), (one, other)
