"""The thesis's 784-32-784 dense autoencoder."""

from __future__ import annotations

import numpy as np

from aeexp.config.run import ModelConfig

IMAGE_PIXELS = 784


def layer_seeds(seed: int) -> tuple[int, int]:
    """Derive independent initialiser seeds for the two layers from one run seed."""
    encoder, decoder = np.random.SeedSequence(seed).generate_state(2)
    return int(encoder), int(decoder)


def build_autoencoder(config: ModelConfig, seed: int):
    """Return the Keras autoencoder: Glorot-uniform kernels and zero biases, seeded."""
    from aeexp.env.backend import import_keras

    keras = import_keras()
    encoder_seed, decoder_seed = layer_seeds(seed)
    return keras.Sequential(
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
