"""The commands: each parses its arguments, makes one library call, prints and exits.

Output goes through ``echo``: stdout that cannot be written (a full disk, a closed pipe) is
one line and exit code 2, as every other mistake of the environment.

Library modules are imported inside the commands, so ``--help`` never loads TensorFlow.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from aeexp._version import __version__
from aeexp.cli.errors import OneLineErrorGroup, echo
from aeexp.cli.options import (
    EXECUTOR,
    FILE,
    FOLDER,
    MAX_GROUP,
    OUT,
    OUT_FILE,
    OUT_FOLDER,
    RUNS,
    TRACKING,
    CheckedCount,
    max_runs,
    overrides,
    report_out,
)
from aeexp.env.extras import install_hint
from aeexp.errors import UserError
from aeexp.registry import vocab
from aeexp.registry.datasets import DATASETS, DEFAULT_DATASET


@click.group(cls=OneLineErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__)
def main() -> None:
    """Reproduce 'Autoencoder with New Loss Functions' (Haruguchi, 2019) and go beyond it.

    Train the thesis's 784-32-784 MNIST autoencoder with MSE, I-divergence,
    Itakura-Saito and beta-divergence losses, judge it by SSIM (the thesis's
    ten-image protocol and the whole test set), and sweep grids of configs.
    """


def _warn_if_unlocked() -> None:
    """Print one line to stderr when a package that decides the numbers is not the lock's."""
    from aeexp.env import pinned

    line = pinned.warning()
    if line is not None:
        click.echo(f"aeexp: {line}", err=True)


@main.command()
@click.argument("config", type=FILE)
@overrides("Override a config key, e.g. --set train.epochs=5 (repeatable).")
@click.option("--seed", type=CheckedCount("seed"), default=None, help="Override the seed.")
@OUT
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--force", is_flag=True, help="Train again even if this run is complete.")
@EXECUTOR
@TRACKING
def run(config: str, quiet: bool, **options: Any) -> None:
    """Train and evaluate one configuration from a YAML CONFIG file.

    Writes <out>/<name>/<run-id>/ with config.yaml, history.csv, metrics.json,
    loss_history.png, reconstructions.png and model.keras. A run that is already
    complete is not redone unless --force. Exits 1 if the run diverged or failed.
    """
    from aeexp import api

    _warn_if_unlocked()
    result = api.run(config, progress=not quiet, **options)
    done = "" if result.trained_now else ": already complete (use --force to train again)"
    echo(f"{result.run_dir}{done}")
    echo(result.headline)
    if result.status != vocab.Status.COMPLETED:
        sys.exit(1)


@main.command()
@click.argument("sweep_file", metavar="SWEEP", type=FILE)
@overrides("Override a key of the base config for every run (repeatable).")
@OUT
@click.option("--dry-run", is_flag=True, help="List the runs and which are done; train nothing.")
@MAX_GROUP
@max_runs("Refuse a grid of more points than this (counted before it is expanded).")
@click.option("--rerun-failed", is_flag=True, help="Train runs that failed before again.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@EXECUTOR
@TRACKING
def sweep(sweep_file: str, dry_run: bool, quiet: bool, **options: Any) -> None:
    """Train every point of a grid in SWEEP, skipping runs already complete.

    Runs that share data, epochs, batch size and seed train together in
    lock-step groups, here or on a Ray cluster (--executor ray). Interrupted at
    any moment, the same command resumes: complete runs are kept and never
    redone. Two sweeps on one output folder never train a run twice. Writes
    <out>/<name>/runs.csv. Exits 1 at the end if any run diverged or failed.
    """
    from aeexp import api

    if dry_run:
        planned = api.plan(sweep_file, options["overrides"], options["out"], options["max_runs"])
        echo(api.describe_plan(planned))
        return
    _warn_if_unlocked()
    outcome = api.sweep(sweep_file, progress=not quiet, **options)
    echo(outcome.summary())
    bad = outcome.problems()
    if bad:
        names = ", ".join(f"{run_id} ({status})" for run_id, status in bad)
        click.echo(f"aeexp: {len(bad)} run(s) diverged or failed: {names}", err=True)
        sys.exit(1)


@main.command()
@click.argument("search_file", metavar="SEARCH", type=FILE)
@click.option(
    "--trials",
    type=CheckedCount("trials"),
    required=True,
    help="Trials per cell in all, those done before included: rerun with more to extend.",
)
@overrides("Override a key of the base config for every trial (repeatable).")
@OUT
@click.option(
    "--seed",
    type=CheckedCount("seed"),
    default=None,
    help="The sampler's seed (default: the search file's seed, else 0).",
)
@click.option(
    "--batch",
    type=CheckedCount("batch"),
    default=None,
    help="Trials asked per cell at a time and trained in lock-step [default: a quarter of "
    "--trials, at most --max-group shared among the cells].",
)
@MAX_GROUP
@max_runs("Refuse more cells x trials than this.")
@click.option(
    "--top",
    type=CheckedCount("top"),
    default=1,
    show_default=True,
    help="Points per cell in the written sweep file: its best K completed trials.",
)
@click.option("--seeds", default="0-4", show_default=True, help="Seeds of the written sweep.")
@click.option(
    "--sweep-out",
    type=OUT_FILE,
    default=None,
    help="Where to write the sweep of the best points [default: <out>/<name>/best.yaml].",
)
@click.option(
    "--name",
    "sweep_name",
    default=None,
    help="Name of the written sweep (its output folder) [default: <name>-best].",
)
@click.option(
    "--on-test-set",
    is_flag=True,
    help="Score trials on the TEST SET (no data.holdout); refused otherwise. --seeds must "
    "then avoid the trials' seeds.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@EXECUTOR
@TRACKING
def tune(search_file: str, quiet: bool, **options: Any) -> None:
    """Search hyperparameters with Optuna, cell by cell, pruning bad trials early.

    SEARCH is a sweep file (name, base, config, grid) plus 'search', the spaces
    ({log_uniform: [low, high]}, {uniform: [low, high]}, {choice: [...]}), and
    optionally metric (default ssim_mean), seed, sampler (tpe, random) and pruner
    (median, percentile, none). Each grid point is a cell with its own Optuna study;
    a grid block may carry its own 'search'. Trials are scored on data.holdout,
    never the test set unless --on-test-set.

    Trials are asked in batches and trained in lock-step, here or on Ray; the pruner
    stops a trial at an epoch boundary when its holdout validation loss falls behind
    the cell's finished trials (status 'pruned', history kept). Every trial is a run
    directory under <out>/<name>/ with runs.csv beside it; the studies live in
    <out>/<name>/tune.db, so an interrupted tune resumes where it stopped. Ends by
    drawing tune.png and writing a sweep of each cell's best --top points over
    --seeds, ready for 'aeexp sweep'. Needs Optuna: pip install 'optuna>=4,<5'.
    """
    from aeexp import api

    _warn_if_unlocked()
    outcome = api.tune(search_file, progress=not quiet, **options)
    echo(outcome.summary())


@main.command()
@click.argument("sides", nargs=-1, required=True, metavar="SIDE SIDE [SIDE ...]")
@click.option(
    "--root",
    type=RUNS,
    default=None,
    help="The folder (or runs CSV) whose runs key=value filters select from.",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    help="A metric to compare (repeatable; default: the SSIMs, PSNR, MSE, validation loss).",
)
@click.option(
    "--where",
    default=None,
    metavar="KEY=VALUE[,...]",
    help="Keep only the runs that meet this filter on every side, e.g. one cell of two sweeps.",
)
def compare(
    sides: tuple[str, ...], root: Path | None, metrics: tuple[str, ...], where: str | None
) -> None:
    """Put groups of runs side by side: what differs in their configs, and every metric.

    Each SIDE is a folder (a run, a sweep, a tree of them), a runs CSV (a sweep's
    runs.csv, a report's committed <sweep>-runs.csv) or a filter over the runs under
    --root, e.g. loss.name=mse,model.decoder_activation=sigmoid. Each
    metric shows each side's mean, 95% t interval, standard deviation and count
    over its completed runs, and each side's difference from the first with
    Welch's test (Holm-corrected over the table) when both have two runs or more.
    --where keeps the runs that meet a filter on every side.
    """
    from aeexp.api import compare

    chosen = metrics or vocab.COMPARE_METRICS
    echo(compare(*sides, root=root, metrics=chosen, where=where).render())


@main.command()
@click.argument("folder", metavar="RUNS", type=RUNS)
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
    type=OUT_FOLDER,
    default=None,
    metavar="DIR",
    help="Also write the metric's bar chart and each cell's best loss history to DIR.",
)
def table(
    folder: Path, metric: str, fmt: str, compare: str | None, by: str, figures: str | None
) -> None:
    """Print the SSIM table of the runs under a folder, or in a runs CSV, in the thesis's layout.

    RUNS is a folder of run directories, or a sweep's runs.csv such as a report's
    committed results/thesis/thesis-tuned-runs.csv (or a folder holding just one and
    no run directory): it needs no trained run at hand, but has no loss histories
    for --figures.

    Rows are decoder activations (ReLU-ReLU, ReLU-Sigmoid), columns losses
    (MSE, E_I1, E_I2, then any others). Each cell is the best configuration
    by mean over seeds (highest, or lowest for mse and final_val_loss):
    mean +- std (n seeds) and its optimizer.
    """
    from aeexp.analysis import figures as figures_lib
    from aeexp.analysis import tables
    from aeexp.store import rundir as store
    from aeexp.store import runs_csv

    if figures is not None and runs_csv.locate(folder) is not None:
        raise UserError(
            f"--figures needs run directories: {folder} is a runs CSV, without loss histories"
        )
    undone = (
        contextlib.nullcontext() if figures is None else store.created_folders_undone(Path(figures))
    )
    with undone:  # a refused table leaves no --figures folder it made
        if figures is not None:  # a folder that cannot be written fails before the table prints
            figures_lib.check_destination(figures)
        echo(tables.render(folder, metric, fmt, by, compare is not None))
        if figures is not None:
            for path in figures_lib.write_figures(store.load_runs(folder), metric, figures):
                click.echo(f"wrote {path}", err=True)


@main.command()
@click.argument("tune_dir", type=FOLDER)
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
    type=OUT_FILE,
    help="Where to write the final sweep file.",
)
@click.option(
    "--tune-sweep",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The tuning sweep's file: its leading comments (why this optimizer) head the output.",
)
@click.option(
    "--top",
    type=CheckedCount("top"),
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
    tune_dir: Path, metrics: tuple[str, ...], seeds: str, out_file: str, **options: Any
) -> None:
    """Write a sweep of every configuration in TUNE_DIR at its best learning rate(s).

    TUNE_DIR holds a tuning sweep evaluated on a training holdout
    (data.holdout), so the choice never sees the test set; runs without one are
    refused, as is a configuration with no completed run at any rate. The
    written sweep drops the holdout and trains each chosen configuration over
    --seeds. --on-test-set is the one exception, for re-measuring a selection
    made on the test set (the thesis's tuning): it must be given by name.
    """
    from aeexp.analysis import selection

    seed_list = selection.parse_seeds(seeds)
    choices = selection.write_final_sweep(
        tune_dir, metrics, seed_list, out=Path(out_file), **options
    )
    summary = selection.describe_selection(choices, metrics, options["top"], options["on_test_set"])
    echo(f"{out_file}: {summary}")


def _report(write: Callable[[Path, Path, Path], Path], first: Path, second: Path, out: str) -> None:
    """Write a study's report and print its path; a refused one leaves no folder it made."""
    from aeexp.store import rundir as store

    with store.created_folders_undone(Path(out)):
        written = write(first, second, Path(out))
    echo(written)


@main.group()
def report() -> None:
    """Write a study's REPORT.md, tables and figures from its run directories."""


@report.command("thesis")
@click.argument("defaults_dir", type=FOLDER)
@click.argument("tuned_dir", type=FOLDER)
@report_out("results/thesis")
def report_thesis(defaults_dir: Path, tuned_dir: Path, out: str) -> None:
    """Report the thesis reproduction from the thesis-optimizers and thesis-tuned sweeps.

    DEFAULTS_DIR holds the thesis-optimizers sweep (Keras 2.2 defaults, several
    seeds), TUNED_DIR the thesis-tuned sweep (the author's learning-rate grids on
    several seeds). Each seed's best grid point is one draw of the author's
    procedure; each cell and protocol variant is judged equivalent, different or
    inconclusive by a rule fixed beforehand (REPORT.md states it), also written
    to verdicts.csv.
    """
    from aeexp.studies import thesis

    _report(thesis.write_report, defaults_dir, tuned_dir, out)


@report.command("beta")
@click.argument("study_dir", type=FOLDER)
@click.argument("tune_dir", type=FOLDER)
@report_out("results/beta")
def report_beta(study_dir: Path, tune_dir: Path, out: str) -> None:
    """Report the beta-divergence study from the beta sweep and its tuning sweep."""
    from aeexp.studies import beta

    _report(beta.write_report, study_dir, tune_dir, out)


@report.command("backends")
@click.argument("tensorflow_dir", type=FOLDER)
@click.argument("jax_dir", type=FOLDER)
@click.option(
    "--paired",
    nargs=2,
    type=FOLDER,
    default=None,
    metavar="TF_DIR JAX_DIR",
    help="Also judge runs trained with train.init: shared seed by seed (paired TOST), "
    "as the report's first table.",
)
@report_out("results/backends")
def report_backends(
    tensorflow_dir: Path, jax_dir: Path, paired: tuple[Path, Path] | None, out: str
) -> None:
    """Compare runs trained on JAX with the same configurations trained on TensorFlow.

    JAX_DIR holds runs with train.backend: jax (make backends: the thesis's six
    cells, five seeds); TENSORFLOW_DIR holds TensorFlow runs, among them the same
    configurations (thesis-optimizers). Per cell and SSIM metric, the JAX seeds
    against the TensorFlow seeds are judged equivalent, different or inconclusive
    by the reproduction report's rule (TOST at 0.02 SSIM, Welch), Holm-corrected;
    REPORT.md and verdicts.csv go to --out. --paired adds the same cells trained
    with train.init: shared on both engines, judged on per-seed differences
    (paired-verdicts.csv, the sweeps' runs CSVs under paired/).
    """
    from aeexp.studies import backends

    def write(first: Path, second: Path, out_dir: Path) -> Path:
        return backends.write_report(first, second, out_dir, paired or None)

    _report(write, tensorflow_dir, jax_dir, out)


@main.group(invoke_without_command=True)
@click.pass_context
def configs(ctx: click.Context) -> None:
    """List the thesis's configs, sweeps and search files that ship with aeexp.

    Each is named by its path under the clone's configs/ without .yaml; a
    command that takes a file takes the name too, and a file at the path given
    always wins over a name:

    \b
      aeexp run thesis/mse_relu-sigmoid_adam
      aeexp sweep sweeps/thesis-optimizers
      aeexp tune tune/thesis-cells --trials 8
      aeexp configs copy thesis/mse_relu-sigmoid_adam mine.yaml
    """  # noqa: D301 (\b, a backspace, is click's mark for lines it must not rewrap)
    from aeexp.config import bundled

    if ctx.invoked_subcommand is None:
        echo(bundled.render())


@configs.command("copy")
@click.argument("name")
@click.argument("dest", type=click.Path(path_type=str))
def configs_copy(name: str, dest: str) -> None:
    """Write a copy of the bundled NAME to DEST, a file or a folder, to edit and run.

    Never overwrites a file. The copy's first line points editors with the YAML
    language server at this installation's schema.
    """
    from aeexp.config import bundled

    echo(f"wrote {bundled.copy(name, dest)}")


@main.command()
@click.option(
    "--kind",
    type=click.Choice(["run", "sweep", "tune"]),
    default="run",
    show_default=True,
    help="The run config's schema, the sweep file's, or the search file's (aeexp tune).",
)
def schema(kind: str) -> None:
    """Print the JSON Schema of a run config (or a sweep or search file) for YAML editors.

    The configs under configs/ (and their copies from aeexp configs copy) point
    at the copies in aeexp/schemas/ with a '# yaml-language-server: $schema=...'
    first line, so editors with the YAML language server complete keys and flag
    mistakes as you type.
    """
    from aeexp import schema as schema_lib

    echo(schema_lib.render(kind), nl=False)


@main.command()
def env() -> None:
    """Show the versions that decide a run's numbers and the devices each backend sees."""
    from aeexp import api

    echo("\n".join(api.environment()))


@main.command()
@click.option(
    "--name",
    type=click.Choice(tuple(DATASETS)),
    default=DEFAULT_DATASET,
    show_default=True,
    help="The dataset (config key data.name).",
)
@click.option(
    "--path",
    type=str,
    default=None,
    help="A .npz file or IDX folder (default: the dataset's environment variable, "
    "$AEEXP_DATA for MNIST, else Keras's cache).",
)
def data(name: str, path: str | None) -> None:
    """Show which dataset and source a run would use, its shapes and sha256."""
    from aeexp.data import sources as data_lib

    echo("\n".join(f"{key}: {value}" for key, value in data_lib.summary(path, name).items()))


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
    the verdicts. Needs TensorFlow (its autodiff is the reference).
    """
    from aeexp.env import backend

    if not backend.installed("tensorflow"):
        raise UserError(f"gradcheck needs TensorFlow's autodiff: {install_hint('tensorflow')}")
    from aeexp import gradcheck as gradcheck_lib

    echo(gradcheck_lib.render(gradcheck_lib.run_checks(), fmt))
