"""Learning-rate selection and report generation, on run directories written by hand."""

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from aeexp import config, report, results, tables
from aeexp.cli import main


def fake_run(root, raw, **metrics):
    """Write a complete run directory with the given config and metrics; no training."""
    cfg = config.validate({"name": "fake", "output": {"dir": str(root)}, **raw})
    run_dir = cfg.experiment_dir / cfg.run_id
    with results.staged_run_dir(run_dir) as staging:
        results.write_yaml(staging / results.CONFIG, cfg.resolved())
        results.write_json(
            staging / results.METRICS,
            {
                "status": "completed",
                "finished_at": "2026-01-01T00:00:00+00:00",
                "train_seconds": 10.0,
                **metrics,
            },
        )
    return cfg


def beta_raw(beta, order, decoder, lr, seed=0, holdout=None):
    return {
        "loss": {"name": "beta", "beta": beta, "order": order},
        "model": {"decoder_activation": decoder},
        "seed": seed,
        "optimizer": {"name": "adam", "learning_rate": lr},
        "data": {"holdout": holdout},
    }


def test_select_picks_each_configurations_best_rate_and_drops_the_holdout(tmp_path):
    for beta in (0.5, 1.0):
        for lr, score in ((0.001, 0.5), (0.003, 0.7 + beta / 10), (0.01, 0.6)):
            fake_run(
                tmp_path, beta_raw(beta, "data_first", "relu", lr, holdout=100), ssim_mean=score
            )
    out = tmp_path / "final.yaml"
    result = CliRunner().invoke(
        main,
        ["select", str(tmp_path / "fake"), "--name", "final", "--out", str(out), "--seeds", "0-2"],
    )
    assert result.exit_code == 0, result.output
    sweep = yaml.safe_load(out.read_text())
    assert sweep["name"] == "final" and len(sweep["grid"]) == 2
    for block in sweep["grid"]:
        assert block["optimizer"][0]["learning_rate"] == 0.003
        assert block["seed"] == [0, 1, 2]
        assert "holdout" not in block["data"][0]
    from aeexp import sweep as sweep_lib

    plan = sweep_lib.plan(out)
    assert len(plan.runs) == 6 and {r.config.data.holdout for r in plan.runs} == {None}


def test_beta_report_answers_with_numbers(tmp_path):
    rng = np.random.default_rng(0)
    study, tune = tmp_path / "study", tmp_path / "tune"
    for decoder in ("relu", "sigmoid"):
        for order in ("data_first", "recon_first"):
            for beta in (0.0, 1.0, 2.0):
                fake_run(tune, beta_raw(beta, order, decoder, 0.001, holdout=100), ssim_mean=0.5)
                for seed in range(3):
                    score = 0.6 + 0.1 * beta + rng.normal(0, 0.001)
                    fake_run(
                        study,
                        beta_raw(beta, order, decoder, 0.001, seed),
                        ssim_mean=score,
                        ssim_thesis=score,
                    )
        for seed in range(3):
            for name in ("mse", "bce"):
                fake_run(
                    study,
                    {
                        "loss": {"name": name},
                        "seed": seed,
                        "model": {"decoder_activation": decoder},
                    },
                    ssim_mean=0.7,
                    ssim_thesis=0.7,
                )
    path = report.write_beta_report(study / "fake", tune / "fake", tmp_path / "out")
    text = path.read_text()
    assert "best beta(2,data_first)" in text and "larger than the seed spread" in text
    assert (tmp_path / "out" / "figures" / "ssim_mean_vs_beta_relu.png").is_file()
    assert "| 0 |" in text and "| MSE |" in text


def test_thesis_report_verdicts_follow_the_rule(tmp_path):
    defaults, tuned = tmp_path / "defaults", tmp_path / "tuned"
    for (decoder, loss), (value, optimizer) in tables.THESIS_SSIM.items():
        # Cells with MSE sit on the published value; the others 0.2 below it.
        offset = 0.0 if loss == "mse" else -0.2
        for seed in range(3):
            raw = {
                "loss": {"name": loss},
                "model": {"decoder_activation": decoder},
                "optimizer": {"name": optimizer},
                "seed": seed,
            }
            fake_run(defaults, raw, ssim_thesis=value + offset + 0.01 * (seed - 1), ssim_mean=0.5)
        fake_run(tuned, {**raw, "seed": 0}, ssim_thesis=value, ssim_mean=0.5)
    path = report.write_thesis_report(defaults / "fake", tuned / "fake", tmp_path / "out")
    text = path.read_text()
    assert "2 of the six cells agree with the thesis: ReLU-ReLU MSE, ReLU-Sigmoid MSE" in text
    assert (tmp_path / "out" / "figures" / "ssim_thesis_bars.png").is_file()
    assert (tmp_path / "out" / "ssim_thesis_by_optimizer.md").is_file()


def test_agreement_needs_a_spread():
    single = tables.ConfigStats(runs=(), values=(0.8,))
    assert not report.agrees(single, 0.8)
    spread = tables.ConfigStats(runs=(), values=(0.7, 0.8, 0.9))
    assert report.agrees(spread, 0.95) and not report.agrees(spread, 1.1)


@pytest.mark.parametrize("text", ["0-4", "0,1,2,3,4"])
def test_select_without_runs_is_a_user_error(tmp_path, text):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(
        main,
        [
            "select",
            str(tmp_path / "empty"),
            "--name",
            "x",
            "--out",
            str(tmp_path / "x.yaml"),
            "--seeds",
            text,
        ],
    )
    assert result.exit_code == 2 and "no complete runs" in result.output
    assert not (tmp_path / "x.yaml").exists()
