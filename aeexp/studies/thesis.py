"""The thesis reproduction's report: verdicts per cell, tables and figures from run directories.

Report assembly only: the statistics are in :mod:`aeexp.analysis` (cells, tables, stats,
protocol), the published numbers in :mod:`aeexp.registry.published`, the prose in
templates/thesis_report.md.
"""

from __future__ import annotations

import itertools
import math
import string
from collections.abc import Sequence
from pathlib import Path

from aeexp import plots
from aeexp.analysis import cells as cells_lib
from aeexp.analysis import figures as figures_lib
from aeexp.analysis import protocol, tables, verdicts
from aeexp.analysis import stats as stats_lib
from aeexp.analysis.protocol import VARIANTS
from aeexp.analysis.tables import ConfigStats
from aeexp.io import atomic
from aeexp.registry import losses, published, vocab
from aeexp.registry.vocab import DECODERS
from aeexp.store import rundir as store
from aeexp.store.rundir import Run
from aeexp.studies import common
from aeexp.studies import thesis_verdicts as sections


def train_images_text(runs: Sequence[Run]) -> str:
    """Return how many training images the runs recorded, e.g. ``60,000 training images``."""
    counts = sorted({n for r in runs if (n := common.metadata(r).train_images) is not None})
    return f"{'/'.join(f'{n:,}' for n in counts)} training images" if counts else "training images"


def _stat(runs: Sequence[Run], metric: str) -> ConfigStats | None:
    return tables.best(tables.config_stats(runs, metric))


def tuned_grid_table(cells: Sequence[cells_lib.Cell]) -> str:
    """Return each cell's grid points over seeds, and how often each was a seed's best."""
    header = [
        "cell",
        "learning rate",
        "gray: mean [95% t interval] (n)",
        "viridis: mean [95% t interval] (n)",
        "best point of seeds (gray)",
    ]
    body = []
    for cell in cells:
        procedure = cell.estimate(cells_lib.PRIMARY, "gray")
        winners = [] if procedure is None else procedure.runs
        for point in cell.grid:
            rate = point.config.optimizer.learning_rate
            viridis = tables.config_stats(point.runs, "ssim_thesis_viridis")[0]
            won = [r.config.seed for r in winners if r in point.runs]
            body.append(
                [
                    cell.label,
                    f"{rate:g}",
                    common.fmt(point),
                    common.fmt(viridis),
                    ", ".join(map(str, won)) or "-",
                ]
            )
    return tables.to_markdown(header, body) if body else "No grid point has a completed run."


def cell_figures(cells: Sequence[cells_lib.Cell], figures: Path) -> list[str]:
    """Draw one figure per cell: seed values, intervals, protocol spread, published value."""
    lines = []
    for cell in cells:
        columns = []
        for variant in VARIANTS:
            for statistic in cells_lib.STATISTICS:
                e = cell.estimate(statistic, variant)
                if e is None or not e.n:
                    continue
                interval = e.interval
                sd = 0.0 if math.isnan(e.protocol_sd) else e.protocol_sd
                columns.append(
                    (
                        f"{variant}\n{statistic}",
                        e.values,
                        (interval.mean, interval.low, interval.high),
                        sd,
                    )
                )
        name = f"cell_{cell.stem}.png"
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
    """Copy each cell's best grid point's reconstructions and loss history; return rows."""
    rows = []
    for cell in cells:
        stat = tables.best(cell.grid, "ssim_thesis")
        if stat is None:
            continue
        run = common.example_run(stat)
        cells_md = []
        for source, kind in (
            (store.RECONSTRUCTIONS, "reconstructions"),
            (store.LOSS_PLOT, "loss_history"),
        ):
            name = f"{kind}_{cell.stem}.png"
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
            for loss in published.THESIS_LOSSES:
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


def full_test_table(defaults: Sequence[Run], tuned: Sequence[Run]) -> str:
    """Return per cell the whole-test-set SSIM: thesis optimizer, best optimizer, grid point."""
    header = [
        "cell",
        "thesis's optimizer at Keras 2.2 defaults",
        "best optimizer at defaults",
        "best tuned grid point",
    ]
    body = []
    for (decoder, loss), (_, optimizer) in published.THESIS_SSIM.items():
        body.append(
            [
                f"{DECODERS[decoder]} {vocab.loss_header(loss)}",
                common.fmt(
                    _stat(cells_lib.select(defaults, decoder, loss, optimizer), "ssim_mean")
                ),
                common.fmt(_stat(cells_lib.select(defaults, decoder, loss), "ssim_mean"), True),
                common.fmt(
                    _stat(cells_lib.select(tuned, decoder, loss, optimizer), "ssim_mean"), True
                ),
            ]
        )
    return tables.to_markdown(header, body)


def grid_text(defaults: Sequence[Run]) -> str:
    """Return the defaults sweep's grid as counted from its runs, e.g. ``3 losses x 2 ...``."""
    keys = {losses.loss_key(r.config) for r in defaults}
    decoders = {r.config.model.decoder_activation for r in defaults}
    names = {r.config.optimizer.name for r in defaults}

    def count(items: set, one: str, many: str) -> str:
        return f"{len(items)} {one if len(items) == 1 else many}"

    return " x ".join(
        [
            count(keys, "loss", "losses"),
            count(decoders, "decoder", "decoders"),
            count(names, "optimizer", "optimizers"),
        ]
    )


def test_images_text(runs: Sequence[Run]) -> str:
    """Return how many images the runs were evaluated on, e.g. ``10,000 test images``."""
    counts = sorted({n for r in runs if (n := common.metadata(r).test_images) is not None})
    return f"{'/'.join(f'{n:,}' for n in counts)} test images" if counts else "the test images"


PROTOCOL_PAGE = "docs/explanation/ssim-protocol.md"


# From results/thesis/REPORT.md to the repository's root.
PROTOCOL_LINK = f"[{PROTOCOL_PAGE}](../../{PROTOCOL_PAGE})"


def write_report(
    defaults_dir: Path,
    tuned_dir: Path,
    out_dir: Path,
    occurrences: int = protocol.OCCURRENCES,
) -> Path:
    """Write ``REPORT.md``, ``verdicts.csv``, tables and figures into ``out_dir``; return its path.

    ``tuned_dir`` holds the author's tuning grids run on several seeds: each seed's best
    point is one draw of the author's procedure, the statistic the verdicts judge first.
    """
    store.ensure_writable(out_dir)  # before any work: the mistake may be in the command
    defaults, tuned = store.load_runs(defaults_dir), store.load_runs(tuned_dir)
    tables.check_thesis_dataset([*defaults, *tuned], needs="the thesis report")
    meter = protocol.Meter(occurrences)
    cells = cells_lib.build_cells(defaults, tuned, meter)
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for metric in ("ssim_thesis", "ssim_thesis_viridis", "ssim_mean"):
        figures_lib.write_figures(defaults, metric, figures)
        header, body = tables.layout(defaults, metric, by="optimizer", style="ci")
        atomic.write_text_atomic(
            out_dir / f"{metric}_by_optimizer.md", tables.to_markdown(header, body) + "\n"
        )
        atomic.write_text_atomic(
            out_dir / f"{metric}_by_optimizer.csv",
            tables.to_csv(
                tables.long_rows(defaults, metric, "optimizer", compare=metric == "ssim_thesis")
            ),
        )
    atomic.write_csv(
        out_dir / sections.VERDICTS_FILE, sections.verdict_rows(cells), sections.VERDICT_FIELDS
    )
    common.copy_summaries([defaults_dir, tuned_dir], out_dir)
    text = _render(defaults, tuned, cells, meter, figures)
    report = out_dir / "REPORT.md"
    atomic.write_text_atomic(report, text)
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


TEMPLATE = string.Template(
    (Path(__file__).parent / "templates" / "thesis_report.md").read_text(encoding="utf-8")
)


def _render(
    defaults: Sequence[Run],
    tuned: Sequence[Run],
    cells: Sequence[cells_lib.Cell],
    meter: protocol.Meter,
    figures: Path,
) -> str:
    """Return REPORT.md: the template's prose with this study's numbers and tables."""
    everything = [*defaults, *tuned]
    claims = loss_claims(defaults, ("ssim_mean", "ssim_thesis"))

    def by_optimizer(metric: str) -> str:
        return tables.to_markdown(*tables.layout(defaults, metric, by="optimizer", style="ci"))

    return TEMPLATE.substitute(
        defaults_name=defaults[0].config.name,
        tuned_name=tuned[0].config.name,
        grid=grid_text(defaults),
        seeds=common.seeds_text(tables.config_stats(defaults, "ssim_thesis")),
        points=sum(len(cell.grid) for cell in cells),
        tuned_seeds=common.seed_list(tuned),
        training=common.training_text(everything),
        train_images=train_images_text(everything),
        test_images=test_images_text(everything),
        protocol_link=PROTOCOL_LINK,
        n_defaults=len(defaults),
        n_tuned=len(tuned),
        diverged=common.not_completed(everything),
        wall_clock=common.wall_clock_line(everything),
        machine=common.machine_description(everything),
        counts="\n".join(sections.counts_lines(cells)),
        verdicts_table=sections.verdicts_markdown(sections.verdict_rows(cells)),
        verdict_lines="\n".join(sections.verdict_line(cell) for cell in cells),
        rule_module="aeexp/analysis/verdicts.py",
        alpha=format(verdicts.ALPHA, "g"),
        margin=format(verdicts.MARGIN, "g"),
        verdicts_csv=sections.VERDICTS_FILE,
        estimates_table=sections.estimates_table(cells),
        protocol_note=_protocol_note(cells, meter),
        cell_figures="\n".join(cell_figures(cells, figures)),
        tuned_grid_table=tuned_grid_table(cells),
        full_test_table=full_test_table(defaults, tuned),
        gray_by_optimizer=by_optimizer("ssim_thesis"),
        viridis_by_optimizer=by_optimizer("ssim_thesis_viridis"),
        cell_figure_rows="\n".join(_copy_cell_figures(cells, figures)),
        n_claims=len(claims),
        mean_claims="\n".join(_claim_lines(claims, "ssim_mean")),
        thesis_claims="\n".join(_claim_lines(claims, "ssim_thesis")),
    )
