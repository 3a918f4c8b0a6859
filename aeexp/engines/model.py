"""The thesis's 784-32-784 dense autoencoder."""

from __future__ import annotations

import numpy as np

from aeexp.config.run import SHARED_INIT, ModelConfig

IMAGE_PIXELS = 784
# SeedSequence spawn keys of the shared draws, apart from the default path's (model.layer_seeds
# uses none, the JAX shuffle key (1,)): the weights' stream, then (3, epoch) per epoch's order.
_SHARED_WEIGHTS_KEY = 2
_SHARED_ORDER_KEY = 3


def layer_seeds(seed: int) -> tuple[int, int]:
    """Derive independent initialiser seeds for the two layers from one run seed."""
    encoder, decoder = np.random.SeedSequence(seed).generate_state(2)
    return int(encoder), int(decoder)


def shared_weights(config: ModelConfig, seed: int) -> list[np.ndarray]:
    """Return ``train.init: shared``'s initial weights: [kernel, bias] of encoder, decoder.

    Keras's Glorot-uniform (uniform on +-sqrt(6 / (fan_in + fan_out))) for the kernels and
    zero biases, as the default path, but drawn by one NumPy generator seeded with
    ``SeedSequence(seed, spawn_key=(2,))``: the encoder's kernel first, then the decoder's,
    each drawn in float64 and rounded to float32. The same arrays on every backend.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SHARED_WEIGHTS_KEY,)))
    weights = []
    for fan_in, fan_out in ((IMAGE_PIXELS, config.code_dim), (config.code_dim, IMAGE_PIXELS)):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        kernel = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)
        weights += [kernel, np.zeros(fan_out, np.float32)]
    return weights


def shared_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """Return ``train.init: shared``'s order of epoch ``epoch`` (0-based) over ``n`` rows.

    ``default_rng(SeedSequence(seed, spawn_key=(3, epoch))).permutation(n)`` as int32: one
    order per group (its members share the seed), the same on every backend.
    """
    sequence = np.random.SeedSequence(seed, spawn_key=(_SHARED_ORDER_KEY, epoch))
    return np.random.default_rng(sequence).permutation(n).astype(np.int32)


def build_autoencoder(config: ModelConfig, seed: int, init: str | None = None):
    """Return the Keras autoencoder: Glorot-uniform kernels and zero biases, seeded.

    ``init``: the config's ``train.init``; ``"shared"`` sets :func:`shared_weights` instead
    of Keras's own seeded draws (which differ between backends for the same seed).
    """
    from aeexp.env.backend import import_keras

    keras = import_keras()
    encoder_seed, decoder_seed = layer_seeds(seed)
    model = keras.Sequential(
        [
            keras.Input((IMAGE_PIXELS,)),
            keras.layers.Dense(
                config.code_dim,
                activation=config.encoder_activation,
                kernel_initializer=keras.initializers.GlorotUniform(seed=encoder_seed),
                name="encoder",
            ),
            keras.layers.Dense(
                IMAGE_PIXELS,
                activation=config.decoder_activation,
                kernel_initializer=keras.initializers.GlorotUniform(seed=decoder_seed),
                name="decoder",
            ),
        ],
        name="autoencoder",
    )
    if init == SHARED_INIT:
        model.set_weights(shared_weights(config, seed))
    return model
