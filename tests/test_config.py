"""Config schema: thesis defaults, overrides, run ids and every rejection path."""

from pathlib import Path

import pytest

from aeexp import config
from aeexp.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def load(tmp_path, text="", overrides=()):
    return config.load_run_config(write(tmp_path, text), overrides)


def error_of(tmp_path, text="", overrides=()):
    with pytest.raises(UserError) as caught:
        load(tmp_path, text, overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_are_the_thesis_setup(tmp_path):
    cfg = load(tmp_path)
    assert cfg.name == "cfg"
    assert (cfg.model.code_dim, cfg.model.encoder_activation) == (32, "relu")
    assert cfg.model.decoder_activation == "sigmoid"
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.seed) == (50, 256, 0)
    assert cfg.loss.name == "mse"
    assert cfg.resolved()["optimizer"] == {
        "name": "adam",
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
        "decay": 0.0,
    }


def test_overrides_and_aliases(tmp_path):
    cfg = load(
        tmp_path,
        "optimizer: {name: adagrad, lr: 0.005}",
        ["train.epochs=3", "loss.name=i_div1", "model.decoder_activation=relu"],
    )
    assert cfg.train.epochs == 3 and cfg.loss.name == "i_div1"
    assert cfg.optimizer.params["learning_rate"] == 0.005
    assert cfg.model.decoder_activation == "relu"


def test_beta_loss_gets_default_order(tmp_path):
    cfg = load(tmp_path, "loss: {name: beta, beta: 1}")
    assert cfg.resolved()["loss"] == {"name": "beta", "beta": 1.0, "order": "data_first"}


def test_run_id_depends_on_content_not_output(tmp_path):
    base = load(tmp_path)
    assert base.run_id == load(tmp_path, "output: {dir: elsewhere}").run_id
    assert base.run_id == load(tmp_path, "optimizer: {name: adam, learning_rate: 0.001}").run_id
    assert base.run_id != load(tmp_path, "seed: 1").run_id
    assert len(base.run_id) == 10


def test_resolved_config_round_trips(tmp_path):
    cfg = load(tmp_path, "loss: {name: beta, beta: 0.5, order: recon_first}")
    again = config.validate(cfg.resolved())
    assert again == cfg and again.run_id == cfg.run_id


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        ("loss: {name: msee}", (), "did you mean 'mse'"),
        ("optimizer: {name: adagrd}", (), "did you mean 'adagrad'"),
        ("optimizer: {name: adam, rho: 0.9}", (), "unknown keyword for optimizer 'adam'"),
        ("", ["optimizer.learning_rate=-0.1"], "learning_rate must be >= 0"),
        ("", ["train.epochs=-1"], "train.epochs"),
        ("", ["train.batch_size=0"], "train.batch_size"),
        ("", ["train.epochs=five"], "train.epochs"),
        ("", ["train.epochs=2.5"], "train.epochs"),
        ("", ["seed=-3"], "seed"),
        ("traine: {epochs: 2}", (), "traine: unknown key"),
        ("train: {epoch: 2}", (), "train.epoch: unknown key"),
        ("trian: {epochs: 2}", (), "did you mean 'train'?"),
        ("train: {epoch: 2}", (), "(valid: batch_size, epochs); did you mean 'epochs'?"),
        ("data: {tset_limit: 2}", (), "did you mean 'test_limit'?"),
        ("loss: {name: beta, bta: 2}", (), "loss.bta: unknown key (valid: beta, name, order)"),
        ("optimizer: {lr: 0.1, learning_rate: 0.2}", (), "learning_rate or its alias lr"),
        ("optimizer: {name: [adam]}", (), "unknown optimizer ['adam']"),
        ("loss: {name: beta}", (), "needs a parameter 'beta'"),
        ("loss: {name: mse, beta: 2}", (), "takes no parameters"),
        ("loss: {name: beta, beta: 1, order: sideways}", (), "loss.order"),
        ("model: {decoder_activation: sigmod}", (), "model.decoder_activation"),
        ("optimizer: {name: adam, amsgrad: 1}", (), "amsgrad must be true or false"),
        ("data: {train_limit: 0}", (), "data.train_limit"),
        ("name: 'a/b'", (), "name"),
    ],
)
def test_rejections_name_the_problem(tmp_path, text, overrides, expected):
    assert expected in error_of(tmp_path, text, overrides)


def test_malformed_yaml_names_file_and_line(tmp_path):
    message = error_of(tmp_path, "loss: {name: mse\ntrain: [")
    assert "cfg.yaml" in message and "malformed YAML" in message and "line" in message


def test_python_tags_are_refused(tmp_path):
    message = error_of(tmp_path, "name: !!python/object/apply:os.system ['true']")
    assert "malformed YAML" in message


def test_top_level_must_be_a_mapping(tmp_path):
    assert "expected a mapping" in error_of(tmp_path, "- a\n- b")


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        config.load_run_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize("text", ["novalue", "=3", "a.b=[unclosed"])
def test_bad_override_syntax(tmp_path, text):
    assert "--set" in error_of(tmp_path, "", [text])


def test_override_into_non_mapping(tmp_path):
    assert "not a mapping" in error_of(tmp_path, "train: 5", ["train.epochs=2"])


def test_run_id_ignores_unset_optional_settings(tmp_path):
    """A new optional key (None by default) must not change the ids of existing runs."""
    cfg = load(tmp_path)
    assert cfg.run_id == load(tmp_path, "data: {holdout: null, path: null}").run_id
    assert cfg.run_id != load(tmp_path, "data: {holdout: 100}").run_id


@pytest.mark.parametrize(
    "key",
    [
        "optimizer.learning_rate",
        "optimizer.decay",
        "optimizer.epsilon",
        "optimizer.beta_1",
        "optimizer.beta_2",
    ],
)
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_optimizer_numbers_are_refused(tmp_path, key, value):
    message = error_of(tmp_path, "", [f"{key}={value}"])
    assert f"{key.split('.')[1]} must be a finite number" in message


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_beta_is_refused(tmp_path, value):
    message = error_of(tmp_path, f"loss: {{name: beta, beta: {value}}}")
    assert "beta must be a finite number" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1e-3", 0.001), ("1E+5", 1e5), ("-2.5e-4", -2.5e-4), ("1e30", 1e30), ("2.5e4", 2.5e4)],
)
def test_yaml_12_exponent_floats_are_numbers(text, expected):
    assert config.load_yaml(text) == expected
    assert config.parse_override(f"optimizer.decay={text}") == ("optimizer.decay", expected)


def test_exponent_learning_rate_resolves_like_the_decimal(tmp_path):
    from_set = load(tmp_path, "", ["optimizer.learning_rate=1e-3"])
    from_file = load(tmp_path, "optimizer: {learning_rate: 1E-3}")
    assert from_set.optimizer.params["learning_rate"] == 0.001
    assert from_set.run_id == from_file.run_id == load(tmp_path).run_id
    assert "learning_rate must be >= 0" in error_of(tmp_path, "", ["optimizer.learning_rate=-1e-3"])


def test_the_yaml_loader_leaves_pyyaml_and_other_values_alone():
    import yaml

    text = "a: 10\nb: 0.001\nc: 1.0e-07\nd: 1_000\ne: e5\nf: 1e\ng: .inf\nh: 0x1F\ni: '1e5'\n"
    assert config.load_yaml(text) == yaml.safe_load(text)
    assert yaml.safe_load("1e-3") == "1e-3"  # PyYAML's own SafeLoader is not modified


def test_committed_configs_parse_as_pyyaml_parses_them():
    """Every committed config reads the same as before, so no committed run id moves."""
    import yaml

    files = sorted((REPO / "configs").rglob("*.yaml"))
    assert files
    for path in files:
        text = path.read_text()
        assert config.load_yaml(text) == yaml.safe_load(text), path


def test_written_yaml_quotes_strings_that_look_like_floats(tmp_path):
    from aeexp import results

    data = {"output": {"dir": "1e5"}, "epsilon": 1e-7, "learning_rate": 0.001}
    results.write_yaml(tmp_path / "c.yaml", data)
    assert config.read_yaml(tmp_path / "c.yaml") == data
