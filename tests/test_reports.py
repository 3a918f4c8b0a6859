"""Learning-rate selection and report generation, on run directories written by hand."""

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from fakeruns import beta_raw, fake_run

from aeexp.analysis import tables
from aeexp.cli import main
from aeexp.errors import UserError
from aeexp.store import rundir as store
from aeexp.studies import beta as report


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
    from aeexp.config.sweep import plan_sweep

    planned = plan_sweep(out)
    assert len(planned.runs) == 6 and {r.config.data.holdout for r in planned.runs} == {None}


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
    path = report.write_report(study / "fake", tune / "fake", tmp_path / "out")
    text = path.read_text()
    assert "best beta(2,data_first)" in text and "larger than the seed spread" in text
    assert (tmp_path / "out" / "figures" / "ssim_mean_vs_beta_relu.png").is_file()
    assert "| 0 |" in text and "| MSE |" in text


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


# ------------------------------------------------------------- select: what it must refuse


def run_select(tune_dir, out, *extra):
    return CliRunner().invoke(
        main, ["select", str(tune_dir), "--name", "final", "--out", str(out), *extra]
    )


def test_select_refuses_tuning_runs_scored_on_the_test_set(tmp_path):
    for lr, score in ((0.001, 0.5), (0.003, 0.7)):
        fake_run(tmp_path, beta_raw(1.0, "data_first", "relu", lr), ssim_mean=score)
    out = tmp_path / "final.yaml"
    result = run_select(tmp_path / "fake", out)
    assert result.exit_code == 2, result.output
    assert "no data.holdout" in result.output and "test set" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_select_names_a_configuration_whose_every_rate_diverged(tmp_path):
    for lr in (0.001, 0.003):
        fake_run(tmp_path, beta_raw(1.0, "data_first", "relu", lr, holdout=100), ssim_mean=0.6)
        fake_run(
            tmp_path, beta_raw(0.0, "recon_first", "sigmoid", lr, holdout=100), status="diverged"
        )
    out = tmp_path / "final.yaml"
    result = run_select(tmp_path / "fake", out)
    assert result.exit_code == 2, result.output
    assert "ReLU-Sigmoid beta(0,recon_first) (Adam)" in result.output
    assert "beta(1,data_first)" not in result.output
    assert not out.exists()


def test_select_header_carries_the_why_the_grid_and_edge_caveats(tmp_path):
    scores = {(1.0, 0.001): 0.5, (1.0, 0.003): 0.7, (1.0, 0.01): 0.6}
    scores |= {(2.0, 0.001): 0.5, (2.0, 0.003): 0.6, (2.0, 0.01): 0.7}
    for (beta, lr), score in scores.items():
        fake_run(tmp_path, beta_raw(beta, "data_first", "relu", lr, holdout=100), ssim_mean=score)
    out = tmp_path / "final.yaml"
    assert run_select(tmp_path / "fake", out).exit_code == 0
    text = out.read_text()
    header = " ".join(line[1:].strip() for line in text.splitlines() if line.startswith("#"))
    assert "Why Adam" in header and "y^(β-2)" in header
    assert "Learning rates searched: 0.001, 0.003, 0.01." in header
    assert "ReLU-ReLU beta(2,data_first) (Adam) at 0.01" in header
    assert "beta(1,data_first) (Adam) at" not in header
    assert yaml.safe_load(text)["name"] == "final"

    sweep_file = tmp_path / "tune.yaml"
    sweep_file.write_text("# Why Adam: a stated reason.\n#\n# More.\nname: tune\n# not this\n")
    assert run_select(tmp_path / "fake", out, "--tune-sweep", str(sweep_file)).exit_code == 0
    text = out.read_text()
    assert "# Why Adam: a stated reason.\n#\n# More.\n" in text and "not this" not in text
    assert len(yaml.safe_load(text)["grid"]) == 2


# ------------------------------------------------------------- the beta report, when runs go wrong


def make_study(tmp_path, study_seeds=3, diverge=(), missing_images=(), reference_diverged=()):
    """Write a small study and tuning sweep; ``diverge`` lists (beta, seed) study runs to fail."""
    study, tune = tmp_path / "study", tmp_path / "tune"
    for beta in (0.0, 2.0):
        for lr, score in ((0.001, 0.5), (0.003, 0.6 + beta / 10)):
            fake_run(tune, beta_raw(beta, "data_first", "relu", lr, holdout=100), ssim_mean=score)
        for seed in range(study_seeds):
            cfg_raw = {**beta_raw(beta, "data_first", "relu", 0.003, seed), "train": {"epochs": 7}}
            if (beta, seed) in diverge:
                fake_run(study, cfg_raw, status="diverged")
                continue
            score = 0.6 + 0.1 * beta + 0.001 * seed
            cfg = fake_run(study, cfg_raw, ssim_mean=score, ssim_thesis=score)
            if (beta, seed) not in missing_images:
                (cfg.experiment_dir / cfg.run_id / store.RECONSTRUCTIONS).write_bytes(b"png")
    for seed in range(study_seeds):
        raw = {
            "loss": {"name": "mse"},
            "seed": seed,
            "model": {"decoder_activation": "relu"},
            "train": {"epochs": 7},
        }
        if "mse" in reference_diverged:
            fake_run(study, raw, status="diverged")
        else:
            fake_run(study, raw, ssim_mean=0.7 + 0.001 * seed, ssim_thesis=0.7)
    return study / "fake", tune / "fake"


def test_beta_report_refuses_tuning_runs_without_a_holdout(tmp_path):
    study, _ = make_study(tmp_path)
    tune = tmp_path / "tune-on-test"
    fake_run(tune, beta_raw(1.0, "data_first", "relu", 0.001), ssim_mean=0.5)
    with pytest.raises(UserError, match="no data.holdout"):
        report.write_report(study, tune / "fake", tmp_path / "out")


def test_beta_report_examples_come_from_a_completed_seed_that_wrote_them(tmp_path):
    # Best (beta 2): seed 0 diverged, seed 1 has no image, seed 2 has one.
    # Worst (beta 0): no seed wrote an image, so nothing is linked and no stale file stays.
    study, tune = make_study(
        tmp_path, diverge={(2.0, 0)}, missing_images={(2.0, 1), (0.0, 0), (0.0, 1), (0.0, 2)}
    )
    figures = tmp_path / "out" / "figures"
    figures.mkdir(parents=True)
    (figures / "reconstructions_worst_beta.png").write_bytes(b"stale")
    text = report.write_report(study, tune, tmp_path / "out").read_text()
    assert "β = 2, d_β(x|y), data first, ReLU-ReLU (Adam lr=0.003) (seed 2):" in text
    assert (figures / "reconstructions_best_beta.png").read_bytes() == b"png"
    assert "reconstructions_worst_beta.png" not in text
    assert not (figures / "reconstructions_worst_beta.png").exists()
    assert "no completed seed wrote reconstructions" in text


def test_beta_report_counts_seeds_and_divergences_honestly(tmp_path):
    study, tune = make_study(tmp_path, diverge={(2.0, 0), (2.0, 1)})
    text = report.write_report(study, tune, tmp_path / "out").read_text()
    assert "1-3 completed seeds (of 3) per configuration" in text
    assert "9 in the study (2 diverged or failed)" in text
    assert "7 epochs, batch 256, Adam with its learning rate" in text
    assert "50 epochs" not in text


def test_beta_report_never_prints_nan_for_a_reference_without_seeds(tmp_path):
    study, tune = make_study(tmp_path, reference_diverged={"mse"})
    text = report.write_report(study, tune, tmp_path / "out").read_text()
    assert "nan" not in text.lower()
    assert "n/a (0 of 3 completed)" in text
    assert "MSE has no completed seed to compare with" in text


def test_beta_report_says_how_sure_the_overall_answer_is(tmp_path):
    study, tune = make_study(tmp_path)
    text = report.write_report(study, tune, tmp_path / "out").read_text()
    answer = text.split("## Answer", 1)[1].split("Per decoder and order", 1)[0]
    assert "against the runner-up, β = 0" in answer
    assert "the gap 0.2000 is larger than the seed spread (0.0010; Welch p = " in answer
    assert "Holm-adjusted" in answer
    assert "against the next-worst" in answer


def test_beta_report_explains_adam_and_flags_rates_at_the_grid_edge(tmp_path):
    study, tune = make_study(tmp_path)
    text = report.write_report(study, tune, tmp_path / "out").read_text()
    assert "## Why Adam" in text and "y^(β-2)" in text and "Keras 2.2 and Keras 3" in text
    assert "Learning rates searched: 0.001, 0.003, each scored on the last 100" in text
    # Both configurations chose 0.003, the highest rate searched.
    assert "**Caveat:** 2 of 2 configurations chose the lowest or highest rate" in text
    assert "| 0.003 | highest |" in text


# ------------------------------------------------------------- the thesis report's honesty


def test_how_sure_does_not_judge_a_gap_against_a_single_seed():
    single = tables.ConfigStats(runs=(), values=(0.8,))
    spread = tables.ConfigStats(runs=(), values=(0.70, 0.71, 0.72))
    assert "cannot be weighed against a seed spread" in report.how_sure(single, spread)
    higher = tables.ConfigStats(runs=(), values=(0.80, 0.81, 0.82))
    text = report.how_sure(higher, spread)
    assert "0.1000 is larger than the seed spread (0.0100; Welch p = " in text
    assert "Holm-adjusted" in text


# ------------------------------------------------ select --top --on-test-set (issue 12)


def write_tuned_grid(root, scores):
    """Write a thesis-tuned-like sweep on the test set: {(lr, seed): (gray, viridis)}."""
    from fakeruns import cell_raw

    for (lr, seed), (gray, viridis) in scores.items():
        fake_run(
            root,
            cell_raw("sigmoid", "i_div1", "adamax", seed, learning_rate=lr, decay=1e-5),
            name="thesis-tuned",
            ssim_thesis=gray,
            ssim_thesis_viridis=viridis,
        )
    return root / "thesis-tuned"


TUNED_SCORES = {
    (0.01, 0): (0.57, 0.63),
    (0.02, 0): (0.56, 0.60),
    (0.03, 0): (0.50, 0.64),
    (0.04, 0): (0.40, 0.40),
}


def test_select_on_the_test_set_must_be_asked_for_by_name(tmp_path):
    tuned = write_tuned_grid(tmp_path, TUNED_SCORES)
    out = tmp_path / "seeds.yaml"
    refused = run_select(tuned, out, "--metric", "ssim_thesis", "--top", "2", "--seeds", "1-4")
    assert refused.exit_code == 2 and "no data.holdout" in refused.output
    assert not out.exists()
    reused = run_select(tuned, out, "--on-test-set", "--metric", "ssim_thesis", "--seeds", "0-4")
    assert reused.exit_code == 2 and "repeats seed(s) 0" in reused.output
    assert not out.exists()


def test_select_on_holdout_runs_refuses_the_test_set_flag(tmp_path):
    fake_run(tmp_path, beta_raw(1.0, "data_first", "relu", 0.001, holdout=100), ssim_mean=0.5)
    result = run_select(tmp_path / "fake", tmp_path / "x.yaml", "--on-test-set", "--seeds", "1")
    assert result.exit_code == 2 and "training holdout" in result.output


def test_select_top_k_by_both_variants_writes_the_union_over_new_seeds(tmp_path):
    from aeexp.config.sweep import plan_sweep

    tuned = write_tuned_grid(tmp_path, TUNED_SCORES)
    out = tmp_path / "seeds.yaml"
    result = run_select(
        tuned,
        out,
        "--on-test-set",
        "--top",
        "2",
        "--metric",
        "ssim_thesis",
        "--metric",
        "ssim_thesis_viridis",
        "--seeds",
        "1-4",
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "SELECTED ON THE TEST SET" in text and "seed(s) 0" in text
    # Gray's top 2: 0.01, 0.02; viridis's: 0.03, 0.01. Union, ascending: 0.01, 0.02, 0.03.
    rates = [b["optimizer"][0]["learning_rate"] for b in yaml.safe_load(text)["grid"]]
    assert rates == [0.01, 0.02, 0.03]
    planned = plan_sweep(out)
    assert len(planned.runs) == 12 and {r.config.seed for r in planned.runs} == {1, 2, 3, 4}
    assert {r.config.optimizer.params["decay"] for r in planned.runs} == {1e-5}


def test_beta_ranking_as_data(tmp_path):
    study, _ = make_study(tmp_path, diverge=[(2.0, 1)])
    ranking = report.beta_ranking(store.load_runs(study), "ssim_mean")
    assert [s.config.loss.beta for s in ranking] == [2.0, 0.0]
    assert [s.n for s in ranking] == [2, 3]  # the diverged seed is counted out, not as a zero
    assert ranking[0].mean == pytest.approx(0.8 + 0.001)  # seeds 0 and 2: 0.8 and 0.802


@pytest.mark.parametrize(
    "command",
    [
        ["report", "thesis", "{empty}", "{empty}", "--out", "{out}"],
        ["report", "beta", "{empty}", "{empty}", "--out", "{out}"],
        ["report", "backends", "{empty}", "{empty}", "--out", "{out}"],
        ["table", "{empty}", "--figures", "{out}"],
    ],
)
def test_a_refused_report_leaves_no_folder_it_made_and_keeps_one_it_found(tmp_path, command):
    empty, kept = tmp_path / "empty", tmp_path / "kept"
    empty.mkdir()
    kept.mkdir()
    for out, survives in ((tmp_path / "new" / "deep", tmp_path / "new"), (kept / "deep", kept)):
        argv = [part.format(empty=empty, out=out) for part in command]
        result = CliRunner().invoke(main, argv)
        assert result.exit_code == 2 and "no complete runs found" in result.output
        assert not out.exists()
        assert survives.exists() == (survives == kept)


def test_a_link_at_a_copied_csvs_name_is_replaced_not_written_through(tmp_path):
    """A runs CSV copied beside a report never lands in a file outside the report's folder."""
    from aeexp.studies import common

    sweep, out, outside = tmp_path / "sweep", tmp_path / "out", tmp_path / "outside.txt"
    sweep.mkdir()
    out.mkdir()
    (sweep / "runs.csv").write_text("run_id,status\nabc,completed\n")
    outside.write_text("keep me\n")
    (out / "sweep-runs.csv").symlink_to(outside)
    common.copy_summaries([sweep], out)
    assert outside.read_text() == "keep me\n"
    assert not (out / "sweep-runs.csv").is_symlink()
    assert (out / "sweep-runs.csv").read_text() == "run_id,status\nabc,completed\n"


def test_a_link_at_a_copied_figures_name_is_replaced_not_written_through(tmp_path):
    from types import SimpleNamespace

    from aeexp.studies import common

    run_dir, outside = tmp_path / "run", tmp_path / "outside.png"
    run_dir.mkdir()
    (run_dir / "reconstructions.png").write_bytes(b"\x89PNG figure")
    outside.write_bytes(b"keep me")
    target = tmp_path / "figures" / "example.png"
    target.parent.mkdir()
    target.symlink_to(outside)
    assert common.copy_figure(SimpleNamespace(path=run_dir), "reconstructions.png", target)
    assert outside.read_bytes() == b"keep me" and not target.is_symlink()
    assert target.read_bytes() == b"\x89PNG figure"
