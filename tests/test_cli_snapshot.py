"""Every CLI output a user sees, byte for byte, against one golden file.

A refactor that claims to change no behaviour proves it here: the invocations below (help,
schemas, dry runs, tables, comparisons, selections, reports and the one-line errors) run
in-process on hand-made runs, and their exit codes, stdout and stderr must equal
``golden/cli-snapshot.txt``. Regenerate it on purpose only: ``AEEXP_UPDATE_GOLDEN=1 pytest
tests/test_cli_snapshot.py``, then read the diff.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from click.testing import CliRunner
from fakeruns import fake_run
from test_reports import make_study, write_tuned_grid
from test_thesis_report import write_sweeps

from aeexp import cli

GOLDEN = Path(__file__).parent / "golden" / "cli-snapshot.txt"
REPO = Path(__file__).parent.parent
BAD_CONFIGS = {
    "unknown-loss": "loss: {name: msee}\n",
    "negative-epochs": "train: {epochs: -1}\n",
    "malformed": "train: [unclosed\n",
    "negative-rate": "optimizer: {name: adam, learning_rate: -1}\n",
    "unknown-key": "trian: {epochs: 1}\n",
    "not-a-mapping": "- 1\n- 2\n",
    "beta-without-beta": "loss: {name: mse, beta: 1}\n",
    "alias": "a: &x [*x]\n",
}
BAD_SWEEPS = {
    "empty-grid": "name: s\ngrid: []\n",
    "unknown-key": "name: s\ngrid: {optimizer.nme: [adam]}\n",
    "bad-name": "name: ../up\ngrid: {seed: [0]}\n",
    "inverted-range": "name: s\ngrid: {optimizer.learning_rate: {start: 1, stop: 0, step: 0.1}}\n",
}


# One invocation per line, run in a folder holding a copy of configs/ and the inputs that
# write_inputs makes: relative paths, so that none is clipped and the snapshot is portable.
INVOCATIONS = """
--help
--version
table --help
table
compare --help
data --help
env --help
gradcheck --help
report --help
run --help
schema --help
select --help
sweep --help
tune --help
report thesis --help
report beta --help
report backends --help
configs --help
configs copy --help
schema
schema --kind sweep
schema --kind tune
sweep configs/sweeps/beta-tune.yaml --dry-run --out dry
sweep configs/sweeps/beta.yaml --dry-run --out dry
sweep configs/sweeps/thesis-optimizers.yaml --dry-run --out dry
sweep configs/sweeps/thesis-tuned.yaml --dry-run --out dry
sweep configs/sweeps/beta.yaml --dry-run --max-runs 3
sweep configs/sweeps/thesis-optimizers.yaml --dry-run --set train.epochs=2 --out dry
sweep configs/sweeps/beta-tune.yaml --dry-run --set optimizer.name=nadam --out dry
sweep configs/sweeps/thesis-tuned.yaml --dry-run --max-runs 10
sweep configs/sweeps/thesis-tuned.yaml --dry-run --rerun-failed --out runs
sweep configs/thesis/mse_relu-sigmoid_adam.yaml --dry-run
table runs/thesis-optimizers --metric ssim_thesis
table runs/thesis-optimizers --metric ssim_mean
table runs/thesis-optimizers --metric psnr_mean
table runs/thesis-optimizers --metric final_val_loss
table runs/thesis-optimizers --format csv
table runs/thesis-optimizers --format latex
table runs/thesis-optimizers --compare thesis
table runs/thesis-optimizers --by optimizer
table runs/thesis-tuned --by optimizer --format csv
table runs/thesis-optimizers --compare thesis --metric ssim_mean
table nowhere
table runs/thesis-optimizers --figures figures
table beta/study/fake --metric ssim_mean
table runs/thesis-optimizers --compare thesis --format csv
table runs/thesis-optimizers --compare thesis --format latex
compare loss.name=mse loss.name=i_div1 --root runs/thesis-tuned --metric ssim_mean --metric mse
compare loss.name=mse loss.name=i_div1 --root runs/thesis-optimizers
compare loss.name=mse loss.name=i_div1 --root runs/thesis-tuned
compare loss.name=mse loss.name=i_div2 --root runs/thesis-optimizers --metric ssim_thesis
compare loss.name=mse --root runs/thesis-optimizers --metric nonsense
compare loss.name=msee loss.name=mse --root runs/thesis-optimizers
compare runs/thesis-optimizers runs/thesis-tuned
table csv/one/thesis-cells-jax-runs.csv --compare thesis
table csv/one --by optimizer --format csv
table csv
table csv/bad/duplicated-runs.csv
table csv/bad/text-runs.csv
table csv/bad/foreign-runs.csv
table csv/absent-runs.csv
table csv/one/thesis-cells-jax-runs.csv --figures figures
compare csv/one runs/thesis-optimizers --where loss.name=mse --metric ssim_thesis
compare loss.name=mse loss.name=i_div2 --root csv/one --metric ssim_thesis
compare csv/one/thesis-cells-jax-runs.csv csv/bad/text-runs.csv
compare csv/one csv/one --where loss.name=bce
report thesis runs/thesis-optimizers runs/thesis-tuned --out reports/thesis
report thesis runs/thesis-optimizers nowhere --out reports/x
report beta beta/study/fake beta/tune/fake --out reports/beta
report beta beta/study/fake runs/thesis-optimizers --out reports/beta2
report backends runs/thesis-optimizers nowhere --out reports/b
select beta/tune/fake --name picked --out picked.yaml
select beta/tune/fake --name picked --top 2 --seeds 5-6 --out picked2.yaml
select beta/tune/fake --name picked --seeds x --out p3.yaml
select beta/tune/fake --name picked --metric ssim_thesis --out picked3.yaml
select beta/tune/fake --name picked --top 0 --out p7.yaml
report thesis runs/thesis-optimizers runs/thesis-tuned --out picked.yaml
select runs/thesis-optimizers --name p --out p4.yaml
select ontest/thesis-tuned --name p --on-test-set --seeds 5-9 --out p5.yaml
select ontest/thesis-tuned --name p --out p6.yaml
run bad/alias.yaml --out o
run bad/beta-without-beta.yaml --out o
run bad/malformed.yaml --out o
run bad/negative-epochs.yaml --out o
run bad/negative-rate.yaml --out o
run bad/not-a-mapping.yaml --out o
run bad/unknown-key.yaml --out o
run bad/unknown-loss.yaml --out o
sweep bad/sweep-bad-name.yaml --dry-run
sweep bad/sweep-empty-grid.yaml --dry-run
sweep bad/sweep-inverted-range.yaml --dry-run
sweep bad/sweep-unknown-key.yaml --dry-run
run configs/thesis/mse_relu-sigmoid_adam.yaml --seed -1
run configs/thesis/mse_relu-sigmoid_adam.yaml --bogus
run configs/thesis/mse_relu-sigmoid_adam.yaml --set
run configs/thesis/mse_relu-sigmoid_adam.yaml --set train.epochs=zero
run configs/thesis/mse_relu-sigmoid_adam.yaml --set nokey=1
run configs/thesis/mse_relu-sigmoid_adam.yaml --executor dask
run configs/thesis/mse_relu-sigmoid_adam.yaml --executor ray --cpus-per-worker 0
run configs/thesis/mse_relu-sigmoid_adam.yaml --mlflow file:///tmp/x --out o
run configs/thesis/mse_relu-sigmoid_adam.yaml --set loss.name=beta
run configs/thesis/mse_relu-sigmoid_adam.yaml --set optimizer.learning_rate=-0.5
run configs/thesis/mse_relu-sigmoid_adam.yaml --mlflow '' --out o
run absent.yaml
run
sweep configs/thesis/mse_relu-sigmoid_adam.yaml --max-group 0
nosuchcommand
schema --kind nope
data --path absent.npz
data --path bad/malformed.yaml
configs
configs copy thesis/mse_relu-sigmoid_adam copied.yaml
configs copy thesis/mse_relu-sigmoid_adam copied.yaml
configs copy sweeps/thesis-optimizers bad
configs copy thesis/mse_relu_adam x.yaml
configs copy thesis/mse_relu-relu_adagrad nowhere/x.yaml
sweep sweeps/thesis-cells-jax --dry-run --out dry
run thesis/mse_relu-sigmoid_adm
run sweeps/thesis-optimizers
sweep thesis/mse_relu-sigmoid_adam --dry-run
tune tune/thesis-cell --trials 1
"""


def invocations() -> list[list[str]]:
    """Return the snapshot's argument lists, in order."""
    return [shlex.split(line) for line in INVOCATIONS.strip().splitlines()]


def write_inputs() -> None:
    """Write, in the working folder, the configs, runs, studies and bad files invoked."""
    shutil.copytree(REPO / "configs", "configs")
    write_sweeps(Path("runs"), seeds=3)
    make_study(Path("beta"))
    write_tuned_grid(Path("ontest"), {(0.01, 0): (0.57, 0.63), (0.02, 0): (0.56, 0.60)})
    fake_run(Path("runs"), {"loss": {"name": "mse"}}, name="thesis-optimizers", ssim_thesis=0.5)
    write_runs_csvs(Path("csv"))
    Path("bad").mkdir()
    for name, text in BAD_CONFIGS.items():
        Path("bad", f"{name}.yaml").write_text(text)
    for name, text in BAD_SWEEPS.items():
        Path("bad", f"sweep-{name}.yaml").write_text(f"config: {{}}\n{text}")


def write_runs_csvs(folder: Path) -> None:
    """Write a committed runs CSV alone in a folder, and damaged ones beside it."""
    committed = (REPO / "results/backends/thesis-cells-jax-runs.csv").read_text()
    header, first, *_ = committed.splitlines()
    (folder / "one").mkdir(parents=True)
    (folder / "bad").mkdir()
    (folder / "one" / "thesis-cells-jax-runs.csv").write_text(committed)
    (folder / "a-runs.csv").write_text(committed)
    (folder / "runs.csv").write_text(committed)
    (folder / "bad" / "duplicated-runs.csv").write_text(f"{header}\n{first}\n{first}\n")
    text = first.split(",")
    text[header.split(",").index("ssim_mean")] = "high"
    (folder / "bad" / "text-runs.csv").write_text(f"{header}\n{','.join(text)}\n")
    (folder / "bad" / "foreign-runs.csv").write_text("name,score\nx,1\n")


def transcript() -> str:
    """Run every invocation and return its exit code, stdout and stderr."""
    runner = CliRunner()
    parts = []
    for args in invocations():
        result = runner.invoke(cli.main, args, env={"COLUMNS": "100"})
        text = (
            f"$ aeexp {shlex.join(args)}\n[exit {result.exit_code}]\n"
            f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            text += f"--- uncaught\n{type(result.exception).__name__}\n"
        parts.append(text)
    return "\n".join(parts)


def test_every_cli_output_matches_the_golden_snapshot(tmp_path, monkeypatch, mnist_path):
    monkeypatch.setenv("AEEXP_DATA", str(mnist_path))
    monkeypatch.chdir(tmp_path)
    write_inputs()
    text = transcript().replace(str(tmp_path), "<TMP>")
    assert len(invocations()) >= 88
    if os.environ.get("AEEXP_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
