"""The ``aeexp`` command line: parse, call the library, print, exit code.

TensorFlow is imported only inside commands that train, so ``--help`` and config errors
answer at once. A user mistake prints one line and exits with code 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from aeexp.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _reports_user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn UserError into one line on stderr and exit code 2; Ctrl-C into exit 130."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as error:
            click.echo(f"aeexp: error: {error}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo("aeexp: interrupted; complete runs are kept, rerun to resume", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def format_headline(metrics: dict[str, Any]) -> str:
    """Return the metrics a user looks at first, on one line."""
    if metrics.get("status") != "completed":
        return f"status {metrics.get('status')} at epoch {metrics.get('diverged_epoch')}"
    return (
        f"ssim_thesis {metrics['ssim_thesis']:.3f}  "
        f"ssim_mean {metrics['ssim_mean']:.3f} +- {metrics['ssim_std']:.3f}  "
        f"psnr {metrics['psnr_mean']:.2f} dB  mse {metrics['mse']:.5f}  "
        f"val_loss {metrics['final_val_loss']:.5g}"
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aeexp")
def main() -> None:
    """Reproduce 'Autoencoder with New Loss Functions' (Haruguchi, 2019) and go beyond it.

    Train the thesis's 784-32-784 MNIST autoencoder with MSE, I-divergence,
    Itakura-Saito and beta-divergence losses, judge it by SSIM (the thesis's
    ten-image protocol and the whole test set), and sweep grids of configs.
    """


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key, e.g. --set train.epochs=5 (repeatable).",
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the seed.")
@click.option("--out", type=str, default=None, help="Output folder (default: output.dir).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--force", is_flag=True, help="Train again even if this run is complete.")
@_reports_user_errors
def run(
    config: str,
    overrides: tuple[str, ...],
    seed: int | None,
    out: str | None,
    quiet: bool,
    force: bool,
) -> None:
    """Train and evaluate one configuration from a YAML CONFIG file.

    Writes results/<name>/<run-id>/ with config.yaml, history.csv, metrics.json,
    loss_history.png, reconstructions.png and model.keras. A run that is already
    complete is not redone unless --force.
    """
    from aeexp import results
    from aeexp.config import load_run_config

    cfg = load_run_config(config, overrides, seed=seed, out=out)
    from aeexp import runner  # Imports TensorFlow: only once the config is known good.

    run_dir = runner.run_dir_of(cfg)
    if results.is_complete(run_dir) and not force:
        click.echo(f"{run_dir}: already complete (use --force to train again)")
        click.echo(format_headline(results.read_json(run_dir / results.METRICS)))
        return
    results.ensure_writable(cfg.experiment_dir)
    results.remove_stale_staging(cfg.experiment_dir)
    dataset = runner.load_dataset(cfg)
    (outcome,) = runner.train_group([cfg], dataset, quiet=quiet)
    click.echo(f"{outcome.run_dir}")
    click.echo(format_headline(outcome.metrics))


@main.command()
@click.option(
    "--path",
    type=str,
    default=None,
    help="A .npz file or IDX folder (default: $AEEXP_DATA, else Keras's cache).",
)
@_reports_user_errors
def data(path: str | None) -> None:
    """Show which MNIST source a run would use, its shapes and sha256."""
    from aeexp import data as data_lib

    for key, value in data_lib.summary(path).items():
        click.echo(f"{key}: {value}")


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "md"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def gradcheck(fmt: str) -> None:
    """Check the documents' hand-derived gradients against automatic differentiation.

    Evaluates every closed-form gradient of the thesis (eqs. 44-76) and of the
    entropy-loss and cross-entropy documents as written, in float64, against
    TensorFlow's autodiff of the function it claims to differentiate, and gives
    the largest absolute and relative error and a verdict. Exits 0 whatever
    the verdicts.
    """
    from aeexp import gradcheck as gradcheck_lib

    click.echo(gradcheck_lib.render(gradcheck_lib.run_checks(), fmt))
