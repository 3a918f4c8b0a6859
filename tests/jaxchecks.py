"""The JAX engine's checks, run in a process of their own: ``python tests/jaxchecks.py MNIST``.

``python tests/jaxchecks.py MNIST quick`` runs the default test set's few cheap checks
(:func:`quick`) instead of the slow set's full ones.

A process holds one Keras backend and the test session's is TensorFlow, so the tests in
``test_engine_jax.py`` start this script and read the JSON it prints: sha256 digests of
each scenario's weights, histories and reconstructions, which those tests compare.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aeexp.env import backend  # noqa: E402

backend.use("jax")

from aeexp.config.run import validate  # noqa: E402
from aeexp.engines import jax as engine_jax  # noqa: E402
from aeexp.engines.base import VALIDATION_CHUNK  # noqa: E402

# A stack width the CPU never picks by itself: forced, it exercises the vmapped path.
WIDE = 4


def images(mnist: str) -> tuple[np.ndarray, np.ndarray]:
    """Return 1,300 training images (5 batches and a remainder of 20) and 2,300 test images."""
    with np.load(mnist) as archive:
        train = archive["x_train"][:1300].reshape(-1, 784).astype("float32") / 255
        test = archive["x_test"][: 2 * VALIDATION_CHUNK + 300].reshape(-1, 784)
    return train, test.astype("float32") / 255


def config(loss="mse", decoder="sigmoid", optimizer="adam", seed=0, encoder="relu", **params):
    """Return a validated JAX run config."""
    return validate(
        {
            "seed": seed,
            "loss": {"name": loss},
            "model": {"encoder_activation": encoder, "decoder_activation": decoder},
            "optimizer": {"name": optimizer, **params},
            "train": {"backend": "jax"},
        }
    )


def digest(member: engine_jax.Member, history, x_val: np.ndarray) -> str:
    """Return a sha256 of a trained member's weights, losses and reconstructions."""
    found = hashlib.sha256()
    for weight in member.model.get_weights():
        found.update(np.asarray(weight).tobytes())
    found.update(json.dumps([history.loss, history.val_loss, history.diverged_epoch]).encode())
    found.update(engine_jax.reconstruct(member.model, x_val[:1100]).tobytes())
    return found.hexdigest()


def train(configs, data, width=None, epochs=2, batch_size=256, stop=None):
    """Train ``configs`` as one group; return (members, histories)."""
    members = [engine_jax.build_member(c) for c in configs]
    trainer = engine_jax.GroupTrainer(
        members, *data, batch_size=batch_size, seed=configs[0].seed, stack_width=width
    )
    return members, trainer.train(epochs, stop=stop)


def scenario(configs, data, watch: int, width=None, epochs=2, stop=None) -> dict:
    """Train a group and describe member ``watch``: its digest and history."""
    members, histories = train(configs, data, width, epochs, stop=stop)
    h = histories[watch]
    return {
        "digest": digest(members[watch], h, data[1]),
        "loss": h.loss,
        "val_loss": h.val_loss,
        "diverged_epoch": h.diverged_epoch,
        "stopped_epoch": h.stopped_epoch,
    }


def stop_first_after_one(epoch, histories, active):
    """A tuner's pruner in miniature: stop member 0 after epoch 1, and nobody else."""
    return [0] if epoch == 1 and 0 in active else []


def quick(mnist: str) -> dict:
    """Return the cheap checks: group == alone, every optimizer on real MNIST, lr-0 loss."""
    train_images, test_images = images(mnist)
    data = (train_images[:300], test_images[:1100])  # 2 batches and 44 rows; 1.1 chunks
    target = config("i_div2", "relu", "adadelta", seed=3)
    twin = config("i_div2", "relu", "adadelta", seed=3, learning_rate=0.5)  # same stack key
    other = config("mse", "sigmoid", "adam", seed=3)
    out: dict = {
        name: scenario(group, data, len(group) - 1)
        for name, group in (
            ("alone", [target]),
            ("pair", [other, target]),
            ("twin", [twin, target]),
        )
    }
    # The thesis's optimizers at their defaults, on images whose border pixels are 0: those
    # weights get a zero gradient at every step, which no update may turn into 0 / 0.
    names = ("sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam")
    _, histories = train([config(optimizer=name) for name in names], data, epochs=2)
    out["optimizers"] = {
        name: h.loss + h.val_loss for name, h in zip(names, histories, strict=True)
    }
    out["diverged"] = [h.diverged_epoch for h in histories]
    frozen = config("mse", optimizer="sgd", learning_rate=0.0)
    members, (history,) = train([frozen], data, epochs=1, batch_size=128)
    out["lr0"] = {
        "loss": history.loss[0],
        "val_loss": history.val_loss[0],
        "weights": [np.asarray(w).tolist() for w in members[0].model.get_weights()],
    }
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    return out


def main() -> None:
    if sys.argv[2:] == ["quick"]:
        print(json.dumps(quick(sys.argv[1])))
        return
    data = images(sys.argv[1])
    target = config("i_div2", "relu", "adadelta", seed=3)
    twin = config("i_div2", "relu", "adadelta", seed=3, learning_rate=0.5)  # same stack key
    other = config("mse", "sigmoid", "adam", seed=3)
    third = config("bce", "sigmoid", "nadam", seed=3)
    out: dict = {"width_default": engine_jax.default_stack_width()}
    for name, width in (("loop", None), ("stacked", WIDE)):
        out[name] = {
            "alone": scenario([target], data, 0, width),
            "again": scenario([target], data, 0, width),
            "pair": scenario([other, target], data, 1, width),
            "pair_same_stack": scenario([twin, target], data, 1, width),
            "trio": scenario([other, twin, target], data, 2, width),
            "trio_reordered": scenario([target, third, other], data, 0, width),
        }
    # Divergence: a linear SGD with an absurd rate, beside a sane one of the same stack key.
    exploding = config("mse", "linear", "sgd", encoder="linear", learning_rate=1e12)
    sane = config("mse", "linear", "sgd", encoder="linear", learning_rate=0.01)
    for name, width in (("loop", None), ("stacked", WIDE)):
        out[name]["diverging"] = scenario([exploding, sane], data, 0, width, epochs=3)
        out[name]["beside_diverging"] = scenario([exploding, sane], data, 1, width, epochs=3)
        out[name]["sane_alone"] = scenario([sane], data, 0, width, epochs=3)
    # Pruning: member 0 stopped after epoch 1 keeps that epoch; its neighbour trains on as
    # if alone, in a stack of its own kind too.
    for name, width in (("loop", None), ("stacked", WIDE)):
        out[name]["stopped"] = scenario([twin, target], data, 0, width, 3, stop_first_after_one)
        out[name]["beside_stopped"] = scenario(
            [twin, target], data, 1, width, 3, stop_first_after_one
        )
        out[name]["target_alone_3"] = scenario([target], data, 0, width, 3)
    # Learning rate 0: the epoch loss is the loss over the training set (a 700-row batch
    # leaves a remainder batch of 200).
    frozen = config("mse", optimizer="sgd", learning_rate=0.0)
    members, histories = train([frozen], data, epochs=1, batch_size=700)
    reconstructed = engine_jax.reconstruct(members[0].model, data[0])
    out["lr0"] = {
        "loss": histories[0].loss[0],
        "val_loss": histories[0].val_loss[0],
        "expected_loss": float(np.mean((reconstructed - data[0]) ** 2)),
        "expected_val_loss": float(
            np.mean((engine_jax.reconstruct(members[0].model, data[1]) - data[1]) ** 2)
        ),
    }
    _, trained = train([other], data, epochs=3)
    out["training_reduces_loss"] = trained[0].loss[2] < trained[0].loss[0]
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(out))


if __name__ == "__main__":
    main()
