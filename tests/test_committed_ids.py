"""Every committed run plans to the id it was trained under, so resuming a study retrains none."""

from pathlib import Path

import pandas
import pytest

from aeexp import api

REPO = Path(__file__).resolve().parents[1]
STUDIES = {  # sweep file -> the runs CSV its committed runs are in
    "thesis-optimizers": "results/thesis/thesis-optimizers-runs.csv",
    "thesis-tuned": "results/thesis/thesis-tuned-runs.csv",
    "beta-tune": "results/beta/beta-tune-runs.csv",
    "beta": "results/beta/beta-runs.csv",
    "thesis-cells-jax": "results/backends/thesis-cells-jax-runs.csv",
    "thesis-cells-paired-tf": "results/backends/paired/thesis-cells-paired-tf-runs.csv",
    "thesis-cells-paired-jax": "results/backends/paired/thesis-cells-paired-jax-runs.csv",
}


@pytest.mark.parametrize(("sweep", "runs"), STUDIES.items())
def test_a_committed_study_plans_to_its_run_ids(sweep, runs, tmp_path):
    planned = api.plan(REPO / "configs" / "sweeps" / f"{sweep}.yaml", out=tmp_path)
    committed = pandas.read_csv(REPO / runs, dtype={"run_id": str})["run_id"]
    assert len(committed) == committed.nunique() == len(planned.runs)
    assert {run.config.run_id for run in planned.runs} == set(committed)
