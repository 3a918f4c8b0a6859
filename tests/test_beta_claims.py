"""Every number the beta-study page states, recomputed from the committed CSVs.

``results/beta/beta-runs.csv`` (the study: 5 seeds per configuration on the test set) and
``results/beta/beta-tune-runs.csv`` (the learning-rate tuning on the holdout) are the evidence
behind ``docs/results/beta.md`` (and the README's two sentences on it) and
``results/beta/REPORT.md``. These tests recompute each claim with their own pandas/numpy/scipy
code (not aeexp's statistics) and fail when the prose states a number, or a fact, that the
CSVs do not give.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fakeruns import fake_run
from scipy import stats

from aeexp.analysis import selection
from aeexp.store import rundir as store
from aeexp.studies import beta as report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "beta"
DECODERS = ("relu", "sigmoid")
ORDERS = ("data_first", "recon_first")


# ------------------------------------------------------------------------------ evidence
@pytest.fixture(scope="module")
def study() -> pd.DataFrame:
    return pd.read_csv(RESULTS / "beta-runs.csv")


@pytest.fixture(scope="module")
def tune() -> pd.DataFrame:
    return pd.read_csv(RESULTS / "beta-tune-runs.csv")


@pytest.fixture(scope="module")
def section() -> str:
    """Return the docs' beta-study page, whole."""
    return (ROOT / "docs" / "results" / "beta.md").read_text()


@pytest.fixture(scope="module")
def prose(section) -> str:
    """Return the section with its line breaks folded, so phrases match across lines."""
    return " ".join(section.split())


def values(df: pd.DataFrame, decoder: str, loss: str, metric: str = "ssim_mean") -> np.ndarray:
    rows = df[(df.decoder_activation == decoder) & (df.loss == loss)]
    assert len(rows), (decoder, loss)
    return rows.sort_values("seed")[metric].to_numpy(dtype=float)


def loss(beta: str, order: str) -> str:
    return f"beta({beta},{order})"


def ci(v: np.ndarray) -> str:
    """Return ``mean [95% t interval]`` to three decimals."""
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    m = v.mean()
    return f"{m:.3f} [{m - half:.3f}, {m + half:.3f}]"


def welch(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def ranked(df: pd.DataFrame, decoder: str, order: str, metric: str) -> list[tuple[str, float]]:
    """Return (loss, mean) of one decoder and order's betas, best first."""
    rows = df[(df.decoder_activation == decoder) & df.loss.str.endswith(f",{order})")]
    means = rows.groupby("loss")[metric].mean()
    return sorted(means.items(), key=lambda item: -item[1])


def beta_of(loss_key: str) -> str:
    return loss_key[len("beta(") :].split(",")[0]


def holm_family(df: pd.DataFrame) -> dict[tuple, tuple[float, float]]:
    return _holm(df)[0]


def _holm(df: pd.DataFrame) -> tuple[dict[tuple, tuple[float, float]], int]:
    """Return the report's claims' (raw, Holm-adjusted) Welch p-values, keyed by claim.

    The family is what the report's Answer asks: best against runner-up and next-worst
    against worst over every beta configuration, then per metric, decoder and order the best
    against its runner-up and against MSE; a pair asked twice is one test.
    """
    claims: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    means = df[df.loss.str.startswith("beta")].groupby(["decoder_activation", "loss"])
    order = sorted(means.ssim_mean.mean().items(), key=lambda item: -item[1])
    (best, _), (second, _) = order[0], order[1]
    (next_worst, _), (worst, _) = order[-2], order[-1]
    claims["overall", "runner-up"] = (values(df, *best), values(df, *second))
    claims["overall", "worst"] = (values(df, *next_worst), values(df, *worst))
    for metric in ("ssim_mean", "ssim_thesis"):
        for decoder in DECODERS:
            for order_ in ORDERS:
                (top, _), (runner_up, _) = ranked(df, decoder, order_, metric)[:2]
                a = values(df, decoder, top, metric)
                claims[metric, decoder, order_, "runner-up"] = (
                    a,
                    values(df, decoder, runner_up, metric),
                )
                claims[metric, decoder, order_, "mse"] = (a, values(df, decoder, "mse", metric))
    unique: dict[tuple, tuple] = {}
    for key, (a, b) in claims.items():
        unique.setdefault((tuple(a), tuple(b)), key)
    raw = {key: welch(*claims[key]) for key in unique.values()}
    keys = sorted(raw, key=raw.get)
    adjusted, running = {}, 0.0
    for i, key in enumerate(keys):
        running = max(running, min(1.0, (len(keys) - i) * raw[key]))
        adjusted[key] = running
    result = {key: (raw[key], adjusted[key]) for key in raw}
    # The overall best pair is the sigmoid data-first pair: one test under both names.
    result["ssim_mean", "sigmoid", "data_first", "runner-up"] = result["overall", "runner-up"]
    return result, len(raw)


def rounds_to(written: str, value: float) -> bool:
    """Return whether ``written`` is ``value`` rounded to as many significant digits as it has."""
    digits = len(written.replace(".", "").lstrip("0")) or 1
    return float(written) == float(f"{value:.{digits}g}")


def p_after(text: str, label: str) -> str:
    """Return the number that follows ``label`` in ``text``."""
    found = re.search(re.escape(label) + r"([\d.]+)", text)
    assert found, (label, text)
    return found.group(1)


# -------------------------------------------------------------------- the table of answers
README_ROWS = {  # (decoder, order) -> the row's decoder and order cells
    ("sigmoid", "data_first"): "| ReLU-Sigmoid | d_beta(x\\|y) |",
    ("sigmoid", "recon_first"): "| ReLU-Sigmoid | d_beta(y\\|x) |",
    ("relu", "data_first"): "| ReLU-ReLU | d_beta(x\\|y) |",
    ("relu", "recon_first"): "| ReLU-ReLU | d_beta(y\\|x) |",
}


def _row(section: str, decoder: str, order: str) -> list[str]:
    line = next(
        line for line in section.splitlines() if line.startswith(README_ROWS[decoder, order])
    )
    return [cell.strip() for cell in line.replace("\\|", "/").strip("|").split("|")]


@pytest.mark.parametrize(("decoder", "order"), list(README_ROWS))
def test_each_table_row_is_the_csv_best_runner_up_and_references(study, section, decoder, order):
    cells = _row(section, decoder, order)
    (top, _), (runner_up, _) = ranked(study, decoder, order, "ssim_mean")[:2]
    best, second = values(study, decoder, top), values(study, decoder, runner_up)
    assert cells[2] == beta_of(top)
    assert cells[3] == ci(best)
    assert cells[4].endswith(f"{ci(second)}") and cells[4].startswith(f"beta {beta_of(runner_up)}")
    raw, adjusted = holm_family(study)["ssim_mean", decoder, order, "runner-up"]
    verdict = cells[5]
    assert verdict.startswith("yes" if adjusted < 0.05 else "no")
    assert rounds_to(p_after(verdict, "p = "), adjusted)
    if "before Holm" in verdict:
        assert rounds_to(p_after(verdict, "("), raw) and verdict.endswith(" before Holm)")
    if "x the seed spread" in verdict:
        spread = max(best.std(ddof=1), second.std(ddof=1))
        assert f"gap {(best.mean() - second.mean()) / spread:.1f}x the seed spread" in verdict
    if order == "data_first":  # the reference columns are filled once per decoder
        assert cells[6] == ci(values(study, decoder, "mse"))
        assert cells[7] == ci(values(study, decoder, "bce"))


def test_holm_family_has_the_17_tests_the_section_says(study, prose):
    assert _holm(study)[1] == 17
    assert "Holm-adjusted over the 17 tests" in prose


# ------------------------------------------------------------------------ the prose claims
def test_sigmoid_data_first_betas_0_5_to_1_25_beat_mse_and_bce_in_every_seed(study, prose):
    bce = values(study, "sigmoid", "bce")
    mse = values(study, "sigmoid", "mse")
    leads = []
    for beta in ("0.5", "0.75", "1", "1.25"):
        v = values(study, "sigmoid", loss(beta, "data_first"))
        assert v.min() > max(mse.max(), bce.max()), beta  # its worst seed above their best
        leads.append(v.mean() - bce.mean())
    # ... and the range is exactly that: its neighbours do not beat BCE.
    for beta in ("0.25", "1.5"):
        assert values(study, "sigmoid", loss(beta, "data_first")).mean() < bce.mean()
    assert (
        "every data-first beta from 0.5 to 1.25 beats both MSE and BCE in every seed "
        "(its worst seed above their best; "
        f"by {min(leads):.4f} to {max(leads):.4f} over BCE's mean)" in prose
    )


def test_beta_0_75_is_the_best_loss_and_its_lead_over_e_i2(study, prose):
    means = study.groupby(["decoder_activation", "loss"]).ssim_mean.mean()
    assert means.idxmax() == ("sigmoid", loss("0.75", "data_first"))
    best = values(study, "sigmoid", loss("0.75", "data_first"))
    e_i2 = values(study, "sigmoid", loss("1", "data_first"))
    gap = best.mean() - e_i2.mean()
    assert f"E_I2 (beta = 1) is {gap:.4f} behind it" in prose
    spread = max(best.std(ddof=1), e_i2.std(ddof=1))
    _, adjusted = holm_family(study)["overall", "runner-up"]
    assert f"That lead is narrow: {gap / spread:.1f} seed standard deviations" in prose
    assert rounds_to(p_after(prose, "(Holm p = "), adjusted)


def test_the_lead_is_set_against_its_learning_rate_tuning(study, tune, prose):
    sweep = yaml.safe_load((ROOT / "configs" / "sweeps" / "beta-tune.yaml").read_text())
    grid = sorted({lr for block in sweep["grid"] for lr in block["optimizer.learning_rate"]})
    assert sorted(tune.learning_rate.unique()) == grid
    ratios = sorted({float(f"{b / a:.2g}") for a, b in itertools.pairwise(grid)})
    assert f"rates are {ratios[0]:g} to {ratios[-1]:g} times apart" in prose
    assert set(tune.seed) == {0}
    assert "tuned on one seed (seed 0)" in prose

    def holdout(beta):
        rows = tune[
            (tune.decoder_activation == "sigmoid") & (tune.loss == loss(beta, "data_first"))
        ]
        return rows.set_index("learning_rate").ssim_mean.sort_index()

    best, e_i2 = holdout("0.75"), holdout("1")
    chosen = best.idxmax()
    study_rate = study[study.loss == loss("0.75", "data_first")]
    assert set(study_rate[study_rate.decoder_activation == "sigmoid"].learning_rate) == {chosen}
    at = grid.index(chosen)
    below, above = grid[at - 1], grid[at + 1]
    test_gap = (
        values(study, "sigmoid", loss("0.75", "data_first")).mean()
        - values(study, "sigmoid", loss("1", "data_first")).mean()
    )
    holdout_lead = best[chosen] - e_i2.max()
    # One grid step costs more than the lead, on the test set and on the holdout.
    assert min(best[chosen] - best[below], best[chosen] - best[above]) > max(test_gap, holdout_lead)
    assert best[below] < e_i2.max() and best[above] < e_i2.max()
    assert (
        f"{best[chosen]:.4f} at its chosen rate {chosen:g}, {best[below]:.4f} at {below:g}, "
        f"{best[above]:.4f} at {above:g}, against beta = 1's best of {e_i2.max():.4f} "
        f"(a holdout lead of {holdout_lead:.4f})" in prose
    )


def test_relu_claims(study, prose):
    e_i2 = values(study, "relu", loss("1", "data_first")).mean()
    e_i1 = values(study, "relu", loss("1", "recon_first")).mean()
    assert f"(E_I2 {e_i2:.3f}, E_I1 {e_i1:.3f})" in prose
    bests = {order: beta_of(ranked(study, "relu", order, "ssim_mean")[0][0]) for order in ORDERS}
    assert sorted(bests.values()) == ["1.5", "2"]
    assert "beta = 1.5 to 2 is best" in prose
    mse = values(study, "relu", "mse").mean()
    for order in ORDERS:
        beta2 = values(study, "relu", loss("2", order)).mean()
        assert f"it scores {beta2:.3f} against MSE's {mse:.3f}" in prose
        assert f"clipping alone is worth {beta2 - mse:.4f} there" in prose
    sig2 = {values(study, "sigmoid", loss("2", o)).mean() for o in ORDERS}
    sig_mse = values(study, "sigmoid", "mse").mean()
    assert {f"{m:.3f}" for m in sig2} == {f"{sorted(sig2)[0]:.3f}"}
    assert f"beta = 2 and MSE agree: {min(sig2):.3f} and {sig_mse:.3f}" in prose


def test_reconstruction_first_collapse(study, tune, prose):
    collapsed = set()
    for decoder in DECODERS:
        for beta in ("0", "0.25", "0.5"):
            v = values(study, decoder, loss(beta, "recon_first"))
            assert np.ptp(v) < 1e-5, (decoder, beta)  # the same score in every seed
            collapsed.add(f"{v.mean():.3f}")
            h = tune[
                (tune.decoder_activation == decoder) & (tune.loss == loss(beta, "recon_first"))
            ]
            assert len(h) == 5 and np.ptp(h.ssim_mean) < 1e-4
            collapsed.add(f"{h.ssim_mean.mean():.4f}")
    blank, holdout = sorted(collapsed, key=len)
    assert f"(SSIM {blank} in every seed, and {holdout} on the holdout at every learning rate)" in (
        prose
    )
    relu = values(study, "relu", loss("0.75", "recon_first"))
    stuck = int(np.sum(np.abs(relu - float(blank)) < 1e-3))
    sigmoid = values(study, "sigmoid", loss("0.75", "recon_first"))
    h = tune[(tune.decoder_activation == "sigmoid") & (tune.loss == loss("0.75", "recon_first"))]
    top = h.loc[h.ssim_mean.idxmax()]
    assert (
        f"at beta = 0.75 they barely escape ({relu.mean():.3f} with ReLU, {stuck} of whose "
        f"{len(relu)} seeds still collapse, and {sigmoid.mean():.3f} with a sigmoid, whose "
        f"holdout best was {top.ssim_mean:.4f} at lr {top.learning_rate:g})" in prose
    )
    # The sentence the README used to have: "SSIM 0.241 at every learning rate" below beta 1.
    assert relu.mean() > float(blank) + 0.01 and sigmoid.mean() > float(blank) + 0.005


def test_every_best_beta_beats_mse_after_holm(study, prose):
    family = holm_family(study)
    worst = max(family["ssim_mean", d, o, "mse"][1] for d in DECODERS for o in ORDERS)
    assert worst <= 1e-4
    assert "Each of the four best betas beats MSE after Holm (p <= 1e-4)" in prose


def test_thesis_protocol_claims(study, prose):
    data_first = ranked(study, "sigmoid", "data_first", "ssim_thesis")
    full = ranked(study, "sigmoid", "data_first", "ssim_mean")
    assert [k for k, _ in data_first[:2]] == [k for k, _ in full[:2]]
    recon = ranked(study, "sigmoid", "recon_first", "ssim_thesis")
    assert recon[0][0] == ranked(study, "sigmoid", "recon_first", "ssim_mean")[0][0]
    top = values(study, "sigmoid", data_first[0][0], "ssim_thesis")
    assert (
        f"(data first beta = {beta_of(data_first[0][0])}: {ci(top)}, then beta = "
        f"{beta_of(data_first[1][0])}; reconstruction first beta = {beta_of(recon[0][0])})" in prose
    )
    _, adjusted = holm_family(study)["ssim_thesis", "sigmoid", "data_first", "runner-up"]
    assert adjusted >= 0.05
    assert rounds_to(p_after(prose, "is not significant (p = "), adjusted)
    relu = study[(study.decoder_activation == "relu") & study.loss.str.startswith("beta")]
    means = relu.groupby("loss").ssim_thesis.mean()
    mse = values(study, "relu", "mse", "ssim_thesis").mean()
    assert means.max() < mse
    assert (
        f"no beta scores above MSE (best beta = {beta_of(means.idxmax())}: "
        f"{means.max():.3f} against {mse:.3f})" in prose
    )


def test_setup_claims(study, tune, prose):
    sweep = yaml.safe_load((ROOT / "configs" / "sweeps" / "beta-tune.yaml").read_text())
    assert sweep["config"]["data.holdout"] == 10_000
    assert "on the last 10,000 training images" in prose
    betas = sorted({float(beta_of(k)) for k in tune.loss if k.startswith("beta")})
    assert "(beta in {" + ", ".join(f"{b:g}" for b in betas) + "}" in prose
    configs = tune.groupby(["decoder_activation", "loss"]).ngroups
    assert configs == study.groupby(["decoder_activation", "loss"]).ngroups
    assert f"for each of the {configs} configurations" in prose
    assert (
        set(study.seed) == set(range(5))
        and (study.groupby(["decoder_activation", "loss"]).size() == 5).all()
    )
    assert "over 5 seeds on all training images" in prose
    assert set(study.data) == {"{path: None, train_limit: None, test_limit: None}"}
    assert (study.status == "completed").all() and (tune.status == "completed").all()
    assert f"({len(study) + len(tune)} runs," in prose
    lrs = sorted(tune.learning_rate.unique())
    assert f"learning rate ({lrs[0]:.0e} to {lrs[-1]:.0e})".replace("e-0", "e-") in prose


# The numbers the tests above recompute from the CSVs or the sweep config (table cells too).
CHECKED_NUMBERS = frozenset(
    re.findall(
        r"\S+",
        """
        0 0.25 0.5 0.75 1 1.25 1.5 3 3.3 5 17 40 400 10,000 1e-4 1e-2
        0.0021 0.0036 0.0126 4.5 0.0008 0.001 0.0003 0.003 0.8781 0.8741 0.8723 0.8752 0.0029
        0.724 0.668 0.874 0.850 0.0249 0.848 0.849 0.241 0.2395 0.264 0.248 0.2568
        0.881 0.876 0.886 0.61 0.791 0.793 0.09 0.013
        0.884 0.883 0.882 0.846 0.851 0.871 0.869 0.873 0.875 0.872 0.878 0.853 0.844
        0.862 0.845 0.854 0.739 0.731 0.746 0.870 0.863 0.877
        """,
    )
)


def test_every_number_in_the_section_is_one_the_tests_account_for(section):
    """List the section's numbers, so a new one cannot slip in without a test above.

    Each number is either checked against the CSVs by a test in this module, or is one of the
    constants below, whose source is named.
    """
    constants = {
        "1e-7": "aeexp.registry.vocab.EPSILON, the divergences' clip (aeexp/registry/losses.py)",
        "1e7": "1 / EPSILON, the factor at beta = 0",
        "100": "minutes of wall-clock time: REPORT.md's line (101.0), not in the CSVs",
        "2": "cores of the machine: REPORT.md's machine line, not in the CSVs; also beta = 2",
        "95": "the confidence level of the t intervals, as the report's tables name it",
    }
    text = section.split("```bash")[0] + section.split("```", 2)[2]
    found = set(re.findall(r"(?<![\w.^\-])\d[\d,]*(?:\.\d+)?(?:e-?\d+)?", text))
    found = {n.rstrip(",") for n in found}
    checked = CHECKED_NUMBERS
    unknown = found - checked - set(constants)
    assert not unknown, f"numbers on the beta page no test checks: {sorted(unknown)}"
    for number in checked - {"1", "3", "5"}:
        assert number in found, f"a checked number the section no longer states: {number}"
    # The constants' sources.
    assert "EPSILON = 1e-7" in (ROOT / "aeexp" / "registry" / "vocab.py").read_text()
    report_text = (RESULTS / "REPORT.md").read_text()
    minutes = float(re.search(r"sweeps: ([\d.]+) minutes", report_text).group(1))
    assert round(minutes, -1) == 100
    assert "2 CPUs" in report_text


# ------------------------------------------------------------------- the generated report
def _report_answer() -> str:
    text = (RESULTS / "REPORT.md").read_text()
    return next(line for line in text.splitlines() if line.startswith("Over the whole test set"))


def test_report_tables_are_the_csvs(study):
    text = (RESULTS / "REPORT.md").read_text()
    columns = [(d, o) for d in DECODERS for o in ORDERS]
    for metric, heading in (
        ("ssim_mean", "## SSIM over the whole"),
        ("ssim_thesis", "## SSIM under"),
    ):
        part = text.split(heading)[1].split("\n## ")[0]
        rows = [r for r in part.splitlines() if r.startswith("| ") and not r.startswith("| β")]
        assert len(rows) == 11
        for row in rows:
            cells = [c.strip() for c in row.strip("|").split("|")]
            for (decoder, order), cell in zip(columns, cells[1:], strict=True):
                key = cells[0].lower() if cells[0] in ("MSE", "BCE") else loss(cells[0], order)
                assert cell == f"{ci(values(study, decoder, key, metric))} (5)", (metric, key)


def test_report_p_values_are_the_csvs(study):
    answer = _report_answer()
    family = holm_family(study)
    raw, adjusted = family["overall", "runner-up"]
    assert f"Welch p = {raw:.2g}, Holm-adjusted {adjusted:.2g}" in answer
    raw, adjusted = family["overall", "worst"]
    assert f"Welch p = {raw:.2g}, Holm-adjusted {adjusted:.2g}" in answer
    assert "over the 17 tests it reports" in answer


def test_report_tuning_table_is_the_csv(study, tune):
    text = (RESULTS / "REPORT.md").read_text().split("## Learning-rate tuning")[1]
    rows = [r for r in text.splitlines() if r.startswith("| ReLU")]
    assert len(rows) == 40
    for row in rows:
        label, key, chosen, _, scores = (c.strip() for c in row.strip("|").split("|"))
        decoder = {"ReLU-ReLU": "relu", "ReLU-Sigmoid": "sigmoid"}[label]
        holdout = tune[(tune.decoder_activation == decoder) & (tune.loss == key)]
        holdout = holdout.sort_values("learning_rate")
        assert scores == ", ".join(
            f"{lr:g}: {s:.4f}"
            for lr, s in zip(holdout.learning_rate, holdout.ssim_mean, strict=True)
        )
        best = holdout.loc[holdout.ssim_mean.idxmax(), "learning_rate"]
        assert float(chosen) == best
        used = study[(study.decoder_activation == decoder) & (study.loss == key)].learning_rate
        assert set(used) == {best}


def _csv_runs(tmp_path: Path, study: pd.DataFrame, tune: pd.DataFrame, keys) -> tuple:
    """Write run directories holding the CSVs' scores for ``keys`` (decoder, loss)."""

    def raw(decoder, key, lr, seed, holdout=None):
        beta, order = key[len("beta(") : -1].split(",")
        return {
            "loss": {"name": "beta", "beta": float(beta), "order": order},
            "model": {"decoder_activation": decoder},
            "seed": int(seed),
            "optimizer": {"name": "adam", "learning_rate": float(lr)},
            "data": {"holdout": holdout},
        }

    for decoder, key in keys:
        for row in study[(study.decoder_activation == decoder) & (study.loss == key)].itertuples():
            fake_run(
                tmp_path / "study",
                raw(decoder, key, row.learning_rate, row.seed),
                "beta",
                ssim_mean=row.ssim_mean,
            )
        for row in tune[(tune.decoder_activation == decoder) & (tune.loss == key)].itertuples():
            fake_run(
                tmp_path / "tune",
                raw(decoder, key, row.learning_rate, row.seed, 10_000),
                "beta-tune",
                ssim_mean=row.ssim_mean,
            )
    runs = store.load_runs(tmp_path / "study" / "beta")
    tune_runs = store.load_runs(tmp_path / "tune" / "beta-tune")
    return runs, tune_runs


def test_report_states_how_narrow_the_lead_is_as_the_generator_writes_it(tmp_path, study, tune):
    """The Answer's sentence on the lead (hand-edited into the committed REPORT.md, whose run
    directories are not in the repository) is the one ``make beta`` now writes from these CSVs.
    """
    keys = [("sigmoid", loss("0.75", "data_first")), ("sigmoid", loss("1", "data_first"))]
    runs, tune_runs = _csv_runs(tmp_path, study, tune, keys)
    ranking = report.beta_ranking(runs, "ssim_mean")
    choices = selection.best_learning_rates(tune_runs, "ssim_mean")
    sentence = report.lead_against_tuning(ranking, choices, tune_runs)
    assert sentence.startswith(" How narrow the lead is: the learning rates were tuned on seed 0")
    assert "rates are 3 to 3.3 times apart" in sentence
    assert "(0.001: 0.8781) costs it at least 0.0040 (0.0003: 0.8741; 0.003: 0.8723)" in sentence
    assert "more than its gap of 0.0021 over the runner-up on the test set" in sentence
    assert (
        "more than its holdout lead of 0.0029 over the runner-up's best rate (0.001: 0.8752)"
        in (sentence)
    )
    assert sentence.strip() in _report_answer()


def test_the_lead_sentence_says_no_more_than_when_tuning_cannot_overturn_it(tmp_path):
    def raw(beta, lr, seed, holdout=None):
        return {
            "loss": {"name": "beta", "beta": beta, "order": "data_first"},
            "model": {"decoder_activation": "sigmoid"},
            "seed": seed,
            "optimizer": {"name": "adam", "learning_rate": lr},
            "data": {"holdout": holdout},
        }

    for beta, base in ((0.5, 0.9), (1.0, 0.7)):
        for seed in range(3):
            fake_run(tmp_path / "s", raw(beta, 0.001, seed), "beta", ssim_mean=base + seed / 1000)
        for lr, drop in ((0.0001, 0.01), (0.001, 0.0), (0.01, 0.02)):
            fake_run(tmp_path / "t", raw(beta, lr, 0, 100), "tune", ssim_mean=base - drop)
    runs, tune_runs = (
        store.load_runs(tmp_path / "s" / "beta"),
        store.load_runs(tmp_path / "t" / "tune"),
    )
    ranking = report.beta_ranking(runs, "ssim_mean")
    choices = selection.best_learning_rates(tune_runs, "ssim_mean")
    sentence = report.lead_against_tuning(ranking, choices, tune_runs)
    assert "rates are 10 times apart" in sentence
    assert "costs it at least 0.0100 (0.0001: 0.8900; 0.01: 0.8800)" in sentence
    assert "no more than its gap of 0.2000" in sentence
    assert "no more than its holdout lead of 0.2000" in sentence
    assert report.lead_against_tuning(ranking[:1], choices, tune_runs) == ""
    assert report.lead_against_tuning(ranking, [], tune_runs) == ""


def numbers(text: str) -> set[str]:
    """Return the decimal numbers a text states (a beta's value, an SSIM, an interval's end)."""
    return set(re.findall(r"(?<![\w.^\-])\d+\.\d+", text))


def test_the_readmes_beta_answer_uses_only_the_pages_checked_numbers(section):
    """The README's two sentences repeat numbers the page states (and the tests above check)."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Which beta-divergence suits an autoencoder?")
    answer = readme[start : readme.index("\n## ", start + 1)]
    stated = numbers(answer)
    assert stated >= {"0.75", "0.884", "0.881", "0.849", "0.871", "0.878"}
    assert stated <= numbers(section), sorted(stated - numbers(section))
