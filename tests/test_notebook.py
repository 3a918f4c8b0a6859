"""The quickstart notebook (docs/tutorials/) runs top to bottom in a real kernel, on a few images.

A stale notebook (an API it calls renamed, a column it reads gone) fails here, as CI runs it.
"""

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorials" / "quickstart.ipynb"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path, mnist_path, monkeypatch):
    small = {
        "AEEXP_DATA": str(mnist_path),
        "AEEXP_QUICKSTART_TRAIN_LIMIT": "1024",
        "AEEXP_QUICKSTART_TEST_LIMIT": "200",
        "AEEXP_QUICKSTART_EPOCHS": "2",
        "AEEXP_QUICKSTART_OUT": str(tmp_path / "runs"),
    }
    for key, value in small.items():
        monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:  # what this run prints, not the committed outputs
        if cell.cell_type == "code":
            cell.outputs = []
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    # A kernel's stderr is no terminal, yet it draws bars: they stay bars, not log lines.
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert "\rquickstart-sweep: 100%|" in stderr
    assert "ssim_thesis" in text and "Welch" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # a reconstruction, the plot, one reconstruction per loss
    assert (tmp_path / "runs" / "quickstart-sweep").is_dir()
    assert not (tmp_path / "quickstart-runs").exists() and os.listdir(tmp_path) == ["runs"]


def committed() -> nbformat.NotebookNode:
    """Return the notebook as committed, with the outputs the docs site renders."""
    return nbformat.read(NOTEBOOK, as_version=4)


def test_the_committed_outputs_are_a_real_run_of_this_version():
    """Rendered outputs come from this aeexp: `make notebook` again when the version moves."""
    import aeexp

    notebook = committed()
    assert notebook.metadata["aeexp"]["executed_with"] == aeexp.__version__
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not code[0].outputs  # the install cell does nothing where aeexp is installed
    assert all(cell.outputs for cell in code[2:]), "a cell shows no output"
    outputs = [o for cell in code for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"], "a progress bar was kept"


def test_the_notebooks_thesis_cell_is_the_readmes_quickstart():
    """Its first run is `make run`'s config on all of MNIST: the same line, to the digit."""
    readme = (NOTEBOOK.parents[2] / "README.md").read_text()
    shown = readme.split("```text\n", 1)[1].split("```")[0].splitlines()[1]
    printed = "".join(
        o.get("text", "") for o in committed().cells[4].outputs if o.output_type == "stream"
    )
    assert shown.startswith("ssim_thesis") and printed.strip() == shown
