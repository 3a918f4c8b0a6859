"""The shared vocabulary: each list the commands offer derives from the one metric registry."""

from fakeruns import cell_raw

from aeexp.config import run as config
from aeexp.registry import losses, vocab


def test_the_lists_the_commands_offer_come_from_the_registry_in_their_order():
    assert vocab.TABLE_METRICS == (
        "ssim_thesis",
        "ssim_thesis_viridis",
        "ssim_mean",
        "ssim_median",
        "psnr_mean",
        "mse",
        "final_val_loss",
    )
    assert vocab.SELECT_METRICS == (
        "ssim_mean",
        "ssim_median",
        "ssim_thesis",
        "ssim_thesis_viridis",
        "psnr_mean",
    )
    assert vocab.COMPARE_METRICS == (
        "ssim_thesis",
        "ssim_thesis_viridis",
        "ssim_mean",
        "psnr_mean",
        "mse",
        "final_val_loss",
    )
    assert vocab.SUMMARY_METRICS[:3] == ("ssim_thesis", "ssim_thesis_viridis", "ssim_mean")
    assert vocab.SUMMARY_METRICS[-2:] == ("diverged_epoch", "train_seconds")


def test_every_selectable_metric_is_maximised():
    assert all(vocab.higher_is_better(m) for m in vocab.SELECT_METRICS)


def test_one_rule_for_a_metrics_json_without_a_status():
    assert vocab.status_of(None) == vocab.Status.PENDING == "pending"
    assert vocab.status_of({}) == vocab.Status.COMPLETED
    assert vocab.status_of({"status": "diverged"}) == vocab.Status.DIVERGED
    assert vocab.is_completed({}) and not vocab.is_completed({"status": "failed"})


def test_labels_and_keys():
    cfg = config.validate(cell_raw("sigmoid", "mse", "adam"))
    assert vocab.decoder_label(cfg) == vocab.DECODERS["sigmoid"] == "ReLU-Sigmoid"
    assert losses.loss_key(cfg) == "mse"
    beta = config.validate({"loss": {"name": "beta", "beta": 0.5}})
    assert losses.loss_key(beta) == losses.beta_key(0.5, "data_first") == "beta(0.5,data_first)"


def test_vocab_is_a_leaf():
    """vocab.py imports nothing from aeexp, not even for type hints."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(vocab.__file__).read_text())
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    assert not [name for name in imported if name.split(".")[0] == "aeexp"]


def test_a_loss_spec_owns_its_table_key(monkeypatch):
    spec = losses.LOSSES["beta"]
    monkeypatch.setitem(
        losses.LOSSES, "tempered", losses.LossSpec(None, "tempered", key=lambda t: f"t={t:g}")
    )
    assert losses.table_key("tempered", {"t": 2.0}) == "t=2"
    assert (
        losses.table_key("beta", {"beta": 1.5, "order": "recon_first"}) == "beta(1.5,recon_first)"
    )
    assert spec.key is losses.beta_key and losses.table_key("mse", {}) == "mse"
