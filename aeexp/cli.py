"""The ``aeexp`` command line: parse, call the library, print, exit code.

TensorFlow is imported only inside commands that train, so ``--help`` and config errors
answer at once. A user mistake prints one line and exits with code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from aeexp import vocab
from aeexp.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _subcommand_path(ctx: click.Context | None) -> str:
    """Return e.g. ``run`` or ``report thesis``: the command names after the program's."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


class OneLineError(click.ClickException):
    """A user mistake click shows as ``aeexp: error: ...`` on one line, exit code 2."""

    exit_code = EXIT_USER_ERROR

    def show(self, file: Any = None) -> None:
        """Print the message alone: no usage block, no hint, whatever the message held."""
        click.echo(f"aeexp: error: {' '.join(self.message.split())}", err=True)


def _one_line(error: click.UsageError, ctx: click.Context) -> OneLineError:
    """Turn a click usage error into one line that still names the command and the option."""
    where = _subcommand_path(error.ctx or ctx)  # Click leaves ctx unset on some parse errors.
    return OneLineError(f"{where}: {error.format_message()}" if where else error.format_message())


@contextmanager
def _one_error_policy(ctx: click.Context) -> Iterator[None]:
    """Apply the CLI's one error policy, to parsing and running alike.

    A usage error prints one line naming the command, a UserError its message, both with
    exit code 2; Ctrl-C exits 130 with one line; anything else is a bug and shows a traceback.
    """
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # A bare ``aeexp`` or ``aeexp report`` asks for help: click prints it.
    except click.UsageError as error:
        raise _one_line(error, ctx) from None
    except UserError as error:
        click.echo(f"aeexp: error: {error}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        click.echo("aeexp: interrupted; complete runs are kept, rerun to resume", err=True)
        sys.exit(EXIT_INTERRUPTED)


class OneLineErrorCommand(click.Command):
    """A command whose parse errors (bad option, missing argument) print one line, exit 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse as click does; report a mistake on one line naming this command."""
        with _one_error_policy(ctx):
            return super().parse_args(ctx, args)


class OneLineErrorGroup(click.Group):
    """The root group: every command's usage errors print one line and exit 2.

    Each command parses its own arguments in ``parse_args``; commands and subgroups made with
    ``@main.command()`` and ``@main.group()`` get these classes, so all of them answer alike.
    ``invoke`` covers what is left (an unknown command name, errors raised while running), and
    click's --help, --version and exit handling stay untouched.
    """

    command_class = OneLineErrorCommand
    group_class = type  # Click's convention: subgroups are of this same class.

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse the group's own options; report a mistake on one line."""
        with _one_error_policy(ctx):
            return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Resolve and run the subcommand, reporting mistakes on one line."""
        with _one_error_policy(ctx):
            return super().invoke(ctx)


def format_headline(metrics: dict[str, Any]) -> str:
    """Return the metrics a user looks at first, on one line."""
    if not vocab.is_completed(metrics):
        return f"status {metrics.get('status')} at epoch {metrics.get('diverged_epoch')}"
    return (
        f"ssim_thesis {metrics['ssim_thesis']:.3f}  "
        f"ssim_mean {metrics['ssim_mean']:.3f} +- {metrics['ssim_std']:.3f}  "
        f"psnr {metrics['psnr_mean']:.2f} dB  mse {metrics['mse']:.5f}  "
        f"val_loss {metrics['final_val_loss']:.5g}"
    )


@click.group(cls=OneLineErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aeexp")
def main() -> None:
    """Reproduce 'Autoencoder with New Loss Functions' (Haruguchi, 2019) and go beyond it.

    Train the thesis's 784-32-784 MNIST autoencoder with MSE, I-divergence,
    Itakura-Saito and beta-divergence losses, judge it by SSIM (the thesis's
    ten-image protocol and the whole test set), and sweep grids of configs.
    """


def executor_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --executor, --address and --cpus-per-worker to a command that trains."""
    options = [
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
    ]
    for option in reversed(options):
        command = option(command)
    return command


def tracking_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --tensorboard and --mlflow to a command that trains."""
    command = click.option(
        "--mlflow",
        metavar="URI",
        default=None,
        help="Also log each run (config, per-epoch losses, metrics, files) to this MLflow "
        "tracking URI, e.g. sqlite:///mlflow.db (pip install 'aeexp[mlflow]').",
    )(command)
    return click.option(
        "--tensorboard",
        is_flag=True,
        help="Write TensorBoard events (losses per epoch, reconstructions) into each run "
        "directory: tensorboard --logdir <out>.",
    )(command)


def _executor(executor: str, address: str | None, cpus: int | None, quiet: bool):
    from aeexp.api import ExecutorOptions

    return ExecutorOptions(executor, address, cpus, progress=not quiet)


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
@executor_options
@tracking_options
def run(
    config: str,
    overrides: tuple[str, ...],
    seed: int | None,
    out: str | None,
    quiet: bool,
    force: bool,
    executor: str,
    address: str | None,
    cpus_per_worker: int | None,
    tensorboard: bool,
    mlflow: str | None,
) -> None:
    """Train and evaluate one configuration from a YAML CONFIG file.

    Writes <out>/<name>/<run-id>/ with config.yaml, history.csv, metrics.json,
    loss_history.png, reconstructions.png and model.keras. A run that is already
    complete is not redone unless --force. Exits 1 if the run diverged or failed.
    """
    from aeexp import api

    options = _executor(executor, address, cpus_per_worker, quiet)
    result = api.run(
        config,
        overrides=overrides,
        seed=seed,
        out=out,
        force=force,
        executor=options,
        tensorboard=tensorboard,
        mlflow=mlflow,
    )
    if not result.trained_now:
        click.echo(f"{result.run_dir}: already complete (use --force to train again)")
    else:
        click.echo(f"{result.run_dir}")
    click.echo(format_headline(result.metrics))
    if result.status != vocab.Status.COMPLETED:
        sys.exit(1)


@main.command()
@click.argument("sides", nargs=-1, required=True, metavar="SIDE SIDE [SIDE ...]")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="The folder whose runs key=value filters select from.",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    help="A metric to compare (repeatable; default: the SSIMs, PSNR, MSE, validation loss).",
)
def compare(sides: tuple[str, ...], root: str | None, metrics: tuple[str, ...]) -> None:
    """Put groups of runs side by side: what differs in their configs, and every metric.

    Each SIDE is a folder (a run, a sweep, a tree of them) or a filter over the
    runs under --root, e.g. loss.name=mse,model.decoder_activation=sigmoid. Each
    metric shows each side's mean, 95% t interval, standard deviation and count
    over its completed runs, and each side's difference from the first with
    Welch's test (Holm-corrected over the table) when both have two runs or more.
    """
    from aeexp.analysis.compare import compare

    comparison = compare(*sides, root=root, metrics=metrics or vocab.COMPARE_METRICS)
    click.echo(comparison.render())


@main.command()
@click.option(
    "--kind",
    type=click.Choice(["run", "sweep"]),
    default="run",
    show_default=True,
    help="The run config's schema, or the sweep file's.",
)
def schema(kind: str) -> None:
    """Print the JSON Schema of a run config (or a sweep file) for YAML editors.

    The configs under configs/ point at the copies in aeexp/schemas/ with a
    '# yaml-language-server: $schema=...' first line, so editors with the YAML
    language server complete keys and flag mistakes as you type.
    """
    from aeexp import schema as schema_lib

    click.echo(schema_lib.render(kind), nl=False)


@main.command()
def env() -> None:
    """Show the versions that decide a run's numbers and the devices TensorFlow sees."""
    from aeexp import backend, runner

    for key, value in runner.library_versions().items():
        click.echo(f"{key}: {value}")
    found = backend.devices()
    for device in found:
        model = f" ({device['model']})" if "model" in device else ""
        click.echo(f"device: {device['type']} {device['name']}{model}")
    if not any(d["type"] == "GPU" for d in found):
        click.echo("gpu: none visible to TensorFlow; training runs on the CPU")


@main.command()
@click.option(
    "--path",
    type=str,
    default=None,
    help="A .npz file or IDX folder (default: $AEEXP_DATA, else Keras's cache).",
)
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


@main.command()
@click.argument("sweep_file", metavar="SWEEP", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a key of the base config for every run (repeatable).",
)
@click.option("--out", type=str, default=None, help="Output folder (default: output.dir).")
@click.option("--dry-run", is_flag=True, help="List the runs and which are done; train nothing.")
@click.option(
    "--max-group",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Most runs trained together in one lock-step group.",
)
@click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    default=vocab.DEFAULT_MAX_RUNS,
    show_default=True,
    help="Refuse a grid of more points than this (counted before it is expanded).",
)
@click.option("--rerun-failed", is_flag=True, help="Train runs that failed before again.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@executor_options
@tracking_options
def sweep(
    sweep_file: str,
    overrides: tuple[str, ...],
    out: str | None,
    dry_run: bool,
    max_group: int,
    max_runs: int,
    rerun_failed: bool,
    quiet: bool,
    executor: str,
    address: str | None,
    cpus_per_worker: int | None,
    tensorboard: bool,
    mlflow: str | None,
) -> None:
    """Train every point of a grid in SWEEP, skipping runs already complete.

    Runs that share data, epochs, batch size and seed train together in
    lock-step groups, here or on a Ray cluster (--executor ray). Interrupted at
    any moment, the same command resumes: complete runs are kept and never
    redone. Two sweeps on one output folder never train a run twice. Writes
    <out>/<name>/runs.csv. Exits 1 at the end if any run diverged or failed.
    """
    from aeexp import api, execute
    from aeexp.plan import describe_point

    if tensorboard:
        overrides = (*overrides, "output.tensorboard=true")
    plan = api.plan(sweep_file, overrides, out, max_runs)
    if dry_run:
        statuses = api.statuses(plan)
        for run in plan.runs:
            click.echo(f"{run.run_id}  {statuses[run.run_id]:9}  {describe_point(run.point)}")
        done = api.already_done(plan)
        click.echo(
            f"{len(plan.runs)} runs: {done} done, {len(plan.runs) - done} to train "
            f"-> {plan.experiment_dir}"
        )
        return
    from tqdm import tqdm

    options = _executor(executor, address, cpus_per_worker, quiet)
    with tqdm(
        total=len(plan.runs),
        initial=api.already_done(plan, rerun_failed),
        desc=plan.name,
        unit="run",
        disable=quiet,
        dynamic_ncols=True,
    ) as bar:
        outcome = api.train_plan(
            plan,
            max_group,
            rerun_failed,
            options,
            on_runs_done=bar.update,
            on_waiting=lambda n: bar.write(
                f"aeexp: waiting for {n} run(s) another aeexp is training", file=sys.stderr
            ),
            sinks=api.tracking_sinks(mlflow),
        )
    click.echo(
        f"{plan.experiment_dir / execute.RUNS_CSV}: {len(plan.runs)} runs "
        f"({len(outcome.trained)} trained now, {outcome.already} already complete)"
    )
    for path in outcome.moved_aside:
        click.echo(f"aeexp: a damaged run directory was kept at {path}", err=True)
    bad = outcome.problems()
    if bad:
        names = ", ".join(f"{run_id} ({status})" for run_id, status in bad)
        click.echo(f"aeexp: {len(bad)} run(s) diverged or failed: {names}", err=True)
        sys.exit(1)


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=str))
@click.option(
    "--metric",
    type=click.Choice(vocab.TABLE_METRICS),
    default="ssim_thesis",
    show_default=True,
    help="What each cell shows.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "csv", "latex"]),
    default="md",
    show_default=True,
    help="Output format (csv is one row per cell).",
)
@click.option(
    "--compare",
    type=click.Choice(["thesis"]),
    default=None,
    help="Add the thesis's published value and the difference per cell (ssim_thesis only).",
)
@click.option(
    "--by",
    type=click.Choice(["best", "optimizer"]),
    default="best",
    show_default=True,
    help="Best optimizer per cell, or every optimizer.",
)
@click.option(
    "--figures",
    type=str,
    default=None,
    metavar="DIR",
    help="Also write the metric's bar chart and each cell's best loss history to DIR.",
)
def table(
    folder: str, metric: str, fmt: str, compare: str | None, by: str, figures: str | None
) -> None:
    """Print the SSIM table of the runs under FOLDER in the thesis's layout.

    Rows are decoder activations (ReLU-ReLU, ReLU-Sigmoid), columns losses
    (MSE, E_I1, E_I2, then any others). Each cell is the best configuration
    by mean over seeds (highest, or lowest for mse and final_val_loss):
    mean +- std (n seeds) and its optimizer.
    """
    from aeexp import store
    from aeexp.analysis import figures as figures_lib
    from aeexp.analysis import tables

    if figures is not None:  # a folder that cannot be written fails before the table prints
        figures_lib.check_destination(figures)
    click.echo(tables.render(folder, metric, fmt, by, compare is not None))
    if figures is not None:
        runs = store.load_runs(folder)
        for path in figures_lib.write_figures(runs, metric, figures):
            click.echo(f"wrote {path}", err=True)


@main.group()
def report() -> None:
    """Write a study's REPORT.md, tables and figures from its run directories."""


@report.command("thesis")
@click.argument("defaults_dir", type=click.Path(file_okay=False, path_type=str))
@click.argument("tuned_dir", type=click.Path(file_okay=False, path_type=str))
@click.option(
    "--tuned-seeds",
    "tuned_seeds_dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="The reruns of the tuned grid's best points over other seeds (aeexp select "
    "--on-test-set), so the tuned column is a mean over seeds.",
)
@click.option(
    "--out",
    type=str,
    default="results/thesis",
    show_default=True,
    help="Folder for REPORT.md, its tables and figures.",
)
def report_thesis(defaults_dir: str, tuned_dir: str, tuned_seeds_dir: str | None, out: str) -> None:
    """Report the thesis reproduction from the thesis-optimizers and thesis-tuned sweeps.

    DEFAULTS_DIR holds the thesis-optimizers sweep (Keras 2.2 defaults, several
    seeds), TUNED_DIR the thesis-tuned sweep (the author's learning-rate grids),
    --tuned-seeds the reruns of its best points over other seeds. Each cell's
    verdict weighs the seed spread and the ten-image protocol's own spread,
    measured on the saved models.
    """
    from pathlib import Path

    from aeexp.studies import thesis

    seeds = Path(tuned_seeds_dir) if tuned_seeds_dir else None
    click.echo(thesis.write_report(Path(defaults_dir), Path(tuned_dir), Path(out), seeds))


@report.command("beta")
@click.argument("study_dir", type=click.Path(file_okay=False, path_type=str))
@click.argument("tune_dir", type=click.Path(file_okay=False, path_type=str))
@click.option(
    "--out",
    type=str,
    default="results/beta",
    show_default=True,
    help="Folder for REPORT.md, its tables and figures.",
)
def report_beta(study_dir: str, tune_dir: str, out: str) -> None:
    """Report the beta-divergence study from the beta sweep and its tuning sweep."""
    from pathlib import Path

    from aeexp.studies import beta

    click.echo(beta.write_report(Path(study_dir), Path(tune_dir), Path(out)))


@main.command()
@click.argument("tune_dir", type=click.Path(file_okay=False, path_type=str))
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    default=("ssim_mean",),
    show_default=True,
    type=click.Choice(vocab.SELECT_METRICS),
    help="What the best learning rate maximises (repeatable with --top: the union is kept).",
)
@click.option("--seeds", default="0-4", show_default=True, help="Seeds of the final sweep.")
@click.option("--name", required=True, help="Name of the final sweep (its output folder).")
@click.option(
    "--out",
    "out_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the final sweep file.",
)
@click.option(
    "--tune-sweep",
    type=click.Path(dir_okay=False),
    default=None,
    help="The tuning sweep's file: its leading comments (why this optimizer) head the output.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Keep each configuration's best K learning rates per --metric, not only the best.",
)
@click.option(
    "--on-test-set",
    is_flag=True,
    help="Select from runs scored on the TEST SET (as the thesis tuned); refused otherwise. "
    "--seeds must then avoid the selecting runs' seeds.",
)
def select(
    tune_dir: str,
    metrics: tuple[str, ...],
    seeds: str,
    name: str,
    out_file: str,
    tune_sweep: str | None,
    top: int,
    on_test_set: bool,
) -> None:
    """Write a sweep of every configuration in TUNE_DIR at its best learning rate(s).

    TUNE_DIR holds a tuning sweep evaluated on a training holdout
    (data.holdout), so the choice never sees the test set; runs without one are
    refused, as is a configuration with no completed run at any rate. The
    written sweep drops the holdout and trains each chosen configuration over
    --seeds. --on-test-set is the one exception, for re-measuring a selection
    made on the test set (the thesis's tuning): it must be given by name.
    """
    from pathlib import Path

    from aeexp import tuning

    choices = tuning.write_final_sweep(
        Path(tune_dir),
        metrics,
        tuning.parse_seeds(seeds),
        name,
        Path(out_file),
        Path(tune_sweep) if tune_sweep else None,
        top=top,
        on_test_set=on_test_set,
    )
    what = "their best learning rate" if top == 1 and len(metrics) == 1 else f"their top {top}"
    what += "" if len(metrics) == 1 else f" by each of {', '.join(metrics)}"
    where = " (selected on the test set)" if on_test_set else ""
    click.echo(f"{out_file}: {len(choices)} configurations at {what}{where}")
