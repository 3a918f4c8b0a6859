"""Every shell command in the README and the docs, run as a reader would run it.

Each page's ```bash blocks run in order, in a fresh copy of the repository, so a page that
trains and then tables its run is followed as written. A command that would train for long,
install gigabytes or start a cluster runs in a reduced form instead, and is named below with
the reason; a ```text block right after a command that runs as written is its expected
output, and its lines must appear in what the command printed, in order ("..." skips).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [REPO / "README.md", REPO / "CONTRIBUTING.md", *(REPO / "docs").rglob("*.md")],
    key=lambda p: p.relative_to(REPO).as_posix(),
)
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SMALL = "--set data.train_limit=400 --set data.test_limit=100 --set train.epochs=1"

# Commands that run in another form, and why. Training on a few hundred images for one
# epoch exercises the same path as the real thing; make -n prints what a target would run.
REDUCED = {
    "make install": ("make -n install", "installs about 3.8 GB; .ci/run does this install"),
    "pip install -e '.[tensorflow]'": (
        "pip install --dry-run --no-deps -q -e '.[tensorflow]'",
        "installs packages into the test's interpreter",
    ),
    "pip install -e '.[jax]'": (
        "pip install --dry-run --no-deps -q -e '.[jax]'",
        "installs packages into the test's interpreter",
    ),
    "make run": (f"make run ARGS='{SMALL}'", "50 epochs on all of MNIST: test_make_run_output"),
    "make install-latest": ("make -n install-latest", "upgrades the test's interpreter"),
    "make lock": ("make -n lock", "resolves against the package index; tests/test_lock.py"),
    "make reproduce": ("make -n reproduce", "740 runs, about 3 hours"),
    "make reproduce EXECUTOR=ray ADDRESS=auto": (
        "make -n reproduce EXECUTOR=ray ADDRESS=auto",
        "740 runs on a Ray cluster",
    ),
    "make beta": ("make -n beta", "400 runs, about 100 minutes"),
    "make backends": (
        "make -n backends",
        "150 runs of 50 epochs: 30 on JAX, 60 paired on each engine",
    ),
    "make test": ("make -n test", "the test suite itself"),
    "make test-all": ("make -n test-all", "the test suite itself"),
    "make docs": ("make -n docs", ".ci/run builds the docs strictly"),
    "python -m build --wheel": (
        'python -m build --wheel --outdir "$(mktemp -d)"',
        "writes dist/ in the clone; .ci/wheel builds and installs the wheel",
    ),
    "AEEXP_UPDATE_GOLDEN=1 python -m pytest tests/test_cli_snapshot.py": (
        "python -m pytest --collect-only -q -p no:cacheprovider tests/test_cli_snapshot.py",
        "a test suite inside the test suite; the snapshot test itself runs in CI",
    ),
    "aeexp run configs/thesis/i_div2_relu-sigmoid_nadam.yaml --set train.epochs=5": (
        "aeexp run configs/thesis/i_div2_relu-sigmoid_nadam.yaml --set data.train_limit=400 "
        "--set data.test_limit=100 --set train.epochs=5 --quiet",
        "five epochs on all of MNIST",
    ),
    "aeexp run configs/thesis/mse_relu-sigmoid_adam.yaml --set train.backend=jax": (
        f"aeexp run configs/thesis/mse_relu-sigmoid_adam.yaml --set train.backend=jax {SMALL}",
        "50 epochs on all of MNIST, on JAX",
    ),
    "aeexp sweep configs/sweeps/thesis-optimizers.yaml --set train.backend=jax --out results/jax": (
        "aeexp sweep configs/sweeps/thesis-optimizers.yaml --set train.backend=jax "
        "--out results/jax --dry-run",
        "150 runs of 50 epochs",
    ),
    "aeexp sweep configs/sweeps/thesis-optimizers.yaml --out results/thesis/runs "
    "--executor ray --address auto --cpus-per-worker 1": (
        "aeexp sweep configs/sweeps/thesis-optimizers.yaml --out results/thesis/runs "
        "--executor ray --address auto --cpus-per-worker 1 --dry-run",
        "150 runs on a Ray cluster",
    ),
    'for f in configs/thesis/*.yaml; do aeexp run "$f" --out results/cells --quiet; done': (
        f'for f in configs/thesis/*.yaml; do aeexp run "$f" --out results/cells --quiet {SMALL};'
        " done",
        "six runs of 50 epochs on all of MNIST",
    ),
    "aeexp tune configs/tune/thesis-cells.yaml --trials 8 --batch 2 --out results/tune "
    "--top 1 --seeds 0-4 --sweep-out configs/sweeps/thesis-cells-best.yaml": (
        "aeexp tune configs/tune/thesis-cells.yaml --trials 2 --batch 2 --out results/tune "
        "--top 1 --seeds 0-4 --sweep-out configs/sweeps/thesis-cells-best.yaml "
        "--set data.holdout=100 --set data.train_limit=400 --set data.test_limit=100 "
        "--set train.epochs=2",
        "48 trials of 50 epochs",
    ),
    "aeexp sweep configs/sweeps/thesis-cells-best.yaml --out results/tune": (
        "aeexp sweep configs/sweeps/thesis-cells-best.yaml --out results/tune --dry-run",
        "30 runs of 50 epochs",
    ),
    "pip install build twine": (
        "pip install --dry-run --no-deps -q build twine",
        "installs packages into the test's interpreter (its dev extra has both)",
    ),
    'pip install "$(ls dist/aeexp-*.whl)[jax]"': (
        'pip install --dry-run --no-deps -q "$(ls dist/aeexp-*.whl)[jax]"',
        "installs about 1 GB into the test's interpreter; .ci/wheel installs it in a fresh venv",
    ),
    "pip install 'optuna>=4,<5'": (
        "pip install --dry-run --no-deps -q 'optuna>=4,<5'",
        "installs packages into the test's interpreter",
    ),
    "export AEEXP_DATA=/path/to/mnist.npz": (
        'export AEEXP_DATA="$DOCS_TEST_MNIST"',
        "the page's path is a placeholder for the reader's copy",
    ),
}
# Commands that run as written, but whose shown output comes from a reduced command before them.
OUTPUT_CHECKED_ELSEWHERE = {
    "aeexp table results/mse_relu-sigmoid_adam --compare thesis": (
        "shows make run's numbers on all of MNIST: test_make_run_prints_what_the_readme_shows"
    ),
}
# Commands that do not run at all, and why: each starts, joins or asks a Ray cluster's node.
NOT_RUN = {
    "ray start --head --port 6379 --num-cpus 32": "starts a Ray head node (tests/test_ray.py)",
    "ray start --address HEAD_IP:6379": "joins a Ray cluster at a placeholder address",
    "ray get-auth-token": "prints the token of a head node's Ray (tests/test_ray.py sets one)",
    "aeexp data --name fashion_mnist --path ~/data/fashion": (
        "reads Fashion-MNIST, whose files these machines lack (no internet); "
        "tests/test_datasets.py reads synthetic ones in its layout"
    ),
    "aeexp run thesis/mse_relu-sigmoid_adam --set data.name=fashion_mnist "
    "--set data.path=~/data/fashion": (
        "trains on Fashion-MNIST, whose files these machines lack; tests/test_datasets.py "
        "trains a sweep on synthetic ones through the CLI"
    ),
    "aeexp sweep configs/sweeps/thesis-optimizers.yaml --out results/thesis/runs "
    "--executor ray --address ray://HEAD_IP:10001": (
        "attaches to a Ray cluster at a placeholder address (tests/test_ray.py: a real one)"
    ),
}


def blocks(text: str) -> list[tuple[str, str]]:
    """Return the page's fenced blocks as (language, body), in order."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


def commands(body: str) -> list[str]:
    """Return a bash block's commands: continuations joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", "", body)
    found = []
    for line in joined.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            found.append(re.sub(r"\s+", " ", line))
    return found


def steps(page: Path) -> list[tuple[str, str | None]]:
    """Return (command, expected output or None) for each command on the page, in order."""
    found: list[tuple[str, str | None]] = []
    pairs = blocks(page.read_text())
    for index, (language, body) in enumerate(pairs):
        if language != "bash":
            continue
        cmds = commands(body)
        after = pairs[index + 1] if index + 1 < len(pairs) else None
        expected = after[1] if after and after[0] == "text" and len(cmds) == 1 else None
        found += [(command, expected if command == cmds[-1] else None) for command in cmds]
    return found


def pages_with_commands() -> list[Path]:
    """Return the pages that hold at least one shell command."""
    return [page for page in PAGES if steps(page)]


def test_every_command_is_run_or_reduced_for_a_stated_reason():
    """Each command runs as written, or is named with its reason; no entry is stale."""
    every = {command for page in PAGES for command, _ in steps(page)}
    assert every, "no commands found: the block pattern no longer matches the pages"
    assert not set(REDUCED) - every, "REDUCED names commands no page has any more"
    assert not set(NOT_RUN) - every, "NOT_RUN names commands no page has any more"
    assert not set(OUTPUT_CHECKED_ELSEWHERE) - every, "a stale OUTPUT_CHECKED_ELSEWHERE entry"
    assert all(reason for _, reason in REDUCED.values()) and all(NOT_RUN.values())


def test_the_commands_are_parsed_as_a_reader_reads_them():
    body = "# a comment\naeexp sweep a.yaml \\\n    --dry-run   # trailing\n\nmake run\n"
    assert commands(body) == ["aeexp sweep a.yaml --dry-run", "make run"]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """Return a fresh copy of the repository's files, as a clone would have them."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    root = tmp_path / "clone"
    for name in filter(None, listed):
        source = REPO / name
        if source.is_symlink():  # aeexp/configs: a clone holds the link, not a copy
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).symlink_to(os.readlink(source))
        elif source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    return root


def shell(command: str, cwd: Path, mnist: Path) -> subprocess.CompletedProcess:
    """Run one command in bash as a reader's terminal would, in the sandbox."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "AEEXP_DATA": str(mnist),
        "DOCS_TEST_MNIST": str(mnist),
        "PYTHON": sys.executable,
    }
    return subprocess.run(
        ["bash", "-c", f"set -e\n{command}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def appears_in_order(expected: str, printed: str) -> bool:
    """Return whether every shown line (bar '...') appears in the printed text, in order."""
    lines = iter(line.rstrip() for line in printed.splitlines())
    wanted = [line.rstrip() for line in expected.splitlines() if line.strip() != "..."]
    return all(any(want == got for got in lines) for want in wanted)


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", pages_with_commands(), ids=lambda p: p.relative_to(REPO).as_posix()
)
def test_the_pages_commands_run(page, sandbox, mnist_path):
    """Run each command on the page in order; a shown output must be what it printed."""
    # A venv made by a page would hide the test's interpreter: the page's own command runs,
    # but what follows uses the interpreter under test.
    for command, expected in steps(page):
        if command in NOT_RUN:
            continue
        run, _ = REDUCED.get(command, (command, ""))
        done = shell(run.replace(" && . .venv/bin/activate", ""), sandbox, mnist_path)
        assert done.returncode == 0, f"{command!r} -> {run!r}:\n{done.stdout}\n{done.stderr}"
        if expected is not None and command not in {**REDUCED, **OUTPUT_CHECKED_ELSEWHERE}:
            assert appears_in_order(expected, done.stdout), (command, done.stdout)


def expected_after(page: Path, command: str) -> str:
    """Return the text block a page shows after ``command``."""
    return next(expected for cmd, expected in steps(page) if cmd == command and expected)


@pytest.mark.slow
def test_make_run_prints_what_the_readme_shows(sandbox, mnist_path):
    """The quickstart's numbers, to the digits shown, and the table beside the thesis."""
    readme = REPO / "README.md"
    tutorial = REPO / "docs" / "tutorials" / "first-run.md"
    shown = expected_after(readme, "make run")
    table = expected_after(readme, "aeexp table results/mse_relu-sigmoid_adam --compare thesis")
    assert shown == expected_after(tutorial, "make run")
    ran = shell("make run", sandbox, mnist_path)
    assert ran.returncode == 0, ran.stderr
    assert appears_in_order(shown, ran.stdout), ran.stdout
    tabled = shell(
        "aeexp table results/mse_relu-sigmoid_adam --compare thesis", sandbox, mnist_path
    )
    assert appears_in_order(table, tabled.stdout), tabled.stdout


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_fence_is_closed(page):
    """An unclosed fence swallows the rest of the page, and its commands would go unrun."""
    assert len(re.findall(r"^```", page.read_text(), re.M)) % 2 == 0
