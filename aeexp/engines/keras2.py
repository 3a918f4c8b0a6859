"""Keras 3 optimizers patched to apply Keras 2.2's update rules where the two differ.

Only the arithmetic of a step changes; state, serialisation and the training loop are
Keras 3's own. Rules are those of Keras 2.2.4 (``keras/optimizers.py``).

The classes are made when one is first asked for (``keras2.Nadam``), not when this module
is imported: subclassing Keras's classes imports Keras, which fixes the process's backend.
"""

from __future__ import annotations

import functools
from typing import Any

from aeexp.env.backend import import_keras
from aeexp.registry.vocab import EPSILON

# Made by _classes() on first use.
PORTED = ("Adagrad", "Nadam", "RMSprop")


@functools.cache
def _classes() -> dict[str, type]:
    """Return the ported optimizer classes by name, made once."""
    return _make_classes()


def _make_classes() -> dict[str, type]:
    """Return new ported optimizer classes by name, importing Keras (quietly) to make them.

    Apart from the cached :func:`_classes` so that mutation testing (``make mutate``; mutmut
    leaves decorated functions alone) measures the ports.
    """
    keras = import_keras()
    ops = keras.ops

    class Adagrad(keras.optimizers.Adagrad):
        """Adagrad with Keras 2.2's zero initial accumulator and epsilon outside the root."""

        def __init__(self, learning_rate=0.01, epsilon=EPSILON, **kwargs):
            super().__init__(
                learning_rate, initial_accumulator_value=0.0, epsilon=epsilon, **kwargs
            )

        def update_step(self, gradient, variable, learning_rate):
            """Apply a = a + g^2; p = p - lr * g / (sqrt(a) + eps)."""
            lr = ops.cast(learning_rate, variable.dtype)
            gradient = ops.cast(gradient, variable.dtype)
            accumulator = self._accumulators[self._get_variable_index(variable)]
            self.assign_add(accumulator, ops.square(gradient))
            self.assign_sub(variable, lr * gradient / (ops.sqrt(accumulator) + self.epsilon))

    class RMSprop(keras.optimizers.RMSprop):
        """RMSprop with Keras 2.2's epsilon outside the square root."""

        def update_step(self, gradient, variable, learning_rate):
            """Apply a = rho a + (1 - rho) g^2; p = p - lr * g / (sqrt(a) + eps)."""
            lr = ops.cast(learning_rate, variable.dtype)
            gradient = ops.cast(gradient, variable.dtype)
            velocity = self._velocities[self._get_variable_index(variable)]
            self.assign(velocity, self.rho * velocity + (1 - self.rho) * ops.square(gradient))
            self.assign_sub(variable, lr * gradient / (ops.sqrt(velocity) + self.epsilon))

    class Nadam(keras.optimizers.Nadam):
        """Nadam with Keras 2.2's schedule mu_t = beta_1 (1 - 0.5 * 0.96^(t * schedule_decay)).

        Keras 3 hard-codes the exponent as t (schedule_decay = 1); Keras 2.2 defaulted to 0.004.
        """

        def __init__(self, learning_rate=0.002, schedule_decay=0.004, **kwargs):
            super().__init__(learning_rate, **kwargs)
            self.schedule_decay = schedule_decay

        def _momentum(self, step, dtype):
            decay = ops.cast(0.96, dtype)
            return self.beta_1 * (1.0 - 0.5 * ops.power(decay, step * self.schedule_decay))

        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            dtype = self._u_product.dtype
            step = ops.cast(self.iterations + 1, dtype)
            self.assign(self._u_product, self._u_product * self._momentum(step, dtype))
            # Skip Keras 3 Nadam's own schedule update and go straight to the generic step.
            super(keras.optimizers.Nadam, self)._backend_update_step(
                grads, trainable_variables, learning_rate
            )

        def update_step(self, gradient, variable, learning_rate):
            """Apply Keras 2.2's Nadam step (Dozat 2015) with the configurable schedule."""
            dtype = variable.dtype
            lr = ops.cast(learning_rate, dtype)
            gradient = ops.cast(gradient, dtype)
            step = ops.cast(self.iterations + 1, dtype)
            u_t = self._momentum(step, dtype)
            u_next = self._momentum(step + 1, dtype)
            u_product = ops.cast(self._u_product, dtype)
            m = self._momentums[self._get_variable_index(variable)]
            v = self._velocities[self._get_variable_index(variable)]
            self.assign_add(m, (gradient - m) * (1 - self.beta_1))
            self.assign_add(v, (ops.square(gradient) - v) * (1 - self.beta_2))
            m_hat = u_next * m / (1 - u_product * u_next) + (1 - u_t) * gradient / (1 - u_product)
            v_hat = v / (1 - ops.power(ops.cast(self.beta_2, dtype), step))
            self.assign_sub(variable, lr * m_hat / (ops.sqrt(v_hat) + self.epsilon))

        def get_config(self):
            """Include schedule_decay so the optimizer round-trips."""
            return {**super().get_config(), "schedule_decay": self.schedule_decay}

    made = {"Adagrad": Adagrad, "RMSprop": RMSprop, "Nadam": Nadam}
    for name, cls in made.items():
        # Named as if defined at the top: found by module and name, pickled, saved.
        cls.__module__, cls.__qualname__ = __name__, name
    return made


def __getattr__(name: str) -> Any:
    """Return a ported optimizer class (``Adagrad``, ``RMSprop``, ``Nadam``), made on first use."""
    if name in PORTED:
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
