"""aeexp tune: search files, the pruning rule in the worker, the loop, resume, outputs.

Most tests drive the real loop (Optuna, SQLite, execute, the run writer) with an executor
that trains nothing: each run's validation loss follows a formula of its learning rate, and
the job's stop rule is applied to it epoch by epoch, after a pickle round trip as on Ray.
The engine and the whole command are tested once each on real MNIST.
"""

import csv
import json
import math
import pickle
import subprocess
import sys
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from test_cli import assert_one_line_error, invoke
from test_execute import no_data  # noqa: F401 (a fixture no_tune_data extends)

from aeexp.config import sweep as plan
from aeexp.errors import UserError, one_line
from aeexp.execute import driver as execute
from aeexp.execute.executors import JobResult
from aeexp.io import atomic
from aeexp.store import rundir as store
from aeexp.tuning import driver, search
from aeexp.tuning.stop import PruningRule, Snapshot, TrialRef

optuna = pytest.importorskip("optuna")

EPOCHS = 4


SEARCH = f"""name: lr
config: {{data.holdout: 100, train.epochs: {EPOCHS}}}
grid:
  - loss.name: [mse]
  - loss.name: [i_div2]
    search: {{optimizer.learning_rate: {{log_uniform: [1.0e-4, 1.0e-1]}}}}
search: {{optimizer.learning_rate: {{log_uniform: [1.0e-5, 3.0]}}}}
sampler: {{n_startup_trials: 2}}
pruner: {{n_startup_trials: 1}}
"""


def write(tmp_path, text=SEARCH, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- An executor that trains nothing -------------------------------------------------------


def curve(cfg, epoch):
    """Return a run's validation loss after ``epoch``: best near lr 1e-2, NaN above 1."""
    lr = cfg.optimizer.learning_rate
    if lr > 1.0:
        return math.nan
    shift = 0.01 if cfg.loss.name == "mse" else 0.02
    return shift + 0.02 * (math.log10(lr) + 2) ** 2 + 0.1 / epoch


def fake_group(configs, stop):
    """Train ``configs`` as the engine would: freeze NaN members, ask the stop rule each epoch."""
    histories = {c.run_id: [] for c in configs}
    ended = {}
    for epoch in range(1, EPOCHS + 1):
        active = [c for c in configs if c.run_id not in ended]
        for cfg in active:
            histories[cfg.run_id].append(curve(cfg, epoch))
            if math.isnan(histories[cfg.run_id][-1]):
                ended[cfg.run_id] = ("diverged", epoch)
        alive = {c.run_id: histories[c.run_id] for c in active if c.run_id not in ended}
        if stop is not None and alive and epoch < EPOCHS:
            for run_id in stop.stop(epoch, alive):
                ended[run_id] = ("pruned", epoch)
    artifacts = []
    for cfg in configs:
        losses = histories[cfg.run_id]
        status, at = ended.get(cfg.run_id, ("completed", None))
        metrics = {"run_id": cfg.run_id, "name": cfg.name, "status": status}
        metrics["epochs_trained"] = len(losses)
        if status == "pruned":
            metrics["pruned_epoch"] = at
        if status != "diverged":
            metrics["final_val_loss"] = losses[-1]
            metrics["ssim_mean"] = 1 - losses[-1]
        if stop is not None:
            metrics |= stop.record(cfg.run_id, status)
        rows = [
            {"epoch": e, "loss": v, "val_loss": v, "seconds": 0.1}
            for e, v in enumerate(losses, start=1)
        ]
        files = {
            store.CONFIG: atomic.encode_yaml(cfg.resolved()).encode(),
            store.HISTORY: atomic.encode_csv(rows, store.HISTORY_FIELDS).encode(),
            store.METRICS: atomic.encode_json(metrics).encode(),
        }
        artifacts.append(store.RunArtifacts(cfg.run_id, metrics, files))
    return artifacts


class FakeExecutor:
    """Ships each job through pickle (as to a Ray worker) and trains it with ``fake_group``."""

    workers = 1

    def __init__(self, trained, interrupt_after=None):
        self.trained = trained
        self.interrupt_after = interrupt_after
        self.queue = deque()

    def start(self, datasets):
        pass

    def submit(self, job):
        self.queue.append(job)

    def outstanding(self):
        return len(self.queue)

    def next_result(self):
        if self.interrupt_after is not None and len(self.trained) >= self.interrupt_after:
            raise KeyboardInterrupt
        job = pickle.loads(pickle.dumps(self.queue.popleft()))
        self.trained.extend(c.run_id for c in job.configs)
        try:
            return JobResult(job, tuple(fake_group(job.configs, job.stop)))
        except Exception as error:
            return JobResult(job, error=one_line(error))

    def shutdown(self, cancel=False):
        self.queue.clear()


@pytest.fixture
def no_tune_data(no_data, monkeypatch):  # noqa: F811 (the fixture, not the import)
    """Skip loading MNIST in the tune driver too: the fake executor trains nothing."""
    monkeypatch.setattr(driver, "load_dataset", execute.load_dataset)


def tune(
    tmp_path,
    out="out",
    trials=6,
    trained=None,
    interrupt_after=None,
    seed=None,
    text=SEARCH,
    **options,
):
    spec = search.read_search(write(tmp_path, text), out=str(tmp_path / out), seed=seed)
    trained = [] if trained is None else trained
    return driver.run_search(
        spec,
        trials,
        lambda: FakeExecutor(trained, interrupt_after),
        batch=options.pop("batch", 2),
        max_group=options.pop("max_group", 30),
        **options,
    )


def sequence(outcome):
    return [(t.cell.index, t.number, t.params, t.state, t.status) for t in outcome.trials]


# --- The search file --------------------------------------------------------------------------


def test_a_search_file_reads_like_a_sweep_file(tmp_path):
    spec = search.read_search(write(tmp_path), out=str(tmp_path / "out"))
    assert spec.name == "lr" and spec.experiment_dir == tmp_path / "out" / "lr"
    assert [c.point for c in spec.cells] == [{"loss.name": "mse"}, {"loss.name": "i_div2"}]
    # The second block's own search replaces the top-level range for that key.
    assert [c.spaces[0].values for c in spec.cells] == [(1e-5, 3.0), (1e-4, 1e-1)]
    assert spec.metric.name == "ssim_mean" and spec.metric.maximize
    assert spec.pruner.name == "median" and spec.pruner.n_startup_trials == 1
    assert len({c.study_name for c in spec.cells}) == 2
    assert spec.keys == ("loss.name", "optimizer.learning_rate")
    cfg = spec.cells[1].config({"optimizer.learning_rate": 0.01})
    assert cfg.loss.name == "i_div2" and cfg.data.holdout == 100 and cfg.train.epochs == EPOCHS


def test_the_study_name_follows_what_the_cell_searches(tmp_path):
    first = search.read_search(write(tmp_path), out=str(tmp_path / "out"))
    wider = search.read_search(write(tmp_path, SEARCH.replace("3.0", "4.0"), "w.yaml"))
    assert first.cells[0].study_name != wider.cells[0].study_name
    assert first.cells[1].study_name == wider.cells[1].study_name  # its own range is unchanged


HOLDOUT = "config: {data.holdout: 100}\n"
GOOD_SPACE = "search: {optimizer.learning_rate: {log_uniform: [1.0e-5, 3.0]}}\n"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            HOLDOUT + "search: {optimizer.learning_rate: {log_uniform: [1.0e-3, 1.0e-3]}}\n",
            ["optimizer.learning_rate", "empty range"],
        ),
        (
            HOLDOUT + "search: {optimizer.learning_rate: {uniform: [0.1, 0.01]}}\n",
            ["inverted"],
        ),
        (
            HOLDOUT + "search: {optimizer.learning_rate: {log_uniform: [0, 1]}}\n",
            ["log_uniform [0, 1] reaches zero"],
        ),
        (
            HOLDOUT + "search: {optimizer.learning_rate: {log_uniform: [-1, 1]}}\n",
            ["reaches below zero"],
        ),
        (
            HOLDOUT + "search: {optimizer.learning_rat: {log_uniform: [1.0e-5, 1]}}\n",
            ["learning_rat", "did you mean 'learning_rate'"],
        ),
        (HOLDOUT + "search: {model.code_dm: {choice: [8, 16]}}\n", ["code_dm", "unknown key"]),
        (
            HOLDOUT + "search: {optimizer.learning_rate: {uniform: [-1, 1]}}\n",
            ["learning_rate"],
        ),
        (HOLDOUT + "search: {optimizer.learning_rate: {logn: [1, 2]}}\n", ["unknown space 'logn'"]),
        (HOLDOUT + "search: {optimizer.learning_rate: [1, 2]}\n", ["expected one of"]),
        (HOLDOUT + "search: {train.epochs: {choice: [1, 2]}}\n", ["cannot be searched"]),
        (HOLDOUT + "search: {loss.beta: {uniform: [0, 2]}}\n", ["with a pruner"]),
        (HOLDOUT, ["nothing to search"]),
        (GOOD_SPACE, ["no data.holdout", "--on-test-set"]),
        (HOLDOUT + GOOD_SPACE + "grid: {optimizer.learning_rate: [0.1]}\n", ["both searched"]),
        (HOLDOUT + GOOD_SPACE + "metric: {name: ssim_man}\n", ["did you mean 'ssim_mean'"]),
        (HOLDOUT + GOOD_SPACE + "metric: {name: mse, direction: maximize}\n", ["use minimize"]),
        (HOLDOUT + GOOD_SPACE + "pruner: {name: median, n_warmup: 3}\n", ["n_warmup_steps"]),
        (HOLDOUT + GOOD_SPACE + "trials: 5\n", ["unknown key"]),
        (HOLDOUT + GOOD_SPACE + "seed: -1\n", ["seed"]),
        (HOLDOUT + GOOD_SPACE + "confirm: {tops: 2}\n", ["confirm.tops: unknown key", "'top'"]),
        (HOLDOUT + GOOD_SPACE + "confirm: {top: -1}\n", ["confirm.top", "greater than"]),
        (HOLDOUT + GOOD_SPACE + "confirm: 2\n", ["confirm: expected a mapping"]),
        (
            HOLDOUT + GOOD_SPACE + "confirm: {top: 1, seeds: 2}\ngrid: {seed: [0, 2, 9]}\n",
            ["cells 1 and 2 differ only by their seed (0 and 2)", "a trial of cell 2"],
        ),
        (
            HOLDOUT
            + GOOD_SPACE
            + "confirm: {top: 2, seeds: 3}\ngrid: {seed: [9223372036854775806]}\n",
            ["confirm: seeds 9223372036854775807-9223372036854775809 go past the largest seed"],
        ),
        ("search: [unclosed\n", ["malformed YAML"]),
        ("a: &x [*x]\n", ["refused"]),
    ],
)
def test_bad_search_files_exit_2_with_one_line(tmp_path, text, fragments):
    path = write(tmp_path, text)
    result = invoke("tune", path, "--trials", 2, "--out", tmp_path / "out")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--trials", "0"], "tune: Invalid value for '--trials'"),
        ([], "tune: Missing option '--trials'"),
        (["--trials", "2", "--sweep-out", "{tmp}/nowhere/best.yaml"], "does not exist"),
        (["--trials", "2", "--seeds", "4-0"], "--seeds"),
        (["--trials", "2", "--on-test-set"], "--on-test-set, but data.holdout is set"),
        (["--trials", "2", "--set", "optimizer.learning_rate=0.1"], "the search draws"),
        (["--trials", "2", "--set", "loss.name=bce"], "the grid sets loss.name"),
        (["--trials", "2", "--max-runs", "3"], "more than the limit"),
        (["--trials", "2", "--max-runs", "7"], "2 cells x (2 trials + 2 reruns) = 8 runs"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, args, fragment):
    path = write(tmp_path, SEARCH + "confirm: {top: 1, seeds: 2}\n")
    args = [a.format(tmp=tmp_path) for a in args]
    assert_one_line_error(invoke("tune", path, *args, "--out", tmp_path / "out"), fragment)


def test_help_and_mistakes_answer_without_tensorflow_or_optuna(tmp_path):
    code = (
        "import sys; from click.testing import CliRunner; from aeexp import cli; "
        "r = CliRunner().invoke(cli.main, ['tune', '--help']); assert r.exit_code == 0; "
        f"r = CliRunner().invoke(cli.main, ['tune', {str(write(tmp_path, HOLDOUT))!r}, "
        "'--trials', '2']); assert r.exit_code == 2, r.output; "
        "assert 'tensorflow' not in sys.modules and 'optuna' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_bad_data_is_refused_before_anything_is_written(tmp_path, mnist_path, monkeypatch):
    monkeypatch.setenv("AEEXP_DATA", str(mnist_path))
    path = write(tmp_path, "config: {data.holdout: 100000}\n" + GOOD_SPACE)
    result = invoke("tune", path, "--trials", 2, "--out", tmp_path / "out")
    assert_one_line_error(result, "data.holdout 100000 leaves no training images")
    assert not (tmp_path / "out").exists()


def test_missing_optuna_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    result = invoke("tune", write(tmp_path), "--trials", 2, "--out", tmp_path / "out")
    assert_one_line_error(result, "aeexp tune needs Optuna: pip install 'optuna>=4,<5'")
    assert not (tmp_path / "out").exists()


def test_the_test_set_only_by_name(tmp_path):
    text = GOOD_SPACE + "grid: {seed: [0]}\n"
    spec = search.read_search(write(tmp_path, text), on_test_set=True)
    assert (
        spec.on_test_set
        and spec.cells[0].config({"optimizer.learning_rate": 0.1}).data.holdout is None
    )
    from aeexp.tuning import best

    with pytest.raises(UserError, match="repeats seed"):
        best.check_seeds(spec, [0, 1])
    best.check_seeds(spec, [1, 2])
    confirming = search.read_search(write(tmp_path, text + "confirm: {top: 1}\n"), on_test_set=True)
    with pytest.raises(UserError, match="repeats seed.*1 that the trials trained with"):
        best.check_seeds(confirming, [1, 2])  # its reruns trained on seed 1
    best.check_seeds(confirming, [2, 3])


def test_the_committed_search_file_and_schema(tmp_path):
    import jsonschema
    import yaml

    from aeexp.config import sweepfile

    printed = invoke("schema", "--kind", "tune").output
    assert (sweepfile.schema_folder() / sweepfile.TUNE_SCHEMA_FILE).read_text() == printed
    spec = json.loads(printed)
    jsonschema.Draft4Validator.check_schema(spec)
    path = Path(__file__).parents[1] / "configs" / "tune" / "thesis-cells.yaml"
    jsonschema.validate(yaml.safe_load(path.read_text()), spec)
    assert len(search.read_search(path).cells) == 6
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"search": {"optimizer.lr": {"log_normal": [1, 2]}}}, spec)


def test_the_default_batch_leaves_the_sampler_and_pruner_something_to_learn_from():
    assert driver.default_batch(20, 1, 30) == 5  # four batches
    assert driver.default_batch(8, 6, 30) == 2
    assert driver.default_batch(100, 6, 30) == 5  # the six cells fill a group of 30
    assert driver.default_batch(2, 40, 30) == 1


def test_every_sampler_and_pruner_builds():
    assert isinstance(search.SamplerSpec(name="tpe").build(0), optuna.samplers.TPESampler)
    assert isinstance(search.SamplerSpec(name="random").build(0), optuna.samplers.RandomSampler)
    assert isinstance(search.PrunerSpec().build(), optuna.pruners.MedianPruner)
    built = search.PrunerSpec(name="percentile", percentile=25.0).build()
    assert isinstance(built, optuna.pruners.PercentilePruner)
    assert isinstance(search.PrunerSpec(name="none").build(), optuna.pruners.NopPruner)


# --- The pruning rule -----------------------------------------------------------------------


def finished_study(pruner):
    """Return an in-memory study of three complete trials with per-epoch values."""
    study = optuna.create_study(
        direction="maximize", storage=optuna.storages.InMemoryStorage(), pruner=pruner
    )
    for values in ([-0.5, -0.3, -0.2], [-0.6, -0.4, -0.3], [-0.7, -0.5, -0.4]):
        trial = study.ask()
        for step, value in enumerate(values, start=1):
            trial.report(value, step)
        study.tell(trial, values[-1])
    return study


def test_the_rule_prunes_exactly_as_optunas_pruner():
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1)
    study = finished_study(pruner)
    rule = PruningRule(
        {"worse": TrialRef("s", 3), "better": TrialRef("s", 4)},
        {"s": Snapshot(True, pruner, tuple(study.get_trials()))},
    )
    shipped = pickle.loads(pickle.dumps(rule))  # as a Ray worker receives it
    # Validation losses, so intermediate values -0.65 and -0.45 against a median of -0.6.
    losses = {"worse": [0.65], "better": [0.45]}
    assert shipped.stop(1, losses) == {"worse"}
    for run_id, loss in losses.items():  # the same question asked of Optuna in its own loop
        trial = study.ask()
        trial.report(-loss[0], 1)
        assert trial.should_prune() == (run_id == "worse")
    assert shipped.record("worse", "pruned") == {
        "tune": {"study": "s", "trial": 3, "state": "PRUNED"}
    }
    assert shipped.record("better", "diverged")["tune"]["state"] == "PRUNED"
    assert shipped.record("elsewhere", "completed") == {}
    assert shipped.only({"better"}).trials == {"better": TrialRef("s", 4)}


# --- The loop, with an executor that trains nothing ----------------------------------------


def test_trials_train_in_batches_and_pruned_ones_are_recorded(tmp_path, no_tune_data):
    trained = []
    outcome = tune(tmp_path, trials=6, trained=trained)
    experiment = outcome.experiment_dir
    assert len(outcome.trials) == 12 and len(trained) == len({t.run_id for t in outcome.trials})
    by_status = {t.status for t in outcome.trials}
    assert "pruned" in by_status and "completed" in by_status
    for trial in outcome.trials:
        metrics = store.read_metrics(experiment / trial.run_id)
        assert metrics["tune"]["trial"] == trial.number
        assert metrics["tune"]["state"] == trial.state
        history = store.read_history(experiment / trial.run_id)
        if trial.status == "pruned":  # kept, up to the epoch it was stopped at
            assert trial.state == "PRUNED" and len(history) == metrics["pruned_epoch"] < EPOCHS
        elif trial.status == "completed":
            assert trial.state == "COMPLETE" and len(history) == EPOCHS
    # The first batch of each cell has nothing to compare with: never pruned.
    assert all(t.status != "pruned" for t in outcome.trials if t.number < 2)
    # Optuna holds each trial's intermediate values: the validation loss, negated.
    storage = optuna.storages.RDBStorage(f"sqlite:///{experiment / driver.DATABASE}")
    study = optuna.load_study(study_name=outcome.search.cells[0].study_name, storage=storage)
    frozen = next(t for t in study.trials if t.state.name == "COMPLETE")
    history = store.read_history(experiment / frozen.user_attrs["run_id"])
    assert frozen.intermediate_values == {r["epoch"]: -r["val_loss"] for r in history}
    with (experiment / "runs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["run_id"] for r in rows) == sorted({t.run_id for t in outcome.trials})
    assert {r["status"] for r in rows} == by_status
    assert "optimizer.learning_rate" in rows[0] and "pruned_epoch" in rows[0]


def test_diverged_trials_are_told_as_pruned(tmp_path, no_tune_data):
    outcome = tune(tmp_path, trials=8)
    diverged = [t for t in outcome.trials if t.status == "diverged"]
    assert diverged, "the range reaches 3.0, where the fake diverges"
    assert all(t.state == "PRUNED" and t.value is None for t in diverged)


def test_best_points_sweep_file_and_figure(tmp_path, no_tune_data):
    outcome = tune(tmp_path, trials=6, finish=None)
    from aeexp.tuning import best

    out = tmp_path / "best.yaml"
    best.write_best(
        outcome.search, outcome.trials, best.BestPoints(out, "lr-best", 6, 2, (0, 1, 2))
    )
    planned = plan.plan_sweep(out, out=str(tmp_path / "final"))
    assert {r.config.seed for r in planned.runs} == {0, 1, 2}
    assert len(planned.runs) == 2 * 2 * 3  # two cells x top 2 x three seeds
    assert all(r.config.data.holdout is None for r in planned.runs)  # judged on the test set
    for cell in outcome.search.cells:
        top = outcome.best(cell, 2)
        loss = cell.point["loss.name"]
        rates = {
            r.config.optimizer.learning_rate for r in planned.runs if r.config.loss.name == loss
        }
        assert {t.params["optimizer.learning_rate"] for t in top} == rates
        values = [t.value for t in outcome.of(cell) if t.state == "COMPLETE"]
        assert top[0].value == max(values)
    figure = outcome.figure.read_bytes()
    assert figure.startswith(b"\x89PNG") and len(figure) > 10_000
    assert "best ssim_mean" in outcome.summary()


def test_a_cell_without_a_completed_trial_writes_no_sweep(tmp_path, no_tune_data):
    text = SEARCH.replace("[1.0e-4, 1.0e-1]", "[2.0, 3.0]")  # all diverge in the fake
    spec = search.read_search(write(tmp_path, text), out=str(tmp_path / "out"))
    from aeexp.tuning import best

    with pytest.raises(UserError, match="1 cell.*no completed trial.*loss.name=i_div2"):
        driver.run_search(
            spec,
            2,
            lambda: FakeExecutor([]),
            finish=lambda s, found: best.write_best(
                s, found, best.BestPoints(tmp_path / "b.yaml", "b", 2, 1, (0,))
            ),
        )
    assert (spec.experiment_dir / driver.FIGURE).is_file()
    assert not (tmp_path / "b.yaml").exists()


def test_the_sampler_seed_fixes_the_sequence_of_trials(tmp_path, no_tune_data):
    first = tune(tmp_path, out="a", seed=3)
    again = tune(tmp_path, out="b", seed=3)
    other = tune(tmp_path, out="c", seed=4)
    assert sequence(first) == sequence(again)
    assert [t[2] for t in sequence(first)] != [t[2] for t in sequence(other)]


def test_an_interrupted_tune_resumes_as_if_never_stopped(tmp_path, no_tune_data):
    whole = tune(tmp_path, out="whole", trials=6)
    trained = []
    with pytest.raises(KeyboardInterrupt):  # killed in the second batch, one run written
        tune(tmp_path, out="cut", trials=6, trained=trained, interrupt_after=5, max_group=1)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'cut' / 'lr' / driver.DATABASE}")
    running = [
        t
        for s in optuna.get_all_study_summaries(storage)
        for t in optuna.load_study(study_name=s.study_name, storage=storage).trials
        if t.state.name == "RUNNING"
    ]
    assert running, "the kill left trials running"
    resumed = tune(tmp_path, out="cut", trials=6, trained=trained, max_group=1)
    assert sequence(resumed) == sequence(whole)
    assert len(trained) == len(set(trained)), "a run written before the kill was trained again"
    assert sorted(trained) == sorted({t.run_id for t in whole.trials})


def test_a_trial_killed_while_being_asked_is_failed_not_trained(tmp_path, no_tune_data):
    first = tune(tmp_path, trials=2)
    storage = optuna.storages.RDBStorage(f"sqlite:///{first.database}")
    cell = first.search.cells[0]
    bare = optuna.load_study(study_name=cell.study_name, storage=storage).ask()  # no params yet
    outcome = tune(tmp_path, trials=4)
    states = {t.number: t.state for t in outcome.of(cell)}
    assert states[bare.number] == "FAIL" and len(states) == 4
    assert "RUNNING" not in {t.state for t in outcome.trials}


def test_more_trials_extend_a_finished_study(tmp_path, no_tune_data):
    trained = []
    tune(tmp_path, trials=2, trained=trained)
    before = len(trained)
    outcome = tune(tmp_path, trials=4, trained=trained)
    assert len(outcome.trials) == 8 and outcome.trained == len(trained) - before == 4
    assert tune(tmp_path, trials=4, trained=trained).trained == 0


def test_another_tune_on_the_same_study_is_refused(tmp_path, no_tune_data):
    spec = search.read_search(write(tmp_path), out=str(tmp_path / "out"))
    spec.experiment_dir.mkdir(parents=True)
    from filelock import FileLock

    with FileLock(spec.experiment_dir / driver.LOCK), pytest.raises(UserError, match="another"):
        driver.run_search(spec, 2, lambda: FakeExecutor([]))


# --- Confirming the best trials on more seeds ----------------------------------------------

CONFIRM = SEARCH + "confirm: {top: 2, seeds: 1}\n"
unseeded = curve  # the fake's curve, which the tests below replace


def seeded_curve(cfg, epoch):
    """The fake's curve, with seed 1 worse the nearer the best rate: a rerun reorders the best."""
    distance = math.log10(cfg.optimizer.learning_rate) + 2
    return unseeded(cfg, epoch) + cfg.seed / (1 + 100 * distance**2)


def test_confirm_trains_the_best_trials_again_and_ranks_them_by_their_mean(
    tmp_path, no_tune_data, monkeypatch
):
    monkeypatch.setattr(sys.modules[__name__], "curve", seeded_curve)
    trained = []
    outcome = tune(tmp_path, trials=6, trained=trained, text=CONFIRM)
    reordered = 0
    for cell in outcome.search.cells:
        alone = sorted(
            (t for t in outcome.of(cell) if t.state == "COMPLETE"), key=lambda t: -t.value
        )
        confirmed = [t for t in outcome.of(cell) if t.reruns]
        assert {t.run_id for t in confirmed} == {t.run_id for t in alone[:2]}
        for trial in confirmed:
            (rerun,) = trial.reruns
            assert rerun.seed == 1 and rerun.run_id in trained and rerun.run_id != trial.run_id
            assert trial.score == pytest.approx((trial.value + rerun.value) / 2)
        best = outcome.best(cell, 3)
        assert best[0].score == max(t.score for t in confirmed)
        assert best[2:] == alone[2:3], "the trials not confirmed follow the confirmed ones"
        reordered += best[0] is not alone[0]
    assert reordered, "the reruns reordered no cell: the test proves nothing"
    assert len(trained) == len(set(trained)) == 12 + 4
    assert outcome.trained == 16
    assert outcome.epochs() == 16 * EPOCHS - sum(EPOCHS - t.epochs for t in outcome.trials)
    with (outcome.experiment_dir / "runs.csv").open() as handle:
        rows = {row["run_id"]: row for row in csv.DictReader(handle)}
    assert set(rows) == set(trained)
    assert {rows[t.run_id]["seed"] for t in outcome.trials} == {"0"}
    assert sorted(rows[r.run_id]["seed"] for t in outcome.trials for r in t.reruns) == ["1"] * 4
    assert "the mean of" in outcome.summary() and "over 2 seeds" in outcome.summary()
    assert "NOT confirmed" not in outcome.summary()
    from aeexp.tuning import best

    out = tmp_path / "best.yaml"
    best.write_best(outcome.search, outcome.trials, best.BestPoints(out, "b", 6, 1, (0,)))
    assert "then trained again on 1 more seed(s)" in out.read_text()
    planned = plan.plan_sweep(out, out=str(tmp_path / "final"))
    rates = {r.config.optimizer.learning_rate for r in planned.runs}
    assert rates == {
        outcome.best(c)[0].params["optimizer.learning_rate"] for c in outcome.search.cells
    }


def test_cells_whose_seeds_are_far_enough_apart_confirm_without_colliding(tmp_path):
    text = HOLDOUT + GOOD_SPACE + "confirm: {top: 1, seeds: 2}\ngrid: {seed: [0, 3]}\n"
    spec = search.read_search(write(tmp_path, text))
    assert [c.config({"optimizer.learning_rate": 0.1}).seed for c in spec.cells] == [0, 3]


def test_a_rerun_that_does_not_complete_ranks_its_trial_last(tmp_path, no_tune_data, monkeypatch):
    def diverges_on_seed_1(cfg, epoch):
        failed = cfg.seed == 1 and cfg.optimizer.learning_rate > 1e-3
        return math.nan if failed else unseeded(cfg, epoch)

    monkeypatch.setattr(sys.modules[__name__], "curve", diverges_on_seed_1)
    outcome = tune(tmp_path, trials=6, text=CONFIRM)
    for cell in outcome.search.cells:
        ranked = outcome.best(cell, 10)
        failed = [t for t in ranked if t.reruns and t.score is None]
        assert failed and ranked[-len(failed) :] == failed
        assert all(r.value is None for t in failed for r in t.reruns)
    unconfirmed = sum(outcome.best(c)[0].tier != 0 for c in outcome.search.cells)
    assert unconfirmed and outcome.summary().count("NOT confirmed") == unconfirmed


def test_an_interrupted_confirmation_resumes_without_training_twice(tmp_path, no_tune_data):
    whole = tune(tmp_path, out="whole", trials=4, text=CONFIRM)
    trained = []
    with pytest.raises(KeyboardInterrupt):  # all 8 trials done, then one rerun, then killed
        tune(
            tmp_path,
            out="cut",
            trials=4,
            text=CONFIRM,
            trained=trained,
            interrupt_after=9,
            max_group=1,
        )
    assert len(trained) == 9
    resumed = tune(tmp_path, out="cut", trials=4, text=CONFIRM, trained=trained, max_group=1)
    runs = {t.run_id for t in whole.trials} | {r.run_id for t in whole.trials for r in t.reruns}
    assert len(trained) == len(set(trained)) and set(trained) == runs and len(runs) > 9
    assert [(t.run_id, t.reruns) for t in resumed.trials] == [
        (t.run_id, t.reruns) for t in whole.trials
    ]


def test_without_confirm_nothing_is_rerun(tmp_path, no_tune_data):
    trained = []
    outcome = tune(tmp_path, trials=4, trained=trained)
    assert not any(t.reruns for t in outcome.trials)
    assert sorted(trained) == sorted({t.run_id for t in outcome.trials})


def test_ranking_puts_confirmed_trials_first_then_unconfirmed_then_failed_confirmations():
    from aeexp.tuning.trials import Rerun, Trial, ranked

    def trial(number, value, *again):
        reruns = tuple(Rerun(1, f"r{number}{i}", v, 3) for i, v in enumerate(again))
        return Trial(
            None, number, {}, f"{number:010x}", "COMPLETE", "completed", value, 3, reruns=reruns
        )

    trials = [
        trial(0, 0.9, None),  # the best alone, but its rerun failed
        trial(1, 0.8, 0.6),  # mean 0.7
        trial(2, 0.7, 0.8),  # mean 0.75: the confirmed best
        trial(3, 0.85),  # never confirmed
        trial(4, 0.5),
    ]
    assert [t.number for t in ranked(trials, maximize=True)] == [2, 1, 3, 4, 0]
    assert [t.number for t in ranked(trials, maximize=False)] == [1, 2, 4, 3, 0]
    assert trials[2].score == pytest.approx(0.75) and trials[3].score == 0.85


# --- Real training ------------------------------------------------------------------------------


class StopFirst:
    """A stop rule that stops one run after epoch 1 and records its trial."""

    def __init__(self, run_id):
        self.run_id = run_id

    def stop(self, epoch, val_losses):
        return {self.run_id} if self.run_id in val_losses else set()

    def record(self, run_id, status):
        return {"tune": {"study": "s", "trial": 0, "state": status}}


def test_a_pruned_member_keeps_its_history_and_the_others_their_bits(mnist_path):
    from aeexp.config import run as config
    from aeexp.data.dataset import load_dataset
    from aeexp.execute import runner

    def cfg(lr):
        return config.validate(
            {
                "data": {"path": str(mnist_path), "train_limit": 600, "holdout": 200},
                "train": {"epochs": 3, "batch_size": 100},
                "optimizer": {"name": "adam", "learning_rate": lr},
            }
        )

    stopped, kept = cfg(0.01), cfg(0.002)
    dataset = load_dataset(stopped)
    pair = runner.train_group([stopped, kept], dataset, stop=StopFirst(stopped.run_id))
    (alone,) = runner.train_group([kept], dataset)
    pruned = pair[0].metrics
    assert pruned["status"] == "pruned" and pruned["pruned_epoch"] == 1
    assert pruned["epochs_trained"] == 1 and 0 < pruned["ssim_mean"] < 1  # judged as it stood
    assert pruned["tune"] == {"study": "s", "trial": 0, "state": "pruned"}
    assert pair[0].files[store.HISTORY].decode().count("\n") == 2  # header and one epoch
    circumstances = {
        "train_seconds",
        "eval_seconds",
        "finished_at",
        "group_size",
        "machine",
        "tune",
    }

    def numbers(artifacts):
        return {k: v for k, v in artifacts.metrics.items() if k not in circumstances}

    assert numbers(pair[1]) == numbers(alone) and pair[1].metrics["status"] == "completed"
    history = [line.split(",")[:3] for line in pair[1].files[store.HISTORY].decode().splitlines()]
    assert history == [
        line.split(",")[:3] for line in alone.files[store.HISTORY].decode().splitlines()
    ]


def test_the_engine_never_stops_a_member_after_its_last_epoch(mnist_path):
    from aeexp.engines import tensorflow as engine

    with np.load(mnist_path) as archive:
        x = archive["x_train"][:300].reshape(-1, 784).astype("float32") / 255
    from test_engine import member

    asked = []

    def stop(epoch, histories, active):
        asked.append((epoch, tuple(active)))
        return [0]

    engine.enable_determinism()
    trainer = engine.GroupTrainer([member(), member(seed=1)], x, x[:100], batch_size=100, seed=0)
    histories = trainer.train(2, stop=stop)
    assert asked == [(1, (0, 1))]  # asked after epoch 1 only; the last epoch ends a run
    assert histories[0].stopped_epoch == 1 and len(histories[0].loss) == 1
    assert histories[1].stopped_epoch is None and len(histories[1].loss) == 2


@pytest.mark.slow  # the loop's twins use the fake executor; the engine's, real runs
def test_aeexp_tune_end_to_end(tmp_path, mnist_path, monkeypatch):
    monkeypatch.setenv("AEEXP_DATA", str(mnist_path))
    text = (
        "name: tiny\n"
        "config: {data.train_limit: 500, data.holdout: 150, train.epochs: 3, "
        "train.batch_size: 100}\n"
        "search: {optimizer.learning_rate: {log_uniform: [1.0e-4, 1.0]}}\n"
        "sampler: {n_startup_trials: 2}\npruner: {n_startup_trials: 1}\n"
    )
    out = tmp_path / "out"
    result = invoke(
        "tune",
        write(tmp_path, text),
        "--trials",
        4,
        "--batch",
        2,
        "--out",
        out,
        "--quiet",
        "--top",
        2,
        "--seeds",
        "0-1",
        "--sweep-out",
        tmp_path / "final.yaml",
    )
    assert result.exit_code == 0, result.output
    experiment = out / "tiny"
    assert "best ssim_mean" in result.stdout and "cell 1 (base config)" in result.stdout
    import aeexp

    runs = aeexp.load_runs(experiment)
    assert len(runs) == 4 and set(runs["tune.state"]) <= {"COMPLETE", "PRUNED"}
    assert set(runs["tune.trial"]) == {0, 1, 2, 3}
    for _, row in runs[runs["status"] == "pruned"].iterrows():
        assert row["tune.state"] == "PRUNED" and row["epochs_trained"] == row["pruned_epoch"]
    assert (experiment / "tune.png").is_file() and (experiment / "runs.csv").is_file()
    final = plan.plan_sweep(tmp_path / "final.yaml", out=str(tmp_path / "final"))
    assert len(final.runs) in (2, 4) and {r.config.seed for r in final.runs} == {0, 1}
    # Run again: everything is on disk, nothing trains.
    again = invoke("tune", write(tmp_path, text), "--trials", 4, "--out", out, "--quiet")
    assert again.exit_code == 0 and "0 run(s) trained now" in again.stdout


SIGKILLED_SEARCH = """\
name: lr
config: {{data.path: {data}, data.train_limit: 8000, data.holdout: 500, train.epochs: 10,
         train.batch_size: 128}}
grid: {{loss.name: [mse], model.decoder_activation: [sigmoid]}}
search: {{optimizer.learning_rate: {{log_uniform: [1.0e-4, 1.0e-1]}}}}
pruner: {{name: median, n_startup_trials: 2, n_warmup_steps: 1}}
seed: 3
"""


def runs_table(folder):
    with open(folder / "lr" / "runs.csv") as handle:
        return sorted((r["run_id"], r["status"], r["ssim_mean"]) for r in csv.DictReader(handle))


@pytest.mark.slow
def test_a_sigkilled_tune_resumes_to_the_uninterrupted_result(tmp_path, mnist_path):
    """A real process killed mid-study: the rerun ends where one that never stopped ends."""
    import os
    import signal
    import time

    path = tmp_path / "s.yaml"
    path.write_text(SIGKILLED_SEARCH.format(data=mnist_path))

    def command(out):
        return [sys.executable, "-m", "aeexp", "tune", path, "--trials", "10", "--batch", "2",
                "--out", tmp_path / out, "--quiet"]  # fmt: skip

    subprocess.run(command("whole"), check=True, capture_output=True, timeout=600)
    killed = subprocess.Popen(command("cut"), start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and killed.poll() is None:
        if len(list((tmp_path / "cut").glob("lr/*/metrics.json"))) >= 4:
            break
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "cut").glob("lr/*/metrics.json")}
    assert 0 < len(before) < 10, "the kill should land mid-study"
    subprocess.run(command("cut"), check=True, capture_output=True, timeout=600)
    assert runs_table(tmp_path / "cut") == runs_table(tmp_path / "whole")
    assert all(p.stat().st_mtime_ns == t for p, t in before.items()), "a finished run retrained"


def test_a_tune_reads_each_trials_metrics_at_most_twice(tmp_path, no_tune_data, monkeypatch):
    """The batch's ledger and the re-check under the run's lock; not again to tell or rank."""
    from test_execute import count_metrics_reads

    reads = count_metrics_reads(monkeypatch)
    outcome = tune(tmp_path, trials=6)
    assert {t.run_id for t in outcome.trials} == set(reads)
    assert max(reads.values()) <= 2, reads
    assert all(t.metrics["run_id"] == t.run_id for t in outcome.trials)


def test_intermediate_values_keep_a_minimized_studys_losses_and_negate_a_maximized_ones():
    """Optuna compares them in the study's direction: a lower loss must read as better."""
    from aeexp.tuning.stop import intermediate_values

    assert intermediate_values([0.5, 0.25], maximize=False) == {1: 0.5, 2: 0.25}
    assert intermediate_values([0.5, 0.25], maximize=True) == {1: -0.5, 2: -0.25}


def test_only_completed_trials_with_a_value_are_ranked():
    """A finished trial without a value (its metric missing) and an unfinished one with a value
    (a pruned run's, as it stood) are both left out; ties go to the lower number."""
    from aeexp.tuning.trials import Trial, ranked

    def trial(number, state, value, run_id=None):
        run_id = run_id or f"{number:010x}"
        return Trial(None, number, {}, run_id, state, state.lower(), value, 3)

    trials = [
        trial(0, "COMPLETE", None),
        trial(1, "PRUNED", 0.9),
        trial(2, "COMPLETE", 0.5),
        trial(3, "RUNNING", 0.8),
        trial(4, "COMPLETE", 0.7),
        trial(5, "COMPLETE", 0.7, run_id=f"{4:010x}"),  # the same run again: kept once
    ]
    assert [t.number for t in ranked(trials[1:], maximize=True)] == [4, 2]
    assert [t.number for t in ranked(trials, maximize=True)] == [4, 2]
    assert [t.number for t in ranked(trials, maximize=False)] == [2, 4]


def test_cells_that_differ_in_their_spaces_but_not_their_seeds_apart_are_refused(tmp_path):
    """A rerun collides with a trial whenever their values meet, whatever else each searches."""
    text = (
        HOLDOUT
        + "confirm: {top: 1}\n"
        + "grid:\n"
        + "  - {seed: [0], search: {optimizer.learning_rate: {choice: [0.1, 0.2]}}}\n"
        + "  - {seed: [1], search: {optimizer.learning_rate: {choice: [0.1, 0.3]}}}\n"
    )
    with pytest.raises(UserError, match="cells 1 and 2 differ only by their seed"):
        search.read_search(write(tmp_path, text))
