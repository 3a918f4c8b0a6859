"""Bounded YAML: reading a config or sweep file, and writing what aeexp writes.

A YAML alias is a reference, so a few hundred bytes of nested aliases name billions of
values; the loader here counts every alias as a full copy and refuses past a bound before
anything is constructed, refuses duplicate keys, reads YAML 1.2's exponent floats, and the
file itself comes through :mod:`aeexp.io.readers` (regular, capped, UTF-8).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from aeexp.errors import UserError, clip, shorten
from aeexp.io import readers

# Exponent floats, which YAML 1.1 (PyYAML) reads as strings unless they have both a dot and a
# signed exponent (1.0e-07): 1e-3, 1E+5 and 2.5e4 are floats in YAML 1.2. An integer never
# matches, and a 1.1 float that does is the same float either way, so existing run ids stay put.
FLOAT_12 = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")


# Bounds on what a config file may make the loader build. A YAML alias is a reference, so a
# few hundred bytes of nested aliases ("billion laughs") name billions of values; they cost
# nothing until something walks them (validation, an error message's repr), and then exhaust
# memory. So the composed node graph is measured with every alias counted as a full copy, and
# refused past MAX_YAML_VALUES before anything is constructed. The largest committed config
# (configs/sweeps/beta.yaml) has about 2,000 values and nests 6 levels.
MAX_YAML_VALUES = 100_000
MAX_YAML_DEPTH = 32
MAX_INT_CHARS = 100  # a 64-bit seed is 19 digits; Python's int() is quadratic in the length


class YamlLimitError(yaml.composer.ComposerError):
    """YAML that parses but would cost too much to build or walk (aliases, depth, size)."""


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping that gives the same key twice (YAML forbids it; PyYAML keeps the last)."""


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with bounds, duplicate-key refusal and YAML 1.2 exponent floats.

    Reads 1e-3 as a float, refuses a mapping with a repeated key, nesting deeper than
    :data:`MAX_YAML_DEPTH`, more than :data:`MAX_YAML_VALUES` values once aliases are
    expanded, recursive aliases and integers longer than :data:`MAX_INT_CHARS` characters.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Compose one node, refusing nesting deeper than MAX_YAML_DEPTH (else RecursionError)."""
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlLimitError(
                    None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        """Compose the document, then refuse it if its aliases expand it past the bounds."""
        node = super().compose_document()
        _check_expansion(node)
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """Construct a mapping, refusing a key given twice (merge keys ``<<`` may be overridden)."""
        if isinstance(node, yaml.MappingNode):
            first_at: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, Hashable):
                    continue  # SafeConstructor reports the unhashable key itself
                if key in first_at:
                    line = first_at[key].line + 1
                    problem = f"duplicate key {shorten(key)} (first at line {line})"
                    raise DuplicateKeyError(None, None, problem, key_node.start_mark)
                first_at[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Any) -> Any:
        """Construct an int, refusing one too long to be a config value."""
        if len(node.value) > MAX_INT_CHARS:
            problem = f"integer of {len(node.value)} characters (at most {MAX_INT_CHARS})"
            raise YamlLimitError(None, None, problem, node.start_mark)
        return super().construct_yaml_int(node)


ConfigLoader.add_constructor("tag:yaml.org,2002:int", ConfigLoader.construct_yaml_int)


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _check_expansion(root: Any) -> None:
    """Refuse a node graph that, aliases expanded, is cyclic, too large or too deep.

    One iterative depth-first pass with each shared node measured once: linear in the
    graph as written, whatever its aliases would expand to.
    """
    if root is None:
        return
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded values, depth)
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            children = [measured[id(child)] for child in _children(node)]
            size = 1 + sum(size for size, _ in children)
            depth = 1 + max((depth for _, depth in children), default=0)
            if size > MAX_YAML_VALUES:
                problem = (
                    f"more than {MAX_YAML_VALUES} values once aliases are expanded (an alias bomb?)"
                )
                raise YamlLimitError(None, None, problem, node.start_mark)
            if depth > MAX_YAML_DEPTH:
                problem = f"nested more than {MAX_YAML_DEPTH} levels deep once aliases are expanded"
                raise YamlLimitError(None, None, problem, node.start_mark)
            measured[key] = (size, depth)
            on_path.discard(key)
            continue
        if key in measured:
            continue
        if key in on_path:
            raise YamlLimitError(None, None, "an alias refers to itself", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in measured)


class ConfigDumper(yaml.SafeDumper):
    """PyYAML's safe dumper that quotes strings :class:`ConfigLoader` would read as floats."""


# Each class gets its own copy of the resolver table: PyYAML's SafeLoader itself is unchanged.
ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_12, list("-+.0123456789"))
ConfigDumper.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_12, list("-+.0123456789"))


def load_yaml(text: str) -> Any:
    """Parse YAML text safely (no Python-object tags) and within bounds, reading 1e-3 as a float.

    Raises a :class:`yaml.YAMLError` (a :class:`YamlLimitError` for a bound) on bad input.
    """
    if len(text) > readers.MAX_CONFIG_BYTES:
        raise YamlLimitError(None, None, f"longer than {readers.MAX_CONFIG_BYTES} characters", None)
    return yaml.load(text, Loader=ConfigLoader)  # safe: ConfigLoader is a SafeLoader


def yaml_problem(error: yaml.YAMLError) -> str:
    """Render a YAML error as '<what> at line N: <problem>', bounded, on one line."""
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    problem = clip(problem, 200)
    if isinstance(error, YamlLimitError):
        return f"refused{where}: {problem}"
    return f"malformed YAML{where}: {problem}"


# A name (a run's or a sweep's) becomes one folder under the output folder, and that folder
# holds staging names such as ".tmp-<run id>-<host>-<pid>": 100 characters leaves room for
# them within the usual 255-byte file-name limit.


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely and within bounds, or raise a one-line UserError.

    Refused with the reason: what :func:`readers.read_text` refuses (a missing, non-regular
    or oversized file, bytes that are not UTF-8 text), malformed YAML, duplicate keys and
    what :class:`ConfigLoader` bounds.
    """
    where = clip(str(path), 300)
    text = readers.read_text(path, readers.MAX_CONFIG_BYTES, "config file", "YAML")
    try:
        data = load_yaml(text)
    except yaml.YAMLError as error:
        raise UserError(f"{where}: {yaml_problem(error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of config keys, got {type(data).__name__}")
    return data
