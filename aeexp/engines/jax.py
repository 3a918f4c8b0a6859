"""Train a group of autoencoders in lock-step on JAX, a whole epoch per compiled call.

The JAX counterpart of :mod:`aeexp.engines.tensorflow`, with the same interface and bookkeeping. One
``jax.jit`` call per epoch shuffles, runs every minibatch step in a ``lax.scan`` and
computes the validation loss in 1,000-row chunks. The Keras model (JAX backend) gives the
seeded initial weights and is what gets saved; training runs its two Dense layers as pure
functions (``activation(x @ kernel + bias)``, Keras's activations), aeexp's losses through
``keras.ops``, and Keras 2.2's optimizer rules (:mod:`aeexp.engines.jax_optimizers`).

One departure from autodiff's defaults: a bias gradient (a sum over the batch's rows) is
taken as a product with a row of ones. XLA's CPU reduction over rows splits its work by
the number of CPUs the process may use, so the same run gave other bits under ``taskset -c
0``; as a product, like the kernel gradients, it does not.

Members are arranged in *stacks*: members sharing a loss, activations, code size and
optimizer (up to its static structure) are vmapped together, their weights, optimizer
state and float hyperparameters (learning rate, decay, betas...) stacked along a leading
axis; the stacks loop inside the compiled call. A stack always has the same width, padded
with frozen copies, because XLA's reductions round differently at different widths (a
member's bias gradient came out other at widths 4 and 8 than at 1-3 on a CPU): at a fixed
width a member's bits depend on neither its slot nor its neighbours. The width is 1 on a
CPU, where vmap only slowed a group down (a plain loop of members was fastest), and
:data:`STACK_WIDTH` on a GPU or TPU, where one small product per member leaves the device
idle and padding costs next to nothing.

Importing this module imports neither JAX nor Keras and switches no backend: the first use
of ``jax``, ``jnp`` or ``keras`` below makes JAX this process's Keras backend and imports them.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aeexp.config.run import SHARED_INIT, ModelConfig, RunConfig
from aeexp.engines import jax_optimizers
from aeexp.engines.base import (
    VALIDATION_CHUNK,
    EpochCallback,
    History,
    StopCallback,
    train_lockstep,
)
from aeexp.engines.model import build_autoencoder, shared_order
from aeexp.env.backend import LazyModule, import_jax, import_keras, use
from aeexp.registry import losses

NAME = "jax"


def _framework(load: Callable[[], Any]) -> Callable[[], Any]:
    """Return ``load`` preceded by making JAX this process's Keras backend."""

    def loaded() -> Any:
        use(NAME)
        return load()

    return loaded


jax = LazyModule(_framework(import_jax))
jnp = LazyModule(_framework(lambda: import_jax().numpy))
keras = LazyModule(_framework(import_keras))

# Members per vmapped stack on an accelerator. The thesis-tuned grid puts ~20 learning
# rates of one cell in a group of 30: three stacks of 8. A lone member pays 8x the
# arithmetic, which a GPU spends in the time one member's kernels take to launch.
STACK_WIDTH = 8
# Compiled epochs kept for reuse: a sweep's seeds train groups of one shape one after another.
_CACHED_EPOCHS = 8


@dataclass
class Member:
    """One configuration in a group: its Keras model (JAX backend), loss and optimizer."""

    model: Any
    shape: ModelConfig  # code size and activations: what the training forward needs
    loss: Callable[[Any, Any], Any]
    optimizer: str
    optimizer_params: dict[str, Any]
    stack_key: Hashable  # what members must share to be vmapped together

    @property
    def static(self) -> tuple:
        """Return the optimizer's static structure (see :func:`jax_optimizers.structure`)."""
        return jax_optimizers.structure(self.optimizer, self.optimizer_params)


def build_member(config: RunConfig) -> Member:
    """Return a fresh member for ``config``: its seeded model, loss and optimizer settings."""
    use(NAME)  # before the model imports Keras
    params = dict(config.optimizer.params)  # every keyword: merged when the config was validated
    loss_params = config.loss.params()
    key = (
        config.model,
        config.loss.name,
        tuple(sorted(loss_params.items())),
        config.optimizer.name,
        jax_optimizers.structure(config.optimizer.name, params),
    )
    return Member(
        model=build_autoencoder(config.model, config.seed, config.train.init),
        shape=config.model,
        loss=losses.get(config.loss.name, **loss_params),
        optimizer=config.optimizer.name,
        optimizer_params=params,
        stack_key=key,
    )


def default_stack_width() -> int:
    """Return 1 on a CPU and :data:`STACK_WIDTH` on an accelerator (see the module's notes)."""
    return 1 if jax.default_backend() == "cpu" else STACK_WIDTH


@dataclass
class Stack:
    """Members trained as one vmapped unit: indices into the group, -1 for a padding slot."""

    slots: list[int]
    key: Hashable  # the members' shared stack key
    shape: ModelConfig  # the members' shared code size and activations
    loss: Callable[[Any, Any], Any]
    optimizer: str
    static: tuple

    @property
    def signature(self) -> tuple:
        """Return what the compiled epoch depends on: structure, never values."""
        return (self.key, len(self.slots))


def arrange(members: Sequence[Member], width: int) -> list[Stack]:
    """Return the group's stacks: members sharing a stack key, ``width`` at a time, padded."""
    by_key: dict[Hashable, list[int]] = {}
    for index, member in enumerate(members):
        by_key.setdefault(member.stack_key, []).append(index)
    stacks = []
    for indices in by_key.values():
        for start in range(0, len(indices), width):
            chunk = indices[start : start + width]
            first = members[chunk[0]]
            slots = chunk + [-1] * (width - len(chunk))
            shape, loss, optimizer = first.shape, first.loss, first.optimizer
            stacks.append(Stack(slots, first.stack_key, shape, loss, optimizer, first.static))
    return stacks


def _stacked(values: Sequence[Any]) -> Any:
    """Stack a sequence of equal pytrees along a new leading axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *values)


def _member_state(member: Member) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Return a member's initial weights, optimizer state and hyperparameters."""
    weights = [jnp.asarray(v.value) for v in member.model.trainable_variables]
    static = member.static
    state = jax_optimizers.init(member.optimizer, static, weights)
    hyper = jax_optimizers.hyperparameters(member.optimizer, member.optimizer_params)
    return weights, state, {k: jnp.asarray(v) for k, v in hyper.items()}


def _add_bias_forward(x: Any, bias: Any) -> tuple[Any, None]:
    return x + bias, None


def _add_bias_backward(_: None, grad: Any) -> tuple[Any, Any]:
    return grad, (jnp.ones((1, grad.shape[0]), grad.dtype) @ grad)[0]


@functools.cache
def _bias_adder() -> Callable[[Any, Any], Any]:
    """Return ``add(x, bias)``, whose bias gradient is a product (see the module's notes).

    Made on first use, not at import: ``jax.custom_vjp`` needs JAX.
    """

    @jax.custom_vjp
    def add(x: Any, bias: Any) -> Any:
        return x + bias

    add.defvjp(_add_bias_forward, _add_bias_backward)
    return add


def forward(shape: ModelConfig, weights: Sequence[Any], x: Any) -> Any:
    """Return the autoencoder's reconstruction of ``x``: Keras's Dense layers, written out."""
    _add_bias = _bias_adder()
    kernel1, bias1, kernel2, bias2 = weights
    encoder = keras.activations.get(shape.encoder_activation)
    decoder = keras.activations.get(shape.decoder_activation)
    return decoder(_add_bias(encoder(_add_bias(x @ kernel1, bias1)) @ kernel2, bias2))


def _stack_step(stack: Stack) -> Callable[..., Any]:
    """Return ``step(weights, state, hyper, batch)`` for the whole stack, vmapped if wide."""
    shape, loss_fn, name, static = stack.shape, stack.loss, stack.optimizer, stack.static

    def member_step(weights, state, hyper, batch):
        def batch_loss(w):
            return jnp.mean(loss_fn(batch, forward(shape, w, batch)))

        loss, grads = jax.value_and_grad(batch_loss)(weights)
        weights, state = jax_optimizers.apply(name, static, state, hyper, grads, weights)
        return weights, state, loss

    if len(stack.slots) > 1:
        return jax.vmap(member_step, in_axes=(0, 0, 0, None))

    def single(weights, state, hyper, batch):
        # A width of 1 runs unbatched: vmap of one rounds differently from a plain call.
        squeeze = jax.tree.map(lambda a: a[0], (weights, state, hyper))
        out = member_step(*squeeze, batch)
        return jax.tree.map(lambda a: a[None], out)

    return single


def _stack_sums(stack: Stack) -> Callable[[Any, Any], Any]:
    """Return ``sums(weights, rows)``: each member's summed per-sample loss over ``rows``."""
    shape, loss_fn = stack.shape, stack.loss

    def member_sum(weights, rows):
        return jnp.sum(loss_fn(rows, forward(shape, weights, rows)))

    if len(stack.slots) > 1:
        return jax.vmap(member_sum, in_axes=(0, None))
    return lambda weights, rows: member_sum(jax.tree.map(lambda a: a[0], weights), rows)[None]


def _frozen(active: Any, new: Any, old: Any) -> Any:
    """Keep ``old`` where a slot is inactive (diverged or padding), take ``new`` elsewhere."""

    def pick(n, o):
        mask = active.reshape(active.shape + (1,) * (n.ndim - active.ndim))
        return jnp.where(mask, n, o)

    return jax.tree.map(pick, new, old)


def compile_epoch(
    stacks: Sequence[Stack], n_train: int, n_val: int, batch_size: int
) -> Callable[..., Any]:
    """Return the jitted epoch: ``(states, hypers, actives, key, epoch, x_train, x_val)``.

    It returns the new states and, per stack, each slot's mean training and validation loss.
    A keyword ``order`` (``train.init: shared``) is the epoch's order, in place of the
    permutation that ``key`` and ``epoch`` draw (then unused); without it, the default trace.
    """
    full, rest = divmod(n_train, batch_size)
    chunks, last_chunk = divmod(n_val, VALIDATION_CHUNK)
    steps = [_stack_step(s) for s in stacks]
    sums = [_stack_sums(s) for s in stacks]

    def train_on(states, hypers, actives, totals, batch, rows):
        new_states, new_totals = [], []
        for step, state, hyper, active, total in zip(
            steps, states, hypers, actives, totals, strict=True
        ):
            weights, opt_state, loss = step(*state, hyper, batch)
            new_states.append(_frozen(active, (weights, opt_state), state))
            new_totals.append(total + loss * rows)
        return new_states, new_totals

    def validate(states, rows):
        return [total(state[0], rows) for total, state in zip(sums, states, strict=True)]

    def epoch(states, hypers, actives, key, index, x_train, x_val, order=None):
        if order is None:
            order = jax.random.permutation(jax.random.fold_in(key, index), n_train)
        # Gathered once, not per step: the scan then reads contiguous batches.
        batches = x_train[order[: full * batch_size]].reshape(full, batch_size, -1)
        zeros = [jnp.zeros(len(s.slots), jnp.float32) for s in stacks]

        def body(carry, batch):
            states, totals = carry
            return train_on(states, hypers, actives, totals, batch, batch_size), None

        (states, totals), _ = jax.lax.scan(body, (states, zeros), batches)
        if rest:
            last = x_train[order[full * batch_size :]]
            states, totals = train_on(states, hypers, actives, totals, last, rest)
        train_losses = [t / n_train for t in totals]

        def chunk_body(totals, rows):
            return [t + s for t, s in zip(totals, validate(states, rows), strict=True)], None

        val_totals = zeros
        if chunks:
            head = x_val[: chunks * VALIDATION_CHUNK].reshape(chunks, VALIDATION_CHUNK, -1)
            val_totals, _ = jax.lax.scan(chunk_body, val_totals, head)
        if last_chunk:
            val_totals, _ = chunk_body(val_totals, x_val[chunks * VALIDATION_CHUNK :])
        return states, train_losses, [t / n_val for t in val_totals]

    return jax.jit(epoch)


_epochs: collections.OrderedDict[tuple, Callable[..., Any]] = collections.OrderedDict()


def _cached_epoch(stacks: Sequence[Stack], n_train: int, n_val: int, size: int) -> Callable:
    """Return the compiled epoch for this shape of group, compiling it only once."""
    key = (tuple(s.signature for s in stacks), n_train, n_val, size)
    if key not in _epochs:
        _epochs[key] = compile_epoch(stacks, n_train, n_val, size)
        while len(_epochs) > _CACHED_EPOCHS:
            _epochs.popitem(last=False)
    _epochs.move_to_end(key)
    return _epochs[key]


def shuffle_key(seed: int) -> Any:
    """Return the JAX key a run seed shuffles with (every bit of a 63-bit seed counts)."""
    # jax.random.key(seed) keeps only 32 bits without x64; SeedSequence takes them all, and
    # its spawn key keeps this stream apart from the layer initialisers' (model.layer_seeds).
    words = np.random.SeedSequence(seed, spawn_key=(1,)).generate_state(2, dtype=np.uint32)
    return jax.random.wrap_key_data(jnp.asarray(words, jnp.uint32))


class GroupTrainer:
    """Trains members that share data, batch size, epochs and shuffle seed in lock-step."""

    def __init__(
        self,
        members: Sequence[Member],
        x_train: np.ndarray,
        x_val: np.ndarray,
        batch_size: int,
        seed: int,
        stack_width: int | None = None,
        init: str | None = None,
    ) -> None:
        self.members = list(members)
        self.x_train = jnp.asarray(x_train, jnp.float32)
        self.x_val = jnp.asarray(x_val, jnp.float32)
        self.batch_size = batch_size
        self.key = shuffle_key(seed)
        # train.init: shared: each epoch's order comes from NumPy (model.shared_order).
        self.seed = seed
        self.shared = init == SHARED_INIT
        self.stack_width = stack_width or default_stack_width()
        self.stacks = arrange(self.members, self.stack_width)
        self.states, self.hypers, self.actives = [], [], []
        for stack in self.stacks:
            filled = [self.members[i if i >= 0 else stack.slots[0]] for i in stack.slots]
            weights, states, hypers = zip(*(_member_state(m) for m in filled), strict=True)
            self.states.append((_stacked(weights), _stacked(states)))
            self.hypers.append(_stacked(hypers))
            self.actives.append(np.array([i >= 0 for i in stack.slots]))

    def epoch_function(self, stacks: Sequence[Stack]) -> Callable[..., Any]:
        """Return the compiled epoch of ``stacks`` (one of this trainer's stack lists)."""
        n_train, n_val = int(self.x_train.shape[0]), int(self.x_val.shape[0])
        return _cached_epoch(stacks, n_train, n_val, self.batch_size)

    def run_stacks(self, live: Sequence[int], epoch: int) -> tuple[list, list]:
        """Train the stacks numbered ``live`` one epoch; return their losses as NumPy."""
        function = self.epoch_function([self.stacks[i] for i in live])
        given = {}
        if self.shared:
            given["order"] = jnp.asarray(shared_order(self.seed, epoch, int(self.x_train.shape[0])))
        states, train, val = function(
            [self.states[i] for i in live],
            [self.hypers[i] for i in live],
            [jnp.asarray(self.actives[i]) for i in live],
            self.key,
            epoch,
            self.x_train,
            self.x_val,
            **given,
        )
        for i, state in zip(live, states, strict=True):
            self.states[i] = state
        return [np.asarray(t) for t in train], [np.asarray(v) for v in val]

    def train(
        self, epochs: int, on_epoch: EpochCallback | None = None, stop: StopCallback | None = None
    ) -> list[History]:
        """Train for ``epochs``; freeze a member whose loss turns NaN or that ``stop`` names.

        ``stop`` is asked after every epoch but the last, as by TensorFlow's engine; a
        stopped member is masked like a diverged one, so the others keep their bits
        (:func:`aeexp.engines.base.train_lockstep`).
        """
        self._live = [i for i in range(len(self.stacks)) if self.actives[i].any()]
        histories = train_lockstep(self, len(self.members), epochs, on_epoch, stop)
        self._write_back()
        return histories

    def run_epoch(self, active: Sequence[int], epoch: int) -> Mapping[int, tuple[float, float]]:
        """Train the live stacks one epoch; return each active member's mean losses."""
        train_losses, val_losses = self.run_stacks(self._live, epoch)
        found = {}
        for number, train, val in zip(self._live, train_losses, val_losses, strict=True):
            for slot, index in enumerate(self.stacks[number].slots):
                if index >= 0 and self.actives[number][slot]:
                    found[index] = (train[slot], val[slot])
        return found

    def freeze(self, frozen: Sequence[int], active: Sequence[int]) -> None:
        """Mask the members ``frozen`` in their stacks; the others keep their bits."""
        for number, stack in enumerate(self.stacks):
            for slot, index in enumerate(stack.slots):
                if index >= 0 and index in frozen:
                    self.actives[number][slot] = False
        # A stack with nobody left to train leaves the compiled epoch (one recompile).
        self._live = [i for i in self._live if self.actives[i].any()]

    def _write_back(self) -> None:
        """Copy each member's trained weights into its Keras model (for saving, evaluating)."""
        for stack, (weights, _) in zip(self.stacks, self.states, strict=True):
            host = [np.asarray(w) for w in weights]
            for slot, index in enumerate(stack.slots):
                if index >= 0:
                    variables = self.members[index].model.trainable_variables
                    for variable, value in zip(variables, host, strict=True):
                        variable.assign(value[slot])


@functools.cache
def _compiled_forward() -> Callable[..., Any]:
    """Return the jitted :func:`forward` (made on first use: jax.jit needs JAX)."""
    return jax.jit(forward, static_argnums=0)


def model_shape(model: Any) -> ModelConfig:
    """Return the code size and activations of a saved or built autoencoder."""
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    # The function's name, not keras.activations.serialize: that one imports TensorFlow.
    return ModelConfig(
        code_dim=encoder.units,
        encoder_activation=encoder.activation.__name__,
        decoder_activation=decoder.activation.__name__,
    )


def reconstruct(model: Any, images: np.ndarray) -> np.ndarray:
    """Return ``model``'s float32 reconstructions of ``images``, as validation computes them."""
    shape = model_shape(model)  # one compile per architecture and chunk size, not per member
    weights = [jnp.asarray(v.value) for v in model.trainable_variables]
    x = jnp.asarray(images, jnp.float32)
    parts = [
        np.asarray(_compiled_forward()(shape, weights, x[start : start + VALIDATION_CHUNK]))
        for start in range(0, int(x.shape[0]), VALIDATION_CHUNK)
    ]
    return np.concatenate(parts) if parts else np.zeros(images.shape, np.float32)


def enable_determinism() -> None:
    """Nothing to switch on: JAX's CPU ops are deterministic, and its GPU flags are set.

    :func:`aeexp.env.backend.import_jax` sets ``--xla_gpu_deterministic_ops`` before JAX starts a
    device, and float32 matrix products at full precision.
    """


def devices() -> list[dict[str, str]]:
    """Return every device JAX sees, described as TensorFlow's are; Keras is not imported."""
    found = []
    for device in import_jax().devices():
        kind = str(getattr(device, "platform", "cpu")).upper()
        entry = {"type": kind, "name": str(device)}
        if kind != "CPU":
            entry["model"] = str(getattr(device, "device_kind", "unknown accelerator"))
        found.append(entry)
    return found


class JaxEngine:
    """The JAX backend (:class:`aeexp.engines.base.Engine`)."""

    name = NAME
    label = "JAX"
    packages = ("jax", "jaxlib")

    def worker_setup(self, threads: int) -> None:
        """Nothing to size: JAX sizes its pool by the CPUs the process may run on.

        It has no setting for it, and its bits do not depend on that count (module notes).
        """

    def enable_determinism(self) -> None:
        """Nothing to switch on (:func:`enable_determinism`)."""
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
        """Return the trainer of ``members``; ``xla`` is ignored: JAX always compiles."""
        return GroupTrainer(members, x_train, x_val, batch_size, seed, init=init)

    def reconstruct(self, model: Any, images: np.ndarray) -> np.ndarray:
        """Return ``model``'s reconstructions as validation computes them."""
        return reconstruct(model, images)

    def versions(self) -> dict[str, str]:
        """Return the Keras backend's name and JAX's and jaxlib's versions."""
        found = {"keras_backend": keras.backend.backend(), "jax": jax.__version__}
        import jaxlib  # after JAX: its flags are set before anything of it starts

        return found | {"jaxlib": jaxlib.__version__}

    def devices(self) -> list[dict[str, str]]:
        """Return every device JAX sees."""
        return devices()


ENGINE = JaxEngine()
