"""Train a group of autoencoders in lock-step, a whole epoch per compiled TensorFlow call.

Tiny dense models spend most of a ``model.fit`` epoch in per-step Python and dispatch, not
in arithmetic. Here the shuffle, every minibatch and the validation loss of an epoch run
inside one ``tf.function``; each step updates every member of the group on the same
minibatch in one XLA-compiled call. Members are independent (own model, optimizer, loss),
so a member trained in a group ends where it would have ended trained alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aeexp.backend import import_tensorflow

tf = import_tensorflow()


@dataclass
class Member:
    """One configuration in a group: its model, optimizer and loss ``fn(y_true, y_pred)``."""

    model: Any
    optimizer: Any
    loss: Callable[[Any, Any], Any]


@dataclass
class History:
    """Per-epoch record of one member; ``diverged_epoch`` is 1-based, None if it never did."""

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    diverged_epoch: int | None = None


EpochCallback = Callable[[int, Sequence[History]], None]


def _train_step(members: Sequence[Member], batch: tf.Tensor) -> tf.Tensor:
    """Update every member on one minibatch; return each member's mean batch loss."""
    losses = []
    for member in members:
        variables = member.model.trainable_variables
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(member.loss(batch, member.model(batch, training=True)))
        member.optimizer.apply_gradients(
            zip(tape.gradient(loss, variables), variables, strict=True)
        )
        losses.append(loss)
    return tf.stack(losses)


def _validation_losses(members: Sequence[Member], x_val: tf.Tensor) -> tf.Tensor:
    """Return each member's mean loss over the validation set."""
    return tf.stack([tf.reduce_mean(m.loss(x_val, m.model(x_val))) for m in members])


class GroupTrainer:
    """Trains members that share data, batch size, epochs and shuffle seed in lock-step."""

    def __init__(
        self,
        members: Sequence[Member],
        x_train: np.ndarray,
        x_val: np.ndarray,
        batch_size: int,
        seed: int,
        xla: bool = True,
    ) -> None:
        self.members = list(members)
        self.x_train = tf.constant(x_train, dtype=tf.float32)
        self.x_val = tf.constant(x_val, dtype=tf.float32)
        self.batch_size = batch_size
        self.seed = seed
        self.xla = xla
        for member in self.members:
            # Optimizer slots must exist before tracing: tf.function cannot create them lazily.
            member.optimizer.build(member.model.trainable_variables)

    @property
    def steps_per_epoch(self) -> int:
        """Return the number of minibatches in an epoch (the last one may be short)."""
        return math.ceil(int(self.x_train.shape[0]) / self.batch_size)

    def _compile_epoch(self, members: Sequence[Member]) -> Callable[[tf.Tensor], Any]:
        """Build the compiled epoch for ``members``: shuffle, all steps, validation."""
        n = int(self.x_train.shape[0])
        size = self.batch_size
        full, rest = divmod(n, size)
        step = tf.function(lambda batch: _train_step(members, batch), jit_compile=self.xla)
        validate = tf.function(lambda x: _validation_losses(members, x), jit_compile=self.xla)
        x_train, x_val = self.x_train, self.x_val

        @tf.function
        def epoch(seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            order = tf.argsort(tf.random.stateless_uniform([n], seed=seed))
            totals = tf.zeros([len(members)])
            for i in tf.range(full):
                batch = tf.gather(x_train, order[i * size : (i + 1) * size])
                totals += step(batch) * size
            if rest:
                totals += step(tf.gather(x_train, order[full * size :])) * rest
            return totals / n, validate(x_val)

        return epoch

    def train(self, epochs: int, on_epoch: EpochCallback | None = None) -> list[History]:
        """Train for ``epochs``; freeze a member whose loss turns NaN or infinite."""
        histories = [History() for _ in self.members]
        active = list(range(len(self.members)))
        epoch_fn = self._compile_epoch(self.members)
        for epoch in range(epochs):
            if not active:
                break
            started = time.perf_counter()
            train_losses, val_losses = epoch_fn(tf.constant([self.seed, epoch], tf.int64))
            train_losses, val_losses = train_losses.numpy(), val_losses.numpy()
            seconds = time.perf_counter() - started
            diverged = []
            for slot, index in enumerate(active):
                history = histories[index]
                history.loss.append(float(train_losses[slot]))
                history.val_loss.append(float(val_losses[slot]))
                history.seconds.append(seconds)
                if not (np.isfinite(train_losses[slot]) and np.isfinite(val_losses[slot])):
                    history.diverged_epoch = epoch + 1
                    diverged.append(index)
            if diverged:
                active = [i for i in active if i not in diverged]
                if active:
                    epoch_fn = self._compile_epoch([self.members[i] for i in active])
            if on_epoch is not None:
                on_epoch(epoch + 1, histories)
        return histories


def enable_determinism() -> None:
    """Make TensorFlow ops deterministic so a config and seed always give the same numbers."""
    tf.config.experimental.enable_op_determinism()
