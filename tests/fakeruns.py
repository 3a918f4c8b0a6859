"""Run directories written by hand, for report, table and selection tests: no training.

One helper for every test module that needs finished runs: the config is a validated
``RunConfig`` dumped as the runner dumps it, the metrics are what the caller gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeexp.config import run as config
from aeexp.io import atomic
from aeexp.registry import published
from aeexp.store import rundir as store

FINISHED_AT = "2026-01-01T00:00:00+00:00"
MACHINE = {"cpu_model": "Test CPU", "cpu_count": 2, "load_average": [1.5, 1.2, 1.0]}


def fake_run(
    root: Path,
    raw: dict[str, Any],
    name: str = "fake",
    history: bool = False,
    **metrics: Any,
) -> config.RunConfig:
    """Write a complete run directory under ``root/name`` with ``raw``'s config and ``metrics``.

    ``status`` defaults to completed; ``history`` adds a one-epoch history.csv.
    """
    cfg = config.validate({"name": name, "output": {"dir": str(root)}, **raw})
    run_dir = cfg.experiment_dir / cfg.run_id
    with store.staged_run_dir(run_dir) as staging:
        atomic.write_yaml(staging / store.CONFIG, cfg.resolved())
        atomic.write_json(
            staging / store.METRICS,
            {"status": "completed", "finished_at": FINISHED_AT, "train_seconds": 10.0, **metrics},
        )
        if history:
            (staging / store.HISTORY).write_text("epoch,loss,val_loss,seconds\n1,0.5,0.4,1.0\n")
    return cfg


def run_dir(cfg: config.RunConfig) -> Path:
    """Return where ``fake_run`` wrote ``cfg``'s run."""
    return cfg.experiment_dir / cfg.run_id


def cell_raw(decoder: str, loss: str, optimizer: str, seed: int = 0, **params: Any) -> dict:
    """Return the raw config of a thesis cell's run (optimizer keywords in ``params``)."""
    return {
        "loss": {"name": loss},
        "model": {"decoder_activation": decoder},
        "optimizer": {"name": optimizer, **params},
        "seed": seed,
    }


def thesis_cells() -> list[tuple[str, str, float, str]]:
    """Return (decoder, loss, published SSIM, optimizer) for the six cells of the thesis."""
    return [(d, loss, v, o) for (d, loss), (v, o) in published.THESIS_SSIM.items()]


def train_tiny_run(root: Path, mnist_path: Path, **raw: Any) -> tuple[config.RunConfig, Path]:
    """Train a real model on 300 MNIST images for one epoch and write its run directory."""
    from aeexp.config.sweep import plan_run
    from aeexp.execute.driver import execute
    from aeexp.execute.local import LocalExecutor

    cfg = config.validate(
        {
            "name": "tiny",
            "output": {"dir": str(root)},
            "data": {"path": str(mnist_path), "train_limit": 300, "test_limit": 600},
            "train": {"epochs": 1, "batch_size": 64},
            **raw,
        }
    )
    planned = plan_run(cfg)
    execute(planned, LocalExecutor())
    return cfg, planned.runs[0].run_dir


def beta_raw(
    beta: float, order: str, decoder: str, lr: float, seed: int = 0, holdout: int | None = None
) -> dict:
    """Return the raw config of a beta-divergence study run (Adam at learning rate ``lr``)."""
    return {
        "loss": {"name": "beta", "beta": beta, "order": order},
        "model": {"decoder_activation": decoder},
        "seed": seed,
        "optimizer": {"name": "adam", "learning_rate": lr},
        "data": {"holdout": holdout},
    }
