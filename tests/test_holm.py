"""Holm's correction, in ``holm_verdicts`` and in ``aeexp compare``, against its definition.

The families here are built so that the usual slips change an answer: Bonferroni's m * p
for every p, an (m - k) off by one, adjusted p-values not carried forward (a later, smaller
(m - k + 1) * p rejected after an earlier one was not), a verdict held to the other test's
family, a NaN test counted in m, or a family split per metric.
"""

import math

import numpy as np
import pytest
from click.testing import CliRunner
from fakeruns import cell_raw, fake_run
from scipy import stats
from test_verdicts_recomputed import holm_rejects

import aeexp
from aeexp import cli
from aeexp.analysis.verdicts import Judgement, holm_verdicts

ALPHA = 0.05


def holm_adjusted(p_values: list[float]) -> list[float]:
    """Holm's adjusted p-values from the definition: the smallest alpha at which each one is
    rejected by the step-down, i.e. max over the first k sorted of (m - j + 1) p_(j), capped
    at 1; NaN (no test) stays NaN and is not counted in m."""
    tested = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    ranked = sorted(tested, key=lambda i: p_values[i])
    m = len(ranked)
    adjusted = [math.nan] * len(p_values)
    for k, i in enumerate(ranked, start=1):
        adjusted[i] = min(1.0, max((m - j + 1) * p_values[ranked[j - 1]] for j in range(1, k + 1)))
    return adjusted


def judgement(verdict: str, tost_p: float, diff_p: float) -> Judgement:
    nan = math.nan
    return Judgement(5, nan, nan, nan, nan, nan, nan, tost_p, diff_p, nan, verdict)


# (verdict, TOST p, two-sided p), eight tests. Two-sided family, sorted: 0.004 * 8 = 0.032 and
# 0.0068 * 7 = 0.048 pass (Bonferroni: 0.0544 fails); 0.009 * 6 = 0.054 stops the step-down
# (off by one: 0.045 passes); 0.0095 * 5 = 0.0475 comes after the stop. TOST family:
# 0.006 * 8 and 0.0068 * 7 pass, 0.0095 * 6 = 0.057 fails (off by one: 0.0475 passes).
FAMILY = [
    ("different", 0.9, 0.004, "different"),
    ("different", 0.8, 0.0068, "different"),
    ("different", 0.7, 0.009, "inconclusive"),
    ("equivalent", 0.006, 0.5, "equivalent"),
    ("equivalent", 0.0068, 0.6, "equivalent"),
    ("equivalent", 0.0095, 0.4, "inconclusive"),
    ("inconclusive", 0.3, 0.2, "inconclusive"),
    ("different", 0.6, 0.0095, "inconclusive"),
]


def test_holm_verdicts_keep_what_the_step_down_rejects():
    judgements = [judgement(v, t, d) for v, t, d, _ in FAMILY]
    tost = holm_rejects([t for _, t, _, _ in FAMILY])
    diff = holm_rejects([d for _, _, d, _ in FAMILY])
    by_definition = [
        v if (v == "equivalent" and tost[i]) or (v == "different" and diff[i]) else "inconclusive"
        for i, (v, _, _, _) in enumerate(FAMILY)
    ]
    assert by_definition == [held for *_, held in FAMILY]  # the comments above, checked
    assert holm_verdicts(judgements) == by_definition


def test_holm_verdicts_leave_untestable_statistics_out_of_the_family():
    # Two tests, not three: 0.02 * 2 = 0.04 passes; counting the NaN would make it 0.06.
    found = holm_verdicts(
        [
            judgement("different", 0.9, 0.02),
            judgement("different", 0.9, 0.024),
            judgement("not testable", math.nan, math.nan),
        ]
    )
    assert found == ["different", "different", "not testable"]


def test_compare_adjusts_every_welch_p_of_the_table_together(tmp_path):
    """Three metrics by three sides against A: 6 Welch tests and 3 untestable (one run)."""
    spread = {"mse": [-1.5, -0.5, 0.5, 1.5], "i_div2": [-2, 0, 0.5, 1.5], "i_div1": [-1, -1, 1, 1]}
    shifts = {"mse": 0.0, "i_div2": 1.5, "i_div1": 4.0}  # in units of the spread
    values = {}
    for loss, shift in shifts.items():
        for seed, noise in enumerate(spread[loss]):
            metrics = {
                "ssim_mean": 0.8 + 0.01 * (shift + noise),
                "mse": 0.02 - 0.004 * (shift + noise),  # the same t as ssim_mean: a tie
                "final_val_loss": 0.1 + 0.01 * noise * (1 + seed % 2),
            }
            fake_run(tmp_path, cell_raw("sigmoid", loss, "adam", seed=seed), **metrics)
            for metric, value in metrics.items():
                values.setdefault((loss, metric), []).append(value)
    fake_run(tmp_path, cell_raw("sigmoid", "bce", "adam"), ssim_mean=0.7, mse=0.03)
    metrics = ["ssim_mean", "mse", "final_val_loss"]
    sides = ["loss.name=mse", "loss.name=i_div2", "loss.name=i_div1", "loss.name=bce"]
    comparison = aeexp.compare(*sides, root=tmp_path, metrics=metrics)
    raw = [
        stats.ttest_ind(values[(loss, metric)], values[("mse", metric)], equal_var=False).pvalue
        if (loss, metric) in values
        else math.nan
        for metric in metrics
        for loss in ("i_div2", "i_div1", "bce")
    ]
    want = holm_adjusted(raw)
    got = [p for row in comparison.rows for p in row.p_values[1:]]
    assert [row.p_values[0] for row in comparison.rows] == [
        pytest.approx(math.nan, nan_ok=True)
    ] * 3
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # The test can fail: the correction moves p-values by more than a rounding, in both ways.
    tested = [i for i, p in enumerate(raw) if not math.isnan(p)]
    assert len(tested) == 6 and min(raw[i] for i in tested) < 0.01
    assert all(want[i] >= raw[i] for i in tested)
    assert any(want[i] > 3 * raw[i] for i in tested if want[i] < 1)
    # What the CLI prints is the adjusted p-value.
    result = CliRunner().invoke(
        cli.main,
        ["compare", *sides, "--root", str(tmp_path), *sum((["--metric", m] for m in metrics), [])],
    )
    assert result.exit_code == 0, result.output
    for metric, row in zip(metrics, comparison.rows, strict=True):
        (line,) = [x for x in result.output.splitlines() if x.startswith(f"| {metric} ")]
        for p in row.p_values[1:]:
            if not math.isnan(p):
                assert f"p = {p:.2g})" in line
