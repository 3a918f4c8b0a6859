"""The thesis report's verdict section: the rule's numbers per cell, verdicts.csv, counts.

Rendering only: the rule is :mod:`aeexp.analysis.verdicts`, the statistics it judges are
:mod:`aeexp.analysis.cells`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from aeexp.analysis import cells as cells_lib
from aeexp.analysis import tables, verdicts
from aeexp.analysis.protocol import VARIANTS

VERDICTS_FILE = "verdicts.csv"


def number(value: float, digits: int = 3, sign: bool = False) -> str:
    """Return ``value`` to ``digits`` decimals (signed if asked), ``n/a`` for NaN."""
    if math.isnan(value):
        return "n/a"
    value = round(value, digits) + 0.0  # + 0.0: a gap that rounds to zero shows no sign of -0
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def p_value(value: float) -> str:
    """Return a p-value to three decimals, or ``< 0.001``."""
    if math.isnan(value):
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def protocol_sd_text(estimate: cells_lib.Estimate) -> str:
    """Return the protocol sd and how many models and picks it pools, or why it is absent."""
    noise = estimate.protocol
    if not noise.n_models:
        return "not measured (no saved model)"
    return f"{noise.sd:.3f} ({noise.n_models} models x {noise.occurrences} picks)"


def estimates_table(cells: Sequence[cells_lib.Cell]) -> str:
    """Return one row per cell, protocol variant and statistic: the rule's numbers."""
    header = [
        "cell (thesis optimizer)",
        "published",
        "variant",
        "statistic",
        "ours: mean [95% t interval] (n)",
        "seed sd",
        "gap (ours - published)",
        "95% prediction interval, one more draw",
        f"TOST p (margin {verdicts.MARGIN:g})",
        "smallest margin that passes",
        "verdict",
        "protocol sd (context)",
        "thesis pick minus mean pick",
    ]
    body = []
    for cell in cells:
        for variant in VARIANTS:
            for statistic in cells_lib.STATISTICS:
                lead = [f"{cell.label} ({cell.optimizer_label})", f"{cell.published:.3f}", variant]
                e = cell.estimate(statistic, variant)
                if e is None:
                    body.append([*lead, statistic, "no completed run", *[""] * 8])
                    continue
                j = e.judgement
                body.append(
                    [
                        *lead,
                        f"{statistic}: {e.label}, {cells_lib.seed_span(e.seeds)}",
                        e.interval.text() + f" ({e.n})",
                        number(j.sd),
                        number(j.gap, sign=True),
                        f"[{number(j.pi_lo)}, {number(j.pi_hi)}]",
                        p_value(j.tost_p),
                        number(j.min_margin),
                        j.verdict,
                        protocol_sd_text(e),
                        number(e.protocol.first_offset, sign=True),
                    ]
                )
    return tables.to_markdown(header, body)


def _judged(e: cells_lib.Estimate) -> str:
    """Return one estimate's verdict and the numbers that decide it, in one phrase."""
    j = e.judgement
    if j.verdict == verdicts.NOT_TESTABLE:
        return f"{e.variant}: not testable ({e.n} value(s) without spread)"
    return (
        f"{e.variant}: {j.verdict} ({e.statistic}, {e.label}: {e.interval.text()} over {e.n} "
        f"seeds, gap {number(j.gap, sign=True)}, prediction interval [{number(j.pi_lo)}, "
        f"{number(j.pi_hi)}], TOST p {p_value(j.tost_p)}, passes from margin "
        f"{number(j.min_margin)})"
    )


def verdict_line(cell: cells_lib.Cell) -> str:
    """Return the cell's primary verdicts (gray, then viridis) with their deciding numbers."""
    head = f"**{cell.label}** ({cell.optimizer_label}, published {cell.published:.3f})"
    found = [cell.estimate(cells_lib.PRIMARY, variant) for variant in VARIANTS]
    parts = [_judged(e) for e in found if e is not None]
    return f"- {head}: " + ("; ".join(parts) if parts else "no completed run of the grid") + "."


def primary_judgements(
    cells: Sequence[cells_lib.Cell], statistic: str = cells_lib.PRIMARY
) -> list[tuple[cells_lib.Cell, str, verdicts.Judgement]]:
    """Return (cell, variant, judgement) of ``statistic``: the family Holm adjusts over."""
    family = []
    for cell in cells:
        for variant in VARIANTS:
            e = cell.estimate(statistic, variant)
            if e is not None:
                family.append((cell, variant, e.judgement))
    return family


VERDICT_FIELDS = (
    "cell",
    "variant",
    "statistic",
    "n",
    "mean",
    "sd",
    "published",
    "gap",
    "pi_lo",
    "pi_hi",
    "tost_p",
    "min_margin",
    "verdict",
    "diff_p",
    "holm_verdict",
)


def verdict_rows(cells: Sequence[cells_lib.Cell]) -> list[dict[str, object]]:
    """Return verdicts.csv's rows: cell, variant, statistic, the rule's numbers, Holm's verdict."""
    rows = []
    for statistic in cells_lib.STATISTICS:
        family = primary_judgements(cells, statistic)
        holm = verdicts.holm_verdicts([j for _, _, j in family])
        for (cell, variant, j), adjusted in zip(family, holm, strict=True):
            row = {"cell": cell.label, "variant": variant, "statistic": statistic}
            row |= {k: v for k, v in j.row().items() if k in VERDICT_FIELDS}
            rows.append({**row, "holm_verdict": adjusted})
    return rows


def verdicts_markdown(rows: Sequence[dict[str, object]]) -> str:
    """Return the primary verdicts as one table: from verdicts.csv's rows, read or computed.

    The README's table is this output, pasted; a test holds the two equal.
    """

    def pick(cell: str, variant: str, statistic: str) -> dict[str, object]:
        found = (
            r
            for r in rows
            if r["cell"] == cell and r["variant"] == variant and r["statistic"] == statistic
        )
        return next(found, {"verdict": "no completed run"})

    def num(row: dict[str, object], key: str, sign: bool = False) -> str:
        return number(float(row[key]), sign=sign)  # type: ignore[arg-type]

    header = [
        "cell",
        "published",
        "procedure, gray: mean (n)",
        "gap",
        "95% prediction interval",
        "TOST p",
        "passes from margin",
        "verdict, gray",
        "verdict, viridis",
        "verdict, gray, defaults",
    ]
    body = []
    for cell in dict.fromkeys(str(r["cell"]) for r in rows):
        gray = pick(cell, "gray", cells_lib.PRIMARY)
        if "mean" not in gray:
            body.append([cell, *[""] * 6, str(gray["verdict"]), "", ""])
            continue
        body.append(
            [
                cell,
                num(gray, "published"),
                f"{num(gray, 'mean')} ({gray['n']})",
                num(gray, "gap", sign=True),
                f"[{num(gray, 'pi_lo')}, {num(gray, 'pi_hi')}]",
                p_value(float(gray["tost_p"])),  # type: ignore[arg-type]
                num(gray, "min_margin"),
                str(gray["verdict"]),
                str(pick(cell, "viridis", cells_lib.PRIMARY)["verdict"]),
                str(pick(cell, "gray", cells_lib.SECONDARY)["verdict"]),
            ]
        )
    return tables.to_markdown(header, body)


def counts_lines(cells: Sequence[cells_lib.Cell]) -> list[str]:
    """Return the headline counts, primary statistic: per variant, then after Holm."""
    family = primary_judgements(cells)
    holm = verdicts.holm_verdicts([j for _, _, j in family])
    lines = []
    for variant in VARIANTS:
        found = [j.verdict for _, v, j in family if v == variant]
        role = "primary" if variant == cells_lib.PRIMARY_VARIANT else "secondary"
        lines.append(f"- {verdicts.counts(found)}, of {len(found)} under {variant} ({role}).")
    lines.append(
        f"- With both tests Holm-adjusted over the {len(family)} cell-variant tests: "
        f"{verdicts.counts(holm)}."
    )
    return lines
