"""Train a group of autoencoders in lock-step, a whole epoch per compiled TensorFlow call.

Tiny dense models spend most of a ``model.fit`` epoch in per-step Python and dispatch, not
in arithmetic. Here the shuffle, every minibatch and the validation loss of an epoch run
inside one ``tf.function``; each step updates every member of the group on the same
minibatch in one XLA-compiled call. Members are independent (own model, optimizer, loss),
so a member trained in a group ends where it would have ended trained alone: each member's
arithmetic is exactly what it would be alone, only the calls are shared.

What was measured (bench/README.md has the numbers) and kept: XLA on the step, not on the
epoch loop; one batch gathered per step in the loop (gathering inside the XLA step, or a
whole shuffled epoch up front, is no faster); the batch handed to the step also transposed,
for the encoder's kernel gradient; the validation set in 2,000-row chunks; 512-bit vectors
for XLA's code on AVX-512 CPUs.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aeexp.backend import import_tensorflow

# Rows per validation call. The whole test set at once keeps (rows, 784) activations of every
# member alive: a group of 30 peaked at 2.6 GB that way, at 1.9 GB in 2,000-row chunks, and
# the chunks cost no time.
VALIDATION_ROWS = 2000


def _prefer_wide_vectors() -> None:
    """On AVX-512 CPUs, let XLA use 512-bit vectors: a training step gets ~5-8% faster.

    LLVM's default for these CPUs is 256 bits. XLA reads XLA_FLAGS once, at its first
    compilation, so this runs at import; a width the user chose is left alone.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_prefer_vector_width" in flags:
        return
    try:
        avx512 = "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: keep XLA's default
        return
    if avx512:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_prefer_vector_width=512".strip()


_prefer_wide_vectors()
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


def _dense_pair(model: Any) -> tuple[Any, Any] | None:
    """Return the encoder and decoder of a plain two-Dense-layer float32 model, else None."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if len(layers) != 2 or not all(type(layer) is keras.layers.Dense for layer in layers):
        return None
    plain = all(
        layer.use_bias
        and layer.compute_dtype == "float32"
        and not getattr(layer, "lora_enabled", False)
        and getattr(layer, "quantization_mode", None) is None
        for layer in layers
    )
    return (layers[0], layers[1]) if plain else None


@tf.custom_gradient
def _encode(x: tf.Tensor, xt: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """Return ``x @ kernel``, whose kernel gradient is ``xt @ dz`` with ``xt`` given.

    XLA folds a transpose computed inside the step into a transposed-operand dot, which is
    ~1.5x slower than a plain one; the transposed batch comes in from outside instead.
    """

    def grad(dz: tf.Tensor) -> tuple[None, None, tf.Tensor]:
        return None, None, tf.matmul(xt, dz)

    return tf.matmul(x, kernel), grad


def _reconstruct(member: Member, x: tf.Tensor, xt: tf.Tensor) -> tf.Tensor:
    """Return the member's output for ``x``, computed as Keras's Dense layers compute it."""
    layers = _dense_pair(member.model)
    if layers is None:
        return member.model(x, training=True)
    encoder, decoder = layers
    h = encoder.activation(_encode(x, xt, encoder.kernel) + encoder.bias)
    return decoder.activation(tf.matmul(h, decoder.kernel) + decoder.bias)


def _train_step(members: Sequence[Member], batch: tf.Tensor, batch_t: tf.Tensor) -> tf.Tensor:
    """Update every member on one minibatch; return each member's mean batch loss."""
    losses = []
    for member in members:
        variables = member.model.trainable_variables
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(member.loss(batch, _reconstruct(member, batch, batch_t)))
        member.optimizer.apply_gradients(
            zip(tape.gradient(loss, variables), variables, strict=True)
        )
        losses.append(loss)
    return tf.stack(losses)


def _loss_sums(members: Sequence[Member], x: tf.Tensor) -> tf.Tensor:
    """Return each member's per-sample loss summed over the rows of ``x``."""
    return tf.stack([tf.reduce_sum(m.loss(x, m.model(x))) for m in members])


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
        x_train, x_val = self.x_train, self.x_val
        n, n_val, size = int(x_train.shape[0]), int(x_val.shape[0]), self.batch_size
        full, rest = divmod(n, size)
        chunks, tail = divmod(n_val, VALIDATION_ROWS)
        train_step = tf.function(lambda b, bt: _train_step(members, b, bt), jit_compile=self.xla)
        loss_sums = tf.function(lambda x: _loss_sums(members, x), jit_compile=self.xla)

        def step(rows: tf.Tensor) -> tf.Tensor:
            batch = tf.gather(x_train, rows)
            return train_step(batch, tf.transpose(batch))

        @tf.function
        def epoch(seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            # O(n) shuffle; argsort of random keys did the same in 15x the time.
            order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=seed)
            totals = tf.zeros([len(members)])
            for i in tf.range(full):
                totals += step(order[i * size : (i + 1) * size]) * size
            if rest:
                totals += step(order[full * size :]) * rest
            val_totals = tf.zeros([len(members)])
            for j in tf.range(chunks):
                val_totals += loss_sums(x_val[j * VALIDATION_ROWS : (j + 1) * VALIDATION_ROWS])
            if tail:
                val_totals += loss_sums(x_val[chunks * VALIDATION_ROWS :])
            return totals / n, val_totals / n_val

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
