"""Gradient-check results as a terminal table, JSON, or the Markdown report."""

from __future__ import annotations

import json
import math
from typing import Any

from aeexp.errors import UserError
from aeexp.gradcheck.core import REL_FLOOR, RTOL, CheckResult
from aeexp.gradcheck.crossentropy import CLASSES, FEATURES, L2, SAMPLES
from aeexp.gradcheck.entropy import BETA, IMAGES, LAMBDA, NEURONS
from aeexp.gradcheck.thesis import BATCH, HIDDEN, INPUTS, MARGIN
from aeexp.registry.vocab import EPSILON

FORMATS = ("table", "json", "md")


_COLUMNS = ("id", "source", "formula", "max_abs_error", "max_rel_error", "verdict", "note")

MD_HEADER = f"""\
# Gradient checks: hand-derived gradients against automatic differentiation

Every closed-form gradient in the reference documents is evaluated in NumPy exactly as the
document writes it, and compared with the gradient that TensorFlow's `GradientTape` computes in
float64 for the function the formula claims to differentiate. Inputs are random but seeded:
the thesis's autoencoder with {INPUTS} inputs, {HIDDEN} code units and bias units, on a batch
of {BATCH} samples whose targets lie in [0.05, 1] (the logs need them positive) and whose
pre-activations stay at least {MARGIN} from the ReLU kink, with live and dead units in both
layers; the entropy loss on {IMAGES} images of {NEURONS} neurons with beta = {BETA} and
lambda = {LAMBDA}; a softmax classifier with {CLASSES} classes, {FEATURES} features,
{SAMPLES} samples and lambda = {L2}. Losses are sums, as the derivations write them, not
means, and are never clipped. Errors are taken entry by entry over the entries a formula covers
(for a case-split formula, only those in its case): abs = |closed - autodiff|,
rel = abs / max(|closed|, |autodiff|, {REL_FLOOR:g}). A formula **agrees** when the largest
relative error is below {RTOL:g} and **disagrees** otherwise; float64 round-off leaves about
1e-15, a wrong formula is off by order one. The thesis's verdicts use the activations its
derivation works with: the sigmoid 1/(1+exp(-u)) (eq. 65 uses f' = f(1 - f)) and ReLU
max(u, eps), eps = {EPSILON:g} (section 2.2 adopts it so that eq. 58 has no zero denominator; the
code's clip of the reconstruction to [eps, 1] has the same effect at the output). The note
reports the other reading, 1/(1+exp(u)) as eq. 28 prints it or max(u, 0) as the code has it,
and which reading the derivation matches. Where a formula disagrees, the note gives the form
that agrees, checked the same way.

Notation: ut = ũ (decoder total input), Wt = W̃, xh = x̂, ft = f̃ (decoder activation),
delta3 = δ⁽³⁾, delta2 = δ⁽²⁾; x_0 = y_0 = 1 are the bias units; yh = ŷ.
"""


def _number(value: float) -> str:
    """Format an error for a table."""
    return f"{value:.2e}" if math.isfinite(value) else "inf"


def _render_table(results: list[CheckResult]) -> str:
    """Return aligned plain text: one line per check, then the notes."""
    head = ("id", "verdict", "max_abs_error", "max_rel_error", "source", "formula")
    rows = [
        (r.id, r.verdict, _number(r.max_abs_error), _number(r.max_rel_error), r.source, r.formula)
        for r in results
    ]
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head) - 1)]

    def line(row: tuple[str, ...]) -> str:
        padded = (cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True))
        return "  ".join([*padded, row[-1]]).rstrip()

    notes = [f"{r.id}: {r.note}" for r in results if r.note]
    summary = _summary(results)
    return "\n".join([line(head), *map(line, rows), "", summary, "", "notes:", *notes]) + "\n"


def _summary(results: list[CheckResult]) -> str:
    """Return the one-line count of verdicts."""
    agree = sum(r.verdict == "agrees" for r in results)
    return (
        f"{len(results)} checks: {agree} agree, {len(results) - agree} disagree "
        f"(rel error < {RTOL:g} in float64)"
    )


def _json_value(value: Any) -> Any:
    """Return ``value`` with a non-finite float as None, which JSON can carry."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _render_json(results: list[CheckResult]) -> str:
    """Return a JSON list of objects with exactly the result's keys."""
    items = [{k: _json_value(v) for k, v in r.to_dict().items()} for r in results]
    return json.dumps(items, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _cell(text: str, code: bool = False) -> str:
    """Escape text for a Markdown table cell."""
    text = text.replace("|", "\\|")
    return f"`{text}`" if code else text


def _render_md(results: list[CheckResult]) -> str:
    """Return a Markdown report: the method, a summary, and one table row per check."""
    lines = [
        MD_HEADER,
        _summary(results) + ".",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
    ]
    for r in results:
        cells = (
            r.id,
            _cell(r.source),
            _cell(r.formula, code=True),
            _number(r.max_abs_error),
            _number(r.max_rel_error),
            f"**{r.verdict}**",
            _cell(r.note),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_RENDERERS = {"table": _render_table, "json": _render_json, "md": _render_md}


def render(results: list[CheckResult], fmt: str) -> str:
    """Render results as ``table`` (terminal text), ``json`` or ``md`` (Markdown report)."""
    if fmt not in _RENDERERS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _RENDERERS[fmt](results)
