"""Pages made at build time (mkdocs-gen-files), so that they cannot drift from what they show.

The config references are rendered from the JSON Schemas that ``aeexp schema`` prints (which
``tests/test_schema.py`` holds to the registries), and the study reports are the committed
``results/*/REPORT.md`` with their figures, links rewritten for the site.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import mkdocs_gen_files

from aeexp import schema

ROOT = Path(__file__).resolve().parents[1]
REPORTS = {
    "thesis": "results/thesis-report.md",
    "beta": "results/beta-report.md",
    "backends": "results/backends-report.md",
}
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def _json(value: Any) -> str:
    """Return a schema value as a short inline code span."""
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    """Return text safe inside a Markdown table cell: no HTML tags, no column breaks."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _branch(branch: dict[str, Any]) -> str:
    """Return one alternative of a ``oneOf``: its names, its keys or its type."""
    if "enum" in branch:
        return "one of " + ", ".join(_json(v) for v in branch["enum"])
    keys = branch.get("properties", {})
    if branch.get("type") == "object" and keys:
        return (
            "a mapping of "
            + ", ".join(f"`{key}`" for key in list(keys)[:6])
            + (", ..." if len(keys) > 6 else "")
        )
    return {"object": "a mapping", "array": "a list"}.get(branch.get("type", ""), "a value")


def _types(prop: dict[str, Any]) -> str:
    """Return a property's type, a union written out."""
    if "enum" in prop:
        return "one of " + ", ".join(_json(v) for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_types(p) for p in prop["anyOf"])
    if "oneOf" in prop:
        return "; or ".join(_branch(p) for p in prop["oneOf"])
    kind = prop.get("type", "any")
    return " or ".join(kind) if isinstance(kind, list) else kind


def _limits(prop: dict[str, Any]) -> str:
    """Return a property's range, from whichever branch carries one."""
    for branch in [prop, *prop.get("anyOf", [])]:
        low, high = branch.get("minimum"), branch.get("maximum")
        if low is not None and high is not None and -low == high > 1e300:
            return "any finite number"
        if low is not None or high is not None:
            open_low = "(" if branch.get("exclusiveMinimum") else "["
            return f"{open_low}{low}, {high if high is None or high < 1e300 else 'max float'}]"
        if "maxLength" in branch:
            return f"at most {branch['maxLength']} characters"
    return ""


def _row(key: str, prop: dict[str, Any]) -> str:
    """Return one table row: key, type, default, range, description."""
    default = _json(prop["default"]) if "default" in prop else ""
    cells = [f"`{key}`", _types(prop), default, _limits(prop), prop.get("description", "")]
    cells = [_cell(cell) for cell in cells]
    return "| " + " | ".join(cells) + " |"


def _section_rows(run: dict[str, Any]) -> list[str]:
    """Return the rows of the run config's plain keys, sections flattened to dotted keys."""
    rows = []
    for key, prop in run["properties"].items():
        if "$ref" in prop:
            definition = run["definitions"][prop["$ref"].rsplit("/", 1)[1]]
            rows += [_row(f"{key}.{sub}", p) for sub, p in definition["properties"].items()]
        elif "oneOf" not in prop:
            rows.append(_row(key, prop))
    return rows


def _branch_table(title: str, branches: list[dict[str, Any]]) -> list[str]:
    """Return one table of a loss's or optimizer's branches: its name, keywords, defaults."""
    lines = [f"| {title} | name | keywords (default, range) |", "|---|---|---|"]
    for branch in branches:
        props = dict(branch["properties"])
        name = props.pop("name")["enum"][0]
        words = [
            f"`{key}` ({_json(p['default']) if 'default' in p else 'required'}"
            + (f", {_limits(p)}" if _limits(p) else "")
            + ")"
            for key, p in props.items()
            if key != "lr"
        ]
        lines.append(f"| {branch['title']} | `{name}` | {', '.join(words) or 'none'} |")
    return lines


def run_config_page() -> str:
    """Return the run-config reference, rendered from ``aeexp schema --kind run``."""
    run = schema.run_config_schema()
    header = ["| key | type | default | range | meaning |", "|---|---|---|---|---|"]
    parts = [
        "# Run config",
        "",
        "Generated from the JSON Schema that `aeexp schema --kind run` prints. Every key is",
        "optional; the defaults are the thesis's set-up. `--set dotted.key=value` overrides any",
        "key; a value is read as YAML. How each key is used:",
        "[First run](../tutorials/first-run.md), [Losses](losses.md),",
        "[Offline data](../how-to/offline-data.md).",
        "",
        "## Keys",
        "",
        *header,
        *_section_rows(run),
        "",
        "## Losses",
        "",
        *_branch_table("loss", run["properties"]["loss"]["oneOf"]),
        "",
        "## Optimizers",
        "",
        "Defaults are Keras 2.2's (the thesis's), not Keras 3's. Every optimizer accepts `lr` as",
        "an alias of `learning_rate` (not both).",
        "",
        *_branch_table("optimizer", run["properties"]["optimizer"]["oneOf"]),
        "",
    ]
    return "\n".join(parts)


def _top_level_page(title: str, kind: str, intro: str) -> str:
    """Return a sweep or search file's reference: its top-level keys and their meaning."""
    spec = schema.sweep_schema() if kind == "sweep" else schema.tune_schema()
    definitions = spec.get("definitions", {})
    rows = [
        _row(key, definitions[prop["$ref"].rsplit("/", 1)[1]] if "$ref" in prop else prop)
        for key, prop in spec["properties"].items()
    ]
    required = ", ".join(f"`{key}`" for key in spec.get("required", [])) or "none"
    return "\n".join(
        [
            f"# {title}",
            "",
            intro,
            "",
            f"Required keys: {required}.",
            "",
            "| key | type | default | range | meaning |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def sweep_page() -> str:
    """Return the sweep-file reference."""
    intro = (
        "Generated from `aeexp schema --kind sweep`. `config` and each grid key are dotted"
        " run-config keys ([Run config](run-config.md)); a grid value is a list, or an inclusive"
        " range `{start, stop, step}`, and `grid` may be a list of such mappings (the union of"
        " their products). A walk-through: [First sweep](../tutorials/first-sweep.md)."
    )
    return _top_level_page("Sweep file", "sweep", intro)


def search_page() -> str:
    """Return the search-file reference, with its space forms."""
    intro = (
        "Generated from `aeexp schema --kind tune`. A search file is a sweep file plus what"
        " `aeexp tune` searches: each `search` key is a dotted run-config key drawn from"
        " `{log_uniform: [low, high]}`, `{uniform: [low, high]}` or `{choice: [...]}`. How to use"
        " it: [Tune hyperparameters](../how-to/tune.md)."
    )
    return _top_level_page("Search file", "tune", intro)


def _site_link(study: str, target: str) -> str:
    """Return where a report's relative link points on the site, copying files it names."""
    if target.startswith(("http://", "https://", "mailto:")):
        return target
    source = (ROOT / "results" / study / target).resolve()
    docs = ROOT / "docs"
    if source.is_relative_to(docs):
        return "../" + source.relative_to(docs).as_posix()
    copy = f"results/{study}/{target}"
    with mkdocs_gen_files.open(copy, "wb") as handle:
        handle.write(source.read_bytes())
    return f"{study}/{target}"


def report_page(study: str) -> str:
    """Return a committed study report with its links pointing at the site's copies."""
    text = (ROOT / "results" / study / "REPORT.md").read_text()
    return LINK.sub(lambda m: f"]({_site_link(study, m.group(1))}{m.group(2) or ''})", text)


def write_pages() -> None:
    """Write every generated page into the site being built."""
    pages = {
        "reference/run-config.md": run_config_page(),
        "reference/sweep-file.md": sweep_page(),
        "reference/search-file.md": search_page(),
        "results/gradcheck.md": (ROOT / "results" / "gradcheck.md").read_text(),
    }
    pages.update({page: report_page(study) for study, page in REPORTS.items()})
    for page, text in pages.items():
        with mkdocs_gen_files.open(page, "w") as handle:
            handle.write(text)


if __name__ == "<run_path>":  # how mkdocs-gen-files runs this file (runpy.run_path)
    write_pages()
