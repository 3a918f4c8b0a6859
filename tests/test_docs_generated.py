"""The pages the docs site generates from the code hold every key and name the code has."""

import sys

import docpages
import pytest

pytest.importorskip("mkdocs_gen_files")
sys.path.insert(0, str(docpages.DOCS))
gen_pages = pytest.importorskip("gen_pages")

from aeexp import schema  # noqa: E402
from aeexp.registry import losses, optimizers  # noqa: E402


def test_the_run_config_page_lists_every_key_loss_and_optimizer():
    page = gen_pages.run_config_page()
    sections = {"data", "model", "train", "output", "loss", "optimizer"}
    for key in schema.dotted_keys(schema.run_config_schema()):
        if key not in sections and not key.startswith(("loss", "optimizer")):
            assert f"| `{key}` |" in page, key
    for name in losses.LOSSES:
        assert f"| `{name}` |" in page, name
    for name, spec in optimizers.OPTIMIZERS.items():
        row = next(line for line in page.splitlines() if f"| `{name}` |" in line)
        for keyword, default in spec.defaults.items():
            assert (
                f"`{keyword}` (`{str(default).lower()}`" in row
                or f"`{keyword}` (`{default}`" in row
            )


@pytest.mark.parametrize("kind", ["sweep", "tune"])
def test_the_file_pages_list_every_top_level_key(kind):
    spec = schema.sweep_schema() if kind == "sweep" else schema.tune_schema()
    page = gen_pages.sweep_page() if kind == "sweep" else gen_pages.search_page()
    for key in spec["properties"]:
        assert f"| `{key}` |" in page, key


def test_a_table_cell_cannot_break_its_row_or_become_html():
    assert gen_pages._cell("<out>/<name>/ | x") == "&lt;out&gt;/&lt;name&gt;/ \\| x"


def test_a_reports_links_point_at_the_sites_copies(monkeypatch, tmp_path):
    written = {}

    class Sink:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            written[self.name] = data

    monkeypatch.setattr(gen_pages.mkdocs_gen_files, "open", lambda name, mode="r": Sink(name))
    page = gen_pages.report_page("thesis")
    assert "](thesis/figures/ssim_thesis_bars.png)" in page
    assert "](../explanation/ssim-protocol.md)" in page
    assert "results/thesis/figures/ssim_thesis_bars.png" in written
    assert "../../" not in page
