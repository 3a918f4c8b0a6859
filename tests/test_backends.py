"""Choosing the backend: run ids, one backend per sweep and per process, a JAX run end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_cli import assert_one_line_error

from aeexp import cli
from aeexp.config import run as config
from aeexp.config import sweep as plan
from aeexp.env import backend
from aeexp.errors import UserError
from aeexp.store import rundir as store

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "thesis" / "mse_relu-sigmoid_adam.yaml"


def test_tensorflow_run_ids_are_those_from_before_the_backend_key():
    # Pinned before train.backend existed: every committed TensorFlow run keeps its id.
    assert config.validate({}).run_id == "a7e9608ebd"
    assert config.validate({"train": {"backend": "tensorflow"}}).run_id == "a7e9608ebd"
    jax_run = config.validate({"train": {"backend": "jax"}})
    assert jax_run.run_id != "a7e9608ebd"
    # A JAX run's id survives its config.yaml.
    assert config.validate(jax_run.resolved()).run_id == jax_run.run_id


def test_backends_never_share_a_group():
    runs = [config.validate({"train": {"backend": b}}) for b in backend.BACKENDS]
    assert len({plan.group_key(run) for run in runs}) == len(backend.BACKENDS)


def test_an_unknown_backend_names_the_valid_ones_and_the_closest(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train: {backend: jaxx}\n")
    assert_one_line_error(
        CliRunner().invoke(cli.main, ["run", str(cfg)]),
        f"train.backend: unknown backend 'jaxx' (valid: {', '.join(sorted(backend.BACKENDS))}); "
        "did you mean 'jax'?",
    )


def test_a_sweep_mixing_backends_is_refused_on_one_line(tmp_path):
    sweep = tmp_path / "mixed.yaml"
    sweep.write_text("name: mixed\ngrid:\n  train.backend: [tensorflow, jax]\n  seed: [0, 1]\n")
    result = CliRunner().invoke(cli.main, ["sweep", str(sweep), "--dry-run"])
    assert_one_line_error(result, "mixes train.backend values (jax, tensorflow)")
    # One sweep per backend is fine, and --set chooses it for a whole sweep.
    thesis = REPO / "configs" / "sweeps" / "thesis-optimizers.yaml"
    arguments = ["--dry-run", "--set", "train.backend=jax", "--out", str(tmp_path)]
    one = CliRunner().invoke(cli.main, ["sweep", str(thesis), *arguments])
    assert one.exit_code == 0 and "150 runs: 0 done, 150 to train" in one.output


def test_a_missing_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(backend, "installed", lambda name: name != "jax")
    with pytest.raises(
        UserError, match=r"needs jax, which is not installed: pip install 'jax>=0\.4\.30'"
    ):
        backend.use("jax")


def test_a_jax_run_in_a_process_whose_keras_runs_tensorflow_is_one_line(tmp_path, mnist_path):
    pytest.importorskip("jax")
    import aeexp

    backend.import_keras()  # this session's Keras: TensorFlow
    assert backend.loaded_keras_backend() == "tensorflow"
    raw = {"train": {"backend": "jax"}, "data": {"path": str(mnist_path)}}
    with pytest.raises(UserError, match="already imported Keras with the tensorflow backend"):
        aeexp.run(raw, out=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_env_lists_each_backend():
    result = CliRunner().invoke(cli.main, ["env"])
    assert result.exit_code == 0
    assert "backends: " in result.output and "(default tensorflow)" in result.output
    (listed,) = [line for line in result.output.splitlines() if line.startswith("backends: ")]
    for name in backend.BACKENDS:  # each installed one is listed (here both are)
        assert f" {name}," in listed or f" {name} (" in listed


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory, mnist_path):
    """One tiny JAX run through the real command, in a process of its own."""
    pytest.importorskip("jax")
    out = tmp_path_factory.mktemp("jax-run")
    command = [
        sys.executable, "-m", "aeexp", "run", str(CONFIG),
        "--set", "train.backend=jax", "--set", "train.epochs=2", "--set", "data.train_limit=600",
        "--set", "data.test_limit=300", "--set", f"data.path={mnist_path}", "--out", str(out),
        "--quiet", "--tensorboard",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""  # no TensorFlow start-up notices, no JAX warnings
    (run_dir,) = [p for p in (out / "mse_relu-sigmoid_adam").iterdir() if p.is_dir()]
    return run_dir


def test_a_jax_run_records_its_backend_and_versions(jax_run):
    metrics = json.loads((jax_run / store.METRICS).read_text())
    assert metrics["status"] == "completed" and 0 < metrics["ssim_mean"] < 1
    versions = metrics["versions"]
    assert versions["keras_backend"] == "jax" and "jax" in versions and "jaxlib" in versions
    assert "tensorflow" not in versions
    cfg = config.resolve(jax_run / store.CONFIG)
    assert cfg.train.backend == "jax" and cfg.run_id == metrics["run_id"] == jax_run.name
    assert (jax_run / "tensorboard").is_dir() and (jax_run / store.MODEL).is_file()


def test_tables_and_reports_read_jax_runs_like_any_other(jax_run):
    result = CliRunner().invoke(cli.main, ["table", str(jax_run.parent), "--metric", "ssim_mean"])
    assert result.exit_code == 0, result.output
    assert "mse" in result.output.lower()
