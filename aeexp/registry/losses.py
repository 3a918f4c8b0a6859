"""Reconstruction losses by name: the thesis's, the IS-divergences, BCE and the beta-divergence.

Every loss is ``fn(y_true, y_pred)`` returning one value per sample: the per-pixel term
averaged over the last axis, as the thesis's Keras code did (its equations write sums).
The divergences clip both arguments to [EPSILON, 1] first (Keras's fuzz factor,
``aeexp.registry.vocab.EPSILON``), exactly as trained in the thesis.
This module imports Keras lazily so that config validation stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aeexp.errors import is_finite_number, shorten, unknown_name_message
from aeexp.registry.vocab import EPSILON

BETA_ORDERS = ("data_first", "recon_first")

LossFn = Callable[[Any, Any], Any]


def _mse(x, y, ops, **_):
    return ops.square(y - x)


def _i_div1(x, y, ops, **_):
    return y * ops.log(y / x) - y + x


def _i_div2(x, y, ops, **_):
    return x * ops.log(x / y) - x + y


def _is_div1(x, y, ops, **_):
    return y / x - ops.log(y / x) - 1.0


def _is_div2(x, y, ops, **_):
    return x / y - ops.log(x / y) - 1.0


def _expm1_ratio(z, s: float, ops):
    """Return expm1(s * z) / s, continuous at s = 0 where it equals z."""
    return z if s == 0.0 else ops.expm1(s * z) / s


def beta_divergence(a, b, beta: float, ops):
    """Return d_beta(a|b) elementwise, stable at and near beta = 0 and beta = 1.

    With r = a/b and L = log r, d_beta = b^beta * (r^beta - beta*r + beta - 1) / (beta(beta-1)).
    Factoring the removable zero out of numerator and denominator via expm1 gives two forms,
    each exact at one of the singular points; pick the one away from its own singularity.
    """
    ratio = a / b
    log_ratio = ops.log(ratio)
    scale = ops.exp(beta * ops.log(b))
    if abs(beta - 1.0) < 0.5:
        # r^beta - 1 - beta(r-1) = r*expm1((beta-1)L) - (beta-1)(r-1): divide by (beta-1).
        core = ratio * _expm1_ratio(log_ratio, beta - 1.0, ops) - (ratio - 1.0)
        return scale * core / beta
    # Otherwise divide r^beta - 1 - beta(r-1) by beta, which is exact at beta = 0.
    core = _expm1_ratio(log_ratio, beta, ops) - (ratio - 1.0)
    return scale * core / (beta - 1.0)


def _beta(x, y, ops, *, beta: float, order: str = "data_first"):
    if order == "data_first":
        return beta_divergence(x, y, beta, ops)
    return beta_divergence(y, x, beta, ops)


REQUIRED = object()  # the default of a parameter the config must give


@dataclass(frozen=True)
class LossParam:
    """One parameter a loss declares: everything the config, its checks and its schema need."""

    name: str
    annotation: Any  # the type the config validates the value against
    kind: str  # what it accepts, for messages: "a finite number"
    accepts: Callable[[Any], bool]
    schema: dict[str, Any]  # its JSON Schema in the config schema
    default: Any = REQUIRED


@dataclass(frozen=True)
class LossSpec:
    """How to build one named loss: its per-pixel term, clipping, parameters and plot title."""

    term: Callable[..., Any] | None
    label: str
    clip: bool = True
    params: tuple[LossParam, ...] = ()
    title: Callable[..., str] | None = None  # the plot title from the resolved parameters
    key: Callable[..., str] | None = None  # its table column from them (default: the name)

    @property
    def required(self) -> frozenset[str]:
        """Return the names of the parameters without a default."""
        return frozenset(p.name for p in self.params if p.default is REQUIRED)

    @property
    def optional(self) -> dict[str, Any]:
        """Return the parameters with a default, name -> default."""
        return {p.name: p.default for p in self.params if p.default is not REQUIRED}

    @property
    def parameters(self) -> tuple[str, ...]:
        """Return every parameter name: the required ones (sorted), then the optional ones."""
        return (*sorted(self.required), *self.optional)


def beta_key(beta: float, order: str) -> str:
    """Return a beta-divergence's table column, e.g. ``beta(0.5,data_first)``."""
    return f"beta({beta:g},{order})"


def _beta_title(beta: float, order: str) -> str:
    args = "x|y" if order == "data_first" else "y|x"
    return f"beta-divergence d_{beta:g}({args})"


LOSSES: dict[str, LossSpec] = {
    "mse": LossSpec(_mse, "MSE", clip=False),
    "i_div1": LossSpec(_i_div1, "I-divergence 1 (E_I1)"),
    "i_div2": LossSpec(_i_div2, "I-divergence 2 (E_I2)"),
    "is_div1": LossSpec(_is_div1, "IS-divergence 1"),
    "is_div2": LossSpec(_is_div2, "IS-divergence 2"),
    "bce": LossSpec(None, "binary cross-entropy", clip=False),
    "beta": LossSpec(
        _beta,
        "beta-divergence",
        params=(
            LossParam(
                "beta",
                float,
                "a finite number",
                is_finite_number,
                {"type": "number", "description": "the beta-divergence's beta"},
            ),
            LossParam(
                "order",
                Literal[BETA_ORDERS],
                " or ".join(BETA_ORDERS),
                lambda value: value in BETA_ORDERS,
                {"enum": list(BETA_ORDERS), "default": "data_first"},
                default="data_first",
            ),
        ),
        title=_beta_title,
        key=beta_key,
    ),
}


def table_key(name: str, params: Mapping[str, Any]) -> str:
    """Return the table column of loss ``name`` with its resolved parameters."""
    spec = LOSSES[name]
    return spec.key(**params) if spec.key is not None else name


def loss_key(cfg: Any) -> str:
    """Return the column a run (a RunConfig) belongs to: its loss, with its parameters."""
    return table_key(cfg.loss.name, cfg.loss.params())


def all_params() -> dict[str, LossParam]:
    """Return every parameter any loss declares, by name (a name means one thing everywhere)."""
    found: dict[str, LossParam] = {}
    for spec in LOSSES.values():
        for param in spec.params:
            if found.setdefault(param.name, param) != param:
                raise ValueError(f"loss parameter {param.name!r} is declared twice, differently")
    return found


def check_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``params`` with the loss's defaults filled in, or raise ValueError naming why."""
    if name not in LOSSES:
        raise ValueError(unknown_name_message("loss", name, LOSSES))
    spec = LOSSES[name]
    for key in params:
        if key not in spec.parameters:
            if not spec.parameters:
                raise ValueError(_takes_no_parameters(name))
            raise ValueError(
                unknown_name_message(f"parameter for loss {name!r}", key, spec.parameters)
            )
    declared = {p.name: p for p in spec.params}
    for key in sorted(spec.required):
        if key not in params:
            raise ValueError(f"loss {name!r} needs a parameter {key!r} ({declared[key].kind})")
    resolved = {**spec.optional, **params}
    for key, value in resolved.items():
        if not declared[key].accepts(value):
            kind = declared[key].kind
            raise ValueError(f"loss {name!r}: {key} must be {kind}, got {shorten(value)}")
    return {key: resolved[key] for key in spec.parameters}


def _takes_no_parameters(name: str) -> str:
    """Say that a loss takes no parameters, and which loss takes which of the ones there are."""
    owned = []
    for owner, spec in LOSSES.items():
        if spec.parameters:
            keys = ", ".join(sorted(spec.parameters))
            owned.append(f"{keys} {'is' if len(spec.parameters) == 1 else 'are'} for {owner!r}")
    return f"loss {name!r} takes no parameters ({'; '.join(owned)})"


def describe(name: str, **params: Any) -> str:
    """Return a human-readable title for a configured loss, as used on plots."""
    params = check_params(name, params)
    spec = LOSSES[name]
    return spec.title(**params) if spec.title else spec.label


def get(name: str, **params: Any) -> LossFn:
    """Return the Keras-compatible loss ``fn(y_true, y_pred)``; raise ValueError on bad params."""
    params = check_params(name, params)  # before importing Keras: a bad name fails fast
    from aeexp.env.backend import import_keras

    keras = import_keras()
    keras_losses, ops = keras.losses, keras.ops

    spec = LOSSES[name]
    if spec.term is None:
        return keras_losses.binary_crossentropy
    term = spec.term

    def loss(y_true, y_pred):
        x = ops.convert_to_tensor(y_true, dtype=y_pred.dtype)
        y = y_pred
        if spec.clip:
            x, y = ops.clip(x, EPSILON, 1.0), ops.clip(y, EPSILON, 1.0)
        return ops.mean(term(x, y, ops, **params), axis=-1)

    loss.__name__ = name
    return loss
