"""Option sets several commands share, and the path types arguments use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from aeexp.arguments import ARGUMENTS, Count, Problem, executor_option_check
from aeexp.env.extras import install_hint
from aeexp.errors import UserError
from aeexp.execute.executors import EXECUTORS, ExecutorOption, executor_options
from aeexp.io import paths
from aeexp.registry import vocab
from aeexp.store import runs_csv

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class CheckedPath(click.ParamType):
    """A path argument passed through one of :mod:`aeexp.io.paths`'s checks as it is parsed."""

    name = "path"

    def __init__(self, check: Callable[[str], Path], as_text: bool = False) -> None:
        self.check = check
        self.as_text = as_text

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Return the checked path, or fail naming the argument and what is wrong with it."""
        try:
            checked = self.check(value)
        except UserError as error:
            self.fail(str(error), param, ctx)
        return str(checked) if self.as_text else checked


class CheckedCount(click.IntRange):
    """A whole number parsed by click, then checked by its row of :data:`ARGUMENTS`.

    The row gives the range click's help shows and the message a bad value gets, the same
    line the Python API raises for it.
    """

    def __init__(self, keyword: str | Count) -> None:
        self.count = ARGUMENTS[keyword].check if isinstance(keyword, str) else keyword
        super().__init__(min=self.count.minimum, max=self.count.maximum)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Return the number, or fail with the row's message."""
        number = click.INT.convert(value, param, ctx)
        try:
            return self.count(number)
        except Problem as problem:
            self.fail(str(problem), param, ctx)


FOLDER = CheckedPath(paths.existing_folder)
RUNS = CheckedPath(runs_csv.checked_source)  # a folder of runs or a runs CSV
FILE = click.Path(dir_okay=False, path_type=str)
OUT_FILE = CheckedPath(paths.output_file, as_text=True)
OUT_FOLDER = CheckedPath(paths.output_folder, as_text=True)


def stacked(*decorators: Decorator) -> Decorator:
    """Return one decorator applying ``decorators`` as if stacked in this order above a def."""

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


def overrides(help_text: str) -> Decorator:
    """Return the repeatable ``--set KEY=VALUE`` option, explained by ``help_text``."""
    return click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=help_text)


def report_out(default: str) -> Decorator:
    """Return the --out option of a report, defaulting to the study's committed folder."""
    return click.option(
        "--out",
        type=OUT_FOLDER,
        default=default,
        show_default=True,
        help="Folder for REPORT.md, its tables and figures.",
    )


def max_runs(help_text: str) -> Decorator:
    """Return --max-runs, the most runs a command may plan, explained by ``help_text``."""
    return click.option(
        "--max-runs",
        type=CheckedCount("max_runs"),
        default=vocab.DEFAULT_MAX_RUNS,
        show_default=True,
        help=help_text,
    )


MAX_GROUP = click.option(
    "--max-group",
    type=CheckedCount("max_group"),
    default=vocab.DEFAULT_MAX_GROUP,
    show_default=True,
    help="Most runs trained together in one lock-step group.",
)
OUT = click.option(
    "--out", type=OUT_FOLDER, default=None, help="Output folder (default: output.dir)."
)


def _executor_choice() -> Decorator:
    """Return --executor, its choices and help from the executor registry."""
    return click.option(
        "--executor",
        type=click.Choice(list(EXECUTORS)),
        default="local",
        show_default=True,
        help=" ".join(f"{name}: {entry.help}" for name, entry in EXECUTORS.items()),
    )


def _executor_option(option: ExecutorOption) -> Decorator:
    """Return one executor option as a click option (None when not given)."""
    check = executor_option_check(option.minimum)
    kind = CheckedCount(check) if isinstance(check, Count) else str
    return click.option(
        option.flag,
        option.keyword,
        type=kind,
        default=None,
        metavar=option.metavar,
        help=option.help,
    )


# Derived from the registry: a new executor's options appear here by themselves.
EXECUTOR = stacked(_executor_choice(), *(_executor_option(o) for o in executor_options().values()))

TRACKING = stacked(
    click.option(
        "--tensorboard",
        is_flag=True,
        help="Write TensorBoard events (losses per epoch, reconstructions) into each run "
        "directory: tensorboard --logdir <out>.",
    ),
    click.option(
        "--mlflow",
        metavar="URI",
        default=None,
        help="Also log each run (config, per-epoch losses, metrics, files) to this MLflow "
        "tracking URI: http(s)://HOST[:PORT] (and a path) or sqlite:///PATH "
        f"({install_hint('mlflow')}).",
    ),
)
