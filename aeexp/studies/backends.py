"""Same science on JAX? The thesis's six cells trained by both engines, judged by one rule.

Each JAX run is paired with the TensorFlow run of the same configuration (the same config
but ``train.backend``, found by its run id), so the two sides differ in nothing but the
engine: its initialisation stream, its shuffling stream and how its compiler rounds. Per
cell and SSIM metric the seeds of each side are one sample, and the reproduction report's
rule decides (:func:`aeexp.analysis.verdicts.compare_samples`: TOST at ``MARGIN`` for
equivalent, Welch's test for different), Holm-corrected over the family.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aeexp.analysis import tables, verdicts
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


@dataclass(frozen=True)
class Cell:
    """One configuration (less its seed) and its runs on each side, paired by run id."""

    activations: str  # e.g. ReLU-Sigmoid
    loss: str
    optimizer: str
    runs: dict[str, list[Run]]  # backend -> runs (completed or not), in seed order

    @property
    def label(self) -> str:
        """Return e.g. ``ReLU-Sigmoid, MSE, Adam``."""
        optimizer = optimizers.OPTIMIZERS[self.optimizer].label
        return f"{self.activations}, {vocab.loss_header(self.loss)}, {optimizer}"

    def values(self, backend: str, metric: str) -> list[float]:
        """Return the finite values of ``metric`` over one side's completed runs."""
        found = [tables.as_number(r.metrics.get(metric)) for r in self.completed(backend)]
        return [v for v in found if v is not None and math.isfinite(v)]

    def completed(self, backend: str) -> list[Run]:
        """Return one side's completed runs."""
        return [r for r in self.runs[backend] if vocab.is_completed(r.metrics)]


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


def render(cells: Sequence[Cell], tf_dir: Path, jax_dir: Path) -> tuple[str, list[dict]]:
    """Return the report's markdown and its CSV rows."""
    judged = judge_cells(cells)
    held = verdicts.holm_verdicts([c for _, _, c in judged])
    jax_runs = [r for cell in cells for r in cell.runs[PORT]]
    tf_runs = [r for cell in cells for r in cell.runs[REFERENCE]]
    missing = len(jax_runs) - len(tf_runs)
    text = "\n".join(
        [
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
            "- Regenerate: `make backends`.",
            "",
            "## The rule",
            "",
            "The reproduction report's rule, for two samples: per cell and SSIM metric the seeds "
            "of each side are one sample; the two one-sided Welch tests (TOST) at margin "
            f"{verdicts.MARGIN} SSIM and α = {verdicts.ALPHA} say **equivalent** when they reject "
            "a difference of the means at least that large; otherwise Welch's two-sided test at "
            f"α = {verdicts.ALPHA} says **different** when it rejects equal means; else "
            "**inconclusive** (**not testable**: fewer than two runs a side, or no spread). "
            f"Holm's correction over the family of {len(judged)} comparisons is the last "
            "column: a verdict it withdraws becomes inconclusive.",
            "",
            f"Verdicts: {verdicts.counts([c.verdict for _, _, c in judged])}; after Holm: "
            f"{verdicts.counts(list(held))}.",
            "",
            "## Verdicts",
            "",
            verdict_table(judged, held),
            "",
            "## Context (shown, not judged: no margin was declared on these scales)",
            "",
            context_table(cells),
            "",
        ]
    )
    rows = [
        {"cell": cell.label, "metric": metric, **c.row(), "after_holm": after}
        for (cell, metric, c), after in zip(judged, held, strict=True)
    ]
    return text, rows


def write_report(tf_dir: Path, jax_dir: Path, out_dir: Path) -> Path:
    """Write REPORT.md and verdicts.csv comparing the JAX runs with their TensorFlow twins."""
    store.ensure_writable(out_dir)  # before any work: the mistake may be in the command
    cells = pair_cells(store.load_runs(tf_dir), store.load_runs(jax_dir))
    text, rows = render(cells, tf_dir, jax_dir)
    atomic.write_text_atomic(out_dir / "REPORT.md", text)
    atomic.write_csv(out_dir / VERDICTS_CSV, rows, list(rows[0]))
    # The TensorFlow side's runs.csv is already committed with the thesis report.
    common.copy_summaries([jax_dir], out_dir)
    return out_dir / "REPORT.md"
