"""Train a group of autoencoders in lock-step, a whole epoch per compiled TensorFlow call.

Tiny dense models spend most of a ``model.fit`` epoch in per-step Python and dispatch, not
in arithmetic. Here an epoch is one ``tf.function`` call: it shuffles, runs every minibatch
step in a single XLA-compiled loop (no per-step launch), then computes the validation loss
in compiled 1,000-row chunks. Each step updates every member of the group on the same
minibatch. Members are independent (own model, optimizer, loss), so a member trained in a
group ends where it would have ended trained alone, bit for bit: its weights, and its losses
too, since each member's losses are accumulated as its own scalars (a vector over the group
once rounded a member's last bit by the group's width).

Importing this module imports no TensorFlow: ``tf`` is imported on its first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aeexp.config.run import SHARED_INIT, RunConfig

# Re-exported: engine.History, engine.EpochCallback, engine.StopCallback and
# engine.VALIDATION_CHUNK stay public.
from aeexp.engines.base import (
    VALIDATION_CHUNK,
    EpochCallback,
    History,
    StopCallback,
    train_lockstep,
)
from aeexp.engines.model import build_autoencoder, shared_order
from aeexp.env.backend import LazyModule, import_tensorflow
from aeexp.registry import losses, optimizers

__all__ = [
    "ENGINE",
    "VALIDATION_CHUNK",
    "EpochCallback",
    "GroupTrainer",
    "History",
    "Member",
    "StopCallback",
    "TensorFlowEngine",
    "enable_determinism",
    "reconstruct",
]

tf = LazyModule(import_tensorflow)


@dataclass
class Member:
    """One configuration in a group: its model, optimizer and loss ``fn(y_true, y_pred)``."""

    model: Any
    optimizer: Any
    loss: Callable[[Any, Any], Any]


def _train_step(members: Sequence[Member], batch: tf.Tensor) -> list[tf.Tensor]:
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
    return losses


def _validation_sums(members: Sequence[Member], rows: tf.Tensor) -> list[tf.Tensor]:
    """Return each member's summed per-sample loss over ``rows``, one scalar per member."""
    return [tf.reduce_sum(m.loss(rows, m.model(rows))) for m in members]


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
        init: str | None = None,
    ) -> None:
        self.members = list(members)
        self.x_train = tf.constant(x_train, dtype=tf.float32)
        self.x_val = tf.constant(x_val, dtype=tf.float32)
        self.batch_size = batch_size
        self.seed = seed
        self.xla = xla
        # train.init: shared: each epoch's order comes from NumPy (model.shared_order).
        self.shared = init == SHARED_INIT
        for member in self.members:
            # Optimizer slots must exist before tracing: tf.function cannot create them lazily.
            member.optimizer.build(member.model.trainable_variables)

    def _compile_epoch(self, members: Sequence[Member]) -> Callable[[tf.Tensor], Any]:
        """Build the compiled epoch for ``members``: shuffle, all steps, validation.

        It takes the epoch's ``[seed, epoch]``, or with ``train.init: shared`` its order.
        """
        n = int(self.x_train.shape[0])
        size = self.batch_size
        full, rest = divmod(n, size)
        x_train, x_val = self.x_train, self.x_val

        @tf.function(jit_compile=self.xla)
        def steps(batches: tf.Tensor, last: tf.Tensor) -> tf.Tensor:
            totals = [tf.zeros([]) for _ in members]
            for i in tf.range(full):
                step = _train_step(members, batches[i])
                totals = [t + s * size for t, s in zip(totals, step, strict=True)]
            if rest:
                step = _train_step(members, last)
                totals = [t + s * rest for t, s in zip(totals, step, strict=True)]
            return tf.stack([t / n for t in totals])

        chunk_sums = tf.function(lambda rows: _validation_sums(members, rows), jit_compile=self.xla)
        n_val = int(x_val.shape[0])
        chunks, last_chunk = divmod(n_val, VALIDATION_CHUNK)

        def validate() -> tf.Tensor:
            # A graph loop of compiled calls: inside one XLA program, chunking saved no memory.
            totals = [tf.zeros([]) for _ in members]
            for i in tf.range(chunks):
                sums = chunk_sums(x_val[i * VALIDATION_CHUNK : (i + 1) * VALIDATION_CHUNK])
                totals = [t + s for t, s in zip(totals, sums, strict=True)]
            if last_chunk:
                sums = chunk_sums(x_val[chunks * VALIDATION_CHUNK :])
                totals = [t + s for t, s in zip(totals, sums, strict=True)]
            return tf.stack([t / n_val for t in totals])

        @tf.function
        def epoch(seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            order = tf.argsort(tf.random.stateless_uniform([n], seed=seed))
            # Gathered once here, not per step inside the XLA loop: a per-step gather from the
            # training set there made an epoch ~200x slower (46 s instead of 0.23 s).
            batches = tf.gather(x_train, tf.reshape(order[: full * size], [full, size]))
            return steps(batches, tf.gather(x_train, order[full * size :])), validate()

        @tf.function
        def epoch_in_order(order: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            batches = tf.gather(x_train, tf.reshape(order[: full * size], [full, size]))
            return steps(batches, tf.gather(x_train, order[full * size :])), validate()

        return epoch_in_order if self.shared else epoch

    def train(
        self, epochs: int, on_epoch: EpochCallback | None = None, stop: StopCallback | None = None
    ) -> list[History]:
        """Train for ``epochs``; freeze a member whose loss turns NaN or that ``stop`` names.

        ``stop`` is asked after every epoch but the last (a member that trained every epoch
        is finished, not stopped) with the members still training; those it returns are
        frozen like a diverged member, and the others go on with the same bits
        (:func:`aeexp.engines.base.train_lockstep`).
        """
        self._epoch_fn = self._compile_epoch(self.members)
        return train_lockstep(self, len(self.members), epochs, on_epoch, stop)

    def run_epoch(self, active: Sequence[int], epoch: int) -> Mapping[int, tuple[float, float]]:
        """Train the members ``active`` one epoch; return each one's mean losses as NumPy."""
        if self.shared:
            given = tf.constant(shared_order(self.seed, epoch, int(self.x_train.shape[0])))
        else:
            given = tf.constant([self.seed, epoch], tf.int64)
        train_losses, val_losses = self._epoch_fn(given)
        train_losses, val_losses = train_losses.numpy(), val_losses.numpy()
        return {i: (train_losses[s], val_losses[s]) for s, i in enumerate(active)}

    def freeze(self, frozen: Sequence[int], active: Sequence[int]) -> None:
        """Recompile the epoch for the members ``active``, if any are left."""
        if active:
            # Recompiled for the survivors: each member's own ops are unchanged, so its bits
            # do not depend on who else is still training.
            self._epoch_fn = self._compile_epoch([self.members[i] for i in active])


def reconstruct(model: Any, images: np.ndarray) -> np.ndarray:
    """Return ``model``'s float32 reconstructions of ``images`` through the compiled path.

    Not an eager call: eager matrix products (oneDNN) split their work by the thread count,
    so the same model gave other bits on a 1-thread Ray worker than in a 2-thread driver.
    The XLA program is the one the validation loss runs, whatever the thread count.
    """
    forward = tf.function(lambda rows: model(rows, training=False), jit_compile=True)
    x = tf.constant(images, dtype=tf.float32)
    parts = [
        forward(x[start : start + VALIDATION_CHUNK]).numpy()
        for start in range(0, int(x.shape[0]), VALIDATION_CHUNK)
    ]
    return np.concatenate(parts) if parts else np.zeros(images.shape, np.float32)


def enable_determinism() -> None:
    """Make TensorFlow ops deterministic so a config and seed always give the same numbers."""
    tf.config.experimental.enable_op_determinism()


def build_member(config: RunConfig) -> Member:
    """Return a fresh member for ``config``: its seeded model, Keras 2.2 optimizer and loss."""
    return Member(
        model=build_autoencoder(config.model, config.seed, config.train.init),
        # The config's keywords are complete (defaults merged when it was validated).
        optimizer=optimizers.keras_optimizer(config.optimizer.name, config.optimizer.params),
        loss=losses.get(config.loss.name, **config.loss.params()),
    )


def devices() -> list[dict[str, str]]:
    """Return every device TensorFlow sees: its type, name and, for a GPU, its model."""
    found = []
    for device in tf.config.list_physical_devices():
        entry = {"type": device.device_type, "name": device.name}
        if device.device_type == "GPU":
            details = tf.config.experimental.get_device_details(device)
            entry["model"] = str(details.get("device_name", "unknown GPU"))
        found.append(entry)
    return found


class TensorFlowEngine:
    """The TensorFlow backend (:class:`aeexp.engines.base.Engine`)."""

    name = "tensorflow"
    label = "TensorFlow"
    packages = ("tensorflow",)

    def worker_setup(self, threads: int) -> None:
        """Size TensorFlow's thread pools to a worker's CPUs, before TensorFlow runs anything."""
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

    def enable_determinism(self) -> None:
        """Make TensorFlow's ops deterministic."""
        enable_determinism()

    def build_member(self, config: RunConfig) -> Member:
        """Return a fresh member for ``config``."""
        return build_member(config)

    def group_trainer(
        self,
        members: Sequence[Member],
        x_train: np.ndarray,
        x_val: np.ndarray,
        batch_size: int,
        seed: int,
        xla: bool = True,
        init: str | None = None,
    ) -> GroupTrainer:
        """Return the trainer of ``members``; ``xla`` compiles each epoch with XLA."""
        return GroupTrainer(members, x_train, x_val, batch_size, seed, xla=xla, init=init)

    def reconstruct(self, model: Any, images: np.ndarray) -> np.ndarray:
        """Return ``model``'s reconstructions through the compiled path."""
        return reconstruct(model, images)

    def versions(self) -> dict[str, str]:
        """Return TensorFlow's version (a TensorFlow run records no backend name: the default)."""
        return {"tensorflow": tf.__version__}

    def devices(self) -> list[dict[str, str]]:
        """Return every device TensorFlow sees."""
        return devices()


ENGINE = TensorFlowEngine()
