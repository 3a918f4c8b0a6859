"""The pages the claims tests read: the README and the docs site's sources."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def text(*pages: str) -> str:
    """Return the pages' text joined, each named relative to the repository."""
    return "\n".join((REPO / page).read_text() for page in pages)


def prose(*pages: str) -> str:
    """Return the pages with line breaks folded, so phrases match across lines."""
    return " ".join(text(*pages).split())
