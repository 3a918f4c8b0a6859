"""The thesis grid (``make reproduce``'s two sweeps) on the JAX engine, on whatever device JAX sees.

    python bench/device.py [--out DIR] [--json PATH]

Trains thesis-optimizers (150 runs) and thesis-tuned (590 runs), 50 epochs on all of MNIST,
with ``train.backend=jax``, through the same ``aeexp sweep`` path a user takes (evaluation
and run directories included), and prints seconds per member-epoch (training only, and
wall clock) and the whole grid's wall time; writes the numbers as JSON. Meant for a machine
with JAX and no TensorFlow (``pip install -e '.[jax]'``, or ``'.[jax-gpu]'``, in the clone).

Environment variables shrink it for a smoke run (``bench/device.sh`` passes them on):
``AEEXP_DEVICE_EPOCHS`` (default 50), ``AEEXP_DEVICE_TRAIN_LIMIT`` and
``AEEXP_DEVICE_TEST_LIMIT`` (default: all images), ``AEEXP_DEVICE_SEEDS`` (default
``0,1,2,3,4``), ``AEEXP_DEVICE_SWEEPS`` (default ``thesis-optimizers,thesis-tuned``),
``AEEXP_DEVICE_MAX_GROUP`` (default 120: an accelerator wants wide groups; grouping never
changes a run's numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aeexp import api  # noqa: E402
from aeexp.env import backend  # noqa: E402
from aeexp.store import rundir as store  # noqa: E402

SWEEPS = REPO / "configs" / "sweeps"


def setting(name: str, default: str) -> str:
    """Return ``AEEXP_DEVICE_<name>``, or ``default``."""
    return os.environ.get(f"AEEXP_DEVICE_{name}", default)


def sweep_mapping(name: str, seeds: list[int]) -> dict:
    """Return a thesis sweep as a mapping, its grid's seeds replaced by ``seeds``."""
    sweep = yaml.safe_load((SWEEPS / f"{name}.yaml").read_text())
    blocks = sweep["grid"] if isinstance(sweep["grid"], list) else [sweep["grid"]]
    sweep["grid"] = [{**block, "seed": seeds} for block in blocks]
    return sweep


def group_seconds(folder: Path) -> tuple[float, int]:
    """Return the training seconds of a sweep's groups (each counted once) and its runs."""
    runs = store.load_runs(folder)
    total = sum(r.metrics.get("train_seconds", 0.0) / r.metrics.get("group_size", 1) for r in runs)
    return total, len(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="run folders (default: temporary)")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "device.json")
    args = parser.parse_args()
    backend.use("jax")
    jax = backend.import_jax()
    epochs = int(setting("EPOCHS", "50"))
    seeds = [int(s) for s in setting("SEEDS", "0,1,2,3,4").split(",")]
    names = setting("SWEEPS", "thesis-optimizers,thesis-tuned").split(",")
    overrides = ["train.backend=jax", f"train.epochs={epochs}"]
    for key in ("TRAIN_LIMIT", "TEST_LIMIT"):
        if setting(key, ""):
            overrides.append(f"data.{key.lower()}={int(setting(key, ''))}")
    out = args.out or Path(tempfile.mkdtemp(prefix="aeexp-device-"))
    devices = [str(d) for d in jax.devices()]
    print(f"JAX {jax.__version__} on {jax.default_backend()}: {', '.join(devices)}", flush=True)
    print(f"sweeps {', '.join(names)}; seeds {seeds}; {' '.join(overrides)}", flush=True)
    started = time.perf_counter()
    result: dict = {"sweeps": {}}
    for name in names:
        begun = time.perf_counter()
        outcome = api.sweep(
            sweep_mapping(name, seeds),
            overrides=overrides,
            out=out,
            max_group=int(setting("MAX_GROUP", "120")),
            progress=sys.stderr.isatty(),
        )
        wall = time.perf_counter() - begun
        training, runs = group_seconds(outcome.experiment_dir)
        member_epochs = runs * epochs
        result["sweeps"][name] = {
            "runs": runs,
            "member_epochs": member_epochs,
            "wall_s": wall,
            "training_s": training,
            "training_s_per_member_epoch": training / member_epochs,
            "wall_s_per_member_epoch": wall / member_epochs,
            "problems": len(outcome.problems()),
        }
        print(
            f"{name}: {runs} runs, {wall:.1f} s wall, {training:.1f} s training; per "
            f"member-epoch {training / member_epochs * 1e3:.2f} ms training, "
            f"{wall / member_epochs * 1e3:.2f} ms wall",
            flush=True,
        )
    total = time.perf_counter() - started
    all_runs = sum(s["member_epochs"] for s in result["sweeps"].values())
    all_training = sum(s["training_s"] for s in result["sweeps"].values())
    result |= {
        "grid_wall_s": total,
        "training_s_per_member_epoch": all_training / all_runs,
        "wall_s_per_member_epoch": total / all_runs,
        "platform": jax.default_backend(),
        "devices": devices,
        "settings": {"epochs": epochs, "seeds": seeds, "overrides": overrides},
        "versions": {"jax": jax.__version__, "python": platform.python_version()},
        "tensorflow_installed": backend.installed("tensorflow"),
    }
    print(
        f"whole grid: {total:.1f} s wall ({total / 60:.1f} min); per member-epoch "
        f"{result['training_s_per_member_epoch'] * 1e3:.2f} ms training, "
        f"{result['wall_s_per_member_epoch'] * 1e3:.2f} ms wall",
        flush=True,
    )
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
