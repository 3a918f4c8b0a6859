"""docs/tutorials/quickstart.ipynb runs top to bottom in a real Jupyter kernel, on a few MNIST images.

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
    assert "ssim_thesis" in text and "Welch" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # a reconstruction, the plot, one reconstruction per loss
    assert (tmp_path / "runs" / "quickstart-sweep").is_dir()
    assert not (tmp_path / "quickstart-runs").exists() and os.listdir(tmp_path) == ["runs"]
