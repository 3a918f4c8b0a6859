"""The run-config schema: YAML loading, ``--set`` overrides, validation and run ids.

Every key is optional; the defaults are the thesis's set-up. Validation happens before any
data is loaded or TensorFlow imported, so a typo costs a second, not a training run.
"""

from __future__ import annotations

import difflib
import hashlib
import json
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
from aeexp.errors import UserError

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


def unknown_name_message(kind: str, name: object, valid: Iterable[str]) -> str:
    """Return 'unknown <kind> ...' with the valid names and the closest match."""
    valid = sorted(valid)
    message = f"unknown {kind} {name!r} (valid: {', '.join(valid)})"
    close = difflib.get_close_matches(str(name), valid, n=1)
    return f"{message}; did you mean {close[0]!r}?" if close else message


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
        if self.name not in losses.LOSSES:
            raise ValueError(unknown_name_message("loss", self.name, losses.LOSSES))
        if self.name == "beta":
            if self.beta is None:
                raise ValueError("loss 'beta' needs a parameter 'beta' (a number)")
            if self.order is None:
                object.__setattr__(self, "order", "data_first")
        elif self.beta is not None or self.order is not None:
            raise ValueError(f"loss {self.name!r} takes no parameters (beta, order are for 'beta')")
        return self

    def params(self) -> dict[str, Any]:
        """Return the keyword arguments for :func:`aeexp.losses.get`."""
        return {} if self.name != "beta" else {"beta": self.beta, "order": self.order}

    @model_serializer
    def _dump(self) -> dict[str, Any]:
        return {"name": self.name, **self.params()}


def _check_optimizer_value(key: str, value: Any) -> None:
    if key in _BOOLEAN_KEYS:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, got {value!r}")
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
        raw = {optimizers.ALIASES.get(k, k): v for k, v in raw.items()}
        name = raw.pop("name", "adam")
        if name not in optimizers.OPTIMIZERS:
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
            message = "unknown key"
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


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
        data = yaml.safe_load(text)
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
    """Split ``dotted.key=value`` and parse the value as YAML (so 0.1 is a number)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {text!r}: expected dotted.key=value")
    try:
        parsed = yaml.safe_load(value)
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
