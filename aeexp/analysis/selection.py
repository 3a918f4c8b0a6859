"""Pick each configuration's best learning rate from a tuning sweep; write the final sweep.

The tuning sweep evaluates on a holdout of the training set (``data.holdout``), so the
choice never sees the test set; the final sweep it writes drops the holdout and adds seeds.

One study selects on the test set on purpose: the thesis tuned its grids on the test set,
and reproducing its tuned column means re-measuring that selection. That mode must be asked
for by name (``on_test_set``); it keeps the top few rates per configuration and refuses to
rerun any seed the selection already used, so the estimate never reuses the selecting runs.
"""

from __future__ import annotations

import operator
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from aeexp.analysis import tables
from aeexp.analysis.tables import ConfigStats
from aeexp.config import sweepfile
from aeexp.config.run import MAX_SEED, check_name
from aeexp.errors import MAX_SEEDS, UserError, shorten
from aeexp.io import paths
from aeexp.registry import losses, optimizers, vocab
from aeexp.store import rundir as store
from aeexp.store.rundir import Run

_FIXED_SECTIONS = ("data", "model", "loss", "optimizer", "train")

# The one place the study's choice of optimizer is argued; the final sweep's header and the
# beta report both quote it, so the reasoning travels with the results.
WHY_ADAM = (
    "The β-divergence's gradient in the reconstruction y scales like y^(β-2), so its size "
    "changes by orders of magnitude across β (β = 0 divides by y^2 near the clip at 1e-7). "
    "Adam's per-parameter normalisation makes the step size nearly independent of that scale, "
    "so one small learning-rate grid serves every β, where plain SGD would need a different "
    "grid per β. Adam is also the one thesis optimizer whose Keras 2.2 and Keras 3 defaults "
    "coincide, and the thesis's own best for MSE with a sigmoid decoder."
)


class Choice(NamedTuple):
    """One configuration's chosen learning rate and every candidate rate's holdout stats."""

    winner: ConfigStats
    candidates: list[ConfigStats]

    @property
    def grid(self) -> list[float]:
        """Return the learning rates searched for this configuration, ascending."""
        return [c.learning_rate for c in self.candidates]

    @property
    def at_edge(self) -> bool:
        """Return True if the chosen rate is the lowest or highest searched."""
        # The best rate may then lie outside the grid: a caveat, not a result.
        rate = self.winner.learning_rate
        return rate in (self.grid[0], self.grid[-1])


def describe(stat: ConfigStats) -> str:
    """Return a short name for a configuration without its rate, e.g. ``ReLU-ReLU mse (Adam)``."""
    cfg = stat.config
    label = optimizers.OPTIMIZERS[cfg.optimizer.name].label
    return f"{vocab.decoder_label(cfg)} {losses.loss_key(cfg)} ({label})"


def searched_rates(choices: Sequence[Choice]) -> str:
    """Return every learning rate the tuning searched, ascending, e.g. ``0.0001, 0.001``."""
    rates = sorted({rate for choice in choices for rate in choice.grid})
    return ", ".join(f"{rate:g}" for rate in rates)


def edge_choices(choices: Sequence[Choice]) -> tuple[int, str]:
    """Return how many choices sit at an edge of their grid, and those choices named."""
    edges = [c for c in choices if c.at_edge]
    named = "; ".join(f"{describe(c.winner)} at {c.winner.learning_rate:g}" for c in edges)
    return len(edges), named


def holdout_sizes(runs: Sequence[Run]) -> str:
    """Return the holdout size the tuning runs used, e.g. ``10000`` (``a/b`` if several)."""
    return "/".join(map(str, sorted({r.config.data.holdout for r in runs})))


RATE = operator.attrgetter("learning_rate")  # orders ConfigStats by their rate


def _without_learning_rate(run: Run) -> str:
    cfg = run.config
    optimizer = {k: v for k, v in cfg.optimizer.params.items() if k != "learning_rate"}
    return repr(
        (cfg.model, cfg.loss, cfg.optimizer.name, sorted(optimizer.items()), cfg.train, cfg.data)
    )


def require_holdout(runs: Sequence[Run], folder: Path) -> None:
    """Raise UserError unless every tuning run was scored on a training holdout."""
    on_test = [r for r in runs if r.config.data.holdout is None]
    if on_test:
        raise UserError(
            f"{folder}: {len(on_test)} of {len(runs)} tuning runs have no data.holdout, so they "
            f"were scored on the test set (e.g. {on_test[0].path.name}); tune with data.holdout"
        )


def require_test_set(runs: Sequence[Run], folder: Path) -> None:
    """Raise UserError unless every run was scored on the test set (no data.holdout).

    Test-set selection is asked for by name; given for a holdout sweep it would be a mistake
    about what the runs are, so it is refused rather than silently ignored.
    """
    held = [r for r in runs if r.config.data.holdout is not None]
    if held:
        raise UserError(
            f"{folder}: --on-test-set, but {len(held)} of {len(runs)} runs were scored on a "
            f"training holdout (e.g. {held[0].path.name}); select without --on-test-set"
        )


def load_tuning_runs(folder: Path, on_test_set: bool = False) -> list[Run]:
    """Read a tuning sweep's runs: all on a training holdout, or (asked for) all on the test set."""
    runs = store.load_runs(folder)
    (require_test_set if on_test_set else require_holdout)(runs, folder)
    return runs


def ranked(choice: Choice, metric: str) -> list[ConfigStats]:
    """Return a choice's candidates with a completed run, best first by ``metric``; ties by rate."""
    sign = -1.0 if vocab.higher_is_better(metric) else 1.0
    scored = [
        tables.ConfigStats(c.runs, _values(c, metric), metric)
        for c in sorted(choice.candidates, key=RATE)
    ]
    return sorted((c for c in scored if c.n), key=lambda c: sign * c.mean)


def _values(stat: ConfigStats, metric: str) -> tuple[float, ...]:
    return tables.config_stats(stat.runs, metric)[0].values


def top_rates(choice: Choice, metrics: Sequence[str], top: int) -> list[ConfigStats]:
    """Return the union over ``metrics`` of each metric's ``top`` best rates, ascending by rate."""
    kept: dict[float, ConfigStats] = {}
    for metric in metrics:
        for stat in ranked(choice, metric)[:top]:
            kept.setdefault(stat.learning_rate, stat)
    return [kept[rate] for rate in sorted(kept)]


def best_learning_rates(runs: Sequence[Run], metric: str) -> list[Choice]:
    """Return, per configuration, the best learning rate's stats and every candidate's stats.

    Raises UserError if some configuration has no completed run at any rate, so the final
    sweep never silently loses a configuration.
    """
    by_config: dict[str, list[Run]] = {}
    for run in runs:
        by_config.setdefault(_without_learning_rate(run), []).append(run)
    chosen, lost = [], []
    for members in by_config.values():
        candidates = sorted(tables.config_stats(members, metric), key=RATE)
        winner = tables.best(candidates)
        if winner is None:
            lost.append(describe(candidates[0]))
        else:
            chosen.append(Choice(winner, candidates))
    if lost:
        raise UserError(
            f"{len(lost)} configuration(s) have no completed tuning run with {metric} at any "
            f"learning rate (all diverged or failed): {'; '.join(sorted(lost))}"
        )
    return chosen


def comment(text: str) -> list[str]:
    """Return ``text`` as YAML comment lines of at most 98 characters."""
    return ["# " + line for line in textwrap.wrap(text, width=96, break_on_hyphens=False)]


def _justification(choices: Sequence[Choice], tune_sweep: Path | None) -> list[str]:
    """Return the header lines that say why the optimizer: the tuning sweep's own comments."""
    if tune_sweep is not None:
        block = sweepfile.leading_comments(tune_sweep)
        if block:
            return [f"# From the tuning sweep {tune_sweep}:", "#", *block]
    names = {c.winner.config.optimizer.name for c in choices}
    if names == {"adam"}:
        return comment("Why Adam: " + WHY_ADAM)
    return []


def _grid_lines(choices: Sequence[Choice]) -> list[str]:
    """Return header lines naming the learning rates searched and any choice at their edge."""
    lines = [f"# Learning rates searched: {searched_rates(choices)}."]
    edges, named = edge_choices(choices)
    if edges:
        lines += comment(
            f"Caveat, chosen at the edge of the grid (the best may lie beyond): {named}."
        )
    return lines


def final_block(stat: ConfigStats, seeds: Sequence[int]) -> dict[str, Any]:
    """Return a grid block that reruns the chosen configuration on the test set over seeds."""
    resolved = stat.config.resolved()
    resolved["data"] = {k: v for k, v in resolved["data"].items() if k != "holdout"}
    block: dict[str, Any] = {section: [resolved[section]] for section in _FIXED_SECTIONS}
    block["seed"] = list(seeds)
    return block


def _test_set_header(
    tune_dir: Path, metrics: Sequence[str], top: int, runs: Sequence[Run], seeds: Sequence[int]
) -> list[str]:
    used = sorted({r.config.seed for r in runs})
    return comment(
        f"Generated by `aeexp select {tune_dir} --on-test-set --top {top} "
        + " ".join(f"--metric {m}" for m in metrics)
        + "`. SELECTED ON THE TEST SET, as the thesis tuned its grids: per configuration, "
        f"the {top} learning rate(s) with the best test-set score by each of "
        f"{', '.join(metrics)} on seed(s) {', '.join(map(str, used))}, rerun with seeds "
        f"{', '.join(map(str, seeds))} so that no estimate reuses a selecting run. This "
        "re-measures the thesis's own tuning; it is not a clean hyperparameter choice. "
        "Do not edit by hand; rerun the command."
    )


# Seeds a final sweep may list: its runs are counted before they are planned, like a grid's.


def parse_seeds(text: str) -> list[int]:
    """Parse ``0-4`` or ``0,1,2`` into a non-empty, bounded list of seeds."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            if high < low:
                raise ValueError
        else:
            seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(
            f"--seeds {shorten(text)}: expected a range like 0-4 or a list like 0,1,2"
        ) from None
    if "-" in text:  # counted before the list is built: 0-10**18 must not fill the memory
        if high - low >= MAX_SEEDS:
            raise UserError(f"--seeds {shorten(text)}: more than {MAX_SEEDS} seeds")
        seeds = list(range(low, high + 1))
    if len(seeds) > MAX_SEEDS or not all(0 <= seed <= MAX_SEED for seed in seeds):
        raise UserError(f"--seeds {shorten(text)}: at most {MAX_SEEDS} seeds in 0..{MAX_SEED}")
    return seeds


def write_final_sweep(
    tune_dir: Path,
    metric: str | Sequence[str],
    seeds: Sequence[int],
    *,
    name: str,
    out: Path,
    tune_sweep: Path | None = None,
    top: int = 1,
    on_test_set: bool = False,
) -> list[Choice]:
    """Write a sweep file of every configuration at its best learning rate(s); return the choices.

    ``tune_sweep`` is the tuning sweep's file: its leading comments (why this optimizer and
    grid) are copied into the header. Without it, the stated Adam justification is used.
    ``top`` keeps each configuration's best ``top`` rates per metric (their union).
    ``on_test_set`` selects from runs scored on the test set, which is otherwise refused;
    then ``seeds`` must not repeat a seed of the selecting runs.
    """
    check_name(name, "--name")
    metrics = [metric] if isinstance(metric, str) else list(metric)
    if not metrics:
        raise UserError("select: give at least one --metric")
    if top < 1:
        raise UserError(f"--top {top}: keep at least one learning rate per configuration")
    paths.output_file(out)  # before any work: never a FIFO, a device or a missing folder
    runs = load_tuning_runs(tune_dir, on_test_set)
    if on_test_set:
        reused = sorted(set(seeds) & {r.config.seed for r in runs})
        if reused:
            raise UserError(
                f"--seeds repeats seed(s) {', '.join(map(str, reused))} that selected the rates "
                f"in {tune_dir}; an estimate on the selecting runs is biased upwards"
            )
    choices = best_learning_rates(runs, metrics[0])
    if on_test_set:
        header = _test_set_header(tune_dir, metrics, top, runs, seeds)
    else:
        header = comment(
            f"Generated by `aeexp select {tune_dir} --metric {metrics[0]}`: each configuration "
            f"at the learning rate with the best {metrics[0]} on the training holdout (the last "
            f"{holdout_sizes(runs)} training images) of that tuning sweep, now "
            "trained on all training images and judged on the test set. Do not edit by hand; "
            "rerun the command."
        )
    header += _grid_lines(choices)
    justification = _justification(choices, tune_sweep)
    if justification:
        header += ["#", *justification]
    if top == 1 and len(metrics) == 1:
        kept = [[choice.winner] for choice in choices]
    else:
        kept = [top_rates(choice, metrics, top) for choice in choices]
    write_sweep(out, name, header, chosen=[stat for stats in kept for stat in stats], seeds=seeds)
    return choices


def write_sweep(
    out: Path,
    name: str,
    header: Sequence[str],
    *,
    chosen: Sequence[ConfigStats],
    seeds: Sequence[int],
) -> None:
    """Write a sweep file rerunning each chosen configuration on the test set over ``seeds``.

    ``header`` is its comment lines (each starting with '#'), after the schema modeline.
    The one writer of a final sweep: ``aeexp select`` and ``aeexp tune`` both end here.
    """
    sweepfile.write(out, name, header, [final_block(stat, seeds) for stat in chosen])


def describe_selection(
    choices: Sequence[Choice], metrics: Sequence[str], top: int, on_test_set: bool
) -> str:
    """Return what a written selection holds, e.g. ``6 configurations at their top 3``."""
    what = "their best learning rate" if top == 1 and len(metrics) == 1 else f"their top {top}"
    what += "" if len(metrics) == 1 else f" by each of {', '.join(metrics)}"
    where = " (selected on the test set)" if on_test_set else ""
    return f"{len(choices)} configurations at {what}{where}"
