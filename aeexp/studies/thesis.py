"""The thesis reproduction's report: verdicts per cell, tables and figures from run directories.

Report assembly only: the statistics are in :mod:`aeexp.analysis` (cells, tables, stats,
protocol), the published numbers in :mod:`aeexp.vocab`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

from aeexp import plots, store, vocab
from aeexp.analysis import cells as cells_lib
from aeexp.analysis import figures as figures_lib
from aeexp.analysis import protocol, tables
from aeexp.analysis import stats as stats_lib
from aeexp.analysis.protocol import VARIANTS
from aeexp.analysis.tables import ConfigStats
from aeexp.store import Run
from aeexp.studies import common
from aeexp.vocab import DECODERS


def train_images_text(runs: Sequence[Run]) -> str:
    """Return how many training images the runs recorded, e.g. ``60,000 training images``."""
    counts = sorted({n for r in runs if (n := common.metadata(r).train_images) is not None})
    return f"{'/'.join(f'{n:,}' for n in counts)} training images" if counts else "training images"


def _stat(runs: Sequence[Run], metric: str) -> ConfigStats | None:
    return tables.best(tables.config_stats(runs, metric))


def _num(value: float, digits: int = 3, sign: bool = False) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _protocol_sd(estimate: cells_lib.Estimate) -> str:
    noise = estimate.protocol
    if not noise.n_models:
        return "not measured (no saved model)"
    return f"{noise.sd:.3f} ({noise.n_models} models x {noise.occurrences} picks)"


def estimates_table(cells: Sequence[cells_lib.Cell]) -> str:
    """Return one row per cell, protocol variant and statistic: ours beside the published."""
    header = [
        "cell (thesis optimizer)",
        "published",
        "variant",
        "statistic",
        "ours: mean [95% t interval] (n)",
        "seed sd",
        "protocol sd",
        "thesis pick minus mean pick",
        "ours minus published",
        "agreement tolerance ±",
        "published inside?",
    ]
    body = []
    for cell in cells:
        for variant in VARIANTS:
            for statistic in ("defaults", "tuned"):
                lead = [
                    f"{cell.label} ({cell.optimizer_label})",
                    f"{cell.published:.3f}",
                    variant,
                ]
                e = cell.estimate(statistic, variant)
                if e is None:
                    body.append([*lead, statistic, "no completed run", *[""] * 6])
                    continue
                body.append(
                    [
                        *lead,
                        f"{statistic}: {e.stat.optimizer_label}, {cells_lib.seed_span(e.seeds)}",
                        e.interval.text() + f" ({e.n})",
                        _num(e.seed_sd),
                        _protocol_sd(e),
                        _num(e.protocol.first_offset, sign=True),
                        _num(e.difference, sign=True),
                        _num(e.tolerance),
                        "yes" if e.agrees else "no",
                    ]
                )
    return tables.to_markdown(header, body)


def _numbers(e: cells_lib.Estimate) -> str:
    """Return the deciding numbers of one estimate, in one phrase."""
    return (
        f"{e.describe()}: {e.interval.text()} over {e.n} seeds, {_num(e.difference, sign=True)} "
        f"from the published value against a tolerance of ±{_num(e.tolerance)} (seed sd "
        f"{_num(e.seed_sd)}, protocol sd {_num(e.protocol_sd)})"
    )


def _closest(cell: cells_lib.Cell, variant: str) -> cells_lib.Estimate | None:
    found = [e for e in cell.estimates if e.variant == variant and e.n >= 2]
    return min(found, key=lambda e: (e.distance, e.describe())) if found else None


def verdict_line(cell: cells_lib.Cell) -> str:
    """Return the cell's verdict, the estimate it rests on and the numbers that decide it."""
    verdict, deciding = cell.verdict
    head = f"**{cell.label}** ({cell.optimizer_label}, published {cell.published:.3f}): {verdict}"
    if deciding is None:
        return f"- {head}: no statistic has two completed seeds."
    if verdict == cells_lib.NOT_REPRODUCED:
        return f"- {head}; closest: {_numbers(deciding)}."
    text = f"- {head}; rests on {_numbers(deciding)}."
    if verdict == cells_lib.REPRODUCED_VIRIDIS:
        gray = _closest(cell, "gray")
        if gray is not None:
            text += f" Under gray the closest is {_numbers(gray)}."
    return text


def tuned_grid_table(cells: Sequence[cells_lib.Cell], tuned_seeds: Sequence[Run]) -> str:
    """Return each cell's grid points that were rerun over seeds: selection scores and estimates."""
    header = [
        "cell",
        "learning rate",
        "selection run: gray",
        "selection run: viridis",
        "rerun: gray, mean [95% t interval] (n)",
        "rerun: viridis, mean [95% t interval] (n)",
    ]
    body = []
    for cell in cells:
        rerun = cells_lib.select(tuned_seeds, cell.decoder, cell.loss, cell.optimizer)
        by_rate = {
            s.config.optimizer.params["learning_rate"]: s
            for s in tables.config_stats(rerun, "ssim_thesis")
        }
        for candidate in cell.tuned_candidates:
            rate = candidate.config.optimizer.params["learning_rate"]
            if rate not in by_rate:
                continue
            later = by_rate[rate]
            viridis_now = tables.config_stats(candidate.runs, "ssim_thesis_viridis")[0]
            viridis_later = tables.config_stats(later.runs, "ssim_thesis_viridis")[0]
            body.append(
                [
                    cell.label,
                    f"{rate:g}",
                    common.fmt(candidate),
                    common.fmt(viridis_now),
                    common.fmt(later),
                    common.fmt(viridis_later),
                ]
            )
    return tables.to_markdown(header, body) if body else "No grid point was rerun over seeds."


def _cell_stem(cell: cells_lib.Cell) -> str:
    return f"{cell.loss}_{DECODERS[cell.decoder].lower()}_{cell.optimizer}"


def cell_figures(cells: Sequence[cells_lib.Cell], figures: Path) -> list[str]:
    """Draw one figure per cell: seed values, intervals, protocol spread, published value."""
    lines = []
    for cell in cells:
        columns = []
        for variant in VARIANTS:
            for statistic in ("defaults", "tuned"):
                e = cell.estimate(statistic, variant)
                if e is None or not e.n:
                    continue
                interval = e.interval
                columns.append(
                    (
                        f"{variant}\n{statistic}",
                        e.stat.values,
                        (interval.mean, interval.low, interval.high),
                        e.protocol_sd,
                    )
                )
        name = f"cell_{_cell_stem(cell)}.png"
        if not columns:
            (figures / name).unlink(missing_ok=True)
            continue
        plots.cell_spread(
            f"{cell.label} ({cell.optimizer_label})",
            columns,
            cell.published,
            "SSIM",
            figures / name,
        )
        lines.append(f"![{cell.label}](figures/{name})")
    return lines


def _copy_cell_figures(cells: Sequence[cells_lib.Cell], figures: Path) -> list[str]:
    """Copy each cell's selected tuned run's reconstructions and loss history; return rows."""
    rows = []
    for cell in cells:
        stat = cells_lib.tuned_pick(cell.tuned_candidates, "ssim_thesis")
        if stat is None:
            continue
        run = common.example_run(stat)
        cells_md = []
        for source, kind in (
            (store.RECONSTRUCTIONS, "reconstructions"),
            (store.LOSS_PLOT, "loss_history"),
        ):
            name = f"{kind}_{_cell_stem(cell)}.png"
            written = common.copy_figure(run, source, figures / name)
            cells_md.append(f"![](figures/{name})" if written else "not written")
        seed = f" (seed {run.config.seed})" if run is not None else ""
        rows.append(f"| {cell.label}, {stat.optimizer_label}{seed} | {' | '.join(cells_md)} |")
    return rows


def loss_claims(defaults: Sequence[Run], metrics: Sequence[str]) -> list[tuple[str, str, str]]:
    """Return (metric, decoder label, sentence) for every adjacent pair of the loss ranking.

    Each claim "A beats B" carries its Welch p-value, Holm-adjusted over all the claims.
    """
    pairs = []
    for metric in metrics:
        for decoder, label in DECODERS.items():
            ranked = []
            for loss in vocab.THESIS_LOSSES:
                stat = _stat(cells_lib.select(defaults, decoder, loss), metric)
                if stat is not None:
                    ranked.append((loss, stat))
            ranked.sort(key=lambda item: -item[1].mean)
            for (loss, stat), (other, other_stat) in itertools.pairwise(ranked):
                pairs.append((metric, label, loss, stat, other, other_stat))
    raw = [stats_lib.welch_p(p[3].values, p[5].values) for p in pairs]
    adjusted = stats_lib.holm(raw)
    claims = []
    for (metric, label, loss, stat, other, other_stat), p, q in zip(
        pairs, raw, adjusted, strict=True
    ):
        claims.append(
            (
                metric,
                label,
                f"{vocab.loss_header(loss)} with {stat.optimizer_label} ({common.fmt(stat)}) above "
                f"{vocab.loss_header(other)} with {other_stat.optimizer_label} "
                f"({common.fmt(other_stat)}) by {stat.mean - other_stat.mean:.3f} "
                f"({stats_lib.p_text(p, q)})",
            )
        )
    return claims


def _claim_lines(claims: Sequence[tuple[str, str, str]], metric: str) -> list[str]:
    lines = []
    for decoder in DECODERS.values():
        parts = [text for m, d, text in claims if m == metric and d == decoder]
        if parts:
            lines.append(f"- {decoder}: " + "; ".join(parts) + ".")
    return lines


def full_test_table(defaults: Sequence[Run], tuned_seeds: Sequence[Run]) -> str:
    """Return per cell the whole-test-set SSIM: thesis optimizer, best optimizer, reruns."""
    header = [
        "cell",
        "thesis's optimizer at Keras 2.2 defaults",
        "best optimizer at defaults",
        "best rerun tuned grid point",
    ]
    body = []
    for (decoder, loss), (_, optimizer) in vocab.THESIS_SSIM.items():
        body.append(
            [
                f"{DECODERS[decoder]} {vocab.loss_header(loss)}",
                common.fmt(
                    _stat(cells_lib.select(defaults, decoder, loss, optimizer), "ssim_mean")
                ),
                common.fmt(_stat(cells_lib.select(defaults, decoder, loss), "ssim_mean"), True),
                common.fmt(
                    _stat(cells_lib.select(tuned_seeds, decoder, loss, optimizer), "ssim_mean"),
                    True,
                ),
            ]
        )
    return tables.to_markdown(header, body)


def grid_text(defaults: Sequence[Run]) -> str:
    """Return the defaults sweep's grid as counted from its runs, e.g. ``3 losses x 2 ...``."""
    losses = {vocab.loss_key(r.config) for r in defaults}
    decoders = {r.config.model.decoder_activation for r in defaults}
    names = {r.config.optimizer.name for r in defaults}

    def count(items: set, one: str, many: str) -> str:
        return f"{len(items)} {one if len(items) == 1 else many}"

    return " x ".join(
        [
            count(losses, "loss", "losses"),
            count(decoders, "decoder", "decoders"),
            count(names, "optimizer", "optimizers"),
        ]
    )


def test_images_text(runs: Sequence[Run]) -> str:
    """Return how many images the runs were evaluated on, e.g. ``10,000 test images``."""
    counts = sorted({n for r in runs if (n := common.metadata(r).test_images) is not None})
    return f"{'/'.join(f'{n:,}' for n in counts)} test images" if counts else "the test images"


PROTOCOL_PAGE = "docs/protocol.md"


# From results/thesis/REPORT.md to the repository's root.
PROTOCOL_LINK = f"[{PROTOCOL_PAGE}](../../{PROTOCOL_PAGE})"


def write_report(
    defaults_dir: Path,
    tuned_dir: Path,
    out_dir: Path,
    tuned_seeds_dir: Path | None = None,
    occurrences: int = protocol.OCCURRENCES,
) -> Path:
    """Write ``REPORT.md``, its tables and figures into ``out_dir`` and return its path.

    ``tuned_seeds_dir`` holds the reruns of the tuned grid's best points over other seeds
    (``aeexp select --on-test-set``); without it the tuned statistic is not estimated.
    """
    store.ensure_writable(out_dir)  # before any work: the mistake may be in the command
    defaults, tuned = store.load_runs(defaults_dir), store.load_runs(tuned_dir)
    tuned_seeds = store.load_runs(tuned_seeds_dir) if tuned_seeds_dir is not None else []
    meter = protocol.Meter(occurrences)
    cells = cells_lib.build_cells(defaults, tuned, tuned_seeds, meter)
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for metric in ("ssim_thesis", "ssim_thesis_viridis", "ssim_mean"):
        figures_lib.write_figures(defaults, metric, figures)
        header, body = tables.layout(defaults, metric, by="optimizer", style="ci")
        store.write_text_atomic(
            out_dir / f"{metric}_by_optimizer.md", tables.to_markdown(header, body) + "\n"
        )
        store.write_text_atomic(
            out_dir / f"{metric}_by_optimizer.csv",
            tables.to_csv(
                tables.long_rows(defaults, metric, "optimizer", compare=metric == "ssim_thesis")
            ),
        )
    sweeps = [defaults_dir, tuned_dir] + ([tuned_seeds_dir] if tuned_seeds_dir else [])
    common.copy_summaries(sweeps, out_dir)
    text = _render(defaults, tuned, tuned_seeds, cells, meter, figures)
    report = out_dir / "REPORT.md"
    store.write_text_atomic(report, text)
    return report


def _protocol_note(cells: Sequence[cells_lib.Cell], meter: protocol.Meter) -> str:
    measured = {m.path for c in cells for e in c.estimates for m in e.protocol.models}
    if not measured:
        return (
            "No run directory holds a saved model (model.keras), so the protocol's spread "
            "was not measured and enters the rule as 0: the tolerance is then the seed-only "
            "prediction interval."
        )
    return (
        f"Protocol sd: each of {len(measured)} saved models reconstructs the k-th occurrence "
        f"of every digit (k = 1..{meter.occurrences}, k = 1 being the thesis's pick; "
        f"{PROTOCOL_LINK}); the ten-digit SSIM of each pick set, its standard deviation over "
        "k pooled over the statistic's models. The column beside it is the thesis pick's "
        "value minus the mean over picks: positive means the thesis's ten images are easier "
        "than typical ones for these models."
    )


def _render(
    defaults: Sequence[Run],
    tuned: Sequence[Run],
    tuned_seeds: Sequence[Run],
    cells: Sequence[cells_lib.Cell],
    meter: protocol.Meter,
    figures: Path,
) -> str:
    everything = [*defaults, *tuned, *tuned_seeds]
    diverged = common.not_completed(everything)
    seeds = common.seeds_text(tables.config_stats(defaults, "ssim_thesis"))
    verdicts = [cell.verdict[0] for cell in cells]
    counts = ", ".join(
        f"{verdicts.count(v)} {v}"
        for v in (
            cells_lib.REPRODUCED_GRAY,
            cells_lib.REPRODUCED_VIRIDIS,
            cells_lib.NOT_REPRODUCED,
            cells_lib.NOT_MEASURED,
        )
        if verdicts.count(v)
    )
    claims = loss_claims(defaults, ("ssim_mean", "ssim_thesis"))
    reruns = (
        f"; the `{tuned_seeds[0].config.name}` sweep reran the best grid points (chosen on "
        f"{common.seed_list(tuned)}) with {common.seed_list(tuned_seeds)}"
        if tuned_seeds
        else "; no rerun of the tuned grid over seeds was given, so the tuned statistic is missing"
    )
    run_counts = " + ".join(str(len(r)) for r in (defaults, tuned, tuned_seeds) if r)
    by_optimizer = {
        metric: tables.to_markdown(*tables.layout(defaults, metric, by="optimizer", style="ci"))
        for metric in ("ssim_thesis", "ssim_thesis_viridis")
    }
    return "\n".join(
        [
            '# Reproducing Haruguchi (2019), "Autoencoder with New Loss Functions"',
            "",
            f"Generated by `make reproduce` from the run directories of the "
            f"`{defaults[0].config.name}` sweep ({grid_text(defaults)} at Keras 2.2 defaults, "
            f"{seeds} each) and the `{tuned[0].config.name}` sweep (the author's final "
            f"learning-rate grids, {common.seed_list(tuned)}){reruns}. 784-32-784 autoencoder, "
            f"{common.training_text(everything)}, {train_images_text(everything)}, "
            f"{test_images_text(everything)}; the SSIM protocol and its two colormap variants "
            f"are described in {PROTOCOL_LINK}.",
            "",
            f"- Runs: {run_counts}; diverged or failed: {diverged}.",
            common.wall_clock_line(everything),
            f"- Machine: {common.machine_description(everything)}.",
            "",
            "## Verdict, cell by cell",
            "",
            f"Of the {len(cells)} cells: {counts}.",
            "",
            *[verdict_line(cell) for cell in cells],
            "",
            "Agreement rule: the published value P is one training run measured once, so it is "
            "compared with a 95% prediction interval for one more of our runs: "
            "|P - m| <= t(0.975, n-1) * sqrt(s^2 (1 + 1/n) + p^2), with m and s the mean and "
            "standard deviation over n seeds and p the protocol's spread. A cell is reproduced "
            "under gray if a gray statistic satisfies it (tuned first, as the thesis tuned, "
            "then defaults), reproduced under viridis only if only a viridis statistic does, "
            "else not reproduced; the verdict names the statistic it rests on. This is a "
            "tolerance, not a test, and is not corrected for the several statistics tried.",
            "",
            "## Ours beside the published value, both protocol variants",
            "",
            estimates_table(cells),
            "",
            "Statistics: *defaults* is the thesis's optimizer at Keras 2.2 defaults over every "
            "seed; *tuned* is the grid point with the best score under that variant on the "
            "selecting seed, estimated on the other seeds only, so the estimate does not reuse "
            "the run that chose it. Intervals are Student-t intervals of the mean over seeds. "
            + _protocol_note(cells, meter),
            "",
            *cell_figures(cells, figures),
            "",
            "## The tuned grid, rerun over seeds",
            "",
            tuned_grid_table(cells, tuned_seeds),
            "",
            f"## SSIM over the whole test set ({test_images_text(everything)}, [0, 1] pixels)",
            "",
            full_test_table(defaults, tuned_seeds),
            "",
            "## Every optimizer at Keras 2.2 defaults (mean [95% t interval] (n))",
            "",
            "Gray:",
            "",
            by_optimizer["ssim_thesis"],
            "",
            "Viridis:",
            "",
            by_optimizer["ssim_thesis_viridis"],
            "",
            "![SSIM by loss, decoder and optimizer](figures/ssim_thesis_bars.png)",
            "",
            "![Viridis SSIM by loss, decoder and optimizer](figures/ssim_thesis_viridis_bars.png)",
            "",
            "![Full-test-set SSIM by loss, decoder and optimizer](figures/ssim_mean_bars.png)",
            "",
            "## The thesis's figures, regenerated (each cell's best tuned grid point, gray)",
            "",
            "| cell | reconstructions (originals above) | loss history |",
            "|---|---|---|",
            *_copy_cell_figures(cells, figures),
            "",
            DISCUSSION,
            "**What the statistics add.** The thesis's single runs could not say whether a "
            f"difference between losses is more than noise. Over {seeds}, each loss at its best "
            "optimizer (Keras 2.2 defaults), with Welch t-tests over seeds Holm-adjusted over "
            f"all {len(claims)} claims below. Whole test set:",
            "",
            *_claim_lines(claims, "ssim_mean"),
            "",
            "Under the ten-image protocol (gray):",
            "",
            *_claim_lines(claims, "ssim_thesis"),
            "",
            "## Closing note",
            "",
            *[verdict_line(cell) for cell in cells],
            "",
        ]
    )


DISCUSSION = """\
## Discussion

**What is reproduced exactly.** The model, the data split, the clipped losses, the Keras 2.2
optimizer defaults and update rules (tested step by step against Keras 2.2's formulas), and
the thesis's SSIM protocol are implemented as the notebook ran them. The protocol wrote its
PNGs through matplotlib's default colormap: gray in the notebook's run order, viridis in a
fresh session; which state each published cell was measured in is not recorded, so both
variants are reported and the verdict says which one a cell rests on.

**Where numbers can differ, and what the tables measure of it.** The thesis reports one
run per cell: the seed sd says how far one run can land from our mean. The ten-image
protocol picks particular images: the protocol sd says how much the number moves with
other images of the same digits, and the pick column whether the thesis's ten are typical.
The thesis reports the best point of a tuning grid on one run, without recording which
point won: the tuned statistic re-measures our best point on seeds that did not choose it.
TensorFlow 1.x and today's TensorFlow differ in initialisation streams, shuffling and
floating-point reduction order, so no run is bit-identical to the notebook's; that
difference is not measured here.
"""
