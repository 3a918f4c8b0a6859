"""Datasets as registry entries: each is read offline, named in its runs, tables and reports.

Every check that can be is parametrised over the registry, so a third dataset is tested by
adding its entry; Fashion-MNIST's own files are not on these machines, so its runs here read
synthetic IDX files in its published layout.
"""

import json
import sys
import types

import numpy as np
import pytest
from click.testing import CliRunner
from fakeruns import fake_run
from idxfiles import write_idx_folder

from aeexp import cli
from aeexp.config.run import RunConfig
from aeexp.data import sources
from aeexp.errors import UserError
from aeexp.registry.datasets import DATASETS, DEFAULT_DATASET
from aeexp.store import rundir as store

OTHERS = [name for name in DATASETS if name != DEFAULT_DATASET]


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch, tmp_path):
    """No test sees the caller's data variables or Keras cache."""
    for entry in DATASETS.values():
        monkeypatch.delenv(entry.env_var, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


def synthetic(n_train: int = 128, n_test: int = 40, seed: int = 0) -> dict[str, np.ndarray]:
    """Random uint8 images whose test labels hold every class in order (the thesis SSIM's need)."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def one_line_error(result) -> str:
    """Return the one ``aeexp: error:`` line of a command that exited 2 with nothing else."""
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("aeexp: error:") and result.stdout == ""
    return line


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_reads_its_idx_folder_offline(tmp_path, name):
    arrays = synthetic()
    folder = write_idx_folder(tmp_path / name, arrays, gz=True)
    images = sources.load_images(folder, test_limit=20, name=name)
    np.testing.assert_array_equal(images.x_train, arrays["x_train"])
    np.testing.assert_array_equal(images.y_test, arrays["y_test"][:20])
    assert sources.resolve_source(folder, name).dataset == name


@pytest.mark.parametrize("name", DATASETS)
def test_each_dataset_reads_only_its_own_variable(tmp_path, monkeypatch, name):
    folder = write_idx_folder(tmp_path / "idx", synthetic())
    for other, entry in DATASETS.items():
        if other != name:
            monkeypatch.setenv(entry.env_var, str(folder))
    assert sources.resolve_source(None, name).kind == "keras"  # another's variable: not read
    monkeypatch.setenv(DATASETS[name].env_var, str(folder))
    source = sources.resolve_source(None, name)
    assert (source.kind, source.origin) == ("idx", DATASETS[name].env_var)


@pytest.mark.parametrize("name", DATASETS)
def test_a_data_folder_holding_the_datasets_npz_means_that_npz(tmp_path, name):
    np.savez(tmp_path / DATASETS[name].npz_name, **synthetic())
    assert sources.resolve_source(tmp_path, name).kind == "npz"
    for other in set(DATASETS) - {name}:  # another dataset's npz is not this one's data
        assert sources.resolve_source(tmp_path, other).kind == "idx"


@pytest.mark.parametrize("name", DATASETS)
def test_keras_branch_calls_the_datasets_own_loader(monkeypatch, name):
    arrays = synthetic()
    loaded = (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    loaders = {
        entry.keras_loader: types.SimpleNamespace(load_data=lambda: pytest.fail("wrong loader"))
        for entry in DATASETS.values()
    }
    loaders[DATASETS[name].keras_loader] = types.SimpleNamespace(load_data=lambda: loaded)
    keras = types.SimpleNamespace(
        datasets=types.SimpleNamespace(**loaders),
        backend=types.SimpleNamespace(backend=lambda: "tensorflow"),
    )
    monkeypatch.setitem(sys.modules, "keras", keras)
    images = sources.load_images(name=name)
    np.testing.assert_array_equal(images.x_test, arrays["x_test"])


@pytest.mark.parametrize("name", OTHERS)
def test_keras_cache_of_idx_files_is_hashed(tmp_path, name):
    """Keras keeps Fashion-MNIST as four gzipped IDX files in a folder, not one npz."""
    cache = sources.keras_cache_path(name)
    assert cache.parent == tmp_path / "keras-home" / "datasets"
    source = sources.resolve_source(None, name)
    assert sources.sha256_of(source) is None and "absent" in source.describe()
    cache.parent.mkdir(parents=True)
    write_idx_folder(cache, synthetic(), gz=True)
    as_folder = sources.resolve_source(cache, name)
    assert "present" in source.describe()
    assert sources.sha256_of(source) == sources.sha256_of(as_folder) is not None


def test_the_run_id_names_the_dataset_only_when_it_is_not_mnist():
    mnist = RunConfig()
    assert mnist.data.name == DEFAULT_DATASET
    # The id every MNIST run had before data.name existed (tests/test_committed_ids.py holds
    # every committed one): the default is left out of the hash.
    assert RunConfig.model_validate({"data": {"name": DEFAULT_DATASET}}).run_id == mnist.run_id
    ids = {RunConfig.model_validate({"data": {"name": name}}).run_id for name in DATASETS}
    assert len(ids) == len(DATASETS)


def test_an_unknown_dataset_is_one_line_with_the_closest_name(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data: {name: fashon_mnist}\n")
    result = invoke("run", config, "--out", tmp_path)
    line = one_line_error(result)
    assert "data.name" in line and "fashion_mnist" in line


def test_aeexp_data_names_the_dataset(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", synthetic())
    for name in DATASETS:
        result = invoke("data", "--name", name, "--path", folder)
        assert result.exit_code == 0, result.output
        assert f"dataset: {name} ({DATASETS[name].title})" in result.output.splitlines()


@pytest.fixture(scope="module")
def fashion_runs(tmp_path_factory):
    """A two-run Fashion-MNIST sweep on synthetic IDX files: its output folder and sweep."""
    tmp = tmp_path_factory.mktemp("fashion")
    folder = write_idx_folder(tmp / "idx", synthetic())
    sweep = tmp / "sweep.yaml"
    sweep.write_text(
        "name: fash\n"
        f"config: {{data: {{name: fashion_mnist, path: {folder}}}, "
        "train: {epochs: 1, batch_size: 64}}\n"
        "grid: {loss.name: [mse, i_div1]}\n"
    )
    out = tmp / "out"
    result = invoke("sweep", sweep, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out / "fash"


def test_a_run_records_its_dataset(fashion_runs):
    for run_dir in (p for p in fashion_runs.iterdir() if (p / store.METRICS).is_file()):
        metrics = json.loads((run_dir / store.METRICS).read_text())
        assert metrics["status"] == "completed"
        assert metrics["data"]["name"] == "fashion_mnist"
        assert "name: fashion_mnist" in (run_dir / store.CONFIG).read_text()


@pytest.mark.parametrize("where", ["folder", "runs.csv"])
def test_tables_name_the_dataset_and_refuse_the_thesis_comparison(fashion_runs, where):
    runs = fashion_runs if where == "folder" else fashion_runs / "runs.csv"
    for fmt, caption in (("md", "Dataset: Fashion-MNIST"), ("latex", "% Dataset: Fashion-MNIST")):
        result = invoke("table", runs, "--format", fmt)
        assert result.exit_code == 0, result.output
        assert result.output.startswith(caption)
    result = invoke("table", runs, "--format", "csv")
    assert result.output.splitlines()[1].startswith("fashion_mnist,")
    line = one_line_error(invoke("table", runs, "--compare", "thesis"))
    assert "needs runs on mnist" in line and "fashion_mnist" in line


def test_the_runs_csv_records_the_dataset(fashion_runs):
    header = (fashion_runs / "runs.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["run_id", "status", "loss.name", "data.name"]


def test_a_table_of_two_datasets_is_refused(tmp_path):
    for name in ("mnist", "fashion_mnist"):
        fake_run(tmp_path, {"data": {"name": name}}, name="mixed", ssim_thesis=0.5)
    line = one_line_error(invoke("table", tmp_path / "mixed", "--metric", "ssim_thesis"))
    assert "2 datasets (fashion_mnist, mnist)" in line


def test_the_thesis_report_refuses_another_dataset(fashion_runs, tmp_path):
    line = one_line_error(
        invoke("report", "thesis", fashion_runs, fashion_runs, "--out", tmp_path / "r")
    )
    assert "the thesis report needs runs on mnist" in line


def test_a_dataset_keras_does_not_ship_reads_its_path_or_variable_only(tmp_path, monkeypatch):
    from aeexp.registry.datasets import DatasetEntry

    toy = DatasetEntry(title="Toy", npz_name="toy.npz", env_var="AEEXP_DATA_TOY")
    monkeypatch.setitem(DATASETS, "toy", toy)
    monkeypatch.delenv("AEEXP_DATA_TOY", raising=False)
    with pytest.raises(UserError) as refused:
        sources.resolve_source(None, "toy")
    assert "Keras has no loader for Toy" in str(refused.value)
    assert "AEEXP_DATA_TOY" in str(refused.value)
    np.savez(tmp_path / "toy.npz", **synthetic())
    monkeypatch.setenv("AEEXP_DATA_TOY", str(tmp_path))
    assert sources.load_images(name="toy").x_test.shape == (40, 28, 28)
