"""Synthetic IDX files, the format MNIST and Fashion-MNIST are published in, for data tests."""

import gzip
import struct
from pathlib import Path

import numpy as np

IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write an unsigned-byte IDX file, gzipped when the name ends in .gz."""
    header = struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())
    return path


def write_idx_folder(folder: Path, arrays: dict, gz: bool = False, dotted: bool = False) -> Path:
    """Write the four IDX files of `arrays` into folder (gzipped, or with dotted names)."""
    folder.mkdir(exist_ok=True)
    for key, name in IDX_NAMES.items():
        name = name.replace("-idx", ".idx") if dotted else name
        write_idx(folder / (name + (".gz" if gz else "")), arrays[key])
    return folder
