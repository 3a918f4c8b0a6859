"""The thesis reproduction report: tables, figures and verdicts computed from run directories."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import shutil
from collections.abc import Sequence
from pathlib import Path

from aeexp import optimizers, plots, results, tables
from aeexp.tables import ConfigStats, Run

DECODERS = {"relu": "ReLU-ReLU", "sigmoid": "ReLU-Sigmoid"}
AGREEMENT_SIGMAS = 2.0


def _read_first(path: str, prefix: str) -> str:
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine_description(runs: Sequence[Run]) -> str:
    """Return the CPU, cores, memory and library versions the runs were made with."""
    memory_kb = _read_first("/proc/meminfo", "MemTotal").split()[0]
    memory = f"{int(memory_kb) / 2**20:.0f} GiB" if memory_kb.isdigit() else "unknown"
    versions = runs[0].metrics.get("versions", {})
    libs = ", ".join(f"{k} {v}" for k, v in versions.items())
    return (
        f"{_read_first('/proc/cpuinfo', 'model name')}, {os.cpu_count()} cores, "
        f"{memory} memory, {platform.system()} {platform.machine()}; {libs}"
    )


def elapsed_seconds(runs: Sequence[Run]) -> float:
    """Return the wall-clock span from the first run's start to the last run's end."""
    ends = [
        dt.datetime.fromisoformat(r.metrics["finished_at"])
        for r in runs
        if "finished_at" in r.metrics
    ]
    starts = [
        dt.datetime.fromisoformat(r.metrics["finished_at"])
        - dt.timedelta(seconds=r.metrics.get("train_seconds", 0.0))
        for r in runs
        if "finished_at" in r.metrics
    ]
    return (max(ends) - min(starts)).total_seconds() if ends else 0.0


def _select(
    runs: Sequence[Run], decoder: str, loss: str, optimizer: str | None = None
) -> list[Run]:
    return [
        r
        for r in runs
        if r.config.model.decoder_activation == decoder
        and tables.loss_key(r.config) == loss
        and (optimizer is None or r.config.optimizer.name == optimizer)
    ]


def _stat(runs: Sequence[Run], metric: str) -> ConfigStats | None:
    return tables.best(tables.config_stats(runs, metric))


def _fmt(stat: ConfigStats | None, with_optimizer: bool = False) -> str:
    if stat is None:
        return "n/a"
    text = tables.format_value(stat)
    return f"{text} {stat.optimizer_label}" if with_optimizer else text


def agrees(stat: ConfigStats | None, published: float) -> bool:
    """Return True if the published value lies within the seed spread of ``stat``."""
    return (
        stat is not None
        and stat.n > 1
        and abs(stat.mean - published) <= (AGREEMENT_SIGMAS * stat.std)
    )


def comparison_table(
    defaults: Sequence[Run], tuned: Sequence[Run], metric: str, with_thesis: bool
) -> tuple[str, list[tuple[str, bool]]]:
    """Return the per-cell comparison table and, per cell, whether it agrees with the thesis."""
    header = ["decoder", "loss"]
    if with_thesis:
        header.append("thesis (optimizer)")
    header += [
        "ours: thesis's optimizer, Keras 2.2 defaults, 5 seeds",
        "ours: best optimizer at defaults",
        "ours: tuned best (seed 0)",
    ]
    if with_thesis:
        header.append(f"thesis within {AGREEMENT_SIGMAS:g} std?")
    body, verdicts = [], []
    for (decoder, loss), (value, optimizer) in tables.THESIS_SSIM.items():
        own = _stat(_select(defaults, decoder, loss, optimizer), metric)
        row = [DECODERS[decoder], tables.loss_header(loss)]
        if with_thesis:
            row.append(f"{value:.3f} ({optimizers.OPTIMIZERS[optimizer].label})")
        row += [
            _fmt(own),
            _fmt(_stat(_select(defaults, decoder, loss), metric), True),
            _fmt(_stat(_select(tuned, decoder, loss), metric), True),
        ]
        if with_thesis:
            verdict = agrees(own, value)
            verdicts.append((f"{DECODERS[decoder]} {tables.loss_header(loss)}", verdict))
            diff = f" ({own.mean - value:+.3f})" if own else ""
            row.append(("yes" if verdict else "no") + diff)
        body.append(row)
    return tables.to_markdown(header, body), verdicts


def _copy_cell_figures(tuned: Sequence[Run], figures: Path) -> list[tuple[str, str, str]]:
    """Copy each cell's tuned-best reconstructions and loss history; return their names."""
    copied = []
    for (decoder, loss), (_, optimizer) in tables.THESIS_SSIM.items():
        stat = _stat(_select(tuned, decoder, loss, optimizer), "ssim_thesis")
        if stat is None:
            continue
        run = stat.runs[0]
        stem = f"{loss}_{DECODERS[decoder].lower()}_{optimizer}"
        for source, kind in (
            (results.RECONSTRUCTIONS, "reconstructions"),
            (results.LOSS_PLOT, "loss_history"),
        ):
            if (run.path / source).is_file():
                shutil.copyfile(run.path / source, figures / f"{kind}_{stem}.png")
        copied.append(
            (
                f"{DECODERS[decoder]}, {tables.loss_header(loss)}, {stat.optimizer_label}",
                f"reconstructions_{stem}.png",
                f"loss_history_{stem}.png",
            )
        )
    return copied


DISCUSSION = """\
## Discussion

**What is reproduced exactly.** The model, the data split, the clipped losses, the Keras 2.2
optimizer defaults and update rules (tested step by step against Keras 2.2's formulas), and
the thesis's SSIM protocol (ten hand-picked test digits, each saved through matplotlib's
gray colormap and read back as OpenCV would) are implemented as the notebook ran them.

**Why numbers still differ.** (1) The thesis reports one training run per cell; a single
run can land anywhere in the seed-to-seed spread shown above. (2) The thesis reports the
best point of a tuning grid without recording which point won; the tuned column picks the
best point of the same grid on one seed, an optimistic selection just as the thesis's was.
(3) TensorFlow 1.x and today's TensorFlow differ in initialisation streams, shuffling and
floating-point reduction order, so no run can be bit-identical to the notebook's. (4) The
ten-image protocol measures a contrast-stretched picture of ten digits, not the pixels of
the test set; the full-test-set SSIM is the sounder measure.
"""


def tuned_note(tuned: Sequence[Run], cells: Sequence[str]) -> str:
    """Return how close the author's tuning grid gets in the cells that do not agree."""
    parts = []
    for (decoder, loss), (value, optimizer) in tables.THESIS_SSIM.items():
        if f"{DECODERS[decoder]} {tables.loss_header(loss)}" not in cells:
            continue
        stat = _stat(_select(tuned, decoder, loss, optimizer), "ssim_thesis")
        if stat is not None:
            parts.append(
                f"{DECODERS[decoder]} {tables.loss_header(loss)} reaches "
                f"{stat.mean:.3f} with {stat.optimizer_label} ({stat.mean - value:+.3f})"
            )
    if not parts:
        return ""
    return " Over the author's own tuning grid (one seed, best point), " + "; ".join(parts) + "."


def loss_ranking(defaults: Sequence[Run], metric: str) -> list[str]:
    """Return, per decoder, the losses ranked by their best optimizer's mean, with the gaps."""
    lines = []
    for decoder, label in DECODERS.items():
        ranked = []
        for loss in tables.THESIS_LOSSES:
            stat = _stat(_select(defaults, decoder, loss), metric)
            if stat is not None:
                ranked.append((loss, stat))
        ranked.sort(key=lambda item: -item[1].mean)
        parts = []
        for (loss, stat), (next_loss, next_stat) in zip(ranked, ranked[1:], strict=False):
            spread = max(stat.std, next_stat.std)
            ratio = (stat.mean - next_stat.mean) / spread if spread else math.inf
            parts.append(
                f"{tables.loss_header(loss)} ({_fmt(stat)}) beats "
                f"{tables.loss_header(next_loss)} ({_fmt(next_stat)}) by "
                f"{stat.mean - next_stat.mean:.3f}, {ratio:.1f} times the larger "
                "seed standard deviation"
            )
        lines.append(f"- {label}: " + "; ".join(parts) + ".")
    return lines


def write_thesis_report(defaults_dir: Path, tuned_dir: Path, out_dir: Path) -> Path:
    """Write ``REPORT.md``, its tables and figures into ``out_dir`` and return its path."""
    defaults, tuned = tables.load_runs(defaults_dir), tables.load_runs(tuned_dir)
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    thesis_table, verdicts = comparison_table(defaults, tuned, "ssim_thesis", with_thesis=True)
    full_table, _ = comparison_table(defaults, tuned, "ssim_mean", with_thesis=False)
    for metric in ("ssim_thesis", "ssim_mean"):
        tables.write_figures(defaults_dir, metric, figures)
        header, body = tables.layout(defaults, metric, by="optimizer")
        results.write_text_atomic(
            out_dir / f"{metric}_by_optimizer.md", tables.to_markdown(header, body) + "\n"
        )
        results.write_text_atomic(
            out_dir / f"{metric}_by_optimizer.csv",
            tables.to_csv(tables.long_rows(defaults, metric, "optimizer")),
        )
    cell_figures = _copy_cell_figures(tuned, figures)
    for folder in (defaults_dir, tuned_dir):
        if (folder / "runs.csv").is_file():
            shutil.copyfile(folder / "runs.csv", out_dir / f"{folder.name}-runs.csv")
    text = _render(defaults, tuned, thesis_table, full_table, verdicts, cell_figures)
    report = out_dir / "REPORT.md"
    results.write_text_atomic(report, text)
    return report


def _render(
    defaults: Sequence[Run],
    tuned: Sequence[Run],
    thesis_table: str,
    full_table: str,
    verdicts: list[tuple[str, bool]],
    cell_figures: list[tuple[str, str, str]],
) -> str:
    everything = [*defaults, *tuned]
    diverged = [r for r in everything if r.metrics.get("status") != "completed"]
    minutes = elapsed_seconds(everything) / 60
    by_optimizer = tables.to_markdown(*tables.layout(defaults, "ssim_thesis", by="optimizer"))
    figure_lines = [
        f"| {label} | ![]({'figures/' + rec}) | ![]({'figures/' + hist}) |"
        for label, rec, hist in cell_figures
    ]
    agreeing = [cell for cell, ok in verdicts if ok]
    disagreeing = [cell for cell, ok in verdicts if not ok]
    return "\n".join(
        [
            '# Reproducing Haruguchi (2019), "Autoencoder with New Loss Functions"',
            "",
            "Generated by `make reproduce` from the run directories of "
            "`configs/sweeps/thesis-optimizers.yaml` (3 losses x 2 decoders x 5 optimizers at "
            "Keras 2.2 defaults, 5 seeds) and `configs/sweeps/thesis-tuned.yaml` (the author's "
            "final learning-rate grids, seed 0). 784-32-784 autoencoder, 50 epochs, batch 256, "
            "all 60,000 training images; SSIM as defined in THESIS.md.",
            "",
            f"- Runs: {len(defaults)} + {len(tuned)}; diverged or failed: {len(diverged)}.",
            f"- Wall-clock time of the sweeps: {minutes:.1f} minutes, from the first run's start "
            "to the last run's end (see the README's Performance section for what else shared "
            "the machine).",
            f"- Machine: {machine_description(everything)}.",
            "",
            "## SSIM, thesis protocol (ten digits, gray colormap, 8 bits), against the thesis",
            "",
            thesis_table,
            "",
            f"Agreement rule: the published value lies within {AGREEMENT_SIGMAS:g} standard "
            "deviations (over seeds) of our mean for the thesis's own optimizer at Keras 2.2 "
            "defaults. The difference to the published value is in brackets.",
            "",
            "## SSIM over the whole test set (10,000 images, [0, 1] pixels)",
            "",
            full_table,
            "",
            "## Every optimizer (thesis protocol, Keras 2.2 defaults, mean ± std over seeds)",
            "",
            by_optimizer,
            "",
            "![SSIM by loss, decoder and optimizer](figures/ssim_thesis_bars.png)",
            "",
            "![Full-test-set SSIM by loss, decoder and optimizer](figures/ssim_mean_bars.png)",
            "",
            "## The thesis's figures, regenerated (each cell's tuned best run)",
            "",
            "| cell | reconstructions (originals above) | loss history |",
            "|---|---|---|",
            *figure_lines,
            "",
            DISCUSSION,
            "**What the statistics add.** The thesis's single runs could not say whether a "
            "difference between losses is more than noise. Over five seeds and the whole "
            "test set, each loss at its best optimizer (Keras 2.2 defaults):",
            "",
            *loss_ranking(defaults, "ssim_mean"),
            "",
            "Under the ten-image protocol:",
            "",
            *loss_ranking(defaults, "ssim_thesis"),
            "",
            "## Verdict",
            "",
            f"Within the seed-to-seed spread, {len(agreeing)} of the six cells agree with the "
            f"thesis: {', '.join(agreeing) or 'none'}. "
            + (
                f"The published value lies outside the spread for {', '.join(disagreeing)}."
                if disagreeing
                else "No cell lies outside the spread."
            )
            + tuned_note(tuned, [cell for cell, ok in verdicts if not ok]),
            "",
        ]
    )


# --- The beta-divergence study --------------------------------------------------------------

ORDERS = {"data_first": "d_β(x|y), data first", "recon_first": "d_β(y|x), reconstruction first"}


def _beta_of(run: Run) -> float | None:
    return run.config.loss.beta if run.config.loss.name == "beta" else None


def _study_stats(runs: Sequence[Run], metric: str) -> dict[tuple[str, str, str], ConfigStats]:
    """Return stats per (decoder, loss key, order or '') over seeds."""
    chosen = {}
    for stat in tables.config_stats(runs, metric):
        cfg = stat.config
        key = (cfg.model.decoder_activation, tables.loss_key(cfg), cfg.loss.order or "")
        chosen[key] = stat
    return chosen


def _betas(runs: Sequence[Run]) -> list[float]:
    return sorted({b for b in map(_beta_of, runs) if b is not None})


def _beta_key(beta: float, order: str) -> str:
    return f"beta({beta:g},{order})"


def beta_table(runs: Sequence[Run], metric: str) -> str:
    """Return rows of beta (plus MSE and BCE), columns of order x decoder: mean ± std (n)."""
    stats = _study_stats(runs, metric)
    columns = [(d, o) for d in DECODERS for o in ORDERS]
    header = ["β"] + [f"{DECODERS[d]}, {o}" for d, o in columns]
    body = []
    for beta in _betas(runs):
        row = [f"{beta:g}"]
        for decoder, order in columns:
            stat = stats.get((decoder, _beta_key(beta, order), order))
            row.append(_fmt(stat))
        body.append(row)
    for reference in ("mse", "bce"):
        row = [reference.upper()]
        for decoder, _ in columns:
            row.append(_fmt(stats.get((decoder, reference, ""))))
        body.append(row)
    return tables.to_markdown(header, body)


def _curves(runs: Sequence[Run], metric: str, decoder: str, path: Path) -> None:
    stats = _study_stats(runs, metric)
    betas = _betas(runs)
    curves = {}
    for order, label in ORDERS.items():
        points = [stats.get((decoder, _beta_key(b, order), order)) for b in betas]
        curves[label] = [(s.mean, s.std) if s else (math.nan, 0.0) for s in points]
    references = {
        r.upper(): (s.mean, s.std)
        for r in ("mse", "bce")
        if (s := stats.get((decoder, r, ""))) is not None
    }
    plots.line_with_errors(
        betas,
        curves,
        "β",
        metric,
        f"{metric} against β, {DECODERS[decoder]} (mean ± std over seeds)",
        path,
        references,
    )


def _welch(a: ConfigStats, b: ConfigStats) -> float:
    from scipy import stats as scipy_stats

    if a.n < 2 or b.n < 2:
        return math.nan
    return float(scipy_stats.ttest_ind(a.values, b.values, equal_var=False).pvalue)


def _ranked(
    stats: dict[tuple[str, str, str], ConfigStats], decoder: str, order: str
) -> list[tuple[str, ConfigStats]]:
    found = [
        (key[1], s) for key, s in stats.items() if key[0] == decoder and key[2] == order and s.n
    ]
    return sorted(found, key=lambda item: -item[1].mean)


def beta_verdicts(runs: Sequence[Run], metric: str) -> list[str]:
    """Return one sentence per decoder and order: the best beta and how sure that is."""
    stats = _study_stats(runs, metric)
    lines = []
    for decoder in DECODERS:
        for order in ORDERS:
            ranked = _ranked(stats, decoder, order)
            if len(ranked) < 2:
                continue
            (best_key, top), (second_key, runner_up) = ranked[0], ranked[1]
            p_value = _welch(top, runner_up)
            gap = top.mean - runner_up.mean
            spread = max(top.std, runner_up.std)
            sure = "larger" if gap > spread else "not larger"
            mse = stats.get((decoder, "mse", ""))
            versus_mse = (
                f"; against MSE ({_fmt(mse)}) the difference is {top.mean - mse.mean:+.4f}"
                f" (Welch p = {_welch(top, mse):.2g})"
                if mse
                else ""
            )
            lines.append(
                f"- **{DECODERS[decoder]}, {ORDERS[order]}**: best {best_key} with "
                f"{_fmt(top)}; runner-up {second_key} with {_fmt(runner_up)}. The gap "
                f"{gap:.4f} is {sure} than the seed spread ({spread:.4f}; Welch p = "
                f"{p_value:.2g}){versus_mse}."
            )
    return lines


def _overall(runs: Sequence[Run], metric: str) -> tuple[ConfigStats, ConfigStats]:
    betas = [s for s in tables.config_stats(runs, metric) if s.config.loss.name == "beta" and s.n]
    ordered = sorted(betas, key=lambda s: s.mean)
    return ordered[-1], ordered[0]


def _describe(stat: ConfigStats) -> str:
    cfg = stat.config
    return (
        f"β = {cfg.loss.beta:g}, {ORDERS[cfg.loss.order]}, {DECODERS[cfg.model.decoder_activation]}"
        f" (Adam lr={cfg.optimizer.params['learning_rate']:g})"
    )


def tuning_table(tune_runs: Sequence[Run], metric: str) -> str:
    """Return the holdout score of every learning rate and the chosen one per configuration."""
    from aeexp import tuning

    rows = []
    for winner, candidates in tuning.best_learning_rates(tune_runs, metric):
        cfg = winner.config
        scores = ", ".join(
            f"{c.config.optimizer.params['learning_rate']:g}: {c.mean:.4f}" for c in candidates
        )
        rows.append(
            [
                DECODERS[cfg.model.decoder_activation],
                tables.loss_key(cfg),
                f"{cfg.optimizer.params['learning_rate']:g}",
                scores,
            ]
        )
    rows.sort()
    return tables.to_markdown(["decoder", "loss", "chosen lr", f"holdout {metric} per lr"], rows)


def write_beta_report(study_dir: Path, tune_dir: Path, out_dir: Path) -> Path:
    """Write the beta-divergence study's REPORT.md, tables and figures into ``out_dir``."""
    runs, tune_runs = tables.load_runs(study_dir), tables.load_runs(tune_dir)
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for metric in ("ssim_mean", "ssim_thesis"):
        for decoder in DECODERS:
            _curves(runs, metric, decoder, figures / f"{metric}_vs_beta_{decoder}.png")
    best, worst = _overall(runs, "ssim_mean")
    for label, stat in (("best", best), ("worst", worst)):
        source = stat.runs[0].path / results.RECONSTRUCTIONS
        if source.is_file():
            shutil.copyfile(source, figures / f"reconstructions_{label}_beta.png")
    if (study_dir / "runs.csv").is_file():
        shutil.copyfile(study_dir / "runs.csv", out_dir / "runs.csv")
    seeds = max(s.n for s in tables.config_stats(runs, "ssim_mean"))
    everything = [*runs, *tune_runs]
    text = "\n".join(
        [
            "# Which beta-divergence suits an autoencoder best?",
            "",
            "The thesis closes by asking which member of the beta-divergence family works best "
            "as an autoencoder's loss. This study trains the thesis's 784-32-784 autoencoder with "
            "d_β for β in {" + ", ".join(f"{b:g}" for b in _betas(runs)) + "}, both argument "
            "orders and both decoder activations, with MSE and binary cross-entropy as "
            f"references, {seeds} seeds each, 50 epochs, Adam with its learning rate tuned per "
            "configuration on a holdout of the training set (never the test set). β = 1 is the "
            "I-divergence (data first: the thesis's E_I2; reconstruction first: E_I1), β = 0 "
            "Itakura-Saito, β = 2 half the squared error.",
            "",
            f"- Runs: {len(runs)} in the study, {len(tune_runs)} for tuning; wall-clock "
            f"{elapsed_seconds(everything) / 60:.1f} minutes.",
            f"- Machine: {machine_description(everything)}.",
            "- Regenerate: `make beta`.",
            "",
            "## Answer",
            "",
            f"Over the whole test set, the best β-divergence is {_describe(best)} with SSIM "
            f"{_fmt(best)}; the worst is {_describe(worst)} with {_fmt(worst)}. Per decoder and "
            "order (full-test-set SSIM; the gap is compared with the larger of the two seed "
            "standard deviations, and a Welch t-test over seeds):",
            "",
            *beta_verdicts(runs, "ssim_mean"),
            "",
            "Under the thesis's ten-image protocol:",
            "",
            *beta_verdicts(runs, "ssim_thesis"),
            "",
            "## SSIM over the whole test set (mean ± std over seeds)",
            "",
            beta_table(runs, "ssim_mean"),
            "",
            "![ReLU-ReLU](figures/ssim_mean_vs_beta_relu.png)"
            " ![ReLU-Sigmoid](figures/ssim_mean_vs_beta_sigmoid.png)",
            "",
            "## SSIM under the thesis's protocol (mean ± std over seeds)",
            "",
            beta_table(runs, "ssim_thesis"),
            "",
            "![ReLU-ReLU](figures/ssim_thesis_vs_beta_relu.png)"
            " ![ReLU-Sigmoid](figures/ssim_thesis_vs_beta_sigmoid.png)",
            "",
            "## Reconstructions at the best and the worst β (seed 0; originals above)",
            "",
            f"Best, {_describe(best)}:",
            "",
            "![best](figures/reconstructions_best_beta.png)",
            "",
            f"Worst, {_describe(worst)}:",
            "",
            "![worst](figures/reconstructions_worst_beta.png)",
            "",
            "## Learning-rate tuning (holdout of the training set, seed 0)",
            "",
            tuning_table(tune_runs, "ssim_mean"),
            "",
        ]
    )
    report = out_dir / "REPORT.md"
    results.write_text_atomic(report, text)
    return report
