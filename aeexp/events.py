"""TensorBoard event files for a group's runs, written as training goes, returned as bytes.

Each member gets a writer in a private temporary folder (never the output folder: the
driver writes that). After every epoch the group's callback adds each member's training and
validation loss; after evaluation, its reconstruction figure as an image. The finished
files come back as ``tensorboard/<file>`` entries of the run's artifacts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from aeexp.backend import import_tensorflow
from aeexp.engine import History

TENSORBOARD_DIR = "tensorboard"


class GroupEvents:
    """One TensorBoard writer per member of a group, in a temporary folder."""

    def __init__(self, run_ids: Sequence[str]) -> None:
        self.tf = import_tensorflow()
        self._folder = tempfile.TemporaryDirectory(prefix="aeexp-events-")
        root = Path(self._folder.name)
        self.paths = {run_id: root / run_id for run_id in run_ids}
        self.writers = {
            run_id: self.tf.summary.create_file_writer(str(path))
            for run_id, path in self.paths.items()
        }

    def epoch(self, epoch: int, histories: dict[str, History]) -> None:
        """Add each member's losses for ``epoch`` (1-based); a frozen member adds nothing."""
        for run_id, history in histories.items():
            if len(history.loss) < epoch:
                continue
            with self.writers[run_id].as_default(step=epoch):
                self.tf.summary.scalar("loss/train", history.loss[epoch - 1])
                self.tf.summary.scalar("loss/validation", history.val_loss[epoch - 1])

    def image(self, run_id: str, name: str, png: bytes, step: int) -> None:
        """Add a PNG figure (the reconstructions) to ``run_id``'s events."""
        image = self.tf.io.decode_png(png, channels=4)[None]
        with self.writers[run_id].as_default(step=step):
            self.tf.summary.image(name, image)

    def files(self, run_id: str) -> dict[str, bytes]:
        """Flush ``run_id``'s writer and return its event files as ``tensorboard/<name>``."""
        writer = self.writers[run_id]
        writer.flush()
        writer.close()
        return {
            f"{TENSORBOARD_DIR}/{path.name}": path.read_bytes()
            for path in sorted(self.paths[run_id].iterdir())
        }

    def close(self) -> None:
        """Close every writer and delete the temporary folder."""
        for writer in self.writers.values():
            writer.close()
        self._folder.cleanup()
