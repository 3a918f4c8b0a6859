"""The README's words on the committed backends comparison, from its verdicts.csv."""

from pathlib import Path

import pandas

REPO = Path(__file__).resolve().parents[1]
VERDICTS = REPO / "results" / "backends" / "verdicts.csv"


def test_the_readme_states_what_the_backends_report_found():
    frame = pandas.read_csv(VERDICTS)
    readme = " ".join((REPO / "README.md").read_text().split())
    found = frame["verdict"].value_counts()
    holm = frame[frame.columns[-1]].value_counts()
    counts = tuple(int(found.get(v, 0)) for v in ("equivalent", "different", "inconclusive"))
    assert counts == (12, 0, 12) and len(frame) == 24
    assert tuple(int(holm.get(v, 0)) for v in ("equivalent", "different", "inconclusive")) == counts
    assert "12 equivalent, 0 different, 12 inconclusive of 24" in readme
    undecided = frame[frame["verdict"] == "inconclusive"]
    assert set(undecided["cell"].str.extract(r"(E_I1|E_I2)")[0]) == {"E_I1", "E_I2"}
    assert (undecided["diff_p"] >= 0.2).all() and "every Welch p is 0.2 or more" in readme
