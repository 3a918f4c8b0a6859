"""The run-config schema: ``--set`` overrides, names, validation and run ids (YAML: yamlio).

Every key is optional; the defaults are the thesis's set-up. Validation happens before any
data is loaded or TensorFlow imported, so a typo costs a second, not a training run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)

from aeexp.env.backend import BACKENDS, DEFAULT_BACKEND
from aeexp.errors import (
    MAX_IMAGES,
    MAX_SEED,
    UserError,
    clip,
    shorten,
    unknown_name_message,
    valid_and_closest,
)
from aeexp.io.yamlio import MAX_YAML_DEPTH, load_yaml, read_yaml, yaml_problem
from aeexp.registry import losses, optimizers
from aeexp.registry.datasets import DEFAULT_DATASET, DatasetName

Activation = Literal["relu", "sigmoid", "linear", "tanh", "softplus", "elu"]
Backend = Literal[BACKENDS]
# train.init's one value (see TrainConfig.init).
SHARED_INIT = "shared"
Init = Literal["shared"]


NAME_MAX_LENGTH = 100
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.+-]")
# PATH_MAX on Linux: a longer path cannot name a file, and would only make errors long.
PATH_MAX_LENGTH = 4096


def _name_problem(value: object) -> str | None:
    """Say why ``value`` is not a plain, single-component folder name, or return None."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > NAME_MAX_LENGTH:
        return f"is {len(value)} characters long, at most {NAME_MAX_LENGTH}"
    shown = shorten(value)
    if value.startswith("."):
        return f"{shown} starts with '.': '.', '..' and hidden names are refused"
    for separator in ("/", "\\"):
        if separator in value:
            return f"{shown} contains {separator!r}: it must be a single folder name"
    for char in value:
        if not char.isprintable():
            return f"{shown} contains the control or non-printable character {char!r}"
        if not _NAME_CHARS.fullmatch(char):
            return f"{shown} contains {char!r}: use only letters, digits and _ . + -"
    return None


def check_name(value: object, what: str = "name") -> str:
    """Return ``value`` if it is a plain folder name, else raise a one-line UserError.

    A plain name is 1 to :data:`NAME_MAX_LENGTH` characters from letters, digits and
    ``_ . + -``, not starting with '.' (so never '.', '..' or hidden). ``what`` starts the
    message, e.g. ``"sweep.yaml: name"`` or ``"--name"``.
    """
    problem = _name_problem(value)
    if problem is not None:
        raise UserError(f"{what}: {problem}")
    return value  # type: ignore[return-value]  # _name_problem checked it is a str


def _check_path(value: str | None) -> str | None:
    if value is not None and "\0" in value:
        raise ValueError(f"{shorten(value)} contains a NUL character")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DataConfig(_Section):
    """Which dataset, where it comes from and how much of it to use."""

    # Part of the run id only when not the default, so every MNIST run keeps its id.
    name: DatasetName = Field(
        DEFAULT_DATASET,
        description=f"the dataset, an entry of aeexp/registry/datasets.py ({DEFAULT_DATASET}: "
        "the thesis's)",
    )
    path: str | None = Field(
        None,
        min_length=1,
        max_length=PATH_MAX_LENGTH,
        description="the dataset's .npz (Keras layout) or a folder of its four IDX files, "
        "gzipped or not; unset: $AEEXP_DATA for MNIST, else Keras's cache",
    )
    # At most MAX_IMAGES, the most images aeexp.data.sources reads from any source.
    train_limit: int | None = Field(
        None, ge=1, le=MAX_IMAGES, description="train on the first N training images only"
    )
    test_limit: int | None = Field(
        None,
        ge=1,
        le=MAX_IMAGES,
        description="evaluate on the first N test images only (the thesis SSIM needs 63)",
    )
    # Hold out the last N training images and validate/evaluate on them instead of the test
    # set: for tuning hyperparameters without ever looking at the test set.
    holdout: int | None = Field(
        None,
        ge=1,
        le=MAX_IMAGES,
        description="train on all but the last N training images; validate and evaluate on "
        "those N instead of the test set",
    )

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str | None) -> str | None:
        return _check_path(value)


class ModelConfig(_Section):
    """The autoencoder's shape: 784 -> code_dim -> 784."""

    # At most 4096, about five times the 784 pixels: already far past any useful code for
    # an autoencoder, and its two weight matrices (2 x 784 x 4096 float32, 26 MB, times the
    # optimizer's slots) still fit several lock-step members in memory.
    code_dim: int = Field(32, ge=1, le=4096, description="the code's width (the thesis's 32)")
    encoder_activation: Activation = Field("relu", description="the 784 -> code layer's")
    decoder_activation: Activation = Field("sigmoid", description="the code -> 784 layer's")


class _LossSection(_Section):
    """A loss name from :data:`aeexp.registry.losses.LOSSES` and its parameters."""

    name: str = "mse"

    @model_validator(mode="after")
    def _check(self) -> _LossSection:
        given = {key: getattr(self, key) for key in _LOSS_PARAMS if getattr(self, key) is not None}
        # Write the defaults back (order: data_first) so the resolved config states them.
        for key, value in losses.check_params(self.name, given).items():
            object.__setattr__(self, key, value)
        return self

    def params(self) -> dict[str, Any]:
        """Return the keyword arguments for :func:`aeexp.registry.losses.get`."""
        return {key: getattr(self, key) for key in losses.LOSSES[self.name].parameters}

    @model_serializer
    def _dump(self) -> dict[str, Any]:
        return {"name": self.name, **self.params()}


# One optional field per parameter the loss registry declares: a loss's registry entry is the
# only place a parameter is written down.
LossConfig = create_model(
    "LossConfig",
    __base__=_LossSection,
    __doc__=_LossSection.__doc__,
    __module__=__name__,
    **{p.name: (p.annotation | None, None) for p in losses.all_params().values()},
)
_LOSS_PARAMS = tuple(losses.all_params())


class OptimizerConfig(_Section):
    """An optimizer name and any keyword it takes, resolved against Keras 2.2 defaults."""

    name: str = "adam"
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            raise ValueError(f"optimizer must be a mapping, got {shorten(raw)}")
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
            optimizers.check_value(key, value)
        # One spelling per value: `learning_rate: 0` and `0.0` are one run (and Keras refuses
        # an integer learning rate).
        raw = {k: v if k in optimizers.BOOLEAN_KEYWORDS else float(v) for k, v in raw.items()}
        return {"name": name, "params": optimizers.resolved_params(name, raw)}

    @model_serializer
    def _dump(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}

    @property
    def learning_rate(self) -> float:
        """Return the learning rate (every optimizer has one; ``lr`` was resolved to it)."""
        return self.params["learning_rate"]


class TrainConfig(_Section):
    """How long, in what batches and on which backend to train."""

    # At most 10,000 epochs: 200 times the thesis's 50; the per-epoch history stays small.
    epochs: int = Field(50, ge=1, le=10_000, description="passes over the training images")
    # At most 60,000, MNIST's whole training set: a larger batch is the same single batch.
    batch_size: int = Field(256, ge=1, le=60_000, description="images per training step")
    # The Keras backend and engine (aeexp.env.backend.BACKENDS). Numbers differ between backends,
    # so it is part of the run id, except at the default: ids from before JAX stay valid.
    backend: Backend = Field(
        DEFAULT_BACKEND, description="the engine: part of the run id except at the default"
    )
    # Opt-in, so unset by default: None is dropped from run ids and study names, which keep
    # their values. A name rather than a boolean: it says what is drawn ("shared" between the
    # backends), and another scheme could join it without a second key.
    init: Init | None = Field(
        None,
        description="'shared': initial weights and every epoch's shuffle drawn from NumPy by "
        "the seed, the same on every backend (for pairing engines by seed); unset: each "
        "engine's own draws. Part of the run id only when set",
    )


class OutputConfig(_Section):
    """Where run directories go, and what else they hold. Not part of the run id."""

    dir: str = Field(
        "results",
        min_length=1,
        max_length=PATH_MAX_LENGTH,
        description="where run directories go (--out); not part of the run id",
    )
    # TensorBoard events (per-epoch losses, the reconstructions) under <run>/tensorboard/.
    tensorboard: bool = Field(
        False, description="also write TensorBoard events (--tensorboard); not part of the run id"
    )

    @field_validator("dir")
    @classmethod
    def _check_dir(cls, value: str) -> str:
        return _check_path(value)


class RunConfig(_Section):
    """One run of the thesis experiment, fully resolved."""

    # One folder under output.dir: see check_name.
    name: str = "run"
    # It seeds tf.constant([seed, epoch], tf.int64) and np.random.SeedSequence: int64's range.
    seed: int = Field(0, ge=0, le=MAX_SEED, description="initial weights and shuffling")
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    train: TrainConfig = TrainConfig()
    output: OutputConfig = OutputConfig()

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        problem = _name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    def resolved(self) -> dict[str, Any]:
        """Return the config as plain data, every default written out."""
        return self.model_dump()

    @property
    def run_id(self) -> str:
        """Return a short hash of everything that affects the result.

        The default backend and dataset are left out of the hash, so a TensorFlow run on
        MNIST keeps the id it had before ``train.backend`` and ``data.name`` existed; any
        other backend or dataset is in it.
        """
        return _run_id(self.resolved())

    @property
    def experiment_dir(self) -> Path:
        """Return ``<output.dir>/<name>``, where this run's directory lives."""
        return Path(self.output.dir) / self.name


def _run_id(resolved: dict[str, Any]) -> str:
    """Return :attr:`RunConfig.run_id` of a resolved config.

    A module function, not the property's body, so that mutation testing (``make mutate``;
    mutmut leaves decorated functions alone) measures the hash.
    """
    content = {k: v for k, v in resolved.items() if k not in ("name", "output")}
    if content["train"]["backend"] == DEFAULT_BACKEND:
        del content["train"]["backend"]
    if content["data"]["name"] == DEFAULT_DATASET:
        del content["data"]["name"]
    digest = hashlib.sha256(json.dumps(_drop_nulls(content), sort_keys=True).encode())
    return digest.hexdigest()[:10]


def _drop_nulls(value: Any) -> Any:
    """Remove None-valued keys, so a new optional setting leaves existing run ids unchanged."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value


# An error message shows at most this many of pydantic's errors (a file with thousands of
# unknown keys has thousands), each clipped: the message stays one readable line.
_MAX_ERRORS_SHOWN = 5


def _format_error(error: ValidationError, raw: Mapping[str, Any]) -> str:
    items = error.errors(include_url=False)
    parts = []
    for item in items[:_MAX_ERRORS_SHOWN]:
        location = ".".join(
            p if isinstance(p, str) and len(p) <= 40 else shorten(p, 40)
            for p in map(_location_part, item["loc"])
        )
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key" + valid_and_closest(item["loc"][-1], _valid_keys(item, raw))
        elif item["type"] == "literal_error":  # a name from a fixed set: say the closest one
            kind = str(item["loc"][-1]).replace("_", " ")
            message = unknown_name_message(kind, item["input"], _choices_at(item["loc"]))
        parts.append(clip(f"{location}: {message}" if location else message))
    if len(items) > _MAX_ERRORS_SHOWN:
        parts.append(f"and {len(items) - _MAX_ERRORS_SHOWN} more")
    return "; ".join(parts)


def _location_part(part: object) -> object:
    return part if isinstance(part, str) else str(part)


def _section_at(location: tuple[Any, ...]) -> type[BaseModel]:
    """Return the config section at ``location``."""
    section: type[BaseModel] = RunConfig
    for part in location:
        section = section.model_fields[part].annotation
    return section


def _keys_at(location: tuple[Any, ...]) -> list[str]:
    """Return the keys the config section at ``location`` accepts."""
    return list(_section_at(location).model_fields)


def _valid_keys(item: Mapping[str, Any], raw: Mapping[str, Any]) -> list[str]:
    """Return the keys valid where ``item``'s unknown key is: a named loss's own, or the section's.

    The loss section holds every loss's parameters, but each loss takes only its own.
    """
    section = item["loc"][:-1]
    loss = raw.get("loss") if section == ("loss",) else None
    name = loss.get("name", LossConfig().name) if isinstance(loss, Mapping) else None
    if isinstance(name, str) and name in losses.LOSSES:
        return ["name", *losses.LOSSES[name].parameters]
    return _keys_at(section)


def _choices_at(location: tuple[Any, ...]) -> tuple[str, ...]:
    """Return the names the Literal field at ``location`` accepts (a backend, an activation)."""
    *sections, name = location
    return _literal_names(_section_at(tuple(sections)).model_fields[name].annotation)


def _literal_names(annotation: Any) -> tuple[str, ...]:
    """Return the names of a Literal annotation, also inside an Optional (``loss.order``)."""
    if get_origin(annotation) is Literal:
        return tuple(map(str, get_args(annotation)))
    return tuple(name for arg in get_args(annotation) for name in _literal_names(arg))


def validate(raw: Mapping[str, Any], source: str = "config") -> RunConfig:
    """Validate a raw mapping into a :class:`RunConfig`, or raise a one-line UserError."""
    try:
        return RunConfig.model_validate(dict(raw))
    except ValidationError as error:
        raise UserError(f"{source}: {_format_error(error, raw)}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``dotted.key=value`` and parse the value as YAML (so 0.1 and 1e-3 are numbers)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {shorten(text)}: expected dotted.key=value")
    try:
        parsed = load_yaml(value)
    except yaml.YAMLError as error:
        raise UserError(f"--set {shorten(text)}: {yaml_problem(error)}") from None
    return key.strip(), parsed


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``value`` at the dotted ``key``."""
    if key.count(".") >= MAX_YAML_DEPTH:  # no config nests that deep; recursion would
        raise UserError(f"cannot set {shorten(key)}: more than {MAX_YAML_DEPTH} dotted parts")
    return _set_dotted(raw, key, value)


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    head, _, rest = key.partition(".")
    result = dict(raw)
    if not rest:
        result[head] = value
        return result
    inner = result.get(head, {})
    if inner is None:
        inner = {}
    if not isinstance(inner, Mapping):
        raise UserError(f"cannot set {shorten(key)}: {shorten(head)} is not a mapping")
    result[head] = _set_dotted(dict(inner), rest, value)
    return result


def flatten_dotted(value: Any, prefix: str = "") -> dict[str, Any]:
    """Return nested mappings as one level of dotted keys (the inverse of set_dotted)."""
    if not isinstance(value, Mapping):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, inner in value.items():
        flat |= flatten_dotted(inner, f"{prefix}.{key}" if prefix else str(key))
    return flat


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides in order."""
    result = dict(raw)
    for text in overrides:
        result = set_dotted(result, *parse_override(text))
    return result


def override(
    raw: Mapping[str, Any],
    overrides: Iterable[str] = (),
    dotted: Mapping[str, Any] | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Return ``raw`` with, in this order, ``--set`` strings, dotted values, seed and out set.

    The one way a config is overridden, for a run (:func:`resolve`) and a sweep's points
    (``plan``) alike: ``overrides`` are ``--set`` strings (values read as YAML), ``dotted``
    maps dotted keys to Python values, e.g. ``{"train.epochs": 5}``.
    """
    result = apply_overrides(raw, overrides)
    for key, value in (dotted or {}).items():
        result = set_dotted(result, key, value)
    if seed is not None:
        result["seed"] = seed
    if out is not None:
        result = set_dotted(result, "output.dir", str(out))  # a notebook's Path too
    return result


def resolve(
    source: str | Path | Mapping[str, Any] | RunConfig,
    overrides: Iterable[str] = (),
    dotted: Mapping[str, Any] | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
) -> RunConfig:
    """Return a validated config from a YAML file, a mapping or a RunConfig, overridden.

    A file's run is named after the file (its stem) unless it sets ``name``.
    """
    if isinstance(source, RunConfig | Mapping):
        raw = source.resolved() if isinstance(source, RunConfig) else dict(source)
        return validate(override(raw, overrides, dotted, seed, out), source="config")
    raw = override(read_yaml(source), overrides, dotted, seed, out)
    return validate(_named_after_file(raw, source), source=clip(str(source), 300))


def _named_after_file(raw: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Return a file's config with ``name`` defaulting to the file's stem, if none was set."""
    if "name" not in raw:
        stem = Path(path).stem
        problem = _name_problem(stem)
        if problem is not None:
            raise UserError(
                f"{clip(str(path), 300)}: name: {problem} (the name defaults to the file's "
                "name without .yaml: set 'name:' in the file or rename it)"
            )
        raw["name"] = stem
    return raw
