"""Option sets several commands share, and the path types arguments use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

FOLDER = click.Path(file_okay=False, path_type=Path)
FILE = click.Path(dir_okay=False, path_type=str)


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
        type=str,
        default=default,
        show_default=True,
        help="Folder for REPORT.md, its tables and figures.",
    )


OUT = click.option("--out", type=str, default=None, help="Output folder (default: output.dir).")

EXECUTOR = stacked(
    click.option(
        "--executor",
        type=click.Choice(["local", "ray"]),
        default="local",
        show_default=True,
        help="Train in this process, or on Ray actors (pip install 'aeexp[ray]').",
    ),
    click.option(
        "--address",
        default=None,
        metavar="ADDR",
        help="Ray cluster to attach to, e.g. auto or 10.0.0.1:6379 (default: $RAY_ADDRESS, "
        "else an embedded local Ray sized to this machine's CPUs).",
    ),
    click.option(
        "--cpus-per-worker",
        type=click.IntRange(min=1),
        default=None,
        help="CPUs (and TensorFlow threads) per Ray worker [default: 1].",
    ),
)

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
        "tracking URI, e.g. sqlite:///mlflow.db (pip install 'aeexp[mlflow]').",
    ),
)
