"""Execute the quickstart notebook on all of MNIST and keep its outputs for the docs site.

``make notebook`` runs this. The outputs are what a reader of the rendered page sees, so they
must come from a real run of the current code: the notebook's metadata records the aeexp
version that executed it, and ``tests/test_notebook.py`` fails when that is not the installed
version. Progress bars are dropped from the kept outputs: they are animation, not results.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path
from typing import Any

import nbclient
import nbformat

import aeexp

NOTEBOOK = Path(__file__).resolve().parent / "tutorials" / "quickstart.ipynb"
# A tqdm frame ("label:  NN%|bar| n/total [...]"), and what draws and erases frames: carriage
# returns, newlines, spaces and the cursor-up of a nested bar.
FRAME = re.compile(r"[^\r\n]*: *\d+%\|[^\r\n]*")
DRAWING = re.compile(r"(\r|\n|\x1b\[A| )*")


def is_progress(output: dict[str, Any]) -> bool:
    """Return whether an output is a progress bar's frame on stderr."""
    if output.get("output_type") != "stream" or output.get("name") != "stderr":
        return False
    return DRAWING.fullmatch(FRAME.sub("", output.get("text", ""))) is not None


def without_progress(notebook: Any) -> Any:
    """Return the notebook with every progress-bar output removed."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [output for output in cell.outputs if not is_progress(output)]
    return notebook


def stamp(notebook: Any) -> Any:
    """Record the aeexp version whose run produced the outputs."""
    notebook.metadata["aeexp"] = {"executed_with": aeexp.__version__}
    return notebook


def execute(path: Path) -> None:
    """Execute the notebook in a scratch folder and write it back with its outputs."""
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as scratch:
        client = nbclient.NotebookClient(
            notebook, timeout=3600, kernel_name="python3", resources={"metadata": {"path": scratch}}
        )
        client.execute()
    nbformat.write(stamp(without_progress(notebook)), path)


def main() -> None:
    """Parse the arguments and execute the notebook."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=NOTEBOOK)
    execute(parser.parse_args().path)


if __name__ == "__main__":
    main()
