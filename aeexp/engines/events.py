"""TensorBoard event files for a group's runs, written as training goes, returned as bytes.

Each member gets a writer in a private temporary folder (never the output folder: the
driver writes that). After every epoch the group's callback adds each member's training and
validation loss; after evaluation, its reconstruction figure as an image. The finished
files come back as ``tensorboard/<file>`` entries of the run's artifacts.

Written with TensorBoard's own event writer and protocol buffers, in the form
``tf.summary`` writes (tensor summaries tagged for the scalars and images plugins), so a
JAX run on a machine without TensorFlow gets the same events as a TensorFlow run.
"""

from __future__ import annotations

import socket
import struct
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata

# Not tensorboard's EventFileWriter: it imports TensorFlow wherever TensorFlow is installed.
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from aeexp.engines.base import History

TENSORBOARD_DIR = "tensorboard"
# A PNG's first chunk (IHDR) holds its width and height, big-endian, at bytes 16-24.
_PNG_SIZE = slice(16, 24)


class EventFile:
    """One TensorBoard event file: a version record, then one record per event."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.v2"
        # Open for the writer's life, across epochs: closed by close().
        self._records = RecordWriter(open(folder / name, "wb"))  # noqa: SIM115
        self.add(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def add(self, event: event_pb2.Event) -> None:
        """Append one event."""
        self._records.write(event.SerializeToString())

    def flush(self) -> None:
        """Write what is buffered to the file."""
        self._records.flush()

    def close(self) -> None:
        """Close the file (again is harmless)."""
        if not self._records.closed:
            self._records.close()


class GroupEvents:
    """One TensorBoard writer per member of a group, in a temporary folder."""

    def __init__(self, run_ids: Sequence[str]) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="aeexp-events-")
        root = Path(self._folder.name)
        self.paths = {run_id: root / run_id for run_id in run_ids}
        self.writers = {run_id: EventFile(path) for run_id, path in self.paths.items()}

    def _write(self, run_id: str, step: int, value: summary_pb2.Summary.Value) -> None:
        summary = summary_pb2.Summary(value=[value])
        event = event_pb2.Event(wall_time=time.time(), step=step, summary=summary)
        self.writers[run_id].add(event)

    def _scalar(self, run_id: str, tag: str, value: float, step: int) -> None:
        self._write(
            run_id,
            step,
            summary_pb2.Summary.Value(
                tag=tag,
                metadata=scalar_metadata.create_summary_metadata(display_name=None, description=""),
                tensor=tensor_util.make_tensor_proto(np.float32(value)),
            ),
        )

    def epoch(self, epoch: int, histories: dict[str, History]) -> None:
        """Add each member's losses for ``epoch`` (1-based); a frozen member adds nothing."""
        for run_id, history in histories.items():
            if len(history.loss) < epoch:
                continue
            self._scalar(run_id, "loss/train", history.loss[epoch - 1], epoch)
            self._scalar(run_id, "loss/validation", history.val_loss[epoch - 1], epoch)

    def image(self, run_id: str, name: str, png: bytes, step: int) -> None:
        """Add a PNG figure (the reconstructions) to ``run_id``'s events."""
        width, height = struct.unpack(">II", png[_PNG_SIZE])
        # The images plugin's tensor: width and height as strings, then the encoded image.
        content: Any = np.array([str(width).encode(), str(height).encode(), png], dtype=object)
        self._write(
            run_id,
            step,
            summary_pb2.Summary.Value(
                tag=name,
                metadata=image_metadata.create_summary_metadata(display_name=None, description=""),
                tensor=tensor_util.make_tensor_proto(content),
            ),
        )

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
