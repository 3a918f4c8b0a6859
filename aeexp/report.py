"""The thesis reproduction report: tables, figures and verdicts computed from run directories."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

from aeexp import host, optimizers, plots, results, tables, tuning
from aeexp.errors import UserError
from aeexp.tables import ConfigStats, Run

DECODERS = {"relu": "ReLU-ReLU", "sigmoid": "ReLU-Sigmoid"}
AGREEMENT_SIGMAS = 2.0


# A run may record its host under this key of metrics.json: ``cpu_model`` (str), ``cpu_count``
# (int) and ``load_average`` (the 1, 5 and 15-minute averages when it finished).
MACHINE_KEY = "machine"


def _versions(runs: Sequence[Run]) -> str:
    """Return the library versions of the first run that recorded them."""
    versions = next((r.metrics["versions"] for r in runs if r.metrics.get("versions")), {})
    return ", ".join(f"{k} {v}" for k, v in versions.items()) or "versions not recorded"


def _span(values: Sequence[float], fmt: str = "g") -> str:
    """Return ``a`` or ``a-b`` for the smallest and largest of ``values``."""
    low, high = min(values), max(values)
    return f"{low:{fmt}}" if low == high else f"{low:{fmt}}-{high:{fmt}}"


def _recorded_machine(runs: Sequence[Run]) -> str | None:
    """Describe the host the runs recorded, or return None if none did."""
    hosts = [r.metrics[MACHINE_KEY] for r in runs if isinstance(r.metrics.get(MACHINE_KEY), dict)]
    if not hosts:
        return None
    models = sorted({str(h.get("cpu_model", "unknown CPU")) for h in hosts})
    cpus = [h["cpu_count"] for h in hosts if isinstance(h.get("cpu_count"), int)]
    loads = [float(h["load_average"][0]) for h in hosts if h.get("load_average")]
    parts = ["; ".join(models)]
    if cpus:
        parts.append(f"{_span(cpus)} CPUs")
    if loads:
        parts.append(f"1-minute load average {_span(loads, '.2f')} as runs finished")
    return "the machine that ran the sweeps, as its runs recorded it: " + ", ".join(parts)


def _this_machine() -> str:
    """Describe the machine writing the report: CPU, count, memory and load right now."""
    memory = host.memory_gib()
    load = (
        "load average {:.2f}/{:.2f}/{:.2f} (1/5/15 minutes) while writing it".format(
            *os.getloadavg()
        )
        if hasattr(os, "getloadavg")
        else "load unknown"
    )
    return (
        "the runs did not record their machine; this is the machine that wrote the report: "
        f"{host.cpu_model()}, {os.cpu_count()} CPUs ({host.usable_cpus()} usable), "
        f"{f'{memory:.0f} GiB' if memory else 'unknown'} memory, "
        f"{platform.system()} {platform.machine()}, {load}"
    )


def _copy_summaries(sweep_dirs: Sequence[Path], out_dir: Path) -> None:
    """Copy each sweep's runs.csv beside the report as ``<sweep name>-runs.csv``."""
    for folder in sweep_dirs:
        if (folder / "runs.csv").is_file():
            shutil.copyfile(folder / "runs.csv", out_dir / f"{folder.name}-runs.csv")


def machine_description(runs: Sequence[Run]) -> str:
    """Return which machine ran the runs (if they recorded it, else this one) and the versions."""
    return f"{_recorded_machine(runs) or _this_machine()}; {_versions(runs)}"


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


def wall_clock_line(runs: Sequence[Run]) -> str:
    """Return the measured wall-clock time of the runs, as a report's bullet."""
    return (
        f"- Wall-clock time of the sweeps: {elapsed_seconds(runs) / 60:.1f} minutes, measured "
        "from the first run's start to the last run's end (pauses between resumed sweeps "
        "included)."
    )


def _not_completed(runs: Sequence[Run]) -> int:
    """Return how many runs diverged or failed."""
    return sum(r.metrics.get("status") != "completed" for r in runs)


def seeds_text(stats: Sequence[ConfigStats]) -> str:
    """Return the completed seeds per configuration: ``5 seeds`` or ``3-5 completed seeds``."""
    counts = [s.n for s in stats] or [0]
    planned = max((len(s.runs) for s in stats), default=0)
    if min(counts) == max(counts) == planned:
        return f"{planned} seed{'' if planned == 1 else 's'}"
    return f"{_span(counts)} completed seeds (of {planned})"


def seed_list(runs: Sequence[Run]) -> str:
    """Return the seeds the runs used: ``seed 0`` or ``seeds 0, 1, 2``."""
    seeds = sorted({r.config.seed for r in runs})
    return f"seed{'' if len(seeds) == 1 else 's'} {', '.join(map(str, seeds))}"


def training_text(runs: Sequence[Run]) -> str:
    """Return the epochs and batch size the runs' configs used, e.g. ``50 epochs, batch 256``."""
    epochs = sorted({r.config.train.epochs for r in runs})
    batches = sorted({r.config.train.batch_size for r in runs})
    return f"{'/'.join(map(str, epochs))} epochs, batch {'/'.join(map(str, batches))}"


def optimizer_text(runs: Sequence[Run]) -> str:
    """Return the optimizers the runs used, by label, e.g. ``Adam``."""
    names = sorted({r.config.optimizer.name for r in runs})
    return "/".join(optimizers.OPTIMIZERS[name].label for name in names)


def train_images_text(runs: Sequence[Run]) -> str:
    """Return how many training images the runs recorded, e.g. ``60,000 training images``."""
    counts = sorted(
        {
            r.metrics["data"]["train_images"]
            for r in runs
            if "train_images" in r.metrics.get("data", {})
        }
    )
    return f"{'/'.join(f'{n:,}' for n in counts)} training images" if counts else "training images"


def example_run(stat: ConfigStats, image: str = results.RECONSTRUCTIONS) -> Run | None:
    """Return the first completed seed that wrote ``image``, or None."""
    return next(
        (
            r
            for r in stat.runs
            if r.metrics.get("status") == "completed" and (r.path / image).is_file()
        ),
        None,
    )


def _copy_figure(run: Run | None, image: str, target: Path) -> bool:
    """Copy a run's figure to ``target``; remove a stale ``target`` if there is none."""
    if run is None or not (run.path / image).is_file():
        target.unlink(missing_ok=True)
        return False
    shutil.copyfile(run.path / image, target)
    return True


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
    if not stat.n:  # Every seed diverged or failed: a mean would print as nan.
        return f"n/a (0 of {len(stat.runs)} completed)"
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
        "ours: thesis's optimizer, Keras 2.2 defaults, "
        + seeds_text(tables.config_stats(defaults, metric)),
        "ours: best optimizer at defaults",
        f"ours: tuned best ({seed_list(tuned)})",
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
    """Copy each cell's tuned-best reconstructions and loss history; return the cells' row.

    The figures come from the configuration's first completed seed; a figure no run wrote
    is named as missing rather than linked.
    """
    rows = []
    for (decoder, loss), (_, optimizer) in tables.THESIS_SSIM.items():
        stat = _stat(_select(tuned, decoder, loss, optimizer), "ssim_thesis")
        if stat is None:
            continue
        run = example_run(stat)
        stem = f"{loss}_{DECODERS[decoder].lower()}_{optimizer}"
        cells = []
        for source, kind in (
            (results.RECONSTRUCTIONS, "reconstructions"),
            (results.LOSS_PLOT, "loss_history"),
        ):
            name = f"{kind}_{stem}.png"
            written = _copy_figure(run, source, figures / name)
            cells.append(f"![](figures/{name})" if written else "not written")
        seed = f" (seed {run.config.seed})" if run is not None else ""
        label = f"{DECODERS[decoder]}, {tables.loss_header(loss)}, {stat.optimizer_label}{seed}"
        rows.append((label, *cells))
    return rows


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
            tables.to_csv(
                tables.long_rows(defaults, metric, "optimizer", compare=metric == "ssim_thesis")
            ),
        )
    cell_figures = _copy_cell_figures(tuned, figures)
    _copy_summaries((defaults_dir, tuned_dir), out_dir)
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
    diverged = _not_completed(everything)
    by_optimizer = tables.to_markdown(*tables.layout(defaults, "ssim_thesis", by="optimizer"))
    figure_lines = [f"| {label} | {rec} | {hist} |" for label, rec, hist in cell_figures]
    seeds = seeds_text(tables.config_stats(defaults, "ssim_thesis"))
    agreeing = [cell for cell, ok in verdicts if ok]
    disagreeing = [cell for cell, ok in verdicts if not ok]
    return "\n".join(
        [
            '# Reproducing Haruguchi (2019), "Autoencoder with New Loss Functions"',
            "",
            "Generated by `make reproduce` from the run directories of "
            "`configs/sweeps/thesis-optimizers.yaml` (3 losses x 2 decoders x 5 optimizers at "
            f"Keras 2.2 defaults, {seeds} each) and `configs/sweeps/thesis-tuned.yaml` (the "
            f"author's final learning-rate grids, {seed_list(tuned)}). 784-32-784 autoencoder, "
            f"{training_text(everything)}, {train_images_text(everything)}; SSIM as defined in "
            "THESIS.md.",
            "",
            f"- Runs: {len(defaults)} + {len(tuned)}; diverged or failed: {diverged}.",
            wall_clock_line(everything),
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
            f"difference between losses is more than noise. Over {seeds} and the whole "
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
        curves[label] = [(s.mean, s.std) if s and s.n else (math.nan, 0.0) for s in points]
    references = {
        r.upper(): (s.mean, s.std)
        for r in ("mse", "bce")
        if (s := stats.get((decoder, r, ""))) is not None and s.n
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

    if a.n < 2 or b.n < 2 or a.std == b.std == 0.0:
        return math.nan
    with warnings.catch_warnings():
        # Near-identical seeds make SciPy warn of precision loss; the p-value is still usable.
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(scipy_stats.ttest_ind(a.values, b.values, equal_var=False).pvalue)


def _welch_text(a: ConfigStats, b: ConfigStats) -> str:
    """Return ``Welch p = ...``, or why there is no test (too few seeds, no spread)."""
    p_value = _welch(a, b)
    if math.isnan(p_value):
        return "no Welch test: it needs two seeds on each side and some spread"
    return f"Welch p = {p_value:.2g}"


def how_sure(top: ConfigStats, other: ConfigStats) -> str:
    """Return how the gap between two configurations compares with their seed spread."""
    gap = top.mean - other.mean
    if min(top.n, other.n) < 2:
        return (
            f"the gap {gap:.4f} cannot be weighed against a seed spread (one side has a "
            "single completed seed)"
        )
    spread = max(top.std, other.std)
    sure = "larger" if gap > spread else "not larger"
    return (
        f"the gap {gap:.4f} is {sure} than the seed spread ({spread:.4f}; "
        f"{_welch_text(top, other)})"
    )


def _capitalised(text: str) -> str:
    """Return ``text`` with its first letter upper-case (str.capitalize lowers the rest)."""
    return text[:1].upper() + text[1:]


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
            mse = stats.get((decoder, "mse", ""))
            versus_mse = (
                f"; against MSE ({_fmt(mse)}) the difference is {top.mean - mse.mean:+.4f}"
                f" ({_welch_text(top, mse)})"
                if mse is not None and mse.n
                else "; MSE has no completed seed to compare with"
            )
            lines.append(
                f"- **{DECODERS[decoder]}, {ORDERS[order]}**: best {best_key} with "
                f"{_fmt(top)}; runner-up {second_key} with {_fmt(runner_up)}. "
                f"{_capitalised(how_sure(top, runner_up))}{versus_mse}."
            )
    return lines


def beta_ranking(runs: Sequence[Run], metric: str) -> list[ConfigStats]:
    """Return the β-divergence configurations with a completed seed, best first."""
    betas = [s for s in tables.config_stats(runs, metric) if s.config.loss.name == "beta" and s.n]
    if not betas:
        raise UserError(f"no β-divergence run with {metric} completed; nothing to report")
    return sorted(betas, key=lambda s: -s.mean)


def _describe(stat: ConfigStats) -> str:
    cfg = stat.config
    label = optimizers.OPTIMIZERS[cfg.optimizer.name].label
    return (
        f"β = {cfg.loss.beta:g}, {ORDERS[cfg.loss.order]}, {DECODERS[cfg.model.decoder_activation]}"
        f" ({label} lr={cfg.optimizer.params['learning_rate']:g})"
    )


def overall_answer(ranking: Sequence[ConfigStats]) -> str:
    """Return the best and worst β-divergence overall, each with how sure the ranking is."""
    best, worst = ranking[0], ranking[-1]
    text = f"the best β-divergence is {_describe(best)} with SSIM {_fmt(best)}"
    if len(ranking) < 2:
        return text + "; it is the only configuration with a completed seed."
    runner_up, next_worst = ranking[1], ranking[-2]
    return (
        f"{text}; against the runner-up, {_describe(runner_up)} ({_fmt(runner_up)}), "
        f"{how_sure(best, runner_up)}. The worst is {_describe(worst)} with {_fmt(worst)}; "
        f"against the next-worst, {_describe(next_worst)} ({_fmt(next_worst)}), "
        f"{how_sure(next_worst, worst)}."
    )


def _score(stat: ConfigStats) -> str:
    """Return a candidate's holdout score, or what became of its runs."""
    if stat.n:
        return f"{stat.mean:.4f}"
    statuses = {str(r.metrics.get("status", "failed")) for r in stat.runs}
    return "/".join(sorted(statuses))


def tuning_table(choices: Sequence[tuning.Choice], metric: str) -> str:
    """Return the holdout score of every learning rate and the chosen one per configuration."""
    rows = []
    for choice in choices:
        cfg = choice.winner.config
        rate = tuning.learning_rate(choice.winner)
        scores = ", ".join(f"{tuning.learning_rate(c):g}: {_score(c)}" for c in choice.candidates)
        edge = "lowest" if rate == choice.grid[0] else "highest" if rate == choice.grid[-1] else ""
        rows.append(
            [
                DECODERS[cfg.model.decoder_activation],
                tables.loss_key(cfg),
                f"{rate:g}",
                edge,
                scores,
            ]
        )
    rows.sort()
    header = ["decoder", "loss", "chosen lr", "at grid edge", f"holdout {metric} per lr"]
    return tables.to_markdown(header, rows)


def tuning_summary(choices: Sequence[tuning.Choice], tune_runs: Sequence[Run]) -> list[str]:
    """Return the grid searched, the holdout, and a caveat for choices at the grid's edge."""
    lines = [
        f"Learning rates searched: {tuning.searched_rates(choices)}, each scored on the last "
        f"{tuning.holdout_sizes(tune_runs)} training images ({seed_list(tune_runs)}); each "
        "configuration takes the rate with the best holdout score.",
        "",
    ]
    edges, named = tuning.edge_choices(choices)
    if edges:
        lines.append(
            f"**Caveat:** {edges} of {len(choices)} configurations chose the lowest or "
            f"highest rate of the grid, so their best rate may lie outside it and their "
            f"scores may be understated: {named}."
        )
    else:
        lines.append("No configuration chose the lowest or highest rate of the grid.")
    return lines


def why_optimizer(runs: Sequence[Run]) -> list[str]:
    """Return the "Why Adam" section when the study used Adam alone, else nothing."""
    if {r.config.optimizer.name for r in runs} != {"adam"}:
        return []
    return ["## Why Adam", "", tuning.WHY_ADAM, ""]


def _reconstruction_lines(label: str, stat: ConfigStats, figures: Path) -> list[str]:
    """Copy a configuration's example reconstructions and return the lines that show them."""
    name = f"reconstructions_{label.lower()}_beta.png"
    run = example_run(stat)
    if not _copy_figure(run, results.RECONSTRUCTIONS, figures / name):
        return [f"{label}, {_describe(stat)}: no completed seed wrote reconstructions.", ""]
    return [
        f"{label}, {_describe(stat)} (seed {run.config.seed}):",
        "",
        f"![{label.lower()}](figures/{name})",
        "",
    ]


def study_intro(runs: Sequence[Run], tune_runs: Sequence[Run]) -> str:
    """Return the study's opening paragraph, its settings read from the run configs."""
    stats = tables.config_stats(runs, "ssim_mean")
    holdouts = tuning.holdout_sizes(tune_runs)
    return (
        "The thesis closes by asking which member of the beta-divergence family works best "
        "as an autoencoder's loss. This study trains the thesis's 784-32-784 autoencoder with "
        "d_β for β in {" + ", ".join(f"{b:g}" for b in _betas(runs)) + "}, both argument "
        "orders and both decoder activations, with MSE and binary cross-entropy as "
        f"references, {seeds_text(stats)} per configuration, {training_text(runs)}, "
        f"{optimizer_text(runs)} with its learning rate tuned per configuration on a holdout "
        f"of the training set (the last {holdouts} training images; never the test set). "
        "β = 1 is the I-divergence (data first: the thesis's E_I2; reconstruction first: "
        "E_I1), β = 0 Itakura-Saito, β = 2 half the squared error."
    )


def write_beta_report(study_dir: Path, tune_dir: Path, out_dir: Path) -> Path:
    """Write the beta-divergence study's REPORT.md, tables and figures into ``out_dir``."""
    runs, tune_runs = tables.load_runs(study_dir), tuning.load_tuning_runs(tune_dir)
    choices = tuning.best_learning_rates(tune_runs, "ssim_mean")
    ranking = beta_ranking(runs, "ssim_mean")
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for metric in ("ssim_mean", "ssim_thesis"):
        for decoder in DECODERS:
            _curves(runs, metric, decoder, figures / f"{metric}_vs_beta_{decoder}.png")
    examples = [
        *_reconstruction_lines("Best", ranking[0], figures),
        *_reconstruction_lines("Worst", ranking[-1], figures),
    ]
    _copy_summaries((study_dir, tune_dir), out_dir)
    everything = [*runs, *tune_runs]
    text = "\n".join(
        [
            "# Which beta-divergence suits an autoencoder best?",
            "",
            study_intro(runs, tune_runs),
            "",
            f"- Runs: {len(runs)} in the study ({_not_completed(runs)} diverged or failed), "
            f"{len(tune_runs)} for tuning ({_not_completed(tune_runs)} diverged or failed).",
            wall_clock_line(everything),
            f"- Machine: {machine_description(everything)}.",
            "- Regenerate: `make beta`.",
            "",
            "## Answer",
            "",
            f"Over the whole test set, {overall_answer(ranking)} Per decoder and order "
            "(full-test-set SSIM; the gap is compared with the larger of the two seed "
            "standard deviations, and a Welch t-test over seeds):",
            "",
            *beta_verdicts(runs, "ssim_mean"),
            "",
            "Under the thesis's ten-image protocol:",
            "",
            *beta_verdicts(runs, "ssim_thesis"),
            "",
            *why_optimizer(runs),
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
            "## Reconstructions at the best and the worst β (first completed seed; originals "
            "above)",
            "",
            *examples,
            "## Learning-rate tuning (holdout of the training set)",
            "",
            *tuning_summary(choices, tune_runs),
            "",
            tuning_table(choices, "ssim_mean"),
            "",
        ]
    )
    report = out_dir / "REPORT.md"
    results.write_text_atomic(report, text)
    return report
