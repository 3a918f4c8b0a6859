"""JSON Schemas of the run config, the sweep file and the search file, for YAML editors.

The run config's schema comes from the pydantic models, with the loss and optimizer
sections written out from their registries: each loss and each optimizer is one branch
naming exactly the keywords it takes, with their ranges and Keras 2.2 defaults, so an
editor completes and checks them as strictly as ``aeexp`` does. Committed copies ship in
``aeexp/schemas/``; configs point at them with a ``yaml-language-server`` modeline.

The dialect is draft-04 on purpose: aeexp's validator is strict, so ``epochs: 5.0`` is refused,
and only draft-04 says so too ("integer": a number without a fraction or exponent part).
Draft-06 and later count 5.0 as an integer. Hence ``enum`` of one name rather than ``const``,
and ``exclusiveMinimum`` as a flag on ``minimum``.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from typing import Any

from aeexp.config.run import NAME_MAX_LENGTH, RunConfig
from aeexp.registry import losses, optimizers

DRAFT = "http://json-schema.org/draft-04/schema#"
# "$" also matches before a final newline in Python's re (jsonschema's), not in JavaScript's:
# "no character follows" ends a pattern at the very end in both, as aeexp's checks do.
_END = r"(?![\s\S])"
# aeexp refuses a path holding NUL (no file has such a name).
_NO_NUL = {"pattern": rf"^[^\x00]*{_END}"}
# The loss and optimizer used when a config names none.
_DEFAULT_LOSS = RunConfig.model_fields["loss"].default.name
_DEFAULT_OPTIMIZER = RunConfig.model_fields["optimizer"].default.name


def _keyword(key: str, default: Any) -> dict[str, Any]:
    """Return one optimizer keyword's schema: its type and the range check_value enforces."""
    if key in optimizers.BOOLEAN_KEYWORDS:
        return {"type": "boolean", "default": default}
    low, high, low_inclusive = optimizers.KEYWORD_RANGES[key]
    schema: dict[str, Any] = {"type": "number", "default": default, "minimum": low}
    if not low_inclusive:
        schema["exclusiveMinimum"] = True  # draft-04: a flag on minimum
    # check_value refuses infinities: the largest float is the bound YAML's .inf exceeds.
    schema["maximum"] = sys.float_info.max if math.isinf(high) else high
    return schema


def _finite(schema: dict[str, Any]) -> dict[str, Any]:
    """Bound an unbounded number by the largest float, as aeexp refuses YAML's .inf."""
    if schema.get("type") != "number":
        return schema
    return {"minimum": -sys.float_info.max, "maximum": sys.float_info.max, **schema}


def _branch(name: str, default: str, properties: dict[str, Any], title: str) -> dict[str, Any]:
    """Return one registry entry's branch: its name, keywords, nothing else."""
    branch = {
        "title": title,
        "type": "object",
        "properties": {"name": {"enum": [name]}, **properties},
        "additionalProperties": False,
    }
    return branch | _required([] if name == default else ["name"])


def _required(keys: list[str]) -> dict[str, Any]:
    """Return a ``required`` clause, or none: draft-04 refuses an empty list."""
    return {"required": keys} if keys else {}


def optimizer_schema() -> dict[str, Any]:
    """Return the optimizer section: one branch per optimizer with its Keras 2.2 keywords."""
    branches = []
    for name, spec in optimizers.OPTIMIZERS.items():
        defaults = optimizers.resolved_params(name, {})
        properties = {key: _keyword(key, value) for key, value in defaults.items()}
        for alias, key in optimizers.ALIASES.items():
            properties[alias] = {**properties[key], "description": f"alias of {key}"}
        branch = _branch(name, _DEFAULT_OPTIMIZER, properties, spec.label)
        branches.append(branch | _not_both_alias_and_keyword())
    return {"description": "An optimizer and its keywords (Keras 2.2 defaults).", "oneOf": branches}


def _not_both_alias_and_keyword() -> dict[str, Any]:
    """Return the clause refusing a keyword given with its alias (lr with learning_rate)."""
    pairs = [{"required": [alias, key]} for alias, key in optimizers.ALIASES.items()]
    return {"not": {"anyOf": pairs}} if pairs else {}


def loss_schema() -> dict[str, Any]:
    """Return the loss section: one branch per loss with the parameters it takes."""
    branches = []
    for name, spec in losses.LOSSES.items():
        declared = {p.name: _finite(p.schema) for p in spec.params}
        properties = {key: declared[key] for key in spec.parameters}
        branch = _branch(name, _DEFAULT_LOSS, properties, spec.label)
        branches.append(branch | _required(branch.get("required", []) + sorted(spec.required)))
    return {"description": "A reconstruction loss and its parameters.", "oneOf": branches}


def run_config_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft-04) of a run config file."""
    schema = RunConfig.model_json_schema(ref_template="#/definitions/{model}")
    defs = schema.pop("$defs")  # pydantic's name for them whatever the template
    for section in ("loss", "optimizer"):
        defs.pop(schema["properties"][section]["$ref"].rsplit("/", 1)[1])
    defs["DataConfig"]["properties"]["path"]["anyOf"][0] |= _NO_NUL
    defs["OutputConfig"]["properties"]["dir"] |= _NO_NUL
    schema["properties"]["name"] |= {
        "pattern": rf"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]{{0,{NAME_MAX_LENGTH - 1}}}{_END}",
        "description": "one plain folder name under output.dir (default: the file's name)",
    }
    schema["properties"]["loss"] = loss_schema()
    schema["properties"]["optimizer"] = optimizer_schema()
    return {
        "$schema": DRAFT,
        "title": "aeexp run config",
        **schema,
        "additionalProperties": False,
        "definitions": defs,
    }


def _leaf(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a property's schema without what describes a default (a grid has none)."""
    return {k: v for k, v in schema.items() if k not in ("default", "title")}


def dotted_keys(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return every key a sweep may set, dotted, with the schema of one value of it.

    Derived from the run schema: a section as a whole (``optimizer``), each of its keys
    (``train.epochs``), and for the loss and the optimizer each keyword any branch takes
    (``optimizer.beta_1``: the union of the branches' schemas for it).
    """
    keys: dict[str, dict[str, Any]] = {}
    definitions = run["definitions"]
    for key, prop in run["properties"].items():
        keys[key] = _leaf(prop)
        if "$ref" in prop:
            section = definitions[prop["$ref"].rsplit("/", 1)[-1]]
            for sub, schema in section["properties"].items():
                keys[f"{key}.{sub}"] = _leaf(schema)
        for branch in prop.get("oneOf", []):
            for sub, schema in branch["properties"].items():
                found = keys.setdefault(f"{key}.{sub}", {"anyOf": []})["anyOf"]
                if _leaf(schema) not in found:
                    found.append(_leaf(schema))
    return keys


def _grid_values(item: dict[str, Any]) -> dict[str, Any]:
    """Return what a grid key takes: a list of values, or an inclusive numeric range."""
    listed = {"type": "array", "minItems": 1, "items": item}
    ranged = {
        "type": "object",
        "properties": {k: {"type": "number"} for k in ("start", "stop", "step")},
        "required": ["start", "stop", "step"],
        "additionalProperties": False,
    }
    return {"oneOf": [listed, ranged]}


def _one_alias(keys: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Return the rule that no mapping sets an optimizer keyword and its alias together."""
    pairs = [
        {"required": [f"optimizer.{alias}", f"optimizer.{key}"]}
        for alias, key in optimizers.ALIASES.items()
        if f"optimizer.{alias}" in keys
    ]
    return {"not": {"anyOf": pairs}}


def sweep_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft-04) of a sweep file; its keys are the run schema's."""
    run = run_config_schema()
    keys = dotted_keys(run)
    block = {
        "type": "object",
        "minProperties": 1,
        "properties": {key: _grid_values(item) for key, item in keys.items()},
        "additionalProperties": False,
        **_one_alias(keys),
    }
    config = {
        "type": "object",
        "description": "dotted run-config keys and values",
        "properties": keys,
        "additionalProperties": False,
        **_one_alias(keys),
    }
    return {
        "$schema": DRAFT,
        "title": "aeexp sweep",
        "type": "object",
        "definitions": run["definitions"],
        "properties": {
            "name": {**_leaf(run["properties"]["name"]), "description": "<out>/<name>/"},
            "base": {"type": "string", "description": "a run config, relative to this file"},
            "config": config,
            "grid": {"oneOf": [block, {"type": "array", "minItems": 1, "items": block}]},
        },
        "required": ["grid"],
        "additionalProperties": False,
    }


def _space() -> dict[str, Any]:
    """Return what a searched key takes: one of the search spaces of ``aeexp.tuning.space``."""
    bounds = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    plain = {"type": ["number", "string", "boolean", "null"]}
    kinds = {
        "log_uniform": {**bounds, "description": "[low, high], low above zero; drawn in log"},
        "uniform": {**bounds, "description": "[low, high]"},
        "choice": {"type": "array", "minItems": 1, "items": plain, "uniqueItems": True},
    }
    return {
        "oneOf": [
            {
                "type": "object",
                "properties": {kind: schema},
                "required": [kind],
                "additionalProperties": False,
            }
            for kind, schema in kinds.items()
        ]
    }


def _settings(model: Any, description: str) -> dict[str, Any]:
    """Return a search file's settings section: a mapping, or (sampler, pruner) a name alone."""
    properties: dict[str, Any] = {}
    for key, field in model.model_fields.items():
        if key == "name":
            properties[key] = {"enum": list(field.annotation.__args__), "default": field.default}
            continue
        bounds = {}
        for rule in field.metadata:  # pydantic keeps Field(ge=..., le=...) here
            bounds |= {"minimum": rule.ge} if hasattr(rule, "ge") else {}
            bounds |= {"maximum": rule.le} if hasattr(rule, "le") else {}
        kind = "integer" if field.annotation is int else "number"
        default = {} if field.default is None else {"default": field.default}
        properties[key] = {"type": kind, **bounds, **default}
    mapping = {"type": "object", "properties": properties, "additionalProperties": False}
    if "name" not in properties:  # confirm: a mapping only
        return {"description": description, **mapping}
    names = properties["name"]["enum"]
    return {"description": description, "oneOf": [{"enum": names}, mapping]}


def tune_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft-04) of a search file: a sweep file plus what to search."""
    from aeexp.config.run import MAX_SEED
    from aeexp.registry import vocab
    from aeexp.tuning.search import ConfirmSpec, PrunerSpec, SamplerSpec

    sweep = sweep_schema()
    keys = dotted_keys(run_config_schema())
    definitions = dict(sweep["definitions"])
    definitions["space"] = _space()
    definitions["search"] = {
        "type": "object",
        "description": "dotted run-config keys and where their values are drawn from",
        "properties": {key: {"$ref": "#/definitions/space"} for key in keys},
        "additionalProperties": False,
    }
    search = {"$ref": "#/definitions/search"}
    grid = sweep["properties"]["grid"]
    block = copy.deepcopy(grid["oneOf"][0])
    block["properties"]["search"] = search  # a block's own spaces, over the top-level ones
    names = list(vocab.METRICS)
    metric = {
        "oneOf": [
            {"enum": names},
            {
                "type": "object",
                "properties": {
                    "name": {"enum": names, "default": "ssim_mean"},
                    "direction": {"enum": ["maximize", "minimize"]},
                },
                "additionalProperties": False,
            },
        ]
    }
    properties = dict(sweep["properties"])
    properties |= {
        "grid": {"oneOf": [block, {"type": "array", "minItems": 1, "items": block}]},
        "search": search,
        "metric": metric,
        "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED, "default": 0},
        "sampler": _settings(SamplerSpec, "Which Optuna sampler proposes trials."),
        "pruner": _settings(PrunerSpec, "Which Optuna pruner stops trials early."),
        "confirm": _settings(
            ConfirmSpec,
            "Train each cell's best trials again on more seeds before naming its best.",
        ),
    }
    return {
        **{k: v for k, v in sweep.items() if k not in ("properties", "required")},
        "title": "aeexp search (aeexp tune)",
        "definitions": definitions,
        "properties": properties,
    }


def render(kind: str = "run") -> str:
    """Return the schema of ``kind`` (``run``, ``sweep`` or ``tune``) as indented JSON."""
    builders = {"run": run_config_schema, "sweep": sweep_schema, "tune": tune_schema}
    return json.dumps(builders[kind](), indent=2) + "\n"
