"""The local executor: trains each job in this process, one after another."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence

from tqdm import tqdm

from aeexp.config.run import DataConfig
from aeexp.data.dataset import Dataset
from aeexp.errors import UserError, one_line
from aeexp.execute import interrupts, progress
from aeexp.execute.executors import Job, JobResult, describe_group
from aeexp.execute.progress import LineProgress


class LocalExecutor:
    """Train jobs in the driver's process with the backend's default thread pools."""

    workers = 1

    def __init__(self, progress: bool = False) -> None:
        self.progress = progress
        self._queue: deque[Job] = deque()
        self._datasets: Mapping[DataConfig, Dataset] = {}

    def start(self, datasets: Mapping[DataConfig, Dataset]) -> None:
        """Keep the datasets; nothing to ship."""
        self._datasets = datasets

    def submit(self, job: Job) -> None:
        """Queue a job; it trains when its result is asked for."""
        self._queue.append(job)

    def outstanding(self) -> int:
        """Return how many queued jobs have not been trained yet."""
        return len(self._queue)

    def next_result(self) -> JobResult:
        """Train the oldest queued job and return its artifacts or its error."""
        from aeexp.execute import runner  # TensorFlow: only once there is something to train

        job = self._queue.popleft()
        with self._epoch_bar(job) as bar:

            def on_epoch(epoch: int, histories: Sequence) -> None:
                # The loss first: a log's line, written by update, shows this epoch's.
                bar.set_postfix(loss=f"{histories[0].loss[-1]:.4g}", refresh=False)
                bar.update(1)
                interrupts.check()  # an epoch's end: the safe point to stop at on Ctrl-C

            started = time.perf_counter()
            try:
                artifacts = runner.train_group(
                    job.configs, self._datasets[job.data], on_epoch, stop=job.stop
                )
            except (KeyboardInterrupt, UserError):
                raise
            except Exception as error:  # a crash inside one run must not stop the sweep
                return JobResult(job, error=one_line(error))
        seconds = time.perf_counter() - started
        return JobResult(job, tuple(artifacts), worker_seconds=seconds, round_trip_seconds=seconds)

    def _epoch_bar(self, job: Job) -> tqdm | LineProgress:
        return progress.bar(
            job.configs[0].train.epochs,
            describe_group(job.configs),
            "epoch",
            self.progress,
            leave=False,
        )

    def shutdown(self, cancel: bool = False) -> None:
        """Forget queued jobs."""
        self._queue.clear()


def create(progress: bool = False) -> LocalExecutor:
    """Return a local executor (the registry's factory for ``local``)."""
    return LocalExecutor(progress=progress)
