"""The beta-divergence study's report: which beta suits an autoencoder, and how sure that is.

Report assembly only: the statistics are in :mod:`aeexp.analysis`, the learning-rate
selection in :mod:`aeexp.analysis.selection`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

from aeexp import plots
from aeexp.analysis import selection, tables
from aeexp.analysis import stats as stats_lib
from aeexp.analysis.tables import ConfigStats
from aeexp.errors import UserError
from aeexp.io import atomic
from aeexp.registry import losses, optimizers, vocab
from aeexp.registry.vocab import DECODERS
from aeexp.store import rundir as store
from aeexp.store.rundir import Run
from aeexp.studies import common

ORDERS = {"data_first": "d_β(x|y), data first", "recon_first": "d_β(y|x), reconstruction first"}


def _beta_of(run: Run) -> float | None:
    return run.config.loss.beta if run.config.loss.name == "beta" else None


def _study_stats(runs: Sequence[Run], metric: str) -> dict[tuple[str, str, str], ConfigStats]:
    """Return stats per (decoder, loss key, order or '') over seeds."""
    chosen = {}
    for stat in tables.config_stats(runs, metric):
        cfg = stat.config
        key = (cfg.model.decoder_activation, losses.loss_key(cfg), cfg.loss.order or "")
        chosen[key] = stat
    return chosen


def study_decoders(runs: Sequence[Run]) -> list[str]:
    """Return the decoder activations to report: the thesis's two, then any other the runs used."""
    # The thesis's two always get their columns (empty ones say "n/a"); another activation is
    # valid config, so its runs are reported under their own name rather than dropped.
    others = {r.config.model.decoder_activation for r in runs} - set(DECODERS)
    return [*DECODERS, *sorted(others)]


def decoder_name(decoder: str) -> str:
    """Return a decoder's column label, e.g. ``ReLU-Sigmoid`` (a ReLU encoder, as the study's)."""
    return DECODERS.get(decoder) or vocab.activation_pair("relu", decoder)


def _betas(runs: Sequence[Run]) -> list[float]:
    return sorted({b for b in map(_beta_of, runs) if b is not None})


def beta_table(runs: Sequence[Run], metric: str) -> str:
    """Return rows of beta (plus MSE and BCE), columns of order x decoder: mean [95% CI] (n)."""
    stats = _study_stats(runs, metric)
    columns = [(d, o) for d in study_decoders(runs) for o in ORDERS]
    header = ["β"] + [f"{decoder_name(d)}, {o}" for d, o in columns]
    body = []
    for beta in _betas(runs):
        row = [f"{beta:g}"]
        for decoder, order in columns:
            stat = stats.get((decoder, losses.beta_key(beta, order), order))
            row.append(common.fmt(stat))
        body.append(row)
    for reference in ("mse", "bce"):
        row = [reference.upper()]
        for decoder, _ in columns:
            row.append(common.fmt(stats.get((decoder, reference, ""))))
        body.append(row)
    return tables.to_markdown(header, body)


def _curves(runs: Sequence[Run], metric: str, decoder: str, path: Path) -> None:
    stats = _study_stats(runs, metric)
    betas = _betas(runs)
    curves = {}
    for order, label in ORDERS.items():
        points = [stats.get((decoder, losses.beta_key(b, order), order)) for b in betas]
        curves[label] = [
            (s.mean, tables.ci_half_width(s)) if s and s.n else (math.nan, 0.0) for s in points
        ]
    references = {
        r.upper(): (s.mean, tables.ci_half_width(s))
        for r in ("mse", "bce")
        if (s := stats.get((decoder, r, ""))) is not None and s.n
    }
    plots.line_with_errors(
        betas,
        curves,
        "β",
        metric,
        f"{metric} against β, {decoder_name(decoder)} (mean and 95% t interval over seeds)",
        path,
        references,
    )


def how_sure(top: ConfigStats, other: ConfigStats, tests: stats_lib.PairTests | None = None) -> str:
    """Return how the gap between two configurations compares with their seed spread.

    ``tests`` is the report's family of claims, Holm-adjusted together; without it the
    claim is a family of one.
    """
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
        f"{_test_text(top, other, tests)})"
    )


def _test_text(a: ConfigStats, b: ConfigStats, tests: stats_lib.PairTests | None) -> str:
    if tests is None:
        tests = stats_lib.PairTests()
        tests.text(a.values, b.values)
        tests.freeze()
    return tests.text(a.values, b.values)


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


def beta_verdicts(
    runs: Sequence[Run], metric: str, tests: stats_lib.PairTests | None = None
) -> list[str]:
    """Return one sentence per decoder and order: the best beta and how sure that is."""
    stats = _study_stats(runs, metric)
    lines = []
    for decoder in study_decoders(runs):
        for order in ORDERS:
            ranked = _ranked(stats, decoder, order)
            if len(ranked) < 2:
                continue
            (best_key, top), (second_key, runner_up) = ranked[0], ranked[1]
            mse = stats.get((decoder, "mse", ""))
            versus_mse = (
                f"; against MSE ({common.fmt(mse)}) the difference is {top.mean - mse.mean:+.4f}"
                f" ({_test_text(top, mse, tests)})"
                if mse is not None and mse.n
                else "; MSE has no completed seed to compare with"
            )
            lines.append(
                f"- **{decoder_name(decoder)}, {ORDERS[order]}**: best {best_key} with "
                f"{common.fmt(top)}; runner-up {second_key} with {common.fmt(runner_up)}. "
                f"{_capitalised(how_sure(top, runner_up, tests))}{versus_mse}."
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
        f"β = {cfg.loss.beta:g}, {ORDERS[cfg.loss.order]}, {vocab.decoder_label(cfg)}"
        f" ({label} lr={cfg.optimizer.learning_rate:g})"
    )


def overall_answer(ranking: Sequence[ConfigStats], tests: stats_lib.PairTests | None = None) -> str:
    """Return the best and worst β-divergence overall, each with how sure the ranking is."""
    best, worst = ranking[0], ranking[-1]
    text = f"the best β-divergence is {_describe(best)} with SSIM {common.fmt(best)}"
    if len(ranking) < 2:
        return text + "; it is the only configuration with a completed seed."
    runner_up, next_worst = ranking[1], ranking[-2]
    return (
        f"{text}; against the runner-up, {_describe(runner_up)} ({common.fmt(runner_up)}), "
        f"{how_sure(best, runner_up, tests)}. "
        f"The worst is {_describe(worst)} with {common.fmt(worst)}; "
        f"against the next-worst, {_describe(next_worst)} ({common.fmt(next_worst)}), "
        f"{how_sure(next_worst, worst, tests)}."
    )


def _tuning_key(stat: ConfigStats) -> tuple[str, str, str]:
    """Return what identifies a configuration across tuning and study: decoder, loss, optimizer."""
    cfg = stat.config
    return (cfg.model.decoder_activation, losses.loss_key(cfg), cfg.optimizer.name)


def _no_more(a: float, b: float) -> str:
    return "more than" if a > b else "no more than"


def _steps_text(grid: Sequence[float]) -> str:
    """Return how far apart a grid's rates are, e.g. ``3 to 3.3 times apart``."""
    ratios = sorted({float(f"{b / a:.2g}") for a, b in itertools.pairwise(grid) if a > 0})
    if len(ratios) == 1:
        return f"{ratios[0]:g} times apart"
    return f"{ratios[0]:g} to {ratios[-1]:g} times apart"


def lead_against_tuning(
    ranking: Sequence[ConfigStats], choices: Sequence[selection.Choice], tune_runs: Sequence[Run]
) -> str:
    """Return how the best configuration's lead compares with what its tuning can move.

    The lead over the runner-up (test set) and over the runner-up's best holdout score is set
    against what one step of the learning-rate grid costs the best on the holdout; empty when
    the tuning cannot say (a single configuration, no tuning run for it, no neighbouring rate).
    """
    if len(ranking) < 2:
        return ""
    best, runner_up = ranking[0], ranking[1]
    by_key = {_tuning_key(c.winner): c for c in choices}
    mine, theirs = by_key.get(_tuning_key(best)), by_key.get(_tuning_key(runner_up))
    if mine is None or theirs is None:
        return ""
    at = mine.candidates.index(mine.winner)
    neighbours = [c for i, c in enumerate(mine.candidates) if abs(i - at) == 1 and c.n]
    if not neighbours:
        return ""
    rate, score = mine.winner.learning_rate, mine.winner.mean
    cost = min(score - c.mean for c in neighbours)
    gap, holdout_lead = best.mean - runner_up.mean, score - theirs.winner.mean
    scores = "; ".join(f"{c.learning_rate:g}: {c.mean:.4f}" for c in neighbours)
    return (
        f" How narrow the lead is: the learning rates were tuned on {common.seed_list(tune_runs)}"
        f" of the holdout, over a grid whose rates are {_steps_text(mine.grid)}, and there one"
        f" grid step from the best's chosen rate ({rate:g}: {score:.4f}) costs it at least"
        f" {cost:.4f} ({scores}), {_no_more(cost, gap)} its gap of {gap:.4f} over the runner-up"
        f" on the test set and {_no_more(cost, holdout_lead)} its holdout lead of"
        f" {holdout_lead:.4f} over the runner-up's best rate"
        f" ({theirs.winner.learning_rate:g}: {theirs.winner.mean:.4f})."
    )


def _score(stat: ConfigStats) -> str:
    """Return a candidate's holdout score, or what became of its runs."""
    if stat.n:
        return f"{stat.mean:.4f}"
    statuses = {vocab.status_of(r.metrics) for r in stat.runs}
    return "/".join(sorted(statuses))


def tuning_table(choices: Sequence[selection.Choice], metric: str) -> str:
    """Return the holdout score of every learning rate and the chosen one per configuration."""
    rows = []
    for choice in choices:
        cfg = choice.winner.config
        rate = choice.winner.learning_rate
        scores = ", ".join(f"{c.learning_rate:g}: {_score(c)}" for c in choice.candidates)
        edge = "lowest" if rate == choice.grid[0] else "highest" if rate == choice.grid[-1] else ""
        rows.append(
            [
                vocab.decoder_label(cfg),
                losses.loss_key(cfg),
                f"{rate:g}",
                edge,
                scores,
            ]
        )
    rows.sort()
    header = ["decoder", "loss", "chosen lr", "at grid edge", f"holdout {metric} per lr"]
    return tables.to_markdown(header, rows)


def tuning_summary(choices: Sequence[selection.Choice], tune_runs: Sequence[Run]) -> list[str]:
    """Return the grid searched, the holdout, and a caveat for choices at the grid's edge."""
    lines = [
        f"Learning rates searched: {selection.searched_rates(choices)}, each scored on the "
        f"last {selection.holdout_sizes(tune_runs)} training images "
        f"({common.seed_list(tune_runs)}); each configuration takes the rate with the best "
        "holdout score.",
        "",
    ]
    edges, named = selection.edge_choices(choices)
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
    return ["## Why Adam", "", selection.WHY_ADAM, ""]


def _reconstruction_lines(label: str, stat: ConfigStats, figures: Path) -> list[str]:
    """Copy a configuration's example reconstructions and return the lines that show them."""
    name = f"reconstructions_{label.lower()}_beta.png"
    run = common.example_run(stat)
    if not common.copy_figure(run, store.RECONSTRUCTIONS, figures / name):
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
    holdouts = selection.holdout_sizes(tune_runs)
    return (
        "The thesis closes by asking which member of the beta-divergence family works best "
        "as an autoencoder's loss. This study trains the thesis's 784-32-784 autoencoder with "
        "d_β for β in {" + ", ".join(f"{b:g}" for b in _betas(runs)) + "}, both argument "
        f"orders and {_decoders_text(runs)}, with MSE and binary cross-entropy as "
        f"references, {common.seeds_text(stats)} per configuration, {common.training_text(runs)}, "
        f"{optimizer_text(runs)} with its learning rate tuned per configuration on a holdout "
        f"of the training set (the last {holdouts} training images; never the test set). "
        "β = 1 is the I-divergence (data first: the thesis's E_I2; reconstruction first: "
        "E_I1), β = 0 Itakura-Saito, β = 2 half the squared error."
    )


def _decoders_text(runs: Sequence[Run]) -> str:
    """Return ``both decoder activations``, or how many and which when the runs used more."""
    decoders = study_decoders(runs)
    if len(decoders) == len(DECODERS):
        return "both decoder activations"
    return f"{len(decoders)} decoder activations ({', '.join(decoders)})"


def _curves_name(metric: str, decoder: str) -> str:
    """Return the file name of one decoder's metric-against-beta figure."""
    return f"{metric}_vs_beta_{decoder}.png"


def _curves_images(metric: str, decoders: Sequence[str]) -> str:
    """Return the Markdown images of ``metric`` against beta, one per decoder."""
    return " ".join(
        f"![{decoder_name(decoder)}](figures/{_curves_name(metric, decoder)})"
        for decoder in decoders
    )


def write_report(study_dir: Path, tune_dir: Path, out_dir: Path) -> Path:
    """Write the beta-divergence study's REPORT.md, tables and figures into ``out_dir``."""
    store.ensure_writable(out_dir)  # before any work: the mistake may be in the command
    runs, tune_runs = store.load_runs(study_dir), selection.load_tuning_runs(tune_dir)
    choices = selection.best_learning_rates(tune_runs, "ssim_mean")
    ranking = beta_ranking(runs, "ssim_mean")
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    decoders = study_decoders(runs)
    for metric in ("ssim_mean", "ssim_thesis"):
        for decoder in decoders:
            _curves(runs, metric, decoder, figures / _curves_name(metric, decoder))
    examples = [
        *_reconstruction_lines("Best", ranking[0], figures),
        *_reconstruction_lines("Worst", ranking[-1], figures),
    ]
    common.copy_summaries((study_dir, tune_dir), out_dir)
    everything = [*runs, *tune_runs]
    tests = stats_lib.PairTests()
    for _ in range(2):  # the first pass records the family of claims, the second reads it
        answer = overall_answer(ranking, tests)
        full, protocol_claims = (
            beta_verdicts(runs, m, tests) for m in ("ssim_mean", "ssim_thesis")
        )
        tests.freeze()
    text = "\n".join(
        [
            "# Which beta-divergence suits an autoencoder best?",
            "",
            study_intro(runs, tune_runs),
            "",
            f"- Runs: {len(runs)} in the study ({common.not_completed(runs)} diverged or failed), "
            f"{len(tune_runs)} for tuning ({common.not_completed(tune_runs)} diverged or failed).",
            common.wall_clock_line(everything),
            f"- Machine: {common.machine_description(everything)}.",
            "- Regenerate: `make beta`.",
            "",
            "## Answer",
            "",
            f"Over the whole test set, {answer}{lead_against_tuning(ranking, choices, tune_runs)}"
            " Per decoder and order "
            "(full-test-set SSIM; the gap is compared with the larger of the two seed "
            "standard deviations, and a Welch t-test over seeds; every p-value in this "
            f"section is Holm-adjusted over the {len(tests)} tests it reports):",
            "",
            *full,
            "",
            "Under the thesis's ten-image protocol:",
            "",
            *protocol_claims,
            "",
            *why_optimizer(runs),
            "## SSIM over the whole test set (mean [95% t interval] (n) over seeds)",
            "",
            beta_table(runs, "ssim_mean"),
            "",
            _curves_images("ssim_mean", decoders),
            "",
            "## SSIM under the thesis's protocol (mean [95% t interval] (n) over seeds)",
            "",
            beta_table(runs, "ssim_thesis"),
            "",
            _curves_images("ssim_thesis", decoders),
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
    atomic.write_text_atomic(report, text)
    return report


def optimizer_text(runs: Sequence[Run]) -> str:
    """Return the optimizers the runs used, by label, e.g. ``Adam``."""
    names = sorted({r.config.optimizer.name for r in runs})
    return "/".join(optimizers.OPTIMIZERS[name].label for name in names)
