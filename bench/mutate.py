"""make mutate: mutmut on the modules that decide the numbers, each against the tests that guard it.

    python bench/mutate.py                 # every group, then the report
    python bench/mutate.py losses stats    # some groups (their results are kept between calls)
    python bench/mutate.py --report        # only rewrite bench/mutation.md from the kept results

Each group runs in build/mutate/<group>/, a copy of the working tree: mutmut writes its
trampolined copy under <copy>/mutants/ and never touches the checkout. A mutant runs only the
tests of its group that call the mutated function (mutmut records the callers in a stats run).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "build" / "mutate"
REPORT = REPO / "bench" / "mutation.md"
EQUIVALENT = REPO / "bench" / "mutation-equivalent.toml"

# group -> modules (path -> functions to mutate, None for all; "!name" leaves one out),
# the tests that guard them, and the tests among them whose checks run in a child process.
GROUPS: dict[str, dict] = {
    "losses": {
        "sample": 0.5,
        "modules": {
            "aeexp/registry/losses.py": ["*", "!describe", "!_beta_title", "!_takes_no_parameters"]
        },
        "tests": ["tests/test_losses.py", "tests/test_vocab.py"],
    },
    "optimizers": {
        "sample": 0.3,
        "modules": {
            "aeexp/registry/optimizers.py": None,
            "aeexp/engines/keras2.py": None,  # the ports: _make_classes
            "aeexp/engines/jax_optimizers.py": None,
        },
        "tests": [
            "tests/test_optimizers.py",
            "tests/test_optimizer_edges.py",
            "tests/test_jax_optimizers.py",
            "tests/test_config.py",  # optimizers.check_value: without it 27 mutants had no test
        ],
        # keras2's classes are made once per process (_classes is cached), so the stats run
        # sees only the first test that asked for them: every test of these files guards them.
        "given_tests": {
            "aeexp/engines/keras2.py": ["tests/test_optimizers.py", "tests/test_optimizer_edges.py"]
        },
    },
    "evaluate": {
        "sample": 0.1,
        "modules": {"aeexp/evaluate.py": ["*", "!_colormap_indices"]},
        "tests": ["tests/test_evaluate.py", "tests/test_protocol_noise.py"],
    },
    "verdicts": {
        "sample": 0.08,
        "modules": {
            "aeexp/analysis/stats.py": ["*", "!*text"],
            "aeexp/analysis/verdicts.py": None,
            "aeexp/analysis/paired.py": None,
            "aeexp/studies/thesis_verdicts.py": ["*", "!verdicts_markdown", "!*_text"],
        },
        "tests": [
            "tests/test_stats.py",
            "tests/test_verdicts.py",
            "tests/test_holm.py",
            "tests/test_verdicts_two_samples.py",
            "tests/test_verdicts_recomputed.py",
            "tests/test_docs_verdict_rule.py",
            "tests/test_thesis_report.py",
            "tests/test_paired.py",
        ],
    },
    "run-ids": {
        "sample": 0.3,
        "modules": {
            "aeexp/config/run.py": [
                "*",
                "!_format_error",
                "!_location_part",
                "!_section_at",
                "!_keys_at",
                "!_choices_at",
                "!_literal_names",
            ],
        },
        "tests": ["tests/test_config.py", "tests/test_plan.py", "tests/test_committed_ids.py"],
    },
    "store": {
        "sample": 0.15,
        "modules": {"aeexp/store/rundir.py": None, "aeexp/store/ledger.py": None},
        "tests": [
            "tests/test_execute.py",
            "tests/test_runs_csv.py",
            "tests/test_odd_runs.py",
            "tests/test_lock.py",
        ],
    },
    "engine-tf": {
        "sample": 0.05,
        "modules": {
            "aeexp/engines/tensorflow.py": [
                "_train_step",
                "_validation_sums",
                "GroupTrainer._compile_epoch",
                "GroupTrainer.train",
                "GroupTrainer.run_epoch",
                "GroupTrainer.freeze",
            ],
            # The epoch bookkeeping both engines share (histories, divergence, stop, freezing).
            "aeexp/engines/base.py": ["record_epoch", "ask_stop", "train_lockstep"],
        },
        # Not test_engine_protocol: it lists the Protocol's members, and mutmut adds its own.
        # test_lockstep drives base.py's bookkeeping with a fake trainer: the stop rule, the
        # early end and the epoch times, which the two training tests never exercise.
        "tests": ["tests/test_engine.py", "tests/test_shuffle.py", "tests/test_lockstep.py"],
    },
    "engine-jax": {
        "sample": 0.1,
        "modules": {
            "aeexp/engines/jax.py": [
                "compile_epoch",
                "_frozen",
                "GroupTrainer.train",
                "GroupTrainer.run_epoch",
                "GroupTrainer.freeze",
            ]
        },
        "tests": ["tests/test_engine_jax_quick.py"],
        # jaxchecks.py trains in a child: mutmut's stats run cannot see the calls, so these
        # tests are given to every selected function of the group's modules by hand.
        "child_tests": ["tests/test_engine_jax_quick.py"],
    },
    "tuning": {
        "sample": 0.3,
        "modules": {"aeexp/tuning/stop.py": ["*", "!quiet_optuna"], "aeexp/tuning/trials.py": None},
        "tests": ["tests/test_tune.py"],
    },
}

# Where a module decides the numbers; tests/test_mutation_report.py holds every .py file here to
# a group above or to a line below, so a new module is measured or says why not.
SCOPE = [
    "aeexp/registry",
    "aeexp/engines",
    "aeexp/store",
    "aeexp/tuning",
    "aeexp/analysis",
    "aeexp/config",
    "aeexp/evaluate.py",
    "aeexp/studies/thesis_verdicts.py",
]
NOT_MEASURED = {
    "aeexp/registry/published.py": "the thesis's published numbers: data, no function to mutate",
    "aeexp/registry/datasets.py": "which files and loader a dataset name means; no number",
    "aeexp/registry/vocab.py": "names and constants; mutmut 3 leaves module-level code alone",
    "aeexp/engines/events.py": "TensorBoard event bytes, read by no result",
    "aeexp/engines/model.py": "builds the Keras layers; pinned bit for bit by test_engine",
    "aeexp/store/locks.py": "decides who trains, not what is computed",
    "aeexp/store/runs_csv.py": "reads back the CSVs the ledger writes; round trip in test_runs_csv",
    "aeexp/tuning/best.py": "writes the best points' sweep; the ranking it uses is trials.py's",
    "aeexp/tuning/database.py": "opens and checks tune.db; no number is decided there",
    "aeexp/tuning/driver.py": "the study loop; its stop and ranking rules: stop.py, trials.py",
    "aeexp/tuning/figure.py": "draws a figure",
    "aeexp/tuning/search.py": "reads search files; their ids are pinned by test_tune",
    "aeexp/tuning/space.py": "search-space parsing",
    "aeexp/analysis/cells.py": "the thesis's cell layout",
    "aeexp/analysis/compare.py": "aeexp compare's table; its statistics are stats.py's",
    "aeexp/analysis/figures.py": "draws figures",
    "aeexp/analysis/protocol.py": "not in issue 29's list; candidate (test_protocol_noise)",
    "aeexp/analysis/selection.py": "not in issue 29's list; candidate (test_best_per_seed)",
    "aeexp/analysis/tables.py": "renders tables from the ledger's numbers",
    "aeexp/config/bundled.py": "finds the bundled configs",
    "aeexp/config/sweep.py": "the plan; a run's id is config/run.py's",
    "aeexp/config/sweepfile.py": "writes sweep files",
}

# What mutmut is told for every group (pyproject [tool.mutmut] of the copy).
COMMON = {
    "source_paths": ["aeexp"],
    # TensorFlow is imported once in a fork server that runs no op, then every mutant is a fork
    # of it: a fork of the process that ran the stats (the default, "fork") hangs in TF's
    # thread pools, and a fresh process per mutant pays ~8 s of imports.
    "process_isolation": "forkserver",
    "forkserver_warmup": "import",
    "preload_modules_file": "bench/mutation-preload.txt",
    # Plugins whose start-up (hypothesis: 2.6 s) or teardown (unraisableexception's five
    # gc.collect over TensorFlow's heap: 1.9 s) cost more than most mutants' tests.
    "pytest_add_cli_args": [
        "-p",
        "no:hypothesispytest",
        "-p",
        "no:unraisableexception",
        "-p",
        "no:benchmark",
        "-p",
        "no:anyio",
        "-p",
        "no:cacheprovider",
    ],
    # Tests read committed results, configs and docs beside the package; aeexp/configs is a
    # link, which mutmut's copy of the package skips.
    "also_copy": [
        "aeexp/configs/",
        "configs/",
        "results/",
        "docs/",
        "bench/",
        "examples/",
        "THESIS.md",
        "README.md",
        "CHANGELOG.md",
        "Makefile",
        "mkdocs.yml",
        "requirements/",  # test_lock reads the locks while collecting
    ],
    # Wording, not numbers: messages raised, warned, logged or printed.
    "do_not_mutate_patterns": [
        r"^\s*raise \w+",
        r'^\s*[rbfu]*"[^"]*"[,)\s]*$',
        r"^\s*[rbfu]*'[^']*'[,)\s]*$",
        r"warnings\.warn\(",
        r"\blog(ger)?\.\w+\(",
        r"\b(print|echo|secho)\(",
    ],
    "use_setproctitle": False,
    "log_to_file": True,
}

STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    None: "not checked",
}


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


def mangled(path: str, qualname: str) -> str:
    """mutmut's name of a function: aeexp.x.y.x_func or aeexp.x.y.xǁClassǁmethod."""
    module = path.removesuffix(".py").replace("/", ".")
    if "." in qualname:
        cls, method = qualname.split(".")
        return f"{module}.xǁ{cls}ǁ{method}"
    return f"{module}.x_{qualname}"


def functions_of(path: Path) -> list[str]:
    """Top-level functions and methods (Class.method) of a module, as mutmut mutates them."""
    import ast

    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef):
            names += [
                f"{node.name}.{n.name}"
                for n in node.body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
    return names


def selected(root: Path, path: str, spec: list[str] | None) -> list[str]:
    names = functions_of(root / path)
    if spec is None:
        return names
    keep = [n for n in names if any(fnmatch.fnmatch(n, p) for p in spec if not p.startswith("!"))]
    dropped = [p[1:] for p in spec if p.startswith("!")]
    return [n for n in keep if not any(fnmatch.fnmatch(n, p) for p in dropped)]


def copy_tree(dest: Path) -> None:
    """The working tree as git sees it (tracked and untracked, not ignored), links kept."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "-co", "--exclude-standard"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source, target = REPO / name, dest / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.unlink(missing_ok=True)
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def run_group(
    name: str, jobs: int, sample: float | None, fresh: bool = False, recheck: bool = False
) -> None:
    started = time.monotonic()
    group = GROUPS[name]
    dest = WORK / name
    if fresh:  # mutmut keeps a mutant's verdict until its function changes, not its tests
        shutil.rmtree(dest, ignore_errors=True)
    copy_tree(dest)  # mutmut re-mutates only functions whose source changed since the last run
    if recheck:  # after new tests: test the survivors again, keep the other verdicts
        again = survivors_to_recheck(dest)
        for meta in (dest / "mutants").rglob("*.meta"):
            data = json.loads(meta.read_text())
            data["exit_code_by_key"].update(dict.fromkeys(again & set(data["exit_code_by_key"])))
            meta.write_text(json.dumps(data))
    functions = {path: selected(dest, path, spec) for path, spec in group["modules"].items()}
    config = dict(
        COMMON,
        only_mutate=list(group["modules"]),
        pytest_add_cli_args_test_selection=group["tests"],
    )
    text = (dest / "pyproject.toml").read_text().split("\n[tool.mutmut]\n")[0]
    text += "\n[tool.mutmut]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in config.items())
    (dest / "pyproject.toml").write_text(text)
    if group.get("child_tests") or group.get("given_tests"):
        write_given_stats(dest, group, functions)
    globs = [f"{mangled(p, f)}__mutmut_*" for p, names in functions.items() for f in names]
    fraction = group.get("sample", 1.0) if sample is None else sample
    if fraction < 1:  # the same mutants every run while their function is unchanged
        listed = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--list", json.dumps(functions)],
            cwd=dest,
            check=True,
            capture_output=True,
            text=True,
        )
        globs = [
            n
            for n in json.loads(listed.stdout)
            if int(hashlib.sha1(n.encode()).hexdigest(), 16) % 1000 < fraction * 1000
        ]
    # Child processes (jaxchecks.py, the CLI) import the mutants too. The folder must exist
    # before mutmut starts: Python caches "no finder" for a missing path entry, and then every
    # import of aeexp falls through to the editable install's checkout, unmutated.
    (dest / "mutants").mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(dest / "mutants"), TF_CPP_MIN_LOG_LEVEL="3")
    mutmut = Path(sys.executable).with_name("mutmut")
    subprocess.run(
        [str(mutmut), "run", "--max-children", str(jobs), *globs], cwd=dest, env=env, check=False
    )
    extract = [sys.executable, str(Path(__file__).resolve()), "--extract", json.dumps(functions)]
    subprocess.run(extract, cwd=dest, env=env, check=True)
    if not recheck:  # the report's time is a whole group's
        timing = {"seconds": round(time.monotonic() - started), "sample": fraction}
        (dest / "timing.json").write_text(json.dumps(timing))


def collected(dest: Path, files: list[str]) -> list[str]:
    """The default set's test ids in ``files``, as mutmut names them."""
    if not files:
        return []  # pytest given no file collects them all
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-o",
            "addopts=",
            "-m",
            "not slow",
            "-p",
            "no:cacheprovider",
            *files,
        ],
        cwd=dest,
        capture_output=True,
        text=True,
    )  # -q twice lists no ids
    return [line for line in listed.stdout.splitlines() if "::" in line]


def survivors_to_recheck(dest: Path) -> set[str]:
    """The group's last survivors, less the explained ones: equivalent, or whose test is on its
    way (take a line out of [pending] when its test is in, to test that mutant again)."""
    results = dest / "results.json"
    if not results.exists():
        return set()
    explained = tomllib.loads(EQUIVALENT.read_text()) if EQUIVALENT.exists() else {}
    equivalent = explained.get("equivalent", {}) | explained.get("pending", {})
    equivalent |= explained.get("gap", {})
    return {
        row["mutant"]
        for path, rows in json.loads(results.read_text()).items()
        for row in rows
        if row["status"] not in ("killed", "timeout", "not checked")
        and key_of(path, row) not in equivalent
    }


def write_given_stats(dest: Path, group: dict, functions: dict[str, list[str]]) -> None:
    """Give functions tests mutmut's stats run cannot link to them, before it runs.

    ``child_tests`` check in a child process, where the stats run sees no call: they are given
    to every selected function, and counted as already measured. ``given_tests`` (per module)
    call a function the stats run sees only once (a cached one): they are given to that
    module's functions, and the stats run still measures them for the other functions.
    """
    stats_file = dest / "mutants" / "mutmut-stats.json"
    stats = {"tests_by_mangled_function_name": {}, "duration_by_test": {}, "stats_time": 0.0}
    if stats_file.exists():  # a later run: add the tests written since (mutmut merges)
        stats = json.loads(stats_file.read_text())
    tests = stats["tests_by_mangled_function_name"]
    child = collected(dest, group.get("child_tests", []))
    for name in (mangled(p, f) for p, fs in functions.items() for f in fs):
        tests[name] = sorted(set(tests.get(name, [])) | set(child))
    for path, files in group.get("given_tests", {}).items():
        given = collected(dest, files)
        for name in (mangled(path, f) for f in functions[path]):
            tests[name] = sorted(set(tests[name]) | set(given))
    # Child tests count as measured (the stats run would see nothing); given ones do not.
    stats["duration_by_test"] = {t: 30.0 for t in child} | stats["duration_by_test"]
    stats_file.parent.mkdir(parents=True, exist_ok=True)
    stats_file.write_text(json.dumps(stats))


def list_mutants(functions: dict[str, list[str]]) -> None:
    """In a group's copy: the names of the selected functions' mutants, as JSON on stdout."""
    from mutmut.mutation.file_mutation import mutate_file_contents

    names = []
    for path, selected_functions in functions.items():
        wanted = {mangled(path, f) for f in selected_functions}
        module = path.removesuffix(".py").replace("/", ".")
        for local in mutate_file_contents(path, Path(path).read_text()).mutant_names:
            name = f"{module}.{local}"
            if re.sub(r"__mutmut_\d+$", "", name) in wanted:
                names.append(name)
    print(json.dumps(names))


def extract(functions: dict[str, list[str]]) -> None:
    """In a group's copy: its mutants' outcomes and the survivors' diffs, to results.json."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    out = {}
    for path, names in functions.items():
        meta = json.loads(Path("mutants", path + ".meta").read_text())
        wanted = {mangled(path, f) for f in names}
        rows = []
        for key, code in meta["exit_code_by_key"].items():
            function = re.sub(r"__mutmut_\d+$", "", key)
            if function not in wanted:
                continue
            status = STATUS.get(code, "suspicious")
            row = {"mutant": key, "status": status}
            if status not in ("killed", "timeout"):
                diff = get_diff_for_mutant(key, path=path).splitlines()[2:]
                row["old"] = " ".join(d[1:].strip() for d in diff if d.startswith("-"))
                row["new"] = " ".join(d[1:].strip() for d in diff if d.startswith("+"))
            rows.append(row)
        out[path] = rows
    Path("results.json").write_text(json.dumps(out, indent=1))


def key_of(path: str, row: dict) -> str:
    """A survivor's name that outlives renumbering: module, function, old and new code."""
    function = re.sub(r"__mutmut_\d+$", "", row["mutant"]).rpartition(".")[2]
    function = function.removeprefix("x_").replace("xǁ", "").replace("ǁ", ".")
    return f"{path}:{function}: {row['old']} -> {row['new']}"


def report() -> int:
    """Write bench/mutation.md from each group's results.json; 1 if a survivor has no reason."""
    explained = tomllib.loads(EQUIVALENT.read_text()) if EQUIVALENT.exists() else {}
    reasons = {
        **{k: f"equivalent: {v}" for k, v in explained.get("equivalent", {}).items()},
        **{k: f"to be killed by {v}" for k, v in explained.get("pending", {}).items()},
        **{k: f"gap, no test yet: {v}" for k, v in explained.get("gap", {}).items()},
    }
    lines = [
        "# Mutation score per module",
        "",
        "Written by `make mutate` (bench/mutate.py, mutmut 3); not run in CI. Each group's",
        "mutants run only the group's guard tests. *Mutants* counts the selected functions'",
        "mutants, *Tested* the group's fixed sample of them (sha1 of the mutant's name).",
        "Score = (killed + timeout) / tested; a mutant with no test counts against it.",
        "",
        "| Module | Group | Mutants | Tested | Killed | Timeout | Survived | No tests | Score |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    survivors, unexplained, times, seconds = [], [], [], 0
    for name, group in GROUPS.items():
        results = WORK / name / "results.json"
        data = json.loads(results.read_text()) if results.exists() else {}
        timing = WORK / name / "timing.json"
        if timing.exists():
            t = json.loads(timing.read_text())
            times.append(f"| {name} | {t['sample']:g} | {t['seconds'] / 60:.1f} |")
            seconds += t["seconds"]
        for path in group["modules"]:
            rows = data.get(path, [])
            count = {
                s: sum(r["status"] == s for r in rows)
                for s in ("killed", "timeout", "survived", "no tests", "not checked")
            }
            tested = len(rows) - count["not checked"]
            score = f"{(count['killed'] + count['timeout']) / tested:.0%}" if tested else "-"
            lines.append(
                f"| `{path}` | {name} | {len(rows)} | {tested} | {count['killed']} | "
                f"{count['timeout']} | {count['survived']} | {count['no tests']} | {score} |"
            )
            for row in rows:
                if row["status"] not in ("killed", "timeout", "not checked"):
                    key = key_of(path, row)
                    reason = reasons.get(key)
                    survivors.append(f"- `{key}` ({row['status']}): {reason or 'UNEXPLAINED'}")
                    if reason is None:
                        unexplained.append(key)
    lines += [
        "",
        "Wall time per group on 2 cores, set-up (stats and clean runs) included:",
        "",
        "| Group | Sample | Minutes |",
        "|---|---:|---:|",
        *times,
        f"| all | | {seconds / 60:.1f} |",
        "",
        *([explained["run"]["note"], ""] if "run" in explained else []),
        "## Survivors",
        "",
        "Each is equivalent, a gap a test on its way kills, or a gap with no test yet (one line",
        "each, from bench/mutation-equivalent.toml). One a new test kills leaves this list.",
        "",
        *survivors,
        "",
    ]
    REPORT.write_text("\n".join(lines))
    for key in unexplained:
        print(f"unexplained survivor: {key}", file=sys.stderr)
    return 1 if unexplained else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", metavar="GROUP", help=", ".join(GROUPS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--report", action="store_true", help="only write the report")
    parser.add_argument("--sample", type=float, help="fraction of each group's mutants (1: all)")
    parser.add_argument("--fresh", action="store_true", help="forget the groups' last results")
    parser.add_argument(
        "--recheck", action="store_true", help="test the groups' survivors again (new tests)"
    )
    parser.add_argument("--extract", help=argparse.SUPPRESS)
    parser.add_argument("--list", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.extract:
        extract(json.loads(args.extract))
        return 0
    if args.list:
        list_mutants(json.loads(args.list))
        return 0
    if unknown := set(args.groups) - set(GROUPS):
        parser.error(f"unknown groups: {sorted(unknown)}")
    if not args.report:
        for name in args.groups or GROUPS:
            run_group(name, args.jobs, args.sample, args.fresh, args.recheck)
    return report()


if __name__ == "__main__":
    sys.exit(main())
