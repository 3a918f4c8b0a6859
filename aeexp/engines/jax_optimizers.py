"""Keras 2.2's optimizers as pure JAX functions, step for step as the TensorFlow path runs them.

The TensorFlow engine trains with Keras 3's classes where Keras 3 kept Keras 2.2's rule
(SGD, Adadelta, Adam, Adamax) and with aeexp's ports where it did not (``aeexp.engines.keras2``:
Adagrad, RMSprop, Nadam). Each rule below is that code's arithmetic in that code's order, so
the two backends differ only in how XLA rounds, not in what they compute. Every float
hyperparameter is an array (so members that differ only in, say, learning rate can be
stacked and vmapped); what changes the computation's shape is the static :func:`structure`.

Constants follow Keras: a Python float meeting a float32 tensor becomes float32, so
``1 - beta_1`` is rounded once from float64 (``1 - 0.9`` is float32 0.1, not
``1 - float32(0.9)``), while ``beta_1 ** t`` is taken in float32.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from aeexp.env.backend import LazyModule, import_jax

# jax.numpy, imported on first use (with aeexp's settings), not when this module is.
jnp = LazyModule(lambda: import_jax().numpy)

State = dict[str, Any]  # "iterations", "slots" (name -> one array per weight), extras
Hyper = Mapping[str, Any]  # float32 scalars (or, stacked, float32 vectors)


def _f32(value: float) -> np.float32:
    return np.float32(value)


@dataclass(frozen=True)
class Rule:
    """One optimizer: its per-weight slots, float32 constants and per-weight update."""

    slots: Callable[[tuple], tuple[str, ...]]  # from the static structure
    constants: Callable[[Mapping[str, Any]], dict[str, np.float32]]
    update: Callable[..., tuple[Any, dict[str, Any]]]  # (p, g, slots, h, t, lr, static, extra)


def _sgd(p, g, s, h, t, lr, static, extra):
    has_momentum, nesterov = static
    if not has_momentum:
        return p - g * lr, s
    m = s["momentum"] * h["momentum"] - g * lr
    if nesterov:
        return p + (m * h["momentum"] - g * lr), {"momentum": m}
    return p + m, {"momentum": m}


def _rmsprop(p, g, s, h, t, lr, static, extra):
    v = h["rho"] * s["velocity"] + h["one_minus_rho"] * jnp.square(g)
    return p - lr * g / (jnp.sqrt(v) + h["epsilon"]), {"velocity": v}


def _adagrad(p, g, s, h, t, lr, static, extra):
    a = s["accumulator"] + jnp.square(g)
    return p - lr * g / (jnp.sqrt(a) + h["epsilon"]), {"accumulator": a}


def _adadelta(p, g, s, h, t, lr, static, extra):
    def rms(x):
        return jnp.sqrt(x + h["epsilon"])

    grad_acc = h["rho"] * s["accumulated_grad"] + h["one_minus_rho"] * jnp.square(g)
    delta = -(rms(s["accumulated_delta_var"]) * g / rms(grad_acc))
    delta_acc = h["rho"] * s["accumulated_delta_var"] + h["one_minus_rho"] * jnp.square(delta)
    return p + lr * delta, {"accumulated_grad": grad_acc, "accumulated_delta_var": delta_acc}


def _adam(p, g, s, h, t, lr, static, extra):
    (amsgrad,) = static
    alpha = lr * jnp.sqrt(1 - jnp.power(h["beta_2"], t)) / (1 - jnp.power(h["beta_1"], t))
    m = s["m"] + (g - s["m"]) * h["one_minus_beta_1"]
    v = s["v"] + (jnp.square(g) - s["v"]) * h["one_minus_beta_2"]
    slots = {"m": m, "v": v}
    if amsgrad:
        v = slots["vhat"] = jnp.maximum(s["vhat"], v)
    return p - m * alpha / (jnp.sqrt(v) + h["epsilon"]), slots


def _adamax(p, g, s, h, t, lr, static, extra):
    m = s["m"] + (g - s["m"]) * h["one_minus_beta_1"]
    u = jnp.maximum(h["beta_2"] * s["u"], jnp.abs(g))
    step = lr * m / ((1 - jnp.power(h["beta_1"], t)) * (u + h["epsilon"]))
    return p - step, {"m": m, "u": u}


def _nadam_momentum(h: Hyper, t: Any) -> Any:
    """Return Keras 2.2's mu_t = beta_1 (1 - 0.5 * 0.96^(t * schedule_decay))."""
    return h["beta_1"] * (1.0 - 0.5 * jnp.power(_f32(0.96), t * h["schedule_decay"]))


def _nadam(p, g, s, h, t, lr, static, extra):
    u_t, u_next, u_product = _nadam_momentum(h, t), _nadam_momentum(h, t + 1), extra
    m = s["m"] + (g - s["m"]) * h["one_minus_beta_1"]
    v = s["v"] + (jnp.square(g) - s["v"]) * h["one_minus_beta_2"]
    m_hat = u_next * m / (1 - u_product * u_next) + (1 - u_t) * g / (1 - u_product)
    v_hat = v / (1 - jnp.power(h["beta_2"], t))
    return p - lr * m_hat / (jnp.sqrt(v_hat) + h["epsilon"]), {"m": m, "v": v}


def _complements(*keys: str) -> Callable[[Mapping[str, Any]], dict[str, np.float32]]:
    """Return a constants function: each key as float32, and ``1 - key`` rounded from float64."""

    def constants(params: Mapping[str, Any]) -> dict[str, np.float32]:
        found = {key: _f32(params[key]) for key in keys}
        found |= {f"one_minus_{key}": _f32(1.0 - params[key]) for key in keys if key != "epsilon"}
        return found

    return constants


RULES: dict[str, Rule] = {
    "sgd": Rule(
        lambda static: ("momentum",) if static[0] else (),
        lambda params: {"momentum": _f32(params["momentum"])},
        _sgd,
    ),
    "rmsprop": Rule(lambda _: ("velocity",), _complements("rho", "epsilon"), _rmsprop),
    "adagrad": Rule(lambda _: ("accumulator",), _complements("epsilon"), _adagrad),
    "adadelta": Rule(
        lambda _: ("accumulated_grad", "accumulated_delta_var"),
        _complements("rho", "epsilon"),
        _adadelta,
    ),
    "adam": Rule(
        lambda static: ("m", "v", "vhat") if static[0] else ("m", "v"),
        _complements("beta_1", "beta_2", "epsilon"),
        _adam,
    ),
    "adamax": Rule(lambda _: ("m", "u"), _complements("beta_1", "beta_2", "epsilon"), _adamax),
    "nadam": Rule(
        lambda _: ("m", "v"),
        lambda params: {
            **_complements("beta_1", "beta_2", "epsilon")(params),
            "schedule_decay": _f32(params["schedule_decay"]),
        },
        _nadam,
    ),
}


def structure(name: str, params: Mapping[str, Any]) -> tuple:
    """Return what changes the computation, not just its numbers: members must share it to stack.

    SGD with momentum 0 is Keras's plain step (no velocity slot); Nesterov and AMSGrad are
    different formulas. ``params`` holds every keyword (a validated config's, whose defaults
    are merged: :func:`aeexp.registry.optimizers.resolved_params`).
    """
    if name == "sgd":
        return (params["momentum"] != 0, bool(params["nesterov"]))
    if name == "adam":
        return (bool(params["amsgrad"]),)
    return ()


def hyperparameters(name: str, params: Mapping[str, Any]) -> dict[str, np.float32]:
    """Return the float32 constants of one optimizer (every keyword given): rate, decay, rule's."""
    return {
        "learning_rate": _f32(params["learning_rate"]),
        "decay": _f32(params["decay"]),
        **RULES[name].constants(params),
    }


def init(name: str, static: tuple, weights: list[Any]) -> State:
    """Return a fresh optimizer state for ``weights``: zero slots, iteration 0."""
    slots = {slot: [jnp.zeros_like(w) for w in weights] for slot in RULES[name].slots(static)}
    state: State = {"iterations": jnp.zeros((), jnp.int32), "slots": slots}
    if name == "nadam":
        state["u_product"] = jnp.ones((), jnp.float32)  # Keras 3 Nadam's _u_product
    return state


def apply(
    name: str, static: tuple, state: State, hyper: Hyper, grads: list[Any], weights: list[Any]
) -> tuple[list[Any], State]:
    """Return the weights and state after one step, as Keras's ``apply_gradients`` leaves them."""
    iterations = state["iterations"]
    # Keras 2.2's decay is lr / (1 + decay * iterations), iterations counted before the step
    # (InverseTimeDecay with decay_steps 1); with decay 0 that is lr itself, bit for bit.
    lr = hyper["learning_rate"] / (1 + hyper["decay"] * iterations.astype(jnp.float32))
    t = (iterations + 1).astype(jnp.float32)
    extra = None
    new_state: State = {"iterations": iterations + 1}
    if name == "nadam":
        # aeexp.engines.keras2.Nadam: the momentum product is advanced once per step, before
        # the weights.
        extra = new_state["u_product"] = state["u_product"] * _nadam_momentum(hyper, t)
    rule = RULES[name]
    new_weights, new_slots = [], {slot: [] for slot in rule.slots(static)}
    for index, (p, g) in enumerate(zip(weights, grads, strict=True)):
        own = {slot: values[index] for slot, values in state["slots"].items()}
        p, own = rule.update(p, g, own, hyper, t, lr, static, extra)
        new_weights.append(p)
        for slot, value in own.items():
            new_slots[slot].append(value)
    new_state["slots"] = new_slots
    return new_weights, new_state
