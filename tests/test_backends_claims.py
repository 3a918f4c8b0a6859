"""The docs' words on the committed backends comparison, from its verdicts.csv.

The paired comparison's figures are recomputed from the two paired runs CSVs (a pandas
merge on the seed, SciPy's tests and a NumPy simulation of TOST's power), independently of
aeexp, and held to paired-verdicts.csv and to the docs' sentences.
"""

from pathlib import Path

import docpages
import numpy as np
import pandas
import pytest
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
VERDICTS = REPO / "results" / "backends" / "verdicts.csv"


def test_the_docs_state_what_the_backends_report_found():
    frame = pandas.read_csv(VERDICTS)
    readme = docpages.prose("docs/results/backends.md")
    found = frame["verdict"].value_counts()
    holm = frame[frame.columns[-1]].value_counts()
    counts = tuple(int(found.get(v, 0)) for v in ("equivalent", "different", "inconclusive"))
    assert counts == (12, 0, 12) and len(frame) == 24
    assert tuple(int(holm.get(v, 0)) for v in ("equivalent", "different", "inconclusive")) == counts
    assert "12 equivalent, 0 different, 12 inconclusive of 24" in readme
    undecided = frame[frame["verdict"] == "inconclusive"]
    assert set(undecided["cell"].str.extract(r"(E_I1|E_I2)")[0]) == {"E_I1", "E_I2"}
    assert (undecided["diff_p"] >= 0.2).all() and "every Welch p is 0.2 or more" in readme


def test_the_home_page_counts_cells_as_the_csvs_do():
    """A cell counts as equivalent when all its SSIM metrics are: paired 6 of 6, unpaired 3."""
    home = docpages.prose("docs/index.md")
    counted = {}
    for name, path in (("unpaired", VERDICTS), ("paired", PAIRED)):
        by_cell = pandas.read_csv(path).groupby("cell")["verdict"].agg(set)
        equivalent = sum(verdicts == {"equivalent"} for verdicts in by_cell)
        different = sum("different" in verdicts for verdicts in by_cell)
        counted[name] = (len(by_cell), equivalent, different)
    assert counted == {"paired": (6, 6, 0), "unpaired": (6, 3, 0)}
    assert "equivalent within 0.02 on every SSIM metric in 6 of the 6 cells" in home
    assert "five seeds a side decide 3 of the 6 and find none different" in home


# --- The paired comparison: paired-verdicts.csv against the runs CSVs and the docs' words ----

PAIRED = REPO / "results" / "backends" / "paired-verdicts.csv"
RUNS = REPO / "results" / "backends" / "paired"
KEYS = ["loss.name", "model.decoder_activation", "optimizer.name"]
SIDES = ("tf", "jax")
# The cells' labels, written out here rather than taken from aeexp's registries.
DECODERS = {"relu": "ReLU-ReLU", "sigmoid": "ReLU-Sigmoid"}
LOSSES = {"mse": "MSE", "i_div1": "E_I1", "i_div2": "E_I2"}
OPTIMIZERS = {"adagrad": "Adagrad", "adamax": "Adamax", "adadelta": "AdaDelta"}
OPTIMIZERS |= {"adam": "Adam", "nadam": "Nadam"}
METRICS = ["ssim_thesis", "ssim_thesis_viridis", "ssim_mean", "ssim_median"]


def differences() -> pandas.DataFrame:
    """Return one row per seed with both twins completed: the cell and JAX − TF per metric."""
    tf, jax = (pandas.read_csv(RUNS / f"thesis-cells-paired-{side}-runs.csv") for side in SIDES)
    tf, jax = (frame[frame["status"] == "completed"] for frame in (tf, jax))
    both = jax.merge(tf, on=[*KEYS, "seed"], suffixes=("_jax", "_tf"), validate="one_to_one")
    both["cell"] = [
        f"{DECODERS[d]}, {LOSSES[loss]}, {OPTIMIZERS[o]}"
        for loss, d, o in zip(*(both[k] for k in KEYS), strict=True)
    ]
    for metric in METRICS:
        both[metric] = both[f"{metric}_jax"] - both[f"{metric}_tf"]
    return both


def simulated_power(n: int, sd: float, draws: int = 40_000) -> float:
    """Return how often TOST at 0.02 passes with n normal differences of mean 0 and this sd."""
    rng = np.random.default_rng(n)
    d = rng.normal(0.0, sd, size=(draws, n))
    mean, se = d.mean(axis=1), d.std(axis=1, ddof=1) / np.sqrt(n)
    p = np.maximum(stats.t.sf((mean + 0.02) / se, n - 1), stats.t.cdf((mean - 0.02) / se, n - 1))
    return float((p < 0.05).mean())


def test_each_paired_row_is_recomputed_from_the_runs_csvs_with_scipy():
    frame = pandas.read_csv(PAIRED)
    both = differences()
    assert len(frame) == 24 and set(both["train.init_jax"]) == set(both["train.init_tf"]) == {
        "shared"
    }
    for row in frame.itertuples():
        d = both.loc[both["cell"] == row.cell, row.metric].dropna().to_numpy()
        jax = both.loc[both["cell"] == row.cell, f"{row.metric}_jax"].to_numpy()
        tf = both.loc[both["cell"] == row.cell, f"{row.metric}_tf"].to_numpy()
        assert row.n == len(d)
        assert row.gap == pytest.approx(d.mean(), abs=1e-12)
        assert row.sd == pytest.approx(d.std(ddof=1), rel=1e-6)
        assert row.diff_p == pytest.approx(stats.ttest_rel(jax, tf).pvalue, rel=1e-6)
        above = stats.ttest_1samp(d, -0.02, alternative="greater").pvalue
        below = stats.ttest_1samp(d, 0.02, alternative="less").pvalue
        assert row.tost_p == pytest.approx(max(above, below), rel=1e-6, abs=1e-300)
        low, high = stats.t.interval(0.95, len(d) - 1, d.mean(), stats.sem(d))
        assert (row.ci_lo, row.ci_hi) == pytest.approx((low, high), rel=1e-6, abs=1e-12)
        verdict = "equivalent" if row.tost_p < 0.05 else "different" if row.diff_p < 0.05 else None
        assert row.verdict == (verdict or "inconclusive")
        # Power and pairs needed at the observed sd (true gap 0), by simulation.
        assert simulated_power(row.n, row.sd) == pytest.approx(row.power, abs=0.01)
        assert simulated_power(row.pairs_needed, row.sd) > 0.79
        if row.pairs_needed > 2:  # two pairs are the fewest TOST can judge
            assert simulated_power(row.pairs_needed - 1, row.sd) < 0.81


def paired_row(frame: pandas.DataFrame, cell: str, metric: str) -> pandas.Series:
    """Return paired-verdicts.csv's one row for a cell and metric."""
    (index,) = frame.index[(frame["cell"] == cell) & (frame["metric"] == metric)]
    return frame.loc[index]


def test_the_docs_state_what_the_paired_comparison_found():
    frame = pandas.read_csv(PAIRED)
    page = docpages.prose("docs/results/backends.md")
    both = differences()
    runs = sum(len(pandas.read_csv(RUNS / f"thesis-cells-paired-{s}-runs.csv")) for s in SIDES)
    assert (runs, len(both)) == (120, 60)
    assert "Measured (120 runs, none diverged, 60 pairs)" in page
    assert (frame["verdict"] == "equivalent").all() and (frame["after_holm"] == "equivalent").all()
    assert "all 24 paired comparisons are equivalent, the same after Holm" in page
    stated = {  # cell -> (sd shown, pairs for 80% power) on ssim_thesis and ssim_mean
        "ReLU-ReLU, E_I1, Adamax": ((0.0150, 7), (0.0111, 5)),
        "ReLU-ReLU, E_I2, AdaDelta": ((0.0181, 9), (0.0146, 7)),
    }
    for cell, per_metric in stated.items():
        assert f"{cell} (20 pairs)" in page
        for metric, (sd, needed) in zip(("ssim_thesis", "ssim_mean"), per_metric, strict=True):
            row = paired_row(frame, cell, metric)
            interval = f"{row.gap:+.4f} [{row.ci_lo:+.4f}, {row.ci_hi:+.4f}] on {metric}"
            assert row.n == 20 and interval in page
            assert round(row.sd, 4) == sd and f"{sd:.4f})" in page
            assert row.power > 0.99 and simulated_power(20, row.sd) > 0.99
            assert row.pairs_needed == needed
            # The fewest pairs reaching 80%, by simulation: one fewer falls short.
            assert simulated_power(needed, row.sd) > 0.79
            assert simulated_power(needed - 1, row.sd) < 0.81
    assert "at those sds 7 and 5 pairs would give 80% power" in page and "9 and 7 pairs" in page
    # Seeds 0-4 alone, as the first five pairs left them: TOST cannot pass in either cell.
    first = both[both["seed"] < 5]
    for cell in stated:
        for metric in ("ssim_thesis", "ssim_mean"):
            d = first.loc[first["cell"] == cell, metric].to_numpy()
            above = stats.ttest_1samp(d, -0.02, alternative="greater").pvalue
            below = stats.ttest_1samp(d, 0.02, alternative="less").pvalue
            assert len(d) == 5 and max(above, below) >= 0.05
            assert stats.ttest_1samp(d, 0.0).pvalue >= 0.05  # nor says different
    assert "With seeds 0-4 alone both cells were inconclusive on both metrics" in page
    rounding = frame[~frame["cell"].isin(stated)]
    assert len(rounding) == 16 and (rounding["n"] == 5).all()
    assert rounding["gap"].abs().max() <= 0.0001 and rounding["sd"].max() <= 0.0002
    assert rounding["min_margin"].max() <= 0.0003 and (rounding["pairs_needed"] == 2).all()
    assert "the mean difference is within 0.0001, the sd of the differences 0.0002 or less" in page
    assert "smallest passing margin 0.0003 or less, and 2 pairs give 80% power" in page
    widest = frame.loc[frame["min_margin"].idxmax()]
    assert (widest.cell, widest.metric, round(widest.min_margin, 4)) == (
        "ReLU-ReLU, E_I2, AdaDelta",
        "ssim_thesis",
        0.0129,
    )
    assert "The largest smallest passing margin of all 24 is 0.0129 (ReLU-ReLU E_I2" in page


def test_the_readme_states_the_paired_result():
    frame = pandas.read_csv(PAIRED)
    readme = docpages.prose("README.md")
    equivalent = int((frame["verdict"] == "equivalent").sum())
    held = int((frame["after_holm"] == "equivalent").sum())
    assert (equivalent, held, len(frame)) == (24, 24, 24)
    assert f"equivalent within 0.02 SSIM in all six cells: {equivalent} of {len(frame)}" in readme
    for cell, name in (("ReLU-ReLU, E_I1, Adamax", "E_I1"), ("ReLU-ReLU, E_I2, AdaDelta", "E_I2")):
        row = paired_row(frame, cell, "ssim_thesis")
        interval = f"[{row.ci_lo:+.4f}, {row.ci_hi:+.4f}] ({name})".replace("-", "−")
        assert row.n == 20 and interval in readme
    others = frame[~frame["cell"].str.startswith("ReLU-ReLU, E_I")]
    assert others["gap"].abs().max() < 0.0001 and "differ by rounding only" in readme
