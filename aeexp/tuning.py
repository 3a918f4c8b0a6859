"""Pick each configuration's best learning rate from a tuning sweep; write the final sweep.

The tuning sweep evaluates on a holdout of the training set (``data.holdout``), so the
choice never sees the test set; the final sweep it writes drops the holdout and adds seeds.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from aeexp import optimizers, results, tables
from aeexp.config import ConfigDumper
from aeexp.errors import UserError
from aeexp.tables import ConfigStats, Run

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
        return [learning_rate(c) for c in self.candidates]

    @property
    def at_edge(self) -> bool:
        """Return True if the chosen rate is the lowest or highest searched."""
        # The best rate may then lie outside the grid: a caveat, not a result.
        rate = learning_rate(self.winner)
        return rate in (self.grid[0], self.grid[-1])


def learning_rate(stat: ConfigStats) -> float:
    """Return the learning rate of a configuration."""
    return stat.config.optimizer.params["learning_rate"]


def describe(stat: ConfigStats) -> str:
    """Return a short name for a configuration without its rate, e.g. ``ReLU-ReLU mse (Adam)``."""
    cfg = stat.config
    label = optimizers.OPTIMIZERS[cfg.optimizer.name].label
    return f"{tables.decoder_label(cfg)} {tables.loss_key(cfg)} ({label})"


def searched_rates(choices: Sequence[Choice]) -> str:
    """Return every learning rate the tuning searched, ascending, e.g. ``0.0001, 0.001``."""
    rates = sorted({rate for choice in choices for rate in choice.grid})
    return ", ".join(f"{rate:g}" for rate in rates)


def edge_choices(choices: Sequence[Choice]) -> tuple[int, str]:
    """Return how many choices sit at an edge of their grid, and those choices named."""
    edges = [c for c in choices if c.at_edge]
    named = "; ".join(f"{describe(c.winner)} at {learning_rate(c.winner):g}" for c in edges)
    return len(edges), named


def holdout_sizes(runs: Sequence[Run]) -> str:
    """Return the holdout size the tuning runs used, e.g. ``10000`` (``a/b`` if several)."""
    return "/".join(map(str, sorted({r.config.data.holdout for r in runs})))


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


def load_tuning_runs(folder: Path) -> list[Run]:
    """Read a tuning sweep's runs, refusing any that were not scored on a training holdout."""
    runs = tables.load_runs(folder)
    require_holdout(runs, folder)
    return runs


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
        candidates = sorted(tables.config_stats(members, metric), key=learning_rate)
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


def leading_comments(sweep_file: Path) -> list[str]:
    """Return the comment lines a YAML file opens with, up to its first other line."""
    try:
        lines = sweep_file.read_text().splitlines()
    except OSError as error:
        raise UserError(f"{sweep_file}: cannot read ({error.strerror})") from None
    block = []
    for line in lines:
        if not line.startswith("#"):
            break
        block.append(line)
    return block


def _comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, width=96, break_on_hyphens=False)]


def _justification(choices: Sequence[Choice], tune_sweep: Path | None) -> list[str]:
    """Return the header lines that say why the optimizer: the tuning sweep's own comments."""
    if tune_sweep is not None:
        block = leading_comments(tune_sweep)
        if block:
            return [f"# From the tuning sweep {tune_sweep}:", "#", *block]
    names = {c.winner.config.optimizer.name for c in choices}
    if names == {"adam"}:
        return _comment("Why Adam: " + WHY_ADAM)
    return []


def _grid_lines(choices: Sequence[Choice]) -> list[str]:
    """Return header lines naming the learning rates searched and any choice at their edge."""
    lines = [f"# Learning rates searched: {searched_rates(choices)}."]
    edges, named = edge_choices(choices)
    if edges:
        lines += _comment(
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


def write_final_sweep(
    tune_dir: Path,
    metric: str,
    seeds: Sequence[int],
    name: str,
    out: Path,
    tune_sweep: Path | None = None,
) -> list[Choice]:
    """Write a sweep file of every configuration at its best learning rate; return the choices.

    ``tune_sweep`` is the tuning sweep's file: its leading comments (why this optimizer and
    grid) are copied into the header. Without it, the stated Adam justification is used.
    """
    runs = load_tuning_runs(tune_dir)
    choices = best_learning_rates(runs, metric)
    header = [
        *_comment(
            f"Generated by `aeexp select {tune_dir} --metric {metric}`: each configuration at "
            f"the learning rate with the best {metric} on the training holdout (the last "
            f"{holdout_sizes(runs)} training images) of that tuning sweep, now "
            "trained on all training images and judged on the test set. Do not edit by hand; "
            "rerun the command."
        ),
        *_grid_lines(choices),
    ]
    justification = _justification(choices, tune_sweep)
    if justification:
        header += ["#", *justification]
    grid = [final_block(choice.winner, seeds) for choice in choices]
    body = yaml.dump(
        {"name": name, "grid": grid},
        Dumper=ConfigDumper,
        sort_keys=False,
        default_flow_style=None,
        width=100,
    )
    results.write_text_atomic(out, "\n".join(header) + "\n" + body)
    return choices
