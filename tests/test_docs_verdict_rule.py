"""The verdict-rule page read against the module that applies the rule."""

import re

import docpages

from aeexp.analysis import verdicts

PAGE = "docs/explanation/verdict-rule.md"


def test_the_page_states_the_codes_margin_and_level():
    text = docpages.prose(PAGE)
    assert f"reject |d| >= {verdicts.MARGIN} SSIM" in text
    assert f"(TOST) at level {verdicts.ALPHA}" in text
    assert f"The margin, {verdicts.MARGIN} SSIM," in text
    assert f"Welch-based TOST at the {verdicts.MARGIN} margin" in text
    assert f"Welch's two-sided test at {verdicts.ALPHA} says" in text
    assert f"{1 - verdicts.ALPHA:.0%} prediction interval" in text


def test_the_page_names_exactly_the_codes_verdicts():
    """Each verdict word the code can give is a bold definition on the page, and no other."""
    defined = set(re.findall(r"\*\*([a-z ]+)\*\*", docpages.text(PAGE)))
    assert defined == set(verdicts.VERDICTS)


def test_the_docstring_and_the_page_agree_on_the_rule():
    """The module's own statement of the rule says what the page says."""
    doc = " ".join(verdicts.__doc__.split())
    text = docpages.prose(PAGE)
    for phrase in ("s * sqrt(1 + 1/n)", "n - 1 degrees of freedom", "m +- t(0.975, n-1)"):
        assert phrase in doc and phrase in text
    assert "(0.025)" in doc and "(0.025)" in text


def test_the_margin_is_below_the_smallest_published_gap():
    """The page's reason for the margin, recomputed from the published table."""
    from aeexp.registry.published import THESIS_SSIM

    rows: dict[str, list[float]] = {}
    for (decoder, _), (value, _) in THESIS_SSIM.items():
        rows.setdefault(decoder, []).append(value)
    gaps = [abs(a - b) for values in rows.values() for a in values for b in values if a != b]
    assert round(min(gaps), 3) == 0.025 and min(gaps) > verdicts.MARGIN
