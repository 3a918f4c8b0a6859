"""Optimizers by name, with the Keras 2.2 defaults and update rules the thesis trained with.

Keras 3 changed several defaults (Adagrad's learning rate and initial accumulator,
Adadelta's learning rate, ...) and a few update rules (where epsilon sits in Adagrad and
RMSprop, Nadam's momentum schedule). The registry below is Keras-free so that configs
validate without importing TensorFlow; :func:`build` imports Keras only when a run starts.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any

from aeexp.errors import shorten
from aeexp.registry.vocab import EPSILON

_ADAM_KEYS = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": EPSILON}


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer: its label, Keras 2.2 defaults (naming every keyword) and Keras class.

    ``keras_class`` is ``module:Class``, imported only when a run builds one: Keras's own
    class where Keras 3 kept Keras 2.2's update rule, aeexp's keras2 port where it did not.
    """

    label: str
    defaults: dict[str, Any]
    keras_class: str

    def load_class(self) -> type:
        """Return the Keras optimizer class (importing Keras, quietly)."""
        from aeexp.env.backend import import_keras

        import_keras()
        module, _, name = self.keras_class.partition(":")
        return getattr(importlib.import_module(module), name)


_KERAS = "keras.optimizers"
_PORT = "aeexp.engines.keras2"  # Keras 2.2's rules where Keras 3 changed them

OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(
        "SGD", {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}, f"{_KERAS}:SGD"
    ),
    "rmsprop": OptimizerSpec(
        "RMSprop", {"learning_rate": 0.001, "rho": 0.9, "epsilon": EPSILON}, f"{_PORT}:RMSprop"
    ),
    "adagrad": OptimizerSpec(
        "Adagrad", {"learning_rate": 0.01, "epsilon": EPSILON}, f"{_PORT}:Adagrad"
    ),
    "adadelta": OptimizerSpec(
        "AdaDelta", {"learning_rate": 1.0, "rho": 0.95, "epsilon": EPSILON}, f"{_KERAS}:Adadelta"
    ),
    "adam": OptimizerSpec(
        "Adam", {"learning_rate": 0.001, **_ADAM_KEYS, "amsgrad": False}, f"{_KERAS}:Adam"
    ),
    "adamax": OptimizerSpec("Adamax", {"learning_rate": 0.002, **_ADAM_KEYS}, f"{_KERAS}:Adamax"),
    "nadam": OptimizerSpec(
        "Nadam", {"learning_rate": 0.002, **_ADAM_KEYS, "schedule_decay": 0.004}, f"{_PORT}:Nadam"
    ),
}

# The range each keyword must fall in: (low, high, whether low itself is allowed).
KEYWORD_RANGES: dict[str, tuple[float, float, bool]] = {
    "learning_rate": (0.0, float("inf"), True),
    "decay": (0.0, float("inf"), True),
    "epsilon": (0.0, float("inf"), False),
    "momentum": (0.0, 1.0, True),
    "rho": (0.0, 1.0, True),
    "beta_1": (0.0, 1.0, True),
    "beta_2": (0.0, 1.0, True),
    "schedule_decay": (0.0, float("inf"), True),
}
BOOLEAN_KEYWORDS = frozenset({"nesterov", "amsgrad"})

# Accepted by every optimizer: Keras 2.2's inverse-time decay of the learning rate.
COMMON_DEFAULTS: dict[str, Any] = {"decay": 0.0}
# Keywords an optimizer takes here that Keras 2.2's refused. Keras 2.2.4's Nadam had no
# ``decay`` (its constructor raised a TypeError); aeexp decays Nadam's rate like the others'.
EXTENSIONS: dict[str, frozenset[str]] = {"nadam": frozenset({"decay"})}
ALIASES = {"lr": "learning_rate"}


def check_value(key: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is what keyword ``key`` accepts (its type and range)."""
    if key in BOOLEAN_KEYWORDS:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {shorten(value)}")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, got {shorten(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {shorten(value)}")
    low, high, low_inclusive = KEYWORD_RANGES[key]
    too_low = value < low if low_inclusive else value <= low
    if too_low or value > high:
        bound = ">=" if low_inclusive else ">"
        upper = f" and <= {high:g}" if high != float("inf") else ""
        raise ValueError(f"{key} must be {bound} {low:g}{upper}, got {shorten(value)}")


def resolved_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Return every keyword of ``name`` with the user's values over the Keras 2.2 defaults."""
    return {**OPTIMIZERS[name].defaults, **COMMON_DEFAULTS, **params}


def accepted_keys(name: str) -> set[str]:
    """Return the keyword names ``name`` accepts."""
    return set(OPTIMIZERS[name].defaults) | set(COMMON_DEFAULTS)


def build(name: str, **params: Any):
    """Return a fresh Keras optimizer for ``name`` with Keras 2.2 defaults and semantics.

    For a caller holding only some keywords; a run's config holds them all already.
    """
    return keras_optimizer(name, resolved_params(name, params))


def keras_optimizer(name: str, params: dict[str, Any]):
    """Return a fresh Keras optimizer for ``name`` from every keyword it takes (resolved).

    The defaults are merged once, where a config is validated (:func:`resolved_params`);
    an engine builds from the config's complete keywords.
    """
    from aeexp.env.backend import import_keras

    keras = import_keras()
    kwargs = dict(params)
    decay = kwargs.pop("decay")
    if decay:
        # Keras 2.2: lr / (1 + decay * iterations), iterations counted before the update.
        kwargs["learning_rate"] = keras.optimizers.schedules.InverseTimeDecay(
            kwargs["learning_rate"], decay_steps=1, decay_rate=decay
        )
    return OPTIMIZERS[name].load_class()(**kwargs)
