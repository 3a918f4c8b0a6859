"""The docs' words on the committed backends comparison, from its verdicts.csv."""

from pathlib import Path

import docpages
import pandas

REPO = Path(__file__).resolve().parents[1]
VERDICTS = REPO / "results" / "backends" / "verdicts.csv"


def test_the_docs_state_what_the_backends_report_found():
    frame = pandas.read_csv(VERDICTS)
    readme = docpages.prose("docs/results/backends.md")
    found = frame["verdict"].value_counts()
    holm = frame[frame.columns[-1]].value_counts()
    counts = tuple(int(found.get(v, 0)) for v in ("equivalent", "different", "inconclusive"))
    assert counts == (12, 0, 12) and len(frame) == 24
    assert tuple(int(holm.get(v, 0)) for v in ("equivalent", "different", "inconclusive")) == counts
    assert "12 equivalent, 0 different, 12 inconclusive of 24" in readme
    undecided = frame[frame["verdict"] == "inconclusive"]
    assert set(undecided["cell"].str.extract(r"(E_I1|E_I2)")[0]) == {"E_I1", "E_I2"}
    assert (undecided["diff_p"] >= 0.2).all() and "every Welch p is 0.2 or more" in readme


def test_the_home_page_counts_cells_as_the_csv_does():
    """A cell counts as equivalent when all its SSIM metrics are; 3 of 6, and none different."""
    frame = pandas.read_csv(VERDICTS)
    by_cell = frame.groupby("cell")["verdict"].agg(set)
    equivalent = sum(verdicts == {"equivalent"} for verdicts in by_cell)
    different = sum("different" in verdicts for verdicts in by_cell)
    undecided = len(by_cell) - equivalent - different
    home = docpages.prose("docs/index.md")
    assert (len(by_cell), equivalent, different, undecided) == (6, 3, 0, 3)
    assert f"equivalent within 0.02 in {equivalent} of the {len(by_cell)} cells" in home
    assert f"different in none; five seeds a side cannot decide the other {undecided}" in home
