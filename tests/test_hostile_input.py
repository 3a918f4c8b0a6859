"""Hostile input through the real CLI: one line, exit code 2, bounded memory, nothing outside --out.

Every case runs ``python -m aeexp`` in a subprocess under an address-space limit and a
timeout, so a regression (an alias bomb expanded, a terabyte header believed) fails the test
instead of exhausting the machine or hanging CI. Config errors happen before TensorFlow is
imported and data errors are checked through ``aeexp data``, which never imports it: a
refused config measured about 50 MB resident and runs within 300 MB of address space, so
512 MiB leaves room while a blow-up still hits the limit.
"""

import gzip
import io
import os
import resource
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from aeexp.errors import clip, shorten

REPO = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 512 << 20  # bytes of address space for each CLI subprocess
TIME_LIMIT = 20  # seconds for each CLI subprocess (about 0.4 s each when all is well)


def memory_cap(limit: int | None) -> Callable[[], None] | None:
    """Return a pre-exec hook capping a subprocess's address space at ``limit`` bytes."""
    if limit is None:
        return None
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def launch(
    cwd: Path,
    args: Sequence[str],
    keras_home: Path,
    memory: int | None = MEMORY_LIMIT,
    wrapper: Sequence[str] = (),
) -> subprocess.CompletedProcess:
    """Run ``python -m aeexp ARGS`` from ``cwd`` with no MNIST configured, bounded."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "AEEXP_DATA": "", "KERAS_HOME": str(keras_home)}
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "aeexp", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=TIME_LIMIT,
        preexec_fn=memory_cap(memory),
    )


def snapshot(folder: Path) -> set[str]:
    """Every path under ``folder`` (relative), so a stray write anywhere shows up."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def aeexp(tmp_path: Path, *args: str, memory: int = MEMORY_LIMIT) -> str:
    """Run the CLI; assert exit 2, one ``aeexp: error:`` line, no traceback, no stray files.

    Returns the message after ``aeexp: error: ``. The subprocess runs in tmp_path/cwd with
    --out tmp_path/out (for ``run``); nothing may appear in tmp_path's parent, in the cwd
    or anywhere in tmp_path but the out folder.
    """
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    parent_before, mine_before = snapshot(tmp_path.parent), snapshot(tmp_path)
    result = launch(cwd, args, keras_home=cwd, memory=memory)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aeexp: error: "), result.stderr[:3000]
    assert len(lines[0]) < 1000, lines[0][:3000]
    assert snapshot(tmp_path.parent) == parent_before
    new = snapshot(tmp_path) - mine_before
    assert all(p == "out" or p.startswith("out/") for p in new), new
    return lines[0].removeprefix("aeexp: error: ")


def run_config(tmp_path: Path, content: str | bytes, *args: str, name="cfg.yaml") -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return aeexp(tmp_path, "run", str(path), "--out", str(tmp_path / "out"), *args)


def billion_laughs(levels: int = 9, width: int = 9, target: str = "train") -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + f"\n{target}: *a{levels}\n"


BOMB = "more than 100000 values once aliases are expanded (an alias bomb?)"

# name: (file content, extra CLI arguments, the message after '<file>: ')
CONFIG_CASES = {
    "dot-dot name": ("name: ..\n", (), "name: '..' starts with '.'"),
    "dot name": ("name: .\n", (), "name: '.' starts with '.'"),
    "parent path name": ("name: ../escaped\n", (), "name: '../escaped' starts with '.'"),
    "hidden name": ("name: .hidden\n", (), "name: '.hidden' starts with '.'"),
    "absolute name": ("name: /tmp/escaped\n", (), "name: '/tmp/escaped' contains '/'"),
    "backslash name": ("name: 'a\\b'\n", (), "name: 'a\\\\b' contains '\\\\'"),
    "control char name": ('name: "a\\eb"\n', (), "control or non-printable character '\\x1b'"),
    "long name": (f"name: {'n' * 300}\n", (), "name: is 300 characters long, at most 100"),
    "dot-dot name by --set": ("", ("--set", "name=.."), "name: '..' starts with '.'"),
    "billion laughs": (billion_laughs(), (), f"refused at line 6: {BOMB}"),
    "doubling bomb": (billion_laughs(30, 2), (), f"refused at line 16: {BOMB}"),
    "bomb into a message": (
        billion_laughs().replace("train: *a9", "optimizer: {name: *a9}"),
        (),
        f"refused at line 6: {BOMB}",
    ),
    "recursive alias": ("a: &x [*x]\n", (), "refused at line 1: an alias refers to itself"),
    "deep nesting": ("a: " + "[" * 100_000 + "]" * 100_000, (), "nested more than 32 levels"),
    "duplicate key": (
        "train: {epochs: 2}\nseed: 1\ntrain: {epochs: 3}\n",
        (),
        "malformed YAML at line 3: duplicate key 'train' (first at line 1)",
    ),
    "long integer": ("seed: " + "9" * 5000, (), "integer of 5000 characters (at most 100)"),
    "sexagesimal integer": ("seed: " + ":".join(["59"] * 200_000), (), "integer of 599999"),
    "seed beyond int64": ("seed: 18446744073709551616\n", (), "seed: Input should be less"),
    "negative code_dim by --set": ("", ("--set", "model.code_dim=-1"), "model.code_dim: Input"),
    "huge code_dim by --set": ("", ("--set", f"model.code_dim={10**12}"), "model.code_dim: In"),
    "huge code_dim": ("model: {code_dim: 1000000000000}\n", (), "model.code_dim: Input should"),
    "huge batch": ("train: {batch_size: 1000000000}\n", (), "train.batch_size: Input should"),
    "huge epochs": ("train: {epochs: 1000000000}\n", (), "train.epochs: Input should"),
    "huge limit": ("data: {train_limit: 1000000000}\n", (), "data.train_limit: Input should"),
    "bool as int": ("model: {code_dim: true}\n", (), "model.code_dim: Input should be a valid"),
    "huge value in a message": (
        "optimizer: {name: " + "x" * 200_000 + "}\n",
        (),
        "optimizer: unknown optimizer 'xxxx",
    ),
    "thousands of unknown keys": ("".join(f"k{i}: 1\n" for i in range(3000)), (), "and 2995 more"),
    "binary file": (b"seed: 1\n\x00\x00\x00", (), "binary file, not YAML text (NUL byte"),
    "not UTF-8": (b"name: caf\xe9\n", (), "not UTF-8 text (byte 0xe9 at line 1)"),
    "huge file": (b"#" * (3 << 20), (), "larger than 1 MiB, too large for a config file"),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_hostile_config(tmp_path, case):
    content, args, expected = CONFIG_CASES[case]
    message = run_config(tmp_path, content, *args)
    assert message.startswith(f"{tmp_path / 'cfg.yaml'}: ") and expected in message, message


def test_seed_beyond_int64_by_option_is_refused_as_the_option(tmp_path):
    message = run_config(tmp_path, "", "--seed", str(2**64))
    assert message == (
        "run: Invalid value for '--seed': expected a whole number in 0..9223372036854775807, "
        f"got {2**64}"
    )


def test_config_file_named_dot_dot_yaml(tmp_path):
    message = run_config(tmp_path, "seed: 1\n", name="...yaml")
    assert message.startswith(f"{tmp_path / '...yaml'}: name: '..' starts with '.'")
    assert "the name defaults to the file's name" in message


def test_alias_bomb_in_a_set_value(tmp_path):
    nested = "&a0 [x, x, x, x, x, x, x, x, x, x]"
    for i in range(1, 8):
        nested = f"&a{i} [{nested}, " + ", ".join([f"*a{i - 1}"] * 9) + "]"
    message = run_config(tmp_path, "", "--set", f"train={nested}")
    assert message.startswith("--set 'train=&a7 [&a6") and message.endswith(BOMB)


def test_config_that_is_a_directory(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    message = aeexp(tmp_path, "run", str(tmp_path / "dir.yaml"), "--out", str(tmp_path / "out"))
    assert "is a directory" in message


def test_config_that_is_a_symlink_loop(tmp_path):
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    message = aeexp(tmp_path, "run", str(tmp_path / "loop.yaml"), "--out", str(tmp_path / "out"))
    assert message == f"{tmp_path / 'loop.yaml'}: symlink loop (too many levels of symbolic links)"


def test_config_that_is_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "fifo.yaml")  # no writer: reading it naively would hang
    message = aeexp(tmp_path, "run", str(tmp_path / "fifo.yaml"), "--out", str(tmp_path / "out"))
    assert message == f"{tmp_path / 'fifo.yaml'}: not a regular file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_config_that_is_unreadable(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("seed: 1\n")
    path.chmod(0)
    message = aeexp(tmp_path, "run", str(path), "--out", str(tmp_path / "out"))
    assert message == f"{path}: permission denied"


# --- data: checked through `aeexp data`, which reads like a run but never imports TensorFlow --


def npz_claiming(path: Path, shape: tuple[int, ...]) -> Path:
    """An npz whose x_train header claims ``shape`` (a terabyte, say) over 64 bytes of data."""
    with zipfile.ZipFile(path, "w") as archive:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            member = io.BytesIO()
            header = {"descr": "|u1", "fortran_order": False, "shape": shape}
            if key == "x_train":
                np.lib.format.write_array_header_1_0(member, header)
                member.write(bytes(64))
            else:
                np.lib.format.write_array(member, np.zeros((2, 28, 28)[: 3 - key.startswith("y")]))
            archive.writestr(f"{key}.npy", member.getvalue())
    return path


def test_npz_claiming_a_terabyte(tmp_path):
    path = npz_claiming(tmp_path / "m.npz", (1_400_000_000, 28, 28))
    message = aeexp(tmp_path, "data", "--path", str(path))
    assert message == (
        f"{path.resolve()} [x_train]: 1400000000 rows, more than the 10000000 aeexp reads"
    )


def test_npz_header_claiming_more_than_it_holds(tmp_path):
    path = npz_claiming(tmp_path / "m.npz", (9_000_000, 28, 28))
    message = aeexp(tmp_path, "data", "--path", str(path))
    assert "header claims shape (9000000, 28, 28) (7056000000 bytes)" in message


def idx_folder(folder: Path) -> Path:
    """A valid IDX folder: 12 training and 5 test images of zeros, with labels."""
    folder.mkdir()
    for stem, magic, dims in [
        ("train-images-idx3-ubyte", 0x0803, (12, 28, 28)),
        ("train-labels-idx1-ubyte", 0x0801, (12,)),
        ("t10k-images-idx3-ubyte", 0x0803, (5, 28, 28)),
        ("t10k-labels-idx1-ubyte", 0x0801, (5,)),
    ]:
        header = struct.pack(f">I{len(dims)}I", magic, *dims)
        (folder / stem).write_bytes(header + bytes(int(np.prod(dims))))
    return folder


def test_gzip_bomb(tmp_path):
    folder = idx_folder(tmp_path / "idx")
    (folder / "train-images-idx3-ubyte").unlink()
    # 1 GiB of zeros in about 1 MB: gzip members concatenated, which gzip reads as one stream.
    header = struct.pack(">IIII", 0x0803, 12, 28, 28)
    zeros = gzip.compress(bytes(1 << 20), compresslevel=9)
    bomb = gzip.compress(header, compresslevel=9) + zeros * 1024
    (folder / "train-images-idx3-ubyte.gz").write_bytes(bomb)
    message = aeexp(tmp_path, "data", "--path", str(folder))
    assert message == (
        f"{folder.resolve() / 'train-images-idx3-ubyte.gz'}: more data bytes, "
        "header dims (12, 28, 28) need 9408"
    )


def test_idx_header_claiming_huge_dims(tmp_path):
    folder = idx_folder(tmp_path / "idx")
    (folder / "train-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 0x0803, 0xFFFFFFFF, 28, 28) + bytes(100)
    )
    message = aeexp(tmp_path, "data", "--path", str(folder))
    assert "4294967295 rows, more than the 10000000 aeexp reads" in message


def test_data_path_symlink_loop(tmp_path):
    (tmp_path / "loop.npz").symlink_to(tmp_path / "loop.npz")
    message = aeexp(tmp_path, "data", "--path", str(tmp_path / "loop.npz"))
    assert message.endswith("symlink loop (too many levels of symbolic links)")


def test_data_folder_of_garbage(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "mnist.npz").write_bytes(os.urandom(4096))
    message = aeexp(tmp_path, "data", "--path", str(folder))
    assert message.startswith(f"{folder.resolve() / 'mnist.npz'}: not a zip archive")


# --- the message helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("short", "'short'"),
        ("x" * 1_000_000, "'" + "x" * 76 + "..."),
        ("line\nbreak", "'line\\nbreak'"),
        ([list(range(100))] * 100, "[[0, 1, 2, 3, 4, 5, ...], [0, 1, 2, 3, 4, 5, ...], "),
    ],
)
def test_shorten_is_bounded(value, expected):
    text = shorten(value)
    assert text.startswith(expected) and len(text) <= 80


def test_shorten_survives_values_without_a_repr():
    nested: list = []
    nested.append(nested)
    assert len(shorten(nested)) <= 80
    assert shorten(10**5000) == "<int>"  # past Python's int-to-str digit limit


def test_clip_keeps_one_line():
    assert clip("a\nb  c") == "a b c"
    assert len(clip("y" * 10_000)) == 320
