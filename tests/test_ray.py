"""The Ray executor: same numbers as local, a lost node retried, versions and the extra checked."""

import csv
import json

import pytest
from click.testing import CliRunner

from aeexp import api, cli, execute, plan, store
from aeexp.errors import UserError
from aeexp.executors import make_executor
from aeexp.executors import ray as ray_executor

# Fields that say when, where and in what group a run trained, not what it computed.
CIRCUMSTANCES = {"train_seconds", "eval_seconds", "finished_at", "machine", "group_size"}

SMALL = """
name: small
config: {{data.path: '{data}', data.train_limit: 768, data.test_limit: 300, train.epochs: 2}}
grid:
  loss.name: [mse, i_div2]
  seed: [0, 1]
"""


def numbers(run_dir):
    """Return what a run computed: its metrics but the circumstances, and its loss history."""
    metrics = json.loads((run_dir / store.METRICS).read_text())
    history = [line.split(",")[:3] for line in (run_dir / store.HISTORY).read_text().split()]
    return {k: v for k, v in metrics.items() if k not in CIRCUMSTANCES}, history


def test_without_the_extra_ray_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setattr(ray_executor, "ray", None)
    with pytest.raises(UserError, match=r"pip install 'aeexp\[ray\]'"):
        make_executor("ray")
    config = tmp_path / "c.yaml"
    config.write_text("train: {epochs: 1}\n")
    result = CliRunner().invoke(
        cli.main, ["run", str(config), "--out", str(tmp_path / "out"), "--executor", "ray"]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "aeexp: error: --executor ray needs Ray: pip install 'aeexp[ray]' (on every node of "
        "the cluster)"
    ]


def test_ray_options_without_ray_are_refused():
    with pytest.raises(UserError, match="need --executor ray"):
        make_executor("local", address="auto")


def test_a_worker_with_other_versions_is_refused(monkeypatch):
    """The driver compares each worker's versions with its own before anything trains."""
    real = ray_executor.pinned_versions()
    monkeypatch.setattr(
        ray_executor, "pinned_versions", lambda: {**real, "tensorflow": "0.0-driver"}
    )
    executor = ray_executor.RayExecutor(cpus_per_worker=2)
    try:
        with pytest.raises(UserError, match=r"has tensorflow .* \(driver: 0.0-driver\)"):
            executor.start({})
    finally:
        executor.shutdown(cancel=True)


def test_ray_trains_a_sweep_bit_for_bit_as_the_local_executor(tmp_path, mnist_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.format(data=mnist_path))
    outs = {}
    for name in ("local", "ray"):
        planned = plan.plan_sweep(path, out=str(tmp_path / name))
        options = api.ExecutorOptions(name, cpus_per_worker=1 if name == "ray" else None)
        outcome = api.train_plan(planned, executor=options)
        assert sorted(outcome.trained) == sorted(r.run_id for r in planned.runs)
        outs[name] = planned
    for local, remote in zip(outs["local"].runs, outs["ray"].runs, strict=True):
        assert numbers(local.run_dir) == numbers(remote.run_dir)
        assert (remote.run_dir / store.MODEL).stat().st_size > 100_000
    groups = {
        json.loads((r.run_dir / store.METRICS).read_text())["group_size"] for r in outs["ray"].runs
    }
    assert groups == {1}  # two workers: each seed's pair split in two, none idle


@pytest.mark.slow
def test_a_lost_node_costs_only_its_group(tmp_path, mnist_path):
    """Two nodes on one machine; one is removed mid-sweep; every run completes exactly once."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker_node = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    try:
        path = tmp_path / "six.yaml"
        path.write_text(
            f"name: six\nconfig: {{data.path: '{mnist_path}', data.train_limit: 768, "
            "data.test_limit: 300, train.epochs: 3}\ngrid: {seed: [0, 1, 2, 3, 4, 5]}\n"
        )
        planned = plan.plan_sweep(path, out=str(tmp_path / "out"))
        executor = ray_executor.RayExecutor(cpus_per_worker=1)
        finished = []

        def on_done(count):
            finished.append(count)
            if len(finished) == 1:
                cluster.remove_node(worker_node, allow_graceful=False)

        outcome = execute.execute(planned, executor, on_runs_done=on_done)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert executor.lost_workers == 1
    assert sorted(outcome.trained) == sorted(r.run_id for r in planned.runs)
    assert outcome.problems() == []
    with open(planned.experiment_dir / execute.RUNS_CSV) as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["run_id"] for r in rows) == sorted(r.run_id for r in planned.runs)
    assert {r["status"] for r in rows} == {"completed"}
