"""Same science on JAX? The thesis's six cells trained by both engines, judged by one rule.

Each JAX run is paired with the TensorFlow run of the same configuration (the same config
but ``train.backend``, found by its run id), so the two sides differ in nothing but the
engine: its initialisation stream, its shuffling stream and how its compiler rounds. Per
cell and SSIM metric the seeds of each side are one sample, and the reproduction report's
rule decides (:func:`aeexp.analysis.verdicts.compare_samples`: TOST at ``MARGIN`` for
equivalent, Welch's test for different), Holm-corrected over the family.

With ``--paired`` a second pair of sweeps trained with ``train.init: shared`` (both engines
start a seed from the same weights and shuffle alike) is judged seed by seed: each JAX run
and its completed TensorFlow twin give one difference, and :func:`aeexp.analysis.paired.
compare_pairs` decides on those differences. That table heads the report: with the seed's
own variation gone, it can bound the engines' difference where the unpaired one cannot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aeexp.analysis import paired, tables, verdicts
from aeexp.config.run import SHARED_INIT
from aeexp.env.backend import DEFAULT_BACKEND
from aeexp.errors import UserError
from aeexp.io import atomic
from aeexp.registry import losses, optimizers, vocab
from aeexp.store import rundir as store
from aeexp.store.rundir import Run
from aeexp.studies import common

# Metrics on SSIM's scale, where the 0.02 margin means what it was declared to mean.
JUDGED = ("ssim_thesis", "ssim_thesis_viridis", "ssim_mean", "ssim_median")
# Shown beside them, not judged: no margin was declared on their scales.
CONTEXT = ("psnr_mean", "mse", "final_val_loss")
# The study's two sides: the reference engine (the thesis's, the default) and the port.
REFERENCE, PORT = DEFAULT_BACKEND, "jax"
SIDES = (REFERENCE, PORT)
VERDICTS_CSV = "verdicts.csv"
PAIRED_VERDICTS_CSV = "paired-verdicts.csv"
# The paired sweeps' runs CSVs go in a subfolder: `aeexp table` on the report's folder must
# find only the unpaired study's one runs CSV.
PAIRED_DIR = "paired"


@dataclass(frozen=True)
class Cell:
    """One configuration (less its seed) and its runs on each side, paired by run id."""

    activations: str  # e.g. ReLU-Sigmoid
    loss: str
    optimizer: str
    runs: dict[str, list[Run]]  # backend -> runs (completed or not), in seed order
    twins: dict[str, Run] = field(default_factory=dict)  # JAX run id -> its TensorFlow twin

    @property
    def label(self) -> str:
        """Return e.g. ``ReLU-Sigmoid, MSE, Adam``."""
        optimizer = optimizers.OPTIMIZERS[self.optimizer].label
        return f"{self.activations}, {vocab.loss_header(self.loss)}, {optimizer}"

    def values(self, backend: str, metric: str) -> list[float]:
        """Return the finite values of ``metric`` over one side's completed runs."""
        found = [_finite(r, metric) for r in self.completed(backend)]
        return [v for v in found if v is not None]

    def completed(self, backend: str) -> list[Run]:
        """Return one side's completed runs."""
        return [r for r in self.runs[backend] if vocab.is_completed(r.metrics)]

    def pairs(self, metric: str) -> tuple[list[float], list[float]]:
        """Return (JAX, TensorFlow) values of ``metric``, one pair per seed with both finite.

        Paired by run id, not by position: a JAX run whose twin is missing, diverged or
        failed, or whose value is not finite on either side, is no pair.
        """
        port, reference = [], []
        for run in self.completed(PORT):
            twin = self.twins.get(run.config.run_id)
            if twin is None or not vocab.is_completed(twin.metrics):
                continue
            a, b = _finite(run, metric), _finite(twin, metric)
            if a is not None and b is not None:
                port.append(a)
                reference.append(b)
        return port, reference


def _finite(run: Run, metric: str) -> float | None:
    """Return a run's value of ``metric`` if it is a finite number, else None."""
    value = tables.as_number(run.metrics.get(metric))
    return value if value is not None and math.isfinite(value) else None


def _twin_id(run: Run) -> str:
    """Return the run id the same configuration has on TensorFlow."""
    train = run.config.train.model_copy(update={"backend": REFERENCE})
    return run.config.model_copy(update={"train": train}).run_id


def pair_cells(tf_runs: Sequence[Run], jax_runs: Sequence[Run]) -> list[Cell]:
    """Return the cells of the JAX runs, each with its TensorFlow twins."""
    jax_only = [r for r in jax_runs if r.config.train.backend == PORT]
    if not jax_only:
        raise UserError("no JAX runs (train.backend: jax) in the JAX folder")
    by_id = {r.config.run_id: r for r in tf_runs if r.config.train.backend == REFERENCE}
    cells: dict[tuple, Cell] = {}
    for run in sorted(jax_only, key=lambda r: r.config.seed):
        cfg = run.config
        key = (vocab.decoder_label(cfg), losses.loss_key(cfg), cfg.optimizer.name, _rest(run))
        cell = cells.setdefault(key, Cell(*key[:3], {side: [] for side in SIDES}))
        cell.runs[PORT].append(run)
        twin = by_id.get(_twin_id(run))
        if twin is not None:
            cell.runs[REFERENCE].append(twin)
            cell.twins[cfg.run_id] = twin
    if not any(c.runs[REFERENCE] for c in cells.values()):
        raise UserError(
            "no TensorFlow run has the configuration of any JAX run (same config but "
            "train.backend); is the TensorFlow folder the same sweep's?"
        )
    return sorted(cells.values(), key=lambda c: (c.activations, c.loss, c.optimizer))


def _rest(run: Run) -> str:
    """Return what else tells cells apart: the config without seed, name, output and backend."""
    raw = run.config.resolved()
    for key in ("seed", "name", "output"):
        raw.pop(key)
    raw["train"].pop("backend")
    return atomic.encode_json(raw)


def judge_cells(cells: Sequence[Cell]) -> list[tuple[Cell, str, verdicts.Comparison]]:
    """Return every (cell, metric, JAX against TensorFlow) comparison of the family."""
    return [
        (
            cell,
            metric,
            verdicts.compare_samples(cell.values(PORT, metric), cell.values(REFERENCE, metric)),
        )
        for cell in cells
        for metric in JUDGED
    ]


def judge_pairs(cells: Sequence[Cell]) -> list[tuple[Cell, str, paired.PairedComparison]]:
    """Return every (cell, metric, JAX − TensorFlow seed by seed) comparison of the family."""
    return [
        (cell, metric, paired.compare_pairs(*cell.pairs(metric)))
        for cell in cells
        for metric in JUDGED
    ]


@dataclass(frozen=True)
class PairedStudy:
    """The shared-init sweeps' cells, and the folders their runs came from."""

    cells: list[Cell]
    tf_dir: Path
    jax_dir: Path


def load_paired(tf_dir: Path, jax_dir: Path) -> PairedStudy:
    """Return the shared-init sweeps' cells; refuse runs that do not start alike."""
    try:
        cells = pair_cells(store.load_runs(tf_dir), store.load_runs(jax_dir))
    except UserError as error:
        raise UserError(f"--paired {tf_dir} {jax_dir}: {error}") from None
    unshared = sum(r.config.train.init != SHARED_INIT for c in cells for r in c.runs[PORT])
    if unshared:
        # Without a shared start the seed's own variation stays in each difference: the
        # table's heading and its power would claim what the runs cannot give.
        raise UserError(
            f"--paired {jax_dir}: {unshared} JAX runs lack train.init: {SHARED_INIT}; the "
            "paired comparison needs runs that start alike on both engines"
        )
    return PairedStudy(cells, tf_dir, jax_dir)


def _mean_sd(values: Sequence[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f} (1)"
    sd = math.sqrt(sum((v - sum(values) / len(values)) ** 2 for v in values) / (len(values) - 1))
    return f"{sum(values) / len(values):.4f} ± {sd:.4f} ({len(values)})"


def _p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2g}"


def verdict_table(
    judged: Sequence[tuple[Cell, str, verdicts.Comparison]], held: Sequence[str]
) -> str:
    """Return the markdown table of every comparison, with its verdict before and after Holm."""
    lines = [
        "| cell | metric | TensorFlow mean ± sd (n) | JAX mean ± sd (n) | JAX − TF [95% CI] "
        "| TOST p | Welch p | verdict | after Holm |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (cell, metric, c), after in zip(judged, held, strict=True):
        interval = "-" if math.isnan(c.ci_lo) else f"{c.gap:+.4f} [{c.ci_lo:+.4f}, {c.ci_hi:+.4f}]"
        lines.append(
            f"| {cell.label} | {metric} | {_mean_sd(cell.values('tensorflow', metric))} "
            f"| {_mean_sd(cell.values('jax', metric))} | {interval} | {_p(c.tost_p)} "
            f"| {_p(c.diff_p)} | {c.verdict} | {after} |"
        )
    return "\n".join(lines)


def _decimals(c: paired.PairedComparison) -> int:
    """Return the decimals that show two digits of the interval's half-width (at least 4).

    From a shared start the engines may differ by rounding only (differences near 1e-6):
    four decimals would print them all as zero.
    """
    half = c.ci_hi - c.gap
    if not half > 0:
        return 4
    return min(9, max(4, 1 - math.floor(math.log10(half))))


def _fixed(value: float, decimals: int, sign: str = "+") -> str:
    """Return ``value`` with ``decimals`` decimals, or ``-`` if it is NaN."""
    return "-" if math.isnan(value) else f"{value:{sign}.{decimals}f}"


def _pairs_needed(c: paired.PairedComparison) -> str:
    """Return the pairs for 80% power; at the search's cap, that it is more."""
    if math.isnan(c.sd) or c.verdict == verdicts.NOT_TESTABLE:
        return "-"
    return f"≥ {paired.MAX_PAIRS}" if c.pairs_needed >= paired.MAX_PAIRS else str(c.pairs_needed)


def paired_table(
    judged: Sequence[tuple[Cell, str, paired.PairedComparison]], held: Sequence[str]
) -> str:
    """Return the markdown table of every paired comparison, before and after Holm."""
    lines = [
        "| cell | metric | pairs | JAX − TF mean [95% CI] | sd of differences | TOST p "
        f"| paired t p | smallest passing margin | power at {verdicts.MARGIN} "
        f"| pairs for {paired.TARGET_POWER:.0%} power | verdict | after Holm |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (cell, metric, c), after in zip(judged, held, strict=True):
        places = _decimals(c)  # one precision per row: the gap, its interval, sd and margin
        interval = " ".join(
            [_fixed(c.gap, places), f"[{_fixed(c.ci_lo, places)}, {_fixed(c.ci_hi, places)}]"]
        )
        power = "-" if math.isnan(c.power) else f"{c.power:.2f}"
        lines.append(
            f"| {cell.label} | {metric} | {c.n} | {interval} | {_fixed(c.sd, places, '')} "
            f"| {_p(c.tost_p)} | {_p(c.diff_p)} | {_fixed(c.min_margin, places, '')} "
            f"| {power} | {_pairs_needed(c)} | {c.verdict} | {after} |"
        )
    return "\n".join(lines)


def _undecided_text(judged: Sequence[tuple[Cell, str, paired.PairedComparison]]) -> str:
    """Return, per cell left inconclusive, its pairs and the pairs 80% power would take."""
    by_cell: dict[str, list[str]] = {}
    for cell, metric, c in judged:
        if c.verdict == verdicts.INCONCLUSIVE:
            needs = f"{metric} needs {_pairs_needed(c)} (has {c.n})"
            by_cell.setdefault(cell.label, []).append(needs)
    if not by_cell:
        return "No cell is left inconclusive."
    parts = [f"{label}: {', '.join(needs)}" for label, needs in by_cell.items()]
    return (
        f"Inconclusive, with the pairs TOST needs for {paired.TARGET_POWER:.0%} power at the "
        f"observed sd: {'; '.join(parts)}."
    )


def paired_section(study: PairedStudy) -> tuple[list[str], list[dict]]:
    """Return the paired verdicts' markdown lines (the report's headline) and CSV rows."""
    judged = judge_pairs(study.cells)
    held = verdicts.holm_verdicts([c for _, _, c in judged])
    margin, alpha, power = verdicts.MARGIN, verdicts.ALPHA, paired.TARGET_POWER
    lines = [
        f"## Paired verdicts (train.init: {SHARED_INIT})",
        "",
        f"The same cells trained again with `train.init: {SHARED_INIT}` (`{study.jax_dir}` "
        f"against `{study.tf_dir}`): for a seed both engines start from the same weights and "
        "shuffle each epoch alike, so a seed's difference JAX − TF carries the engines' "
        "difference without the seed's own variation. Each JAX run with a completed "
        "TensorFlow twin of its seed, both values finite, is one pair.",
        "",
        f"The rule, on the per-seed differences: the two one-sided t-tests (TOST) at margin "
        f"{margin} SSIM and α = {alpha} say **equivalent** when they reject a mean "
        "difference at least that large; otherwise the paired t-test (two-sided, "
        f"α = {alpha}) says **different** when it rejects a mean difference of zero; else "
        "**inconclusive** (**not testable**: fewer than two pairs, or no spread among the "
        "differences). The smallest passing margin is the margin at which TOST would just "
        f"pass. Power at {margin} is TOST's exact power if the engines agreed exactly (a true "
        "mean difference of zero) and the observed sd of the differences were the true one; "
        f"pairs for {power:.0%} power is the fewest pairs reaching {power:.0%} power under "
        "the same assumption. Both are measured from the observed sd, so they are only as "
        f"sure as that sd. Holm's correction over the family of {len(judged)} paired "
        "comparisons is the last column.",
        "",
        f"Paired verdicts: {verdicts.counts([c.verdict for _, _, c in judged])}; after "
        f"Holm: {verdicts.counts(list(held))}. {_undecided_text(judged)}",
        "",
        paired_table(judged, held),
        "",
    ]
    rows = [
        {"cell": cell.label, "metric": metric, **c.row(), "after_holm": after}
        for (cell, metric, c), after in zip(judged, held, strict=True)
    ]
    return lines, rows


def context_table(cells: Sequence[Cell]) -> str:
    """Return each cell's unjudged metrics and run counts on both sides."""
    header = " | ".join(f"{m} TF | {m} JAX" for m in CONTEXT)
    lines = [
        f"| cell | runs TF (diverged or failed) | runs JAX (diverged or failed) | {header} |",
        "|---|---|---|" + "---|" * (2 * len(CONTEXT)),
    ]
    for cell in cells:
        counts = [
            f"{len(cell.runs[s])} ({len(cell.runs[s]) - len(cell.completed(s))})" for s in SIDES
        ]
        shown = [_mean_sd(cell.values(s, m)) for m in CONTEXT for s in SIDES]
        lines.append(f"| {cell.label} | {' | '.join(counts)} | {' | '.join(shown)} |")
    return "\n".join(lines)


def _side_line(name: str, runs: Sequence[Run]) -> str:
    """Return one side's runs, machine and versions as a report bullet."""
    seconds = [common.metadata(r).train_seconds for r in runs]
    known = [s for s in seconds if s is not None]
    per_run = f"{sum(known) / len(known):.1f} s of training per run (group time)" if known else ""
    return (
        f"- {name}: {len(runs)} runs ({common.not_completed(runs)} diverged or failed); "
        f"{per_run}; {common.machine_description(runs)}."
    )


def _header(cells: Sequence[Cell], tf_dir: Path, jax_dir: Path) -> list[str]:
    """Return the title, what was paired with what, and each side's runs and machine."""
    jax_runs = [r for cell in cells for r in cell.runs[PORT]]
    tf_runs = [r for cell in cells for r in cell.runs[REFERENCE]]
    missing = len(jax_runs) - len(tf_runs)
    return [
        "# Same science on JAX? The thesis's cells on TensorFlow and on JAX",
        "",
        f"Each of the {len(jax_runs)} JAX runs (`{jax_dir}`) is paired with the TensorFlow "
        f"run of the same configuration (`{tf_dir}`): same config, seed and data, only "
        "`train.backend` differs, so the engines differ in their initialisation and "
        "shuffling streams and in how their compilers round, not in the experiment."
        + (f" {missing} JAX runs have no TensorFlow twin there." if missing else ""),
        "",
        _side_line("TensorFlow", tf_runs),
        _side_line("JAX", jax_runs),
    ]


def _paired_side_lines(study: PairedStudy) -> list[str]:
    """Return the shared-init sweeps' runs and machine, one bullet per engine."""
    shared = f"train.init: {SHARED_INIT}"
    return [
        _side_line(f"TensorFlow, {shared}", [r for c in study.cells for r in c.runs[REFERENCE]]),
        _side_line(f"JAX, {shared}", [r for c in study.cells for r in c.runs[PORT]]),
    ]


def _unpaired_section(
    judged: Sequence[tuple[Cell, str, verdicts.Comparison]], held: Sequence[str], second: bool
) -> list[str]:
    """Return the Welch rule, its counts and table; ``second``: below the paired headline."""
    rule = (
        "The reproduction report's rule, for two samples: per cell and SSIM metric the seeds "
        "of each side are one sample; the two one-sided Welch tests (TOST) at margin "
        f"{verdicts.MARGIN} SSIM and α = {verdicts.ALPHA} say **equivalent** when they reject "
        "a difference of the means at least that large; otherwise Welch's two-sided test at "
        f"α = {verdicts.ALPHA} says **different** when it rejects equal means; else "
        "**inconclusive** (**not testable**: fewer than two runs a side, or no spread). "
        f"Holm's correction over the family of {len(judged)} comparisons is the last "
        "column: a verdict it withdraws becomes inconclusive."
    )
    found = (
        f"Verdicts: {verdicts.counts([c.verdict for _, _, c in judged])}; after Holm: "
        f"{verdicts.counts(list(held))}."
    )
    table = verdict_table(judged, held)
    if second:  # one heading over the rule and its table, as the paired section has
        return ["## Unpaired verdicts (default init)", "", rule, "", found, "", table, ""]
    return ["## The rule", "", rule, "", found, "", "## Verdicts", "", table, ""]


def render(
    cells: Sequence[Cell], tf_dir: Path, jax_dir: Path, study: PairedStudy | None = None
) -> tuple[str, list[dict], list[dict]]:
    """Return the report's markdown, its CSV rows and (with ``study``) the paired rows."""
    judged = judge_cells(cells)
    held = verdicts.holm_verdicts([c for _, _, c in judged])
    lines = _header(cells, tf_dir, jax_dir)
    paired_lines: list[str] = []
    paired_rows: list[dict] = []
    if study is not None:
        lines += _paired_side_lines(study)
        paired_lines, paired_rows = paired_section(study)
    lines += ["- Regenerate: `make backends`.", "", *paired_lines]
    lines += _unpaired_section(judged, held, second=study is not None)
    lines += [
        "## Context (shown, not judged: no margin was declared on these scales)",
        "",
        context_table(cells),
        "",
    ]
    rows = [
        {"cell": cell.label, "metric": metric, **c.row(), "after_holm": after}
        for (cell, metric, c), after in zip(judged, held, strict=True)
    ]
    return "\n".join(lines), rows, paired_rows


def write_report(
    tf_dir: Path, jax_dir: Path, out_dir: Path, paired_dirs: tuple[Path, Path] | None = None
) -> Path:
    """Write REPORT.md and verdicts.csv comparing the JAX runs with their TensorFlow twins.

    ``paired_dirs`` (the shared-init TensorFlow and JAX sweeps) adds the paired verdicts,
    paired-verdicts.csv and the two sweeps' runs CSVs under ``paired/``.
    """
    store.ensure_writable(out_dir)  # before any work: the mistake may be in the command
    cells = pair_cells(store.load_runs(tf_dir), store.load_runs(jax_dir))
    study = load_paired(*paired_dirs) if paired_dirs is not None else None
    text, rows, paired_rows = render(cells, tf_dir, jax_dir, study)
    atomic.write_text_atomic(out_dir / "REPORT.md", text)
    atomic.write_csv(out_dir / VERDICTS_CSV, rows, list(rows[0]))
    # The TensorFlow side's runs.csv is already committed with the thesis report.
    common.copy_summaries([jax_dir], out_dir)
    if study is not None:
        atomic.write_csv(out_dir / PAIRED_VERDICTS_CSV, paired_rows, list(paired_rows[0]))
        (out_dir / PAIRED_DIR).mkdir(exist_ok=True)
        common.copy_summaries([study.tf_dir, study.jax_dir], out_dir / PAIRED_DIR)
    return out_dir / "REPORT.md"
