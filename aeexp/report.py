"""The thesis reproduction report: tables, figures and verdicts computed from run directories."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
import platform
import shutil
from collections.abc import Sequence
from pathlib import Path

from aeexp import host, optimizers, plots, store, tuning, vocab
from aeexp.analysis import cells as cells_lib
from aeexp.analysis import figures as figures_lib
from aeexp.analysis import protocol, tables
from aeexp.analysis import stats as stats_lib
from aeexp.analysis.protocol import VARIANTS
from aeexp.analysis.tables import ConfigStats
from aeexp.errors import UserError
from aeexp.store import Run
from aeexp.vocab import DECODERS

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
    return sum(not vocab.is_completed(r.metrics) for r in runs)


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
    unit = "epoch" if epochs == [1] else "epochs"
    return f"{'/'.join(map(str, epochs))} {unit}, batch {'/'.join(map(str, batches))}"


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


def example_run(stat: ConfigStats, image: str = store.RECONSTRUCTIONS) -> Run | None:
    """Return the first completed seed that wrote ``image``, or None."""
    return next(
        (r for r in stat.runs if vocab.is_completed(r.metrics) and (r.path / image).is_file()),
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
    return cells_lib.select(runs, decoder, loss, optimizer)


def _stat(runs: Sequence[Run], metric: str) -> ConfigStats | None:
    return tables.best(tables.config_stats(runs, metric))


def _fmt(stat: ConfigStats | None, with_optimizer: bool = False) -> str:
    """Return ``mean [95% t interval] (n)``, the single value, or why there is none."""
    if stat is None:
        return "n/a"
    if not stat.n:  # Every seed diverged or failed: a mean would print as nan.
        return f"n/a (0 of {len(stat.runs)} completed)"
    text = tables.format_value(stat, style="ci")
    return f"{text} {stat.optimizer_label}" if with_optimizer else text


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
        rerun = _select(tuned_seeds, cell.decoder, cell.loss, cell.optimizer)
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
                    _fmt(candidate),
                    _fmt(viridis_now),
                    _fmt(later),
                    _fmt(viridis_later),
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
        run = example_run(stat)
        cells_md = []
        for source, kind in (
            (store.RECONSTRUCTIONS, "reconstructions"),
            (store.LOSS_PLOT, "loss_history"),
        ):
            name = f"{kind}_{_cell_stem(cell)}.png"
            written = _copy_figure(run, source, figures / name)
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
                stat = _stat(_select(defaults, decoder, loss), metric)
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
                f"{vocab.loss_header(loss)} with {stat.optimizer_label} ({_fmt(stat)}) above "
                f"{vocab.loss_header(other)} with {other_stat.optimizer_label} "
                f"({_fmt(other_stat)}) by {stat.mean - other_stat.mean:.3f} "
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
                _fmt(_stat(_select(defaults, decoder, loss, optimizer), "ssim_mean")),
                _fmt(_stat(_select(defaults, decoder, loss), "ssim_mean"), True),
                _fmt(_stat(_select(tuned_seeds, decoder, loss, optimizer), "ssim_mean"), True),
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
    counts = sorted(
        {
            r.metrics["data"]["test_images"]
            for r in runs
            if isinstance(r.metrics.get("data"), dict) and "test_images" in r.metrics["data"]
        }
    )
    return f"{'/'.join(f'{n:,}' for n in counts)} test images" if counts else "the test images"


PROTOCOL_PAGE = "docs/protocol.md"
# From results/thesis/REPORT.md to the repository's root.
PROTOCOL_LINK = f"[{PROTOCOL_PAGE}](../../{PROTOCOL_PAGE})"


def write_thesis_report(
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
    defaults, tuned = store.load_runs(defaults_dir), store.load_runs(tuned_dir)
    tuned_seeds = store.load_runs(tuned_seeds_dir) if tuned_seeds_dir is not None else []
    meter = protocol.Meter(occurrences)
    cells = cells_lib.build_cells(defaults, tuned, tuned_seeds, meter)
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for metric in ("ssim_thesis", "ssim_thesis_viridis", "ssim_mean"):
        figures_lib.write_figures(defaults_dir, metric, figures)
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
    _copy_summaries(sweeps, out_dir)
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
    diverged = _not_completed(everything)
    seeds = seeds_text(tables.config_stats(defaults, "ssim_thesis"))
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
        f"{seed_list(tuned)}) with {seed_list(tuned_seeds)}"
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
            f"learning-rate grids, {seed_list(tuned)}){reruns}. 784-32-784 autoencoder, "
            f"{training_text(everything)}, {train_images_text(everything)}, "
            f"{test_images_text(everything)}; the SSIM protocol and its two colormap variants "
            f"are described in {PROTOCOL_LINK}.",
            "",
            f"- Runs: {run_counts}; diverged or failed: {diverged}.",
            wall_clock_line(everything),
            f"- Machine: {machine_description(everything)}.",
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


# --- The beta-divergence study --------------------------------------------------------------

ORDERS = {"data_first": "d_β(x|y), data first", "recon_first": "d_β(y|x), reconstruction first"}


def _beta_of(run: Run) -> float | None:
    return run.config.loss.beta if run.config.loss.name == "beta" else None


def _study_stats(runs: Sequence[Run], metric: str) -> dict[tuple[str, str, str], ConfigStats]:
    """Return stats per (decoder, loss key, order or '') over seeds."""
    chosen = {}
    for stat in tables.config_stats(runs, metric):
        cfg = stat.config
        key = (cfg.model.decoder_activation, vocab.loss_key(cfg), cfg.loss.order or "")
        chosen[key] = stat
    return chosen


def _betas(runs: Sequence[Run]) -> list[float]:
    return sorted({b for b in map(_beta_of, runs) if b is not None})


def beta_table(runs: Sequence[Run], metric: str) -> str:
    """Return rows of beta (plus MSE and BCE), columns of order x decoder: mean [95% CI] (n)."""
    stats = _study_stats(runs, metric)
    columns = [(d, o) for d in DECODERS for o in ORDERS]
    header = ["β"] + [f"{DECODERS[d]}, {o}" for d, o in columns]
    body = []
    for beta in _betas(runs):
        row = [f"{beta:g}"]
        for decoder, order in columns:
            stat = stats.get((decoder, vocab.beta_loss_key(beta, order), order))
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
        points = [stats.get((decoder, vocab.beta_loss_key(b, order), order)) for b in betas]
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
        f"{metric} against β, {DECODERS[decoder]} (mean and 95% t interval over seeds)",
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
    for decoder in DECODERS:
        for order in ORDERS:
            ranked = _ranked(stats, decoder, order)
            if len(ranked) < 2:
                continue
            (best_key, top), (second_key, runner_up) = ranked[0], ranked[1]
            mse = stats.get((decoder, "mse", ""))
            versus_mse = (
                f"; against MSE ({_fmt(mse)}) the difference is {top.mean - mse.mean:+.4f}"
                f" ({_test_text(top, mse, tests)})"
                if mse is not None and mse.n
                else "; MSE has no completed seed to compare with"
            )
            lines.append(
                f"- **{DECODERS[decoder]}, {ORDERS[order]}**: best {best_key} with "
                f"{_fmt(top)}; runner-up {second_key} with {_fmt(runner_up)}. "
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
        f"β = {cfg.loss.beta:g}, {ORDERS[cfg.loss.order]}, {DECODERS[cfg.model.decoder_activation]}"
        f" ({label} lr={cfg.optimizer.params['learning_rate']:g})"
    )


def overall_answer(ranking: Sequence[ConfigStats], tests: stats_lib.PairTests | None = None) -> str:
    """Return the best and worst β-divergence overall, each with how sure the ranking is."""
    best, worst = ranking[0], ranking[-1]
    text = f"the best β-divergence is {_describe(best)} with SSIM {_fmt(best)}"
    if len(ranking) < 2:
        return text + "; it is the only configuration with a completed seed."
    runner_up, next_worst = ranking[1], ranking[-2]
    return (
        f"{text}; against the runner-up, {_describe(runner_up)} ({_fmt(runner_up)}), "
        f"{how_sure(best, runner_up, tests)}. The worst is {_describe(worst)} with {_fmt(worst)}; "
        f"against the next-worst, {_describe(next_worst)} ({_fmt(next_worst)}), "
        f"{how_sure(next_worst, worst, tests)}."
    )


def _score(stat: ConfigStats) -> str:
    """Return a candidate's holdout score, or what became of its runs."""
    if stat.n:
        return f"{stat.mean:.4f}"
    statuses = {vocab.status_of(r.metrics) for r in stat.runs}
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
                vocab.loss_key(cfg),
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
    if not _copy_figure(run, store.RECONSTRUCTIONS, figures / name):
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
    runs, tune_runs = store.load_runs(study_dir), tuning.load_tuning_runs(tune_dir)
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
            f"- Runs: {len(runs)} in the study ({_not_completed(runs)} diverged or failed), "
            f"{len(tune_runs)} for tuning ({_not_completed(tune_runs)} diverged or failed).",
            wall_clock_line(everything),
            f"- Machine: {machine_description(everything)}.",
            "- Regenerate: `make beta`.",
            "",
            "## Answer",
            "",
            f"Over the whole test set, {answer} Per decoder and order "
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
            "![ReLU-ReLU](figures/ssim_mean_vs_beta_relu.png)"
            " ![ReLU-Sigmoid](figures/ssim_mean_vs_beta_sigmoid.png)",
            "",
            "## SSIM under the thesis's protocol (mean [95% t interval] (n) over seeds)",
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
    store.write_text_atomic(report, text)
    return report
