"""Engine and evaluation benchmark on real MNIST, every ratio measured in one invocation.

    python bench/engine.py [--epochs N] [--quick] [--json PATH]

Times, per model-epoch after the first (compiling) epoch, best of ``--epochs``:

* ``fit``: plain Keras ``model.fit`` on the same model, batch size and data, with the test
  set as ``validation_data`` as the thesis did;
* aeexp training one model (with and without XLA), and groups of 6 and 30 members mixing
  the thesis's losses, optimizers and decoder activations;
* the matrix-product floor: per step and member the forward ``x @ W1``, ``h @ W2`` and the
  backward ``h^T @ dY``, ``dY @ W2^T``, ``x^T @ dH``, alone in a compiled loop over the same
  number of rows, each step's products depending on the previous step's as in training (the
  faster of plain TensorFlow and XLA);
* the JAX engine (``bench/jax_rows.py``, a child process: a process holds one Keras
  backend): one model, the 30-member group, and a learning-rate group of eight stacked and
  vmapped beside the same eight looped (skipped, and said so, where JAX is not installed).

Every configuration runs interleaved with the others (one epoch each per round, driven by
``fit``'s epoch callback; the JAX child trains its epoch when told to), so a busy machine
slows them alike. Peak memory is the maximum
resident set of a child process that trains one configuration for one epoch. Evaluation
compares aeexp's full-test-set SSIM with scikit-image's per-image loop.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aeexp import evaluate  # noqa: E402
from aeexp.config.run import ModelConfig  # noqa: E402
from aeexp.engines import tensorflow as engine  # noqa: E402
from aeexp.engines.model import build_autoencoder  # noqa: E402
from aeexp.env.backend import import_keras  # noqa: E402
from aeexp.registry import losses, optimizers  # noqa: E402

tf = engine.tf
keras = import_keras()

BATCH = 256
SEED = 0
DATA = Path(os.environ.get("AEEXP_DATA") or REPO.parent / "shared" / "data" / "mnist.npz")
ONE = [("mse", "sigmoid", "adam")]
# The thesis's six table cells, and its full 3 losses x 2 decoders x 5 optimizers grid.
SIX = [
    ("i_div1", "relu", "adamax"),
    ("i_div1", "sigmoid", "adamax"),
    ("i_div2", "relu", "adadelta"),
    ("i_div2", "sigmoid", "nadam"),
    ("mse", "relu", "adagrad"),
    ("mse", "sigmoid", "adam"),
]
THIRTY = list(
    itertools.product(
        ["mse", "i_div1", "i_div2"],
        ["relu", "sigmoid"],
        ["adagrad", "adam", "adadelta", "nadam", "adamax"],
    )
)
GROUPS = {"aeexp-1": ONE, "aeexp-1-noxla": ONE, "aeexp-6": SIX, "aeexp-30": THIRTY}
FLOORS = {"floor-1": 1, "floor-1-xla": 1, "floor-30": 30, "floor-30-xla": 30}
# The JAX child's rows and their member counts (bench/jax_rows.py).
JAX_ROWS = {"jax-1": 1, "jax-30": 30, "jax-lr-8": 8, "jax-lr-8-loop": 8}
# The targets: name -> (">=" or "<=", bound).
TARGETS = {
    "aeexp-1 vs fit": (">=", 6.0),
    "aeexp-30 per member vs fit": (">=", 10.0),
    "aeexp-30 per member / floor": ("<=", 1.3),
    "ssim vs scikit-image": (">=", 20.0),
    "ssim max abs difference": ("<=", 1e-6),
    "aeexp-30 peak MB": ("<=", 3000.0),
}


def load_pixels() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return MNIST train and test pixels as float32 (n, 784) in [0, 1], and test labels."""
    with np.load(DATA) as archive:
        x_train, x_test, y_test = archive["x_train"], archive["x_test"], archive["y_test"]
    pixels = [a.reshape(len(a), -1).astype(np.float32) / np.float32(255) for a in (x_train, x_test)]
    return pixels[0], pixels[1], y_test


def member(loss: str, decoder: str, optimizer: str) -> engine.Member:
    """Return a fresh member as aeexp's runner builds it."""
    shape = ModelConfig(encoder_activation="relu", decoder_activation=decoder)
    return engine.Member(
        build_autoencoder(shape, SEED), optimizers.build(optimizer), losses.get(loss)
    )


def epoch_runner(name: str, x_train: np.ndarray, x_test: np.ndarray) -> Callable[[int], Any]:
    """Return ``run(epoch)`` training aeexp configuration ``name`` for one epoch."""
    members = [member(*spec) for spec in GROUPS[name]]
    trainer = engine.GroupTrainer(
        members, x_train, x_test, BATCH, SEED, xla=not name.endswith("noxla")
    )
    # The epoch function train() calls, kept across calls so only the first one compiles.
    epoch_fn = trainer._compile_epoch(trainer.members)

    def run(epoch: int) -> Any:
        loss, val_loss = epoch_fn(tf.constant([SEED, epoch], tf.int64))
        return loss.numpy(), val_loss.numpy(), members

    return run


def floor_runner(size: int, x_train: np.ndarray, xla: bool) -> Callable[[int], Any]:
    """Return ``run(epoch)`` doing one epoch of the five products for ``size`` members.

    Each step's products use weights that depend on the previous step's products, as in
    training: without that chain, TensorFlow overlaps consecutive steps of the loop, which
    no trainer can do.
    """
    kernels = [member(*spec).model.get_weights() for spec in (THIRTY * 2)[:size]]
    weights = [(tf.constant(k[0]), tf.constant(k[2])) for k in kernels]
    x = tf.constant(x_train)
    n = int(x.shape[0])

    def products(batch: tf.Tensor, weights: list) -> list:
        chained = []
        for w1, w2 in weights:
            h = tf.matmul(batch, w1)
            dy = tf.matmul(h, w2)  # stands in for dY: same shape, same cost
            dw2 = tf.matmul(h, dy, transpose_a=True)
            dh = tf.matmul(dy, w2, transpose_b=True)
            dw1 = tf.matmul(batch, dh, transpose_a=True)
            # A vanishing step keeps the weights in place and every product live.
            chained.append((w1 - 1e-30 * dw1, w2 - 1e-30 * dw2))
        return chained

    step = tf.function(products, jit_compile=xla)

    @tf.function
    def epoch() -> tf.Tensor:
        current = weights
        for i in tf.range(0, n, BATCH):
            current = step(x[i : i + BATCH], current)
        return tf.add_n([tf.reduce_sum(w1) for w1, _ in current])

    return lambda _: epoch().numpy()


def fit_model() -> Any:
    """Return the fit peer: the one-member configuration, compiled for ``model.fit``."""
    loss, decoder, optimizer = ONE[0]
    model = member(loss, decoder, optimizer).model
    model.compile(optimizer=optimizers.build(optimizer), loss=losses.get(loss))
    return model


class JaxChild:
    """The JAX rows' process: told an epoch index, it trains one epoch of each row."""

    def __init__(self) -> None:
        script = Path(__file__).with_name("jax_rows.py")
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(DATA)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        self.platform = self._answer()["platform"]

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench/jax_rows.py ended with code {self.process.wait()}")
        return json.loads(line)

    def epoch(self, index: int) -> dict[str, float]:
        """Return each JAX row's seconds for epoch ``index``."""
        self.process.stdin.write(f"{index}\n")
        self.process.stdin.flush()
        return self._answer()["seconds"]

    def close(self) -> None:
        """End the child."""
        self.process.stdin.close()
        self.process.wait()


class Interleave(keras.callbacks.Callback):
    """Times each fit epoch, then runs one epoch of every other configuration."""

    def __init__(self, runners: dict[str, Callable[[int], Any]], child: JaxChild | None) -> None:
        super().__init__()
        self.runners = runners
        self.child = child
        rows = [*runners, *(JAX_ROWS if child else ())]
        self.seconds: dict[str, list[float]] = {"fit": [], **{k: [] for k in rows}}
        self.last: dict[str, Any] = {}

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds["fit"].append(time.perf_counter() - self.started)
        for name, run in self.runners.items():
            started = time.perf_counter()
            self.last[name] = run(epoch)
            self.seconds[name].append(time.perf_counter() - started)
            print(f"  epoch {epoch + 1}: {name} {self.seconds[name][-1]:.3f} s", flush=True)
        if self.child is not None:
            for name, seconds in self.child.epoch(epoch).items():
                self.seconds[name].append(seconds)
                print(f"  epoch {epoch + 1}: {name} {seconds:.3f} s", flush=True)


def time_training(
    epochs: int, x_train: np.ndarray, x_test: np.ndarray, with_jax: bool
) -> dict[str, Any]:
    """Return per-model-epoch seconds of every configuration, and the trained one-member model."""
    runners = {name: epoch_runner(name, x_train, x_test) for name in GROUPS}
    for name, size in FLOORS.items():
        runners[name] = floor_runner(size, x_train, xla=name.endswith("xla"))
    child = JaxChild() if with_jax else None
    keras.utils.set_random_seed(SEED)  # fit's shuffle and dropout-free layers need one seed
    model = fit_model()
    timer = Interleave(runners, child)
    try:
        model.fit(
            x_train,
            x_train,
            batch_size=BATCH,
            epochs=epochs + 1,
            validation_data=(x_test, x_test),
            shuffle=True,
            verbose=0,
            callbacks=[timer],
        )
    finally:
        if child is not None:
            child.close()
    per_model = {}
    for name, seconds in timer.seconds.items():
        size = len(GROUPS[name]) if name in GROUPS else {**FLOORS, **JAX_ROWS}.get(name, 1)
        per_model[name] = {
            "members": size,
            "first_epoch_s": seconds[0],
            "epoch_s": min(seconds[1:]),
            "per_member_epoch_s": min(seconds[1:]) / size,
            "all_epochs_s": seconds,
        }
    platform = child.platform if child is not None else None
    return {"configs": per_model, "model": timer.last["aeexp-1"][2][0].model, "jax": platform}


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Return the fastest of ``repeats`` calls of ``fn`` and its result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def time_evaluation(model: Any, x_test: np.ndarray, y_test: np.ndarray, quick: bool) -> dict:
    """Return aeexp's and scikit-image's full-test-set SSIM times and their agreement."""
    from skimage.metrics import structural_similarity

    recon = np.asarray(model(x_test, training=False))
    images, recon_images = x_test.reshape(-1, 28, 28), recon.reshape(-1, 28, 28)

    def skimage_loop() -> np.ndarray:
        clipped = np.clip(recon_images, 0, 1).astype(np.float64)
        pairs = zip(images.astype(np.float64), clipped, strict=True)
        return np.array([structural_similarity(a, b, data_range=1.0) for a, b in pairs])

    ssim_s, ours = best_of(lambda: evaluate.ssim_per_image(x_test, recon), 3 if quick else 7)
    skimage_s, theirs = best_of(skimage_loop, 1 if quick else 3)
    thesis_s, _ = best_of(lambda: evaluate.ssim_thesis(x_test, recon, y_test), 20)
    all_s, _ = best_of(lambda: evaluate.evaluate(x_test, recon, y_test), 3)
    return {
        "images": len(x_test),
        "ssim_s": ssim_s,
        "skimage_s": skimage_s,
        "speedup": skimage_s / ssim_s,
        "max_abs_diff": float(np.max(np.abs(ours - theirs))),
        "thesis_protocol_s": thesis_s,
        "all_metrics_s": all_s,
    }


def child_peak_mb(name: str) -> float:
    """Return the peak resident memory of a child process training ``name`` for one epoch."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", name],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


def run_child(name: str) -> None:
    """Train configuration ``name`` for one epoch (``baseline``: none) and print peak RSS."""
    engine.enable_determinism()
    x_train, x_test, _ = load_pixels()
    if name == "fit":
        keras.utils.set_random_seed(SEED)
        fit_model().fit(
            x_train,
            x_train,
            batch_size=BATCH,
            epochs=1,
            validation_data=(x_test, x_test),
            verbose=0,
        )
    elif name != "baseline":
        epoch_runner(name, x_train, x_test)(0)
    print(json.dumps({"peak_mb": peak_rss_mb()}))


def jax_versions(with_jax: bool) -> dict[str, str]:
    """Return JAX's and jaxlib's versions, without importing JAX into this TensorFlow process."""
    from importlib.metadata import version

    return {"jax": version("jax"), "jaxlib": version("jaxlib")} if with_jax else {}


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB.

    getrusage's ru_maxrss is no good in a child: exec keeps the high-water mark of the
    forked parent (GBs here). /proc's VmHWM belongs to the exec'd address space alone.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB elsewhere


def ratios(configs: dict, evaluation: dict, memory: dict) -> dict[str, float]:
    """Return the numbers the targets are stated in."""
    fit = configs["fit"]["per_member_epoch_s"]
    floor30 = min(
        configs["floor-30"]["per_member_epoch_s"], configs["floor-30-xla"]["per_member_epoch_s"]
    )
    out = {
        "aeexp-1 vs fit": fit / configs["aeexp-1"]["per_member_epoch_s"],
        "aeexp-30 per member vs fit": fit / configs["aeexp-30"]["per_member_epoch_s"],
        "aeexp-30 per member / floor": configs["aeexp-30"]["per_member_epoch_s"] / floor30,
        "ssim vs scikit-image": evaluation["speedup"],
        "ssim max abs difference": evaluation["max_abs_diff"],
    }
    if "aeexp-30" in memory:
        out["aeexp-30 peak MB"] = memory["aeexp-30"]
    return out


def jax_ratios(configs: dict) -> dict[str, float]:
    """Return the JAX rows against the baselines measured beside them (not targets)."""
    if "jax-1" not in configs:
        return {}

    def per(name: str) -> float:
        return configs[name]["per_member_epoch_s"]

    return {
        "jax-1 vs fit": per("fit") / per("jax-1"),
        "jax-1 vs aeexp-1 (TensorFlow)": per("aeexp-1") / per("jax-1"),
        "jax-30 per member vs fit": per("fit") / per("jax-30"),
        "jax-30 vs aeexp-30 (TensorFlow)": per("aeexp-30") / per("jax-30"),
        "jax-lr-8 stacked vs looped": per("jax-lr-8-loop") / per("jax-lr-8"),
    }


def met(name: str, value: float) -> bool:
    """Return whether ``value`` meets the target called ``name``."""
    bound, limit = TARGETS[name]
    return value <= limit if bound == "<=" else value >= limit


def print_table(result: dict) -> None:
    """Print the benchmark as a plain-text table."""
    configs, memory = result["configs"], result["peak_mb"]
    fit = configs["fit"]["per_member_epoch_s"]
    print(
        f"\n{'configuration':16s} {'members':>7s} {'s/epoch':>8s} {'s/model-epoch':>13s} "
        f"{'vs fit':>7s} {'1st epoch s':>11s} {'peak MB':>8s}"
    )
    for name, c in configs.items():
        peak = f"{memory[name]:8.0f}" if name in memory else f"{'-':>8s}"
        print(
            f"{name:16s} {c['members']:7d} {c['epoch_s']:8.3f} {c['per_member_epoch_s']:13.4f} "
            f"{fit / c['per_member_epoch_s']:6.1f}x {c['first_epoch_s']:11.1f} {peak}"
        )
    if "baseline" in memory:
        print(f"{'(TF + data only)':16s} {'':>58s} {memory['baseline']:8.0f}")
    ev = result["evaluation"]
    print(
        f"\nevaluation, {ev['images']} test images: aeexp SSIM {ev['ssim_s'] * 1e3:.1f} ms, "
        f"scikit-image loop {ev['skimage_s'] * 1e3:.0f} ms ({ev['speedup']:.1f}x), "
        f"max |diff| {ev['max_abs_diff']:.1e}; "
        f"thesis protocol {ev['thesis_protocol_s'] * 1e3:.2f} ms; "
        f"all metrics {ev['all_metrics_s'] * 1e3:.0f} ms"
    )
    print("\ntarget                          measured    target  met")
    for name, value in result["ratios"].items():
        bound, limit = TARGETS[name]
        print(f"{name:30s} {value:10.3g} {bound}{limit:7g}  {'yes' if met(name, value) else 'NO'}")
    if result["jax_platform"] is None:
        print("\nJAX rows: skipped (JAX is not installed: pip install -e '.[jax]')")
        return
    print(f"\nJAX on {result['jax_platform']}, speed-up (> 1: JAX faster)  measured")
    for name, value in result["jax_ratios"].items():
        print(f"{name:45s} {value:8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after the first")
    parser.add_argument("--quick", action="store_true", help="1 timed epoch, no memory children")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="TensorFlow intra- and inter-op threads (0: its default)",
    )
    parser.add_argument("--no-jax", action="store_true", help="leave out the JAX rows")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "engine.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return
    if not DATA.is_file():
        sys.exit(f"no MNIST .npz at {DATA} (set AEEXP_DATA)")
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    engine.enable_determinism()
    epochs = 1 if args.quick else args.epochs
    x_train, x_test, y_test = load_pixels()
    with_jax = not args.no_jax and importlib.util.find_spec("jax") is not None
    print(f"training {epochs + 1} epochs of each configuration, interleaved", flush=True)
    training = time_training(epochs, x_train, x_test, with_jax)
    evaluation = time_evaluation(training["model"], x_test, y_test, args.quick)
    memory: dict[str, float] = {}
    if not args.quick:
        for name in ("baseline", "fit", "aeexp-1", "aeexp-6", "aeexp-30"):
            print(f"  peak memory: {name}", flush=True)
            memory[name] = child_peak_mb(name)
    result = {
        "configs": training["configs"],
        "evaluation": evaluation,
        "peak_mb": memory,
        "ratios": ratios(training["configs"], evaluation, memory),
        "targets": TARGETS,
        "jax_platform": training["jax"],
        "jax_ratios": jax_ratios(training["configs"]),
        "machine": {
            "cpus": os.cpu_count(),
            "tf_threads": args.threads or "default",
            "load_average": os.getloadavg(),
        },
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            **jax_versions(with_jax),
        },
    }
    print_table(result)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
