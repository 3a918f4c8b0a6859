"""JSON Schemas of the run config and the sweep file, for editors that validate YAML.

The run config's schema comes from the pydantic models, with the loss and optimizer
sections written out from their registries: each loss and each optimizer is one branch
naming exactly the keywords it takes, with their ranges and Keras 2.2 defaults, so an
editor completes and checks them as strictly as ``aeexp`` does. Committed copies ship in
``aeexp/schemas/``; configs point at them with a ``yaml-language-server`` modeline.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from aeexp import losses, optimizers
from aeexp.config import NAME_MAX_LENGTH, RunConfig

DRAFT = "http://json-schema.org/draft-07/schema#"
RUN_SCHEMA_FILE = "run-config.schema.json"
SWEEP_SCHEMA_FILE = "sweep.schema.json"
# The loss and optimizer used when a config names none.
_DEFAULT_LOSS = RunConfig.model_fields["loss"].default.name
_DEFAULT_OPTIMIZER = RunConfig.model_fields["optimizer"].default.name


def _keyword(key: str, default: Any) -> dict[str, Any]:
    if key in optimizers.BOOLEAN_KEYWORDS:
        return {"type": "boolean", "default": default}
    low, high, low_inclusive = optimizers.KEYWORD_RANGES[key]
    schema: dict[str, Any] = {"type": "number", "default": default}
    schema["minimum" if low_inclusive else "exclusiveMinimum"] = low
    if not math.isinf(high):
        schema["maximum"] = high
    return schema


def _branch(name: str, default: str, properties: dict[str, Any], title: str) -> dict[str, Any]:
    """Return one registry entry's branch: its name, keywords, nothing else."""
    return {
        "title": title,
        "type": "object",
        "properties": {"name": {"const": name}, **properties},
        "required": [] if name == default else ["name"],
        "additionalProperties": False,
    }


def optimizer_schema() -> dict[str, Any]:
    """Return the optimizer section: one branch per optimizer with its Keras 2.2 keywords."""
    branches = []
    for name, spec in optimizers.OPTIMIZERS.items():
        defaults = optimizers.resolved_params(name, {})
        properties = {key: _keyword(key, value) for key, value in defaults.items()}
        for alias, key in optimizers.ALIASES.items():
            properties[alias] = {**properties[key], "description": f"alias of {key}"}
        branches.append(_branch(name, _DEFAULT_OPTIMIZER, properties, spec.label))
    return {"description": "An optimizer and its keywords (Keras 2.2 defaults).", "oneOf": branches}


def loss_schema() -> dict[str, Any]:
    """Return the loss section: one branch per loss with the parameters it takes."""
    branches = []
    for name, spec in losses.LOSSES.items():
        declared = {p.name: p.schema for p in spec.params}
        properties = {key: declared[key] for key in spec.parameters}
        branch = _branch(name, _DEFAULT_LOSS, properties, spec.label)
        branch["required"] = branch["required"] + sorted(spec.required)
        branches.append(branch)
    return {"description": "A reconstruction loss and its parameters.", "oneOf": branches}


def run_config_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft-07) of a run config file."""
    schema = RunConfig.model_json_schema()
    defs = schema.pop("$defs")
    for section in ("loss", "optimizer"):
        defs.pop(schema["properties"][section]["$ref"].rsplit("/", 1)[1])
    schema["properties"]["name"] |= {
        "pattern": rf"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]{{0,{NAME_MAX_LENGTH - 1}}}$",
        "description": "one plain folder name under output.dir (default: the file's name)",
    }
    schema["properties"]["loss"] = loss_schema()
    schema["properties"]["optimizer"] = optimizer_schema()
    return {
        "$schema": DRAFT,
        "title": "aeexp run config",
        **schema,
        "additionalProperties": False,
        "$defs": defs,
    }


def sweep_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft-07) of a sweep file; its points are run configs."""
    values = {
        "oneOf": [
            {"type": "array", "minItems": 1},
            {
                "type": "object",
                "properties": {k: {"type": "number"} for k in ("start", "stop", "step")},
                "required": ["start", "stop", "step"],
                "additionalProperties": False,
            },
        ]
    }
    block = {"type": "object", "minProperties": 1, "additionalProperties": values}
    return {
        "$schema": DRAFT,
        "title": "aeexp sweep",
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "the output folder: <out>/<name>/"},
            "base": {"type": "string", "description": "a run config, relative to this file"},
            "config": {"type": "object", "description": "dotted run-config keys and values"},
            "grid": {"oneOf": [block, {"type": "array", "minItems": 1, "items": block}]},
        },
        "required": ["grid"],
        "additionalProperties": False,
    }


def schema_folder() -> Path:
    """Return the folder of the committed schemas, shipped inside the package."""
    return Path(__file__).resolve().parent / "schemas"


def render(kind: str = "run") -> str:
    """Return the schema of ``kind`` (``run`` or ``sweep``) as indented JSON."""
    schema = run_config_schema() if kind == "run" else sweep_schema()
    return json.dumps(schema, indent=2) + "\n"
