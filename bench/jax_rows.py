"""The JAX rows of ``bench/engine.py``, in a process of their own (a process holds one backend).

    python bench/jax_rows.py DATA.npz      # then one line per epoch on stdin: its index

Builds every JAX configuration, answers ``ready``, then for each epoch index read from
stdin trains one epoch of each configuration and prints their seconds as one JSON line,
so the parent can interleave these rows with its TensorFlow rows. Configurations:

* ``jax-1``: the one model of ``aeexp-1``;
* ``jax-30``: the 30-member thesis grid of ``aeexp-30`` (on a CPU: a loop of members);
* ``jax-lr-8`` and ``jax-lr-8-loop``: eight Adam learning rates of one cell, stacked and
  vmapped (width 8), and the same eight looped: what stacking costs or gains here.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aeexp.env import backend  # noqa: E402

backend.use("jax")

from aeexp.config.run import validate  # noqa: E402
from aeexp.engines import jax as engine_jax  # noqa: E402

BATCH = 256
SEED = 0
THIRTY = list(
    itertools.product(
        ["mse", "i_div1", "i_div2"],
        ["relu", "sigmoid"],
        ["adagrad", "adam", "adadelta", "nadam", "adamax"],
    )
)
RATES = [0.0005 * (i + 1) for i in range(8)]


def config(loss: str, decoder: str, optimizer: str, **params: float):
    """Return a validated JAX run config of one thesis configuration."""
    return validate(
        {
            "seed": SEED,
            "loss": {"name": loss},
            "model": {"decoder_activation": decoder},
            "optimizer": {"name": optimizer, **params},
            "train": {"backend": "jax"},
        }
    )


GROUPS = {
    "jax-1": ([config("mse", "sigmoid", "adam")], None),
    "jax-30": ([config(*spec) for spec in THIRTY], None),
    "jax-lr-8": ([config("mse", "sigmoid", "adam", learning_rate=r) for r in RATES], 8),
    "jax-lr-8-loop": ([config("mse", "sigmoid", "adam", learning_rate=r) for r in RATES], 1),
}


def main() -> None:
    with np.load(sys.argv[1]) as archive:
        x_train, x_test = (
            archive[k].reshape(len(archive[k]), -1).astype(np.float32) / np.float32(255)
            for k in ("x_train", "x_test")
        )
    trainers = {}
    for name, (configs, width) in GROUPS.items():
        members = [engine_jax.build_member(c) for c in configs]
        trainer = engine_jax.GroupTrainer(members, x_train, x_test, BATCH, SEED, width)
        trainers[name] = (trainer, list(range(len(trainer.stacks))))
    jax = backend.import_jax()
    print(json.dumps({"ready": True, "platform": jax.default_backend()}), flush=True)
    for line in sys.stdin:
        epoch = int(line)
        seconds = {}
        for name, (trainer, live) in trainers.items():
            started = time.perf_counter()
            trainer.run_stacks(live, epoch)  # returns host arrays: the epoch has finished
            seconds[name] = time.perf_counter() - started
        print(json.dumps({"epoch": epoch, "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
