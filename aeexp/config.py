"""The run-config schema: YAML loading, ``--set`` overrides, validation and run ids.

Every key is optional; the defaults are the thesis's set-up. Validation happens before any
data is loaded or TensorFlow imported, so a typo costs a second, not a training run.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_serializer,
    model_validator,
)

from aeexp import losses, optimizers
from aeexp.errors import UserError, unknown_name_message, valid_and_closest

Activation = Literal["relu", "sigmoid", "linear", "tanh", "softplus", "elu"]

# Ranges each optimizer keyword must fall in: (low, high, low inclusive).
_NUMERIC_RANGES: dict[str, tuple[float, float, bool]] = {
    "learning_rate": (0.0, float("inf"), True),
    "decay": (0.0, float("inf"), True),
    "epsilon": (0.0, float("inf"), False),
    "momentum": (0.0, 1.0, True),
    "rho": (0.0, 1.0, True),
    "beta_1": (0.0, 1.0, True),
    "beta_2": (0.0, 1.0, True),
    "schedule_decay": (0.0, float("inf"), True),
}
_BOOLEAN_KEYS = {"nesterov", "amsgrad"}


# Exponent floats, which YAML 1.1 (PyYAML) reads as strings unless they have both a dot and a
# signed exponent (1.0e-07): 1e-3, 1E+5 and 2.5e4 are floats in YAML 1.2. An integer never
# matches, and a 1.1 float that does is the same float either way, so existing run ids stay put.
FLOAT_12 = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads YAML 1.2 exponent floats such as 1e-3 as floats."""


class ConfigDumper(yaml.SafeDumper):
    """PyYAML's safe dumper that quotes strings :class:`ConfigLoader` would read as floats."""


# Each class gets its own copy of the resolver table: PyYAML's SafeLoader itself is unchanged.
ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_12, list("-+.0123456789"))
ConfigDumper.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_12, list("-+.0123456789"))


def load_yaml(text: str) -> Any:
    """Parse YAML text safely (no Python-object tags), reading 1e-3 as a float."""
    return yaml.load(text, Loader=ConfigLoader)  # safe: ConfigLoader is a SafeLoader


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DataConfig(_Section):
    """Where MNIST comes from and how much of it to use."""

    path: str | None = None
    train_limit: int | None = Field(None, ge=1)
    test_limit: int | None = Field(None, ge=1)
    # Hold out the last N training images and validate/evaluate on them instead of the test
    # set: for tuning hyperparameters without ever looking at the test set.
    holdout: int | None = Field(None, ge=1)


class ModelConfig(_Section):
    """The autoencoder's shape: 784 -> code_dim -> 784."""

    code_dim: int = Field(32, ge=1)
    encoder_activation: Activation = "relu"
    decoder_activation: Activation = "sigmoid"


class LossConfig(_Section):
    """A loss name from :data:`aeexp.losses.LOSSES` and its parameters."""

    name: str = "mse"
    beta: float | None = None
    order: Literal["data_first", "recon_first"] | None = None

    @model_validator(mode="after")
    def _check(self) -> LossConfig:
        given = {key: getattr(self, key) for key in _LOSS_PARAMS if getattr(self, key) is not None}
        # Write the defaults back (order: data_first) so the resolved config states them.
        for key, value in losses.check_params(self.name, given).items():
            object.__setattr__(self, key, value)
        return self

    def params(self) -> dict[str, Any]:
        """Return the keyword arguments for :func:`aeexp.losses.get`."""
        return {key: getattr(self, key) for key in losses.LOSSES[self.name].parameters}

    @model_serializer
    def _dump(self) -> dict[str, Any]:
        return {"name": self.name, **self.params()}


_LOSS_PARAMS = tuple(key for key in LossConfig.model_fields if key != "name")


def _check_optimizer_value(key: str, value: Any) -> None:
    if key in _BOOLEAN_KEYS:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    low, high, low_inclusive = _NUMERIC_RANGES[key]
    too_low = value < low if low_inclusive else value <= low
    if too_low or value > high:
        bound = ">=" if low_inclusive else ">"
        upper = f" and <= {high:g}" if high != float("inf") else ""
        raise ValueError(f"{key} must be {bound} {low:g}{upper}, got {value!r}")


class OptimizerConfig(_Section):
    """An optimizer name and any keyword it takes, resolved against Keras 2.2 defaults."""

    name: str = "adam"
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            raise ValueError(f"optimizer must be a mapping, got {raw!r}")
        for alias, key in optimizers.ALIASES.items():
            if alias in raw and key in raw:  # else one would silently win over the other
                raise ValueError(f"give {key} or its alias {alias}, not both")
        raw = {optimizers.ALIASES.get(k, k): v for k, v in raw.items()}
        name = raw.pop("name", "adam")
        if not isinstance(name, str) or name not in optimizers.OPTIMIZERS:
            raise ValueError(unknown_name_message("optimizer", name, optimizers.OPTIMIZERS))
        accepted = optimizers.accepted_keys(name)
        for key, value in raw.items():
            if key not in accepted:
                raise ValueError(
                    unknown_name_message(f"keyword for optimizer {name!r}", key, accepted)
                )
            _check_optimizer_value(key, value)
        return {"name": name, "params": optimizers.resolved_params(name, raw)}

    @model_serializer
    def _dump(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}


class TrainConfig(_Section):
    """How long and in what batches to train."""

    epochs: int = Field(50, ge=1)
    batch_size: int = Field(256, ge=1)


class OutputConfig(_Section):
    """Where run directories go."""

    dir: str = "results"


class RunConfig(_Section):
    """One run of the thesis experiment, fully resolved."""

    name: str = Field("run", min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$")
    seed: int = Field(0, ge=0)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    train: TrainConfig = TrainConfig()
    output: OutputConfig = OutputConfig()

    def resolved(self) -> dict[str, Any]:
        """Return the config as plain data, every default written out."""
        return self.model_dump()

    @property
    def run_id(self) -> str:
        """Return a short hash of everything that affects the result."""
        content = {k: v for k, v in self.resolved().items() if k not in ("name", "output")}
        digest = hashlib.sha256(json.dumps(_drop_nulls(content), sort_keys=True).encode())
        return digest.hexdigest()[:10]

    @property
    def experiment_dir(self) -> Path:
        """Return ``<output.dir>/<name>``, where this run's directory lives."""
        return Path(self.output.dir) / self.name


def _drop_nulls(value: Any) -> Any:
    """Remove None-valued keys, so a new optional setting leaves existing run ids unchanged."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value


def _format_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key" + valid_and_closest(item["loc"][-1], _keys_at(item["loc"][:-1]))
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def _keys_at(location: tuple[Any, ...]) -> list[str]:
    """Return the keys the config section at ``location`` accepts."""
    section: type[BaseModel] = RunConfig
    for part in location:
        section = section.model_fields[part].annotation
    return list(section.model_fields)


def validate(raw: Mapping[str, Any], source: str = "config") -> RunConfig:
    """Validate a raw mapping into a :class:`RunConfig`, or raise a one-line UserError."""
    try:
        return RunConfig.model_validate(dict(raw))
    except ValidationError as error:
        raise UserError(f"{source}: {_format_error(error)}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely (no Python-object tags), or raise a one-line UserError."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UserError(f"{path}: malformed YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``dotted.key=value`` and parse the value as YAML (so 0.1 and 1e-3 are numbers)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {text!r}: expected dotted.key=value")
    try:
        parsed = load_yaml(value)
    except yaml.YAMLError:
        raise UserError(f"--set {text!r}: the value is not valid YAML") from None
    return key.strip(), parsed


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``value`` at the dotted ``key``."""
    head, _, rest = key.partition(".")
    result = dict(raw)
    if not rest:
        result[head] = value
        return result
    inner = result.get(head, {})
    if inner is None:
        inner = {}
    if not isinstance(inner, Mapping):
        raise UserError(f"cannot set {key!r}: {head!r} is not a mapping")
    result[head] = set_dotted(dict(inner), rest, value)
    return result


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides in order."""
    result = dict(raw)
    for text in overrides:
        result = set_dotted(result, *parse_override(text))
    return result


def load_run_config(
    path: str | Path,
    overrides: Iterable[str] = (),
    seed: int | None = None,
    out: str | None = None,
) -> RunConfig:
    """Load a run config file, apply CLI overrides and validate it."""
    raw = read_yaml(path)
    raw.setdefault("name", Path(path).stem)
    raw = apply_overrides(raw, overrides)
    if seed is not None:
        raw["seed"] = seed
    if out is not None:
        raw = set_dotted(raw, "output.dir", out)
    return validate(raw, source=str(path))
