"""Train one small JAX run for ``test_shuffle.py``, in a process of its own.

``python tests/jaxshuffle.py MNIST OUT.npz SEED LEARNING_RATE BATCH EPOCHS N_TRAIN N_VAL [INIT]``
trains a linear 784-32-784 autoencoder with SGD and MSE on the first images and writes its
initial weights, per-epoch losses and final weights to ``OUT.npz``; ``INIT`` sets
``train.init`` (``test_shared_init.py``). The test session's Keras
runs on TensorFlow and a process keeps its first backend, hence the child.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aeexp.env import backend  # noqa: E402

backend.use("jax")

from aeexp.config.run import validate  # noqa: E402
from aeexp.engines import jax as engine_jax  # noqa: E402


def main() -> None:
    mnist, out = sys.argv[1], sys.argv[2]
    seed, rate = int(sys.argv[3]), float(sys.argv[4])
    batch, epochs, n_train, n_val = (int(a) for a in sys.argv[5:9])
    init = sys.argv[9] if len(sys.argv) > 9 else None
    with np.load(mnist) as archive:
        x_train = archive["x_train"][:n_train].reshape(-1, 784).astype("float32") / 255
        x_val = archive["x_test"][:n_val].reshape(-1, 784).astype("float32") / 255
    config = validate(
        {
            "seed": seed,
            "loss": {"name": "mse"},
            "model": {"encoder_activation": "linear", "decoder_activation": "linear"},
            "optimizer": {"name": "sgd", "learning_rate": rate},
            "train": {"backend": "jax", "init": init},
        }
    )
    member = engine_jax.build_member(config)
    initial = [np.asarray(w) for w in member.model.get_weights()]
    trainer = engine_jax.GroupTrainer(
        [member], x_train, x_val, batch_size=batch, seed=seed, init=init
    )
    (history,) = trainer.train(epochs)
    final = [np.asarray(w) for w in member.model.get_weights()]
    np.savez(
        out,
        loss=np.array(history.loss),
        val_loss=np.array(history.val_loss),
        **{f"initial{i}": w for i, w in enumerate(initial)},
        **{f"final{i}": w for i, w in enumerate(final)},
    )


if __name__ == "__main__":
    main()
