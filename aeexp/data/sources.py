"""A dataset of MNIST's form: find its source, read it (Keras npz or IDX), validate and trim it.

Which dataset is ``data.name``, an entry of :mod:`aeexp.registry.datasets`. Source
resolution, first match wins:

1. an explicit path (config ``data.path``),
2. the dataset's environment variable (``AEEXP_DATA`` for MNIST),
3. its Keras loader (``keras.datasets.mnist.load_data()``), which reads its cache and
   downloads only there.

A path may be an ``.npz`` file in the Keras layout, a folder holding the four IDX files
(optionally gzipped), or a folder holding the dataset's npz (``mnist.npz`` in the shared
data folder). Every problem with the data becomes a one-line ``UserError`` naming the file.
"""

import contextlib
import errno
import gzip
import hashlib
import math
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from aeexp.errors import MAX_IMAGES, UserError, clip, one_line
from aeexp.registry.datasets import DATASETS, DEFAULT_DATASET, DatasetEntry

KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
# Per array: IDX file stem, IDX type suffix, magic number. The order is the hashing order.
IDX_FILES = {
    "x_train": ("train-images", "idx3-ubyte", 0x00000803),
    "y_train": ("train-labels", "idx1-ubyte", 0x00000801),
    "x_test": ("t10k-images", "idx3-ubyte", 0x00000803),
    "y_test": ("t10k-labels", "idx1-ubyte", 0x00000801),
}
# Everything NumPy, zipfile, gzip and the OS raise for a missing, truncated or garbled file.
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class DataSource:
    """Where a dataset will be read from; resolving one does not read the data."""

    kind: str  # "npz" | "idx" | "keras"
    path: Path | None  # None for "keras": Keras owns its cache
    origin: str  # "data.path" | the dataset's environment variable | "keras cache"
    dataset: str = DEFAULT_DATASET  # its name in the dataset registry

    @property
    def entry(self) -> DatasetEntry:
        """Return the dataset's registry entry."""
        return DATASETS[self.dataset]

    def describe(self) -> str:
        """One line saying what will be read and why."""
        if self.kind == "keras":
            cache = keras_cache_path(self.dataset)
            state = "present" if cache.exists() else "absent, Keras would download it"
            return f"keras.datasets.{self.entry.keras_loader} (cache {cache}: {state})"
        what = "npz file" if self.kind == "npz" else "IDX folder"
        return f"{what} {self.path} (from {self.origin})"


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is elementwise, not a bool
class Images:
    """A dataset as stored: uint8 images (n, 28, 28) and uint8 labels (n,), in file order."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def train_pixels(self) -> np.ndarray:
        """Training images as float32 (n, 784) in [0, 1]."""
        return pixels(self.x_train)

    def test_pixels(self) -> np.ndarray:
        """Test images as float32 (n, 784) in [0, 1]."""
        return pixels(self.x_test)


class _Array(NamedTuple):
    """One loaded array and the file (and key) it came from, for error messages."""

    where: str
    array: np.ndarray


def keras_cache_path(name: str = DEFAULT_DATASET) -> Path:
    """Where the dataset's Keras loader caches it (mirrors Keras's KERAS_HOME rule)."""
    home = os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser()
    return Path(home) / "datasets" / (DATASETS[name].keras_cache or name)


def resolve_source(
    path: str | os.PathLike | None = None, name: str = DEFAULT_DATASET
) -> DataSource:
    """Pick dataset ``name``'s source: explicit path, else its variable, else its Keras loader."""
    env_var = DATASETS[name].env_var
    if path is not None and os.fspath(path) != "":
        origin = "data.path"
    elif os.environ.get(env_var):
        path, origin = os.environ[env_var], env_var
    elif DATASETS[name].keras_loader is None:
        entry = DATASETS[name]
        raise UserError(
            f"data.name {name}: Keras has no loader for {entry.title}; set data.path to its "
            f"npz or IDX folder, or {env_var}"
        )
    else:
        return DataSource("keras", None, "keras cache", name)
    where = f"{clip(os.fspath(path), 300)} (from {origin})"
    try:
        resolved = Path(path).expanduser().resolve()
        is_file, is_dir = resolved.is_file(), resolved.is_dir()
    except RuntimeError:  # Path.resolve's "Symlink loop from ..." (Python < 3.13)
        raise UserError(f"{where}: symlink loop (too many levels of symbolic links)") from None
    except ValueError:  # a NUL character
        raise UserError(f"{where}: not a valid path (it contains a NUL character)") from None
    except OSError as error:
        raise UserError(f"{where}: {_os_problem(error)}") from None
    if is_file:
        return DataSource("npz", resolved, origin, name)
    if not is_dir:
        if resolved.is_symlink():
            raise UserError(f"{where}: symlink loop or dangling symlink")
        if resolved.exists():  # a FIFO, a device such as /dev/zero, a socket
            raise UserError(f"{where}: not a regular file or a folder")
        raise UserError(f"{resolved}: no such file or directory (from {origin})")
    # A folder without IDX files but with the dataset's npz (like the shared data folder's
    # mnist.npz) means the npz.
    npz = resolved / DATASETS[name].npz_name
    if npz.is_file() and _find_idx(resolved, "x_train") is None:
        return DataSource("npz", npz, origin, name)
    return DataSource("idx", resolved, origin, name)


def load_images(
    path: str | os.PathLike | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    *,
    name: str = DEFAULT_DATASET,
) -> Images:
    """Resolve, read and validate a dataset, keeping the first train_limit/test_limit images."""
    return load_source(resolve_source(path, name), train_limit, test_limit)


def sha256_of(source: DataSource) -> str | None:
    """SHA-256 of the source's file(s); IDX files are hashed as stored, concatenated in order."""
    if source.kind == "npz":
        files = [source.path]
    elif source.kind == "idx":
        files = list(_idx_paths(source.path).values())
    else:
        cache = keras_cache_path(source.dataset)
        if cache.is_dir():  # Keras keeps some datasets as their four IDX files
            files = list(_idx_paths(cache).values())
        elif cache.is_file():
            files = [cache]
        else:
            return None
    digest = hashlib.sha256()
    for file in files:
        with _read_errors(file), open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def summary(
    path: str | os.PathLike | None = None, name: str = DEFAULT_DATASET
) -> dict[str, object]:
    """Dataset, source, shapes, dtypes and sha256 (backs the ``aeexp data`` command)."""
    source = resolve_source(path, name)
    images = load_source(source)
    arrays = {key: getattr(images, key) for key in KEYS}
    return {
        "dataset": f"{name} ({DATASETS[name].title})",
        "source": source.describe(),
        "kind": source.kind,
        "origin": source.origin,
        "path": None if source.path is None else str(source.path),
        # Hash after loading: the Keras branch may only now have a cache file.
        "sha256": sha256_of(source),
        "shapes": {key: list(a.shape) for key, a in arrays.items()},
        "dtypes": {key: str(a.dtype) for key, a in arrays.items()},
    }


def load_source(
    source: DataSource, train_limit: int | None = None, test_limit: int | None = None
) -> Images:
    """Read and validate a resolved source, then keep the first train_limit/test_limit images."""
    reader = {"npz": _read_npz, "idx": _read_idx, "keras": _read_keras}[source.kind]
    arrays = reader(source)
    kept = {}
    for split, limit in (("train", train_limit), ("test", test_limit)):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        _validate_split(x, y)
        # Prefixes, never samples: the SSIM protocol depends on the stored test order.
        kept[f"x_{split}"], kept[f"y_{split}"] = _take(x, limit, split), _take(y, limit, split)
    return Images(**kept)


def _read_npz(source: DataSource) -> dict[str, _Array]:
    """Read the four arrays from a Keras-layout .npz file."""
    path = source.path
    # Opened first: zipfile.is_zipfile answers False for a file it cannot open at all.
    with _read_errors(path), open(path, "rb"):
        pass
    # Checked next: np.load would take a non-zip for a pickle and advise unpickling it.
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a zip archive, so not an .npz (truncated? wrong file?)")
    with _read_errors(path):
        _check_npz_headers(path)
        npz = np.load(path, allow_pickle=False)
    with npz:
        missing = [key for key in KEYS if key not in npz.files]
        if missing:
            found = ", ".join(npz.files) or "nothing"
            raise UserError(f"{path}: missing key(s) {', '.join(missing)} (found {found})")
        arrays = {}
        for key in KEYS:
            where = f"{path} [{key}]"
            with _read_errors(where):  # per key, so a bad member is named
                arrays[key] = _Array(where, npz[key])
        return arrays


def _check_npz_headers(path: Path) -> None:
    """Refuse an .npz whose arrays' headers are not MNIST's form, before any array is read.

    np.load allocates what a header claims, so a few bytes claiming a terabyte would
    exhaust memory: each header must state uint8 and (n, 28, 28) images or (n,) labels
    with n <= MAX_IMAGES, and its data must fit in what the zip member holds.
    """
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: info for info in archive.infolist()}
        for key in KEYS:
            info = members.get(f"{key}.npy")
            if info is None:
                continue  # reported with the keys found, by the caller
            where = f"{path} [{key}]"
            with archive.open(info) as member:
                try:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    else:
                        raise UserError(f"{where}: unsupported .npy format version {version}")
                except UserError:
                    raise  # a ValueError too, but already the line to show
                except ValueError as error:
                    raise UserError(f"{where}: bad array header ({one_line(error)})") from None
                header_size = member.tell()
            tail = IMAGE_SHAPE if key.startswith("x_") else ()
            _check_header(where, shape, dtype, tail)
            data_size = math.prod(shape) * dtype.itemsize
            if data_size > info.file_size - header_size:
                raise UserError(
                    f"{where}: header claims shape {shape} ({data_size} bytes) but the "
                    f"archive holds {info.file_size - header_size} data bytes"
                )


def _check_header(where: str, shape: tuple[int, ...], dtype: np.dtype, tail: tuple) -> None:
    """Check a declared dtype and shape: uint8, (n, *tail), 1 <= n <= MAX_IMAGES."""
    if dtype != np.uint8:
        raise UserError(f"{where}: dtype {dtype}, expected uint8")
    if len(shape) != 1 + len(tail) or tuple(shape[1:]) != tail or not shape[0]:
        expected = str(("n", *tail)).replace("'", "")
        raise UserError(f"{where}: shape {tuple(shape)}, expected {expected} with n >= 1")
    if shape[0] > MAX_IMAGES:
        raise UserError(f"{where}: {shape[0]} rows, more than the {MAX_IMAGES} aeexp reads")


def _read_idx(source: DataSource) -> dict[str, _Array]:
    """Read the four IDX files of a folder."""
    paths = _idx_paths(source.path)
    return {key: _Array(str(p), _parse_idx(p, IDX_FILES[key][2])) for key, p in paths.items()}


def _read_keras(source: DataSource) -> dict[str, _Array]:
    """Load the dataset through its Keras loader (its cache, else a download)."""
    entry = source.entry
    where = str(keras_cache_path(source.dataset))
    from aeexp.env.backend import import_keras

    try:
        # Imported here, quietly: it pulls in TensorFlow, whose start-up notices on stderr
        # would bury the one line a failed download gets.
        keras = import_keras()
        loader = getattr(keras.datasets, entry.keras_loader)
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as e:  # broad on purpose: Keras reports download failures as bare Exception
        raise UserError(
            f"{where}: Keras could not load {entry.title} ({one_line(e)}); "
            f"set data.path or {entry.env_var}"
        ) from None
    arrays = dict(zip(KEYS, (x_train, y_train, x_test, y_test), strict=True))
    return {key: _Array(f"{where} [{key}]", a) for key, a in arrays.items()}


def _find_idx(folder: Path, key: str) -> Path | None:
    """Find the IDX file for key under any usual spelling, plain or gzipped."""
    stem, kind, _ = IDX_FILES[key]
    for name in (f"{stem}-{kind}", f"{stem}.{kind}"):
        for suffix in ("", ".gz"):
            if (folder / (name + suffix)).is_file():
                return folder / (name + suffix)
    return None


def _idx_paths(folder: Path) -> dict[str, Path]:
    """Map each key to its IDX file in folder, in IDX_FILES (hashing) order."""
    paths = {}
    for key in IDX_FILES:
        path = _find_idx(folder, key)
        if path is None:
            stem, kind, _ = IDX_FILES[key]
            expected = folder / f"{stem}-{kind}"
            raise UserError(f"{expected}: missing (also tried .gz and {stem}.{kind})")
        paths[key] = path
    return paths


def _parse_idx(path: Path, magic: int) -> np.ndarray:
    """Parse an unsigned-byte IDX file: magic, big-endian uint32 dims, then the data.

    The header is read and checked first and then only the bytes it claims (plus one, to
    notice extra data), so neither a header claiming terabytes nor a gzip bomb is read
    past MNIST's form and MAX_IMAGES rows.
    """
    ndim = magic & 0xFF  # the magic's last byte is the number of dimensions
    offset = 4 + 4 * ndim
    opener = gzip.open if path.suffix == ".gz" else open
    with _read_errors(path), opener(path, "rb") as file:
        header = file.read(offset)
        if len(header) < offset:
            raise UserError(f"{path}: truncated header ({len(header)} bytes, need {offset})")
        found = int.from_bytes(header[:4], "big")
        if found != magic:
            raise UserError(f"{path}: magic number 0x{found:08x}, expected 0x{magic:08x}")
        dims = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        _check_header(str(path), dims, np.dtype(np.uint8), IMAGE_SHAPE if ndim == 3 else ())
        size = math.prod(dims)
        if opener is open and os.fstat(file.fileno()).st_size - offset != size:
            found_size = os.fstat(file.fileno()).st_size - offset
            raise UserError(f"{path}: {found_size} data bytes, header dims {dims} need {size}")
        data = file.read(size + 1)
    if len(data) != size:
        got = f"{len(data)}" if len(data) <= size else "more"
        raise UserError(f"{path}: {got} data bytes, header dims {dims} need {size}")
    # Copy: frombuffer over bytes is read-only, unlike arrays from np.load.
    return np.frombuffer(data, np.uint8, count=size).reshape(dims).copy()


def _validate_split(x: _Array, y: _Array) -> None:
    """Check one split: uint8 images (n, 28, 28), n >= 1, matching uint8 labels in 0..9."""
    _check_array(x, IMAGE_SHAPE)
    _check_array(y, ())
    if len(x.array) != len(y.array):
        raise UserError(f"{y.where}: {len(y.array)} labels but {x.where} has {len(x.array)} images")
    too_big = y.array[y.array >= NUM_CLASSES]  # uint8 cannot be negative
    if too_big.size:
        raise UserError(f"{y.where}: label {too_big[0]} outside 0..{NUM_CLASSES - 1}")


def _check_array(item: _Array, tail: tuple[int, ...]) -> None:
    """Check dtype uint8 and shape (n, *tail) with n >= 1."""
    a = item.array
    if a.dtype != np.uint8:
        raise UserError(f"{item.where}: dtype {a.dtype}, expected uint8")
    if a.ndim != 1 + len(tail) or a.shape[1:] != tail or len(a) == 0:
        expected = str(("n", *tail)).replace("'", "")
        raise UserError(f"{item.where}: shape {a.shape}, expected {expected} with n >= 1")


def _take(item: _Array, limit: int | None, split: str) -> np.ndarray:
    """Keep the first `limit` rows (all if None), copied so the full split can be freed."""
    if limit is None:
        return item.array
    if not 1 <= limit <= len(item.array):
        n = len(item.array)
        raise UserError(f"{item.where}: {split}_limit={limit}, must be between 1 and {n}")
    return item.array[:limit].copy()


def pixels(images: np.ndarray) -> np.ndarray:
    """Flatten uint8 images to float32 (n, 784) divided by 255, the thesis's preprocessing."""
    flat = images.reshape(len(images), -1).astype(np.float32)
    flat /= np.float32(255)
    return flat


@contextlib.contextmanager
def _read_errors(where: Path | str) -> Iterator[None]:
    """Turn low-level read failures into a one-line UserError naming the file."""
    try:
        yield
    except UserError:
        raise  # a ValueError too, but already the line to show
    except OSError as e:
        raise UserError(f"{where}: {_os_problem(e)}") from None
    except _READ_ERRORS as e:
        raise UserError(f"{where}: unreadable ({one_line(e)})") from None


def _os_problem(error: OSError) -> str:
    """Name an OS-level failure plainly: permission denied, symlink loop, or unreadable."""
    if isinstance(error, PermissionError):
        return "permission denied"
    if error.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if isinstance(error, IsADirectoryError):
        return "is a directory, not a file"
    if error.errno is None:  # e.g. gzip.BadGzipFile: the type says what is wrong
        return f"unreadable ({one_line(error)})"
    return f"unreadable ({error.strerror})"
