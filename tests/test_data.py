"""Tests for aeexp.data.sources: resolution, npz and IDX reading, validation, limits, hashing."""

import gzip
import hashlib
import os
import struct
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from idxfiles import IDX_NAMES, write_idx, write_idx_folder

from aeexp.data import sources as data
from aeexp.errors import UserError

REPO = Path(__file__).resolve().parents[1]
# Read at import time: the autouse fixture below clears AEEXP_DATA for every test.
REAL_NPZ = Path(os.environ.get("AEEXP_DATA") or REPO.parent / "shared" / "data" / "mnist.npz")
REAL_SHA256 = "150767cbe69c5b8a20ea38aacda23f9032d735e75e0478fad3ed9adf1880334f"


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch, tmp_path):
    """No test sees the caller's AEEXP_DATA or Keras cache."""
    monkeypatch.delenv("AEEXP_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


@pytest.fixture(scope="module")
def real():
    if not REAL_NPZ.is_file():
        pytest.skip(f"no MNIST .npz file at {REAL_NPZ} (set AEEXP_DATA to one)")
    return data.load_images(REAL_NPZ)


@pytest.fixture
def tmp(tmp_path):
    """tmp_path with symlinks resolved, as resolve_source reports paths (macOS /tmp is one)."""
    return tmp_path.resolve()


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)

    def split(n):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        return images, rng.integers(0, 10, n, dtype=np.uint8)

    (x_train, y_train), (x_test, y_test) = split(12), split(5)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write_npz(path: Path, arrays: dict) -> Path:
    np.savez(path, **arrays)
    return path


def assert_equal(mnist: data.Images, arrays: dict) -> None:
    for key, expected in arrays.items():
        got = getattr(mnist, key)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)


def user_error(path, **kwargs) -> str:
    """Load and return the UserError message, checking it is one line naming the file."""
    with pytest.raises(UserError) as info:
        data.load_images(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    # No chained low-level traceback: nothing is printed above the UserError.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    return message


# --- real file -------------------------------------------------------------------------------


def test_real_file_shapes_order_and_stats(real):
    assert real.x_train.shape == (60000, 28, 28) and real.y_train.shape == (60000,)
    assert real.x_test.shape == (10000, 28, 28) and real.y_test.shape == (10000,)
    # The README promises the original label order; the SSIM protocol relies on test order.
    assert real.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert real.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    pixels = real.train_pixels()
    assert pixels.dtype == np.float32 and pixels.shape == (60000, 784)
    assert pixels.mean() == pytest.approx(0.1306605, abs=1e-6)
    assert pixels.std() == pytest.approx(0.3081078, abs=1e-6)


def test_real_file_limits_keep_prefix(real):
    small = data.load_images(REAL_NPZ, train_limit=100, test_limit=10)
    np.testing.assert_array_equal(small.x_train, real.x_train[:100])
    np.testing.assert_array_equal(small.y_test, real.y_test[:10])
    assert small.test_pixels().shape == (10, 784)


def test_real_file_summary_and_sha256(real):
    info = data.summary(REAL_NPZ)
    assert info["sha256"] == REAL_SHA256
    assert info["kind"] == "npz" and info["origin"] == "data.path"
    assert info["shapes"] == {
        "x_train": [60000, 28, 28],
        "y_train": [60000],
        "x_test": [10000, 28, 28],
        "y_test": [10000],
    }
    assert set(info["dtypes"].values()) == {"uint8"}
    assert str(REAL_NPZ.resolve()) in info["source"]


# --- synthetic round trips -------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True], ids=["savez", "savez_compressed"])
def test_npz_round_trip(tmp, arrays, compressed):
    save = np.savez_compressed if compressed else np.savez
    save(tmp / "m.npz", **arrays)
    assert_equal(data.load_images(tmp / "m.npz"), arrays)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dotted", [False, True], ids=["dash", "dotted"])
def test_idx_round_trip(tmp, arrays, gz, dotted):
    folder = write_idx_folder(tmp / "idx", arrays, gz=gz, dotted=dotted)
    assert data.resolve_source(folder).kind == "idx"
    mnist = data.load_images(folder)
    assert_equal(mnist, arrays)
    mnist.x_train[0, 0, 0] ^= 1  # arrays must be ordinary writable copies, as from np.load


def test_idx_and_npz_agree(tmp, arrays):
    from_idx = data.load_images(write_idx_folder(tmp / "idx", arrays, gz=True))
    from_npz = data.load_images(write_npz(tmp / "m.npz", arrays))
    for key in data.KEYS:
        np.testing.assert_array_equal(getattr(from_idx, key), getattr(from_npz, key))


def test_pixels_are_float32_divided_by_255(tmp, arrays):
    mnist = data.load_images(write_npz(tmp / "m.npz", arrays))
    for pixels, images in (
        (mnist.train_pixels(), arrays["x_train"]),
        (mnist.test_pixels(), arrays["x_test"]),
    ):
        assert pixels.dtype == np.float32 and pixels.shape == (len(images), 784)
        np.testing.assert_array_equal(pixels, images.reshape(len(images), -1) / np.float32(255))
    assert mnist.x_train.dtype == np.uint8  # the stored arrays are untouched


def test_limits_keep_prefix(tmp, arrays):
    mnist = data.load_images(write_npz(tmp / "m.npz", arrays), train_limit=3, test_limit=1)
    assert_equal(mnist, {key: a[: 3 if "train" in key else 1] for key, a in arrays.items()})


@pytest.mark.parametrize("limits", [{"train_limit": 0}, {"test_limit": 6}, {"train_limit": -1}])
def test_limit_out_of_range(tmp, arrays, limits):
    path = write_npz(tmp / "m.npz", arrays)
    message = user_error(path, **limits)
    assert str(path) in message and "_limit=" in message


# --- resolution ------------------------------------------------------------------------------


def test_explicit_path_beats_env(tmp, arrays, monkeypatch):
    explicit = write_npz(tmp / "explicit.npz", arrays)
    monkeypatch.setenv("AEEXP_DATA", str(write_npz(tmp / "env.npz", arrays)))
    source = data.resolve_source(explicit)
    assert source == data.DataSource("npz", explicit, "data.path")
    assert source.describe() == f"npz file {explicit} (from data.path)"


def test_env_used_without_explicit_path(tmp, arrays, monkeypatch):
    folder = write_idx_folder(tmp / "idx", arrays)
    monkeypatch.setenv("AEEXP_DATA", str(folder))
    for path in (None, ""):
        assert data.resolve_source(path) == data.DataSource("idx", folder, "AEEXP_DATA")
    assert_equal(data.load_images(), arrays)


def test_folder_with_mnist_npz_means_the_npz(tmp, arrays):
    npz = write_npz(tmp / "mnist.npz", arrays)
    assert data.resolve_source(tmp) == data.DataSource("npz", npz, "data.path")


def test_relative_path_is_made_absolute(tmp, arrays, monkeypatch):
    write_npz(tmp / "m.npz", arrays)
    monkeypatch.chdir(tmp)
    assert data.resolve_source("m.npz").path == tmp.resolve() / "m.npz"


@pytest.mark.parametrize("env", [None, ""])
def test_falls_back_to_keras_without_loading(monkeypatch, env):
    if env is not None:
        monkeypatch.setenv("AEEXP_DATA", env)
    source = data.resolve_source(None)
    assert source == data.DataSource("keras", None, "keras cache")
    assert "absent" in source.describe()
    assert data.sha256_of(source) is None


def test_keras_cache_hash_when_present(tmp, arrays, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp))
    (tmp / "datasets").mkdir()
    cache = write_npz(tmp / "datasets" / "mnist.npz", arrays)
    source = data.resolve_source(None)
    assert data.keras_cache_path() == cache and "present" in source.describe()
    assert data.sha256_of(source) == data.sha256_of(data.resolve_source(cache))


def fake_keras(load_data):
    """A stand-in `keras` module, so the Keras branch runs without TensorFlow or a download."""
    return types.SimpleNamespace(
        datasets=types.SimpleNamespace(mnist=types.SimpleNamespace(load_data=load_data)),
        backend=types.SimpleNamespace(backend=lambda: "tensorflow"),
    )


def test_keras_branch_is_validated_and_limited(arrays, monkeypatch):
    result = (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    monkeypatch.setitem(sys.modules, "keras", fake_keras(lambda: result))
    assert_equal(data.load_images(test_limit=5), arrays)
    bad = (arrays["x_train"], arrays["y_train"] + 10), result[1]
    monkeypatch.setitem(sys.modules, "keras", fake_keras(lambda: bad))
    assert "y_train" in user_error(None)


def test_keras_failure_is_user_error(monkeypatch):
    def offline():
        raise Exception("URL fetch failure on https://example.invalid/mnist.npz:\nNone")

    monkeypatch.setitem(sys.modules, "keras", fake_keras(offline))
    message = user_error(None)
    assert str(data.keras_cache_path()) in message and "AEEXP_DATA" in message


def test_missing_path_is_user_error(tmp, monkeypatch):
    missing = tmp / "nope.npz"
    with pytest.raises(UserError, match="nope.npz.*data.path"):
        data.resolve_source(missing)
    monkeypatch.setenv("AEEXP_DATA", str(missing))
    message = user_error(None)
    assert str(missing) in message and "AEEXP_DATA" in message


def test_resolve_does_not_read(tmp):
    garbage = tmp / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    assert data.resolve_source(garbage).kind == "npz"


def test_import_does_not_pull_in_tensorflow():
    code = (
        "import sys, aeexp.data.sources; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- sha256 ----------------------------------------------------------------------------------


def test_idx_sha256_is_the_four_files_concatenated(tmp, arrays):
    folder = write_idx_folder(tmp / "idx", arrays, gz=True)
    blob = b"".join((folder / f"{name}.gz").read_bytes() for name in IDX_NAMES.values())
    assert data.sha256_of(data.resolve_source(folder)) == hashlib.sha256(blob).hexdigest()


# --- malformed data: every case is a one-line UserError naming the file ----------------------


def bad_labels(a):
    labels = a["y_train"].copy()
    labels[3] = 10
    return {**a, "y_train": labels}


# Each case breaks one array; the error must name the file holding it.
BAD_ARRAYS = {
    "image shape": ("x_train", lambda a: {**a, "x_train": a["x_train"][:, :, :27]}),
    "image rank": ("x_test", lambda a: {**a, "x_test": a["x_test"].reshape(5, 784)}),
    "label shape": ("y_test", lambda a: {**a, "y_test": a["y_test"][:, None]}),
    "label range": ("y_train", bad_labels),
    "count mismatch": ("y_train", lambda a: {**a, "y_train": a["y_train"][:-1]}),
    "empty split": (
        "x_test",
        lambda a: {**a, "x_test": a["x_test"][:0], "y_test": a["y_test"][:0]},
    ),
}
# Cases only an npz can express: IDX files hold unsigned bytes only (enforced by the magic).
NPZ_ONLY = {
    "image dtype": ("x_train", lambda a: {**a, "x_train": a["x_train"].astype(np.float32)}),
    "label dtype": ("y_test", lambda a: {**a, "y_test": a["y_test"].astype(np.int64)}),
    "missing key": ("y_test", lambda a: {k: v for k, v in a.items() if k != "y_test"}),
    "object array": ("x_test", lambda a: {**a, "x_test": np.array([None, 1], dtype=object)}),
}


@pytest.mark.parametrize("case", [*BAD_ARRAYS, *NPZ_ONLY])
def test_bad_npz_arrays(tmp, arrays, case):
    key, corrupt = {**BAD_ARRAYS, **NPZ_ONLY}[case]
    path = write_npz(tmp / "m.npz", corrupt(arrays))
    message = user_error(path)
    assert str(path) in message and key in message


@pytest.mark.parametrize("case", BAD_ARRAYS)
def test_bad_idx_arrays(tmp, arrays, case):
    key, corrupt = BAD_ARRAYS[case]
    folder = write_idx_folder(tmp / "idx", corrupt(arrays))
    assert str(folder / IDX_NAMES[key]) in user_error(folder)


def truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def flip_middle_byte(path: Path) -> None:
    """Corrupt one byte of x_train's data, which fills the middle of the archive."""
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))


BAD_NPZ_FILES = {
    "not a zip": lambda p: p.write_bytes(b"certainly not a zip archive"),
    "empty file": lambda p: p.write_bytes(b""),
    "truncated": lambda p: truncate(p, p.stat().st_size // 2),
    "bare npy": lambda p: p.write_bytes(p.with_suffix(".npy").read_bytes()),
    "corrupt member": flip_middle_byte,
}


@pytest.mark.parametrize("case", BAD_NPZ_FILES)
def test_bad_npz_file(tmp, arrays, case):
    path = write_npz(tmp / "m.npz", arrays)
    np.save(tmp / "m.npy", arrays["x_train"])
    BAD_NPZ_FILES[case](path)
    assert str(path) in user_error(path)


BAD_IDX_FILES = {
    "missing file": lambda p: p.unlink(),
    "wrong magic": lambda p: write_idx(p, np.zeros(12, np.uint8)),
    "short data": lambda p: truncate(p, p.stat().st_size - 1),
    "trailing bytes": lambda p: p.write_bytes(p.read_bytes() + b"\0"),
    "short header": lambda p: truncate(p, 6),
    "empty file": lambda p: truncate(p, 0),
}


@pytest.mark.parametrize("case", BAD_IDX_FILES)
def test_bad_idx_file(tmp, arrays, case):
    folder = write_idx_folder(tmp / "idx", arrays)
    BAD_IDX_FILES[case](folder / IDX_NAMES["x_train"])
    assert str(folder / IDX_NAMES["x_train"]) in user_error(folder)


@pytest.mark.parametrize("keep", [None, 40], ids=["not gzip", "truncated gzip"])
def test_bad_gzip(tmp, arrays, keep):
    folder = write_idx_folder(tmp / "idx", arrays, gz=True)
    path = folder / f"{IDX_NAMES['y_test']}.gz"
    if keep is None:
        path.write_bytes(b"plain bytes")
    else:
        truncate(path, keep)
    assert str(path) in user_error(folder)


def test_missing_idx_file_names_expected_file(tmp, arrays):
    folder = write_idx_folder(tmp / "idx", arrays, gz=True)
    (folder / f"{IDX_NAMES['y_train']}.gz").unlink()
    message = user_error(folder)
    assert str(folder / IDX_NAMES["y_train"]) in message
    with pytest.raises(UserError, match="train-labels"):
        data.sha256_of(data.resolve_source(folder))


# --- hostile data: bounded memory, plain reasons ---------------------------------------------


def write_npz_with_header(path: Path, arrays: dict, key: str, shape: tuple, descr="|u1") -> Path:
    """Write an npz whose ``key`` member has a header claiming ``shape`` but few data bytes."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            if name == key:
                header = {"descr": descr, "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_1_0(member, header)
                member.write(b"\0" * 64)
            else:
                np.lib.format.write_array(member, array)
            archive.writestr(f"{name}.npy", member.getvalue())
    return path


def test_npz_header_claiming_a_terabyte_is_refused_unread(tmp, arrays):
    path = write_npz_with_header(tmp / "m.npz", arrays, "x_train", (1_300_000_000, 28, 28))
    message = user_error(path)
    assert f"{path} [x_train]" in message and "more than the 10000000" in message


def test_npz_header_claiming_more_than_the_member_holds(tmp, arrays):
    path = write_npz_with_header(tmp / "m.npz", arrays, "x_test", (5000, 28, 28))
    message = user_error(path)
    assert "[x_test]: header claims shape (5000, 28, 28)" in message
    assert "archive holds 64 data bytes" in message


@pytest.mark.parametrize(
    ("shape", "descr", "expected"),
    [((12, 784), "|u1", "shape (12, 784)"), ((12, 28, 28), "<f8", "dtype float64")],
)
def test_npz_header_of_the_wrong_form_is_refused_unread(tmp, arrays, shape, descr, expected):
    path = write_npz_with_header(tmp / "m.npz", arrays, "x_train", shape, descr)
    assert expected in user_error(path)


def test_idx_header_claiming_huge_dims_is_refused_unread(tmp, arrays):
    folder = write_idx_folder(tmp / "idx", arrays)
    path = folder / IDX_NAMES["x_train"]
    path.write_bytes(struct.pack(">IIII", 0x0803, 4_000_000_000, 28, 28) + b"\0" * 100)
    assert "4000000000 rows, more than the 10000000" in user_error(folder)


def test_idx_header_claiming_more_than_the_file_holds(tmp, arrays):
    folder = write_idx_folder(tmp / "idx", arrays)
    path = folder / IDX_NAMES["x_train"]
    path.write_bytes(struct.pack(">IIII", 0x0803, 9_000_000, 28, 28) + b"\0" * 100)
    assert "100 data bytes, header dims (9000000, 28, 28) need" in user_error(folder)


def test_gzip_bomb_is_read_only_as_far_as_its_header_claims(tmp, arrays):
    """100 MB of zeros behind a 12-image header: refused after reading 12 images and a byte."""
    folder = write_idx_folder(tmp / "idx", arrays, gz=True)
    path = folder / f"{IDX_NAMES['x_train']}.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(struct.pack(">IIII", 0x0803, 12, 28, 28))
        zeros = bytes(1 << 20)
        for _ in range(100):
            f.write(zeros)
    assert path.stat().st_size < 1 << 20
    assert "more data bytes, header dims (12, 28, 28) need 9408" in user_error(folder)


def test_data_path_symlink_loop(tmp):
    loop = tmp / "loop.npz"
    loop.symlink_to(loop)
    assert "symlink loop" in user_error(loop)


def test_data_path_with_nul_or_too_long_a_name(tmp):
    assert "NUL character" in user_error(f"{tmp}/a\0b")
    assert "File name too long" in user_error(tmp / ("a" * 300))


@pytest.fixture
def unreadable(monkeypatch):
    """Make opening any file under a folder fail with EACCES (tests run as root, too)."""
    import builtins
    import errno as errno_

    real_open = builtins.open

    def deny(folder):
        def fake_open(file, *args, **kwargs):
            if str(file).startswith(str(folder)):
                raise PermissionError(errno_.EACCES, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(gzip, "open", lambda file, *a, **k: fake_open(file, *a, **k))

    return deny


def test_unreadable_npz_says_permission_denied(tmp, arrays, unreadable):
    path = write_npz(tmp / "m.npz", arrays)
    unreadable(tmp)
    assert user_error(path) == f"{path}: permission denied"


def test_unreadable_idx_says_permission_denied(tmp, arrays, unreadable):
    folder = write_idx_folder(tmp / "idx", arrays, gz=True)
    unreadable(folder)
    assert user_error(folder).endswith(": permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_npz_says_permission_denied_for_real(tmp, arrays):
    path = write_npz(tmp / "m.npz", arrays)
    path.chmod(0)
    assert user_error(path) == f"{path}: permission denied"


def test_folder_of_garbage(tmp):
    folder = tmp / "junk"
    folder.mkdir()
    for name in ("a.bin", "mnist.txt", "train-images"):
        (folder / name).write_bytes(os.urandom(256))
    assert "train-images-idx3-ubyte: missing" in user_error(folder)
    (folder / "mnist.npz").write_bytes(os.urandom(256))
    assert "not a zip archive" in user_error(folder)
