"""Config schema: thesis defaults, overrides, run ids and every rejection path."""

from pathlib import Path

import pytest

from aeexp.config import run as config
from aeexp.errors import UserError
from aeexp.io import yamlio

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def load(tmp_path, text="", overrides=()):
    return config.resolve(write(tmp_path, text), overrides)


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
    assert cfg.optimizer.learning_rate == 0.005
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
        (
            "train: {epoch: 2}",
            (),
            "(valid: backend, batch_size, epochs, init); did you mean 'epochs'?",
        ),
        ("data: {tset_limit: 2}", (), "did you mean 'test_limit'?"),
        ("loss: {name: beta, bta: 2}", (), "loss.bta: unknown key (valid: beta, name, order)"),
        # A loss's own keys, not the section's: the named loss's, else the default (mse)'s,
        # and a loss named elsewhere in the file does not change another section's keys.
        ("loss: {name: mse, bta: 2}", (), "loss.bta: unknown key (valid: name)"),
        ("loss: {bta: 2}", (), "loss.bta: unknown key (valid: name)"),
        ("loss: {name: mse}\ntrain: {epoch: 2}", (), "(valid: backend, batch_size, epochs, init)"),
        ("optimizer: {lr: 0.1, learning_rate: 0.2}", (), "learning_rate or its alias lr"),
        ("optimizer: {name: [adam]}", (), "unknown optimizer ['adam']"),
        ("loss: {name: beta}", (), "needs a parameter 'beta'"),
        ("loss: {name: mse, beta: 2}", (), "takes no parameters"),
        ("loss: {name: beta, beta: 1, order: sideways}", (), "loss.order"),
        ("model: {decoder_activation: sigmod}", (), "activation 'sigmod' (valid: elu, linear"),
        ("model: {decoder_activation: sigmod}", (), "did you mean 'sigmoid'?"),
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
        config.resolve(tmp_path / "absent.yaml")


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
    assert yamlio.load_yaml(text) == expected
    assert config.parse_override(f"optimizer.decay={text}") == ("optimizer.decay", expected)


def test_exponent_learning_rate_resolves_like_the_decimal(tmp_path):
    from_set = load(tmp_path, "", ["optimizer.learning_rate=1e-3"])
    from_file = load(tmp_path, "optimizer: {learning_rate: 1E-3}")
    assert from_set.optimizer.learning_rate == 0.001
    assert from_set.run_id == from_file.run_id == load(tmp_path).run_id
    assert "learning_rate must be >= 0" in error_of(tmp_path, "", ["optimizer.learning_rate=-1e-3"])


def test_the_yaml_loader_leaves_pyyaml_and_other_values_alone():
    import yaml

    text = "a: 10\nb: 0.001\nc: 1.0e-07\nd: 1_000\ne: e5\nf: 1e\ng: .inf\nh: 0x1F\ni: '1e5'\n"
    assert yamlio.load_yaml(text) == yaml.safe_load(text)
    assert yaml.safe_load("1e-3") == "1e-3"  # PyYAML's own SafeLoader is not modified


def test_committed_configs_parse_as_pyyaml_parses_them():
    """Every committed config reads the same as before, so no committed run id moves."""
    import yaml

    files = sorted((REPO / "configs").rglob("*.yaml"))
    assert files
    for path in files:
        text = path.read_text()
        assert yamlio.load_yaml(text) == yaml.safe_load(text), path


def test_written_yaml_quotes_strings_that_look_like_floats(tmp_path):
    from aeexp.io import atomic

    data = {"output": {"dir": "1e5"}, "epsilon": 1e-7, "learning_rate": 0.001}
    atomic.write_yaml(tmp_path / "c.yaml", data)
    assert yamlio.read_yaml(tmp_path / "c.yaml") == data


# --- names: one plain folder under the output folder -----------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("..", "'..' starts with '.': '.', '..' and hidden names are refused"),
        (".", "starts with '.'"),
        (".hidden", "starts with '.'"),
        ("a/b", "'a/b' contains '/': it must be a single folder name"),
        ("../up", "starts with '.'"),
        ("a\\b", "contains '\\\\': it must be a single folder name"),
        ("a\tb", "control or non-printable character '\\t'"),
        ("a\x7fb", "control or non-printable character '\\x7f'"),
        ("a\u2028b", "control or non-printable character '\\u2028'"),
        ("a b", "contains ' ': use only letters, digits and _ . + -"),
        ("x" * 101, "is 101 characters long, at most 100"),
        ("", "must not be empty"),
    ],
)
def test_bad_names_are_refused_with_the_rule(tmp_path, name, expected):
    path = write(tmp_path, "")
    with pytest.raises(UserError) as caught:
        config.validate({"name": name}, source=str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: name: ") and expected in message
    assert "\n" not in message
    with pytest.raises(UserError, match="^--name: "):
        config.check_name(name, "--name")


@pytest.mark.parametrize("name", ["run", "thesis-optimizers", "a.b", "x" * 100, "-_+.9"])
def test_plain_names_are_kept(name):
    assert config.check_name(name) == name
    assert config.validate({"name": name}).name == name


def test_check_name_refuses_a_non_string():
    with pytest.raises(UserError, match="^name: must be a string, got int$"):
        config.check_name(5)


def test_dot_dot_in_the_file_cannot_escape_the_output_folder(tmp_path):
    message = error_of(tmp_path, "name: ..")
    rule = "'..' starts with '.': '.', '..' and hidden names are refused"
    assert message == f"{tmp_path / 'cfg.yaml'}: name: {rule}"


def test_a_file_named_dot_dot_yaml_needs_a_name_key(tmp_path):
    path = write(tmp_path, "seed: 1", name="...yaml")
    with pytest.raises(UserError) as caught:
        config.resolve(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: name: '..' starts with '.'")
    assert "the name defaults to the file's name" in message
    assert config.resolve(path, ["name=fine"]).name == "fine"
    assert config.resolve(write(tmp_path, "name: ok", name="...yaml")).name == "ok"


def test_name_is_not_part_of_the_run_id(tmp_path):
    assert load(tmp_path, "name: a").run_id == load(tmp_path, "name: b").run_id


COMMITTED_RUN_IDS = {
    "i_div1_relu-relu_adamax.yaml": "b383082a72",
    "i_div1_relu-sigmoid_adamax.yaml": "dc6f39a425",
    "i_div2_relu-relu_adadelta.yaml": "e519a756b2",
    "i_div2_relu-sigmoid_nadam.yaml": "3361e1fb43",
    "mse_relu-relu_adagrad.yaml": "d5cd5f7939",
    "mse_relu-sigmoid_adam.yaml": "a7e9608ebd",
}


def test_committed_thesis_configs_keep_their_run_ids():
    for file, run_id in COMMITTED_RUN_IDS.items():
        assert config.resolve(REPO / "configs" / "thesis" / file).run_id == run_id, file


# --- absurd sizes: refused at validation ------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.code_dim=4097", "model.code_dim: Input should be less than or equal to 4096"),
        ("model.code_dim=-1", "model.code_dim: Input should be greater than or equal to 1"),
        ("model.code_dim=100000000000", "model.code_dim: Input should be less than or equal"),
        ("train.batch_size=60001", "train.batch_size: Input should be less than or equal to 60000"),
        ("train.epochs=10001", "train.epochs: Input should be less than or equal to 10000"),
        ("data.train_limit=10000001", "data.train_limit: Input should be less than or equal"),
        ("data.test_limit=10000001", "data.test_limit: Input should be less than or equal"),
        ("data.holdout=10000001", "data.holdout: Input should be less than or equal"),
        (
            "seed=9223372036854775808",
            "seed: Input should be less than or equal to 9223372036854775807",
        ),
        ("seed=18446744073709551616", "seed: Input should be less than or equal"),
        ("model.code_dim=true", "model.code_dim: Input should be a valid integer"),
        ('data.path="a\\0b"', "data.path: 'a\\x00b' contains a NUL character"),
        ("output.dir=''", "output.dir: String should have at least 1 character"),
    ],
)
def test_absurd_sizes_are_refused(tmp_path, override, expected):
    assert expected in error_of(tmp_path, "", [override])


def test_largest_allowed_sizes_are_valid(tmp_path):
    cfg = load(
        tmp_path,
        "",
        [
            "model.code_dim=4096",
            "train.batch_size=60000",
            "train.epochs=10000",
            "data.train_limit=10000000",
            "seed=9223372036854775807",
        ],
    )
    assert cfg.seed == 2**63 - 1 and cfg.model.code_dim == 4096


# --- bounded YAML ------------------------------------------------------------------------------


def billion_laughs(levels=9, width=9, target="train"):
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + f"\n{target}: *a{levels}\n"


@pytest.mark.parametrize(
    "text",
    [
        billion_laughs(),
        billion_laughs(levels=30, width=2),  # few aliases, 2**30 values
        billion_laughs(target="optimizer") + "",  # validation would walk it
        billion_laughs().replace("train: *a9", "optimizer: {name: *a9}"),  # a message would repr it
    ],
)
def test_alias_bombs_are_refused_before_anything_walks_them(tmp_path, text):
    message = error_of(tmp_path, text)
    assert "more than 100000 values once aliases are expanded" in message
    assert message.startswith(f"{tmp_path / 'cfg.yaml'}: refused at line ")


def test_modest_anchors_and_merge_keys_still_work(tmp_path):
    text = "base: &b {epochs: 2, batch_size: 8}\n"
    cfg_raw = yamlio.load_yaml(text + "train: {<<: *b, epochs: 3}\n")
    assert cfg_raw["train"] == {"epochs": 3, "batch_size": 8}
    cfg = load(tmp_path, "train: &t {epochs: 2}\ndata: {train_limit: 10}\n")
    assert cfg.train.epochs == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &x [*x]\n", "refused at line 1: an alias refers to itself"),
        ("a: " + "[" * 5000 + "]" * 5000, "refused at line 1: nested more than 32 levels deep"),
        ("seed: " + "1" * 5000, "refused at line 1: integer of 5000 characters (at most 100)"),
        ("seed: 0x" + "f" * 200, "integer of 202 characters"),
        ("seed: " + ":".join(["59"] * 100_000), "integer of 299999 characters"),
    ],
)
def test_structures_too_costly_to_build_are_refused(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


def test_deep_nesting_through_aliases_is_refused(tmp_path):
    lines = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [[[*a{i - 1}]]]" for i in range(1, 20)]
    assert "levels deep once aliases are expanded" in error_of(tmp_path, "\n".join(lines))


@pytest.mark.parametrize(
    ("text", "line", "key", "first"),
    [
        ("train: {epochs: 2}\nseed: 1\ntrain: {epochs: 3}\n", 3, "'train'", 1),
        ("optimizer:\n  name: adam\n  name: sgd\n", 3, "'name'", 2),
        ("grid:\n- {seed: 1, seed: 2}\n", 2, "'seed'", 2),
        ("1: a\n1.0: b\n", 2, "1.0", 1),
    ],
)
def test_duplicate_keys_are_refused_with_key_and_line(tmp_path, text, line, key, first):
    message = error_of(tmp_path, text)
    assert message == (
        f"{tmp_path / 'cfg.yaml'}: malformed YAML at line {line}: "
        f"duplicate key {key} (first at line {first})"
    )


def test_duplicate_key_in_a_set_value(tmp_path):
    assert "duplicate key 'name'" in error_of(tmp_path, "", ["optimizer={name: adam, name: sgd}"])


def test_alias_bomb_in_a_set_value(tmp_path):
    # Flow form: each level anchors its first item and repeats it, 10**8 values in all.
    nested = "&a0 [x, x, x, x, x, x, x, x, x, x]"
    for i in range(1, 8):
        nested = f"&a{i} [{nested}, " + ", ".join([f"*a{i - 1}"] * 9) + "]"
    message = error_of(tmp_path, "", [f"optimizer.name={nested}"])
    assert message.startswith("--set 'optimizer.name=&a7 [&a6 [")
    assert message.endswith(
        "refused at line 1: more than 100000 values once aliases are expanded (an alias bomb?)"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"seed: 1\n\x00\x01\x02", "binary file, not YAML text (NUL byte at offset 8)"),
        (b"seed: 1\nname: caf\xe9\n", "not UTF-8 text (byte 0xe9 at line 2)"),
        (b"#" * ((1 << 20) + 1), "larger than 1 MiB, too large for a config file"),
        (b"\xef\xbb\xbfseed: 1\n", None),  # a UTF-8 byte-order mark is fine
        (b"#" * (1 << 20), None),  # exactly 1 MiB is fine
    ],
)
def test_file_content_that_is_not_a_config(tmp_path, content, expected):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(content)
    if expected is None:
        yamlio.read_yaml(path)
        return
    with pytest.raises(UserError) as caught:
        yamlio.read_yaml(path)
    assert str(caught.value) == f"{path}: {expected}"


def test_file_that_is_not_a_file(tmp_path):
    import os

    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    cases = {
        tmp_path: "is a directory, not a config file",
        loop: "symlink loop (too many levels of symbolic links)",
        fifo: "not a regular file",  # and no hang waiting for a writer
        tmp_path / "absent.yaml": "no such file",
    }
    for path, expected in cases.items():
        with pytest.raises(UserError) as caught:
            yamlio.read_yaml(path)
        assert str(caught.value) == f"{path}: {expected}"
    with pytest.raises(UserError) as caught:  # the path is shown cut to 300 characters
        yamlio.read_yaml(tmp_path / ("a" * 5000))
    assert str(caught.value).endswith("aaa...: file name too long")
    assert len(str(caught.value)) < 400
    with pytest.raises(UserError, match="contains a NUL character"):
        yamlio.read_yaml(f"{tmp_path}/a\0b.yaml")


def test_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    import errno
    import os

    path = write(tmp_path, "seed: 1")

    def deny(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "open", deny)  # tests may run as root, who can read anything
    with pytest.raises(UserError) as caught:
        yamlio.read_yaml(path)
    assert str(caught.value) == f"{path}: permission denied"


# --- messages stay short, whatever the value ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "optimizer: {name: " + "x" * 500_000 + "}",
        "optimizer: {name: adam, " + "k" * 900 + ": 1}",
        "optimizer: {name: adam, amsgrad: " + "y" * 500_000 + "}",
        "optimizer: {name: adam, learning_rate: [" + ",".join(["1"] * 50_000) + "]}",
        "loss: {name: " + "q" * 500_000 + "}",
        "? " + "z" * 500_000 + "\n: 1\n",
        "".join(f"k{i}: 1\n" for i in range(5000)),
        "name: " + "n" * 500_000,
    ],
)
def test_messages_never_render_an_unbounded_value(tmp_path, text):
    message = error_of(tmp_path, text)
    assert len(message) < 1000, message[:2000]


def test_many_errors_are_summarised(tmp_path):
    message = error_of(tmp_path, "".join(f"k{i}: 1\n" for i in range(5000)))
    assert message.endswith("; and 4995 more")


def test_long_set_text_is_shortened(tmp_path):
    message = error_of(tmp_path, "", ["x" * 100_000])
    assert message.startswith("--set 'xxxx") and "..." in message and len(message) < 200


def test_an_integer_optimizer_value_is_the_same_run_as_its_float():
    """`learning_rate: 1` trains (Keras refuses an integer rate) and is the run of `1.0`."""
    as_int = config.validate({"optimizer": {"name": "adam", "learning_rate": 1, "decay": 0}})
    as_float = config.validate({"optimizer": {"name": "adam", "learning_rate": 1.0, "decay": 0.0}})
    assert as_int.run_id == as_float.run_id
    assert type(as_int.optimizer.learning_rate) is float


def test_optimizer_ranges_include_their_upper_bound_and_say_so():
    from aeexp.registry import optimizers

    optimizers.check_value("momentum", 1.0)  # [0, 1]: 1 itself is accepted
    with pytest.raises(ValueError) as caught:
        optimizers.check_value("rho", 1.5)
    assert str(caught.value) == "rho must be >= 0 and <= 1, got 1.5"
    with pytest.raises(ValueError) as caught:
        optimizers.check_value("epsilon", 0.0)  # (0, inf): open below, no upper bound
    assert str(caught.value) == "epsilon must be > 0, got 0.0"


def test_set_dotted_refuses_deeper_keys_than_any_config_nests():
    key = ".".join(["a"] * (config.MAX_YAML_DEPTH + 1))
    with pytest.raises(UserError, match="dotted parts"):
        config.set_dotted({}, key, 1)


def test_set_dotted_fills_a_null_section_and_flatten_dotted_inverts_it():
    assert config.set_dotted({"a": None}, "a.b", 1) == {"a": {"b": 1}}
    nested = {"a": {"b": 1, "c": {"d": 2}}, "e": 3, 4: 5}
    assert config.flatten_dotted(nested) == {"a.b": 1, "a.c.d": 2, "e": 3, "4": 5}


def test_resolve_takes_a_mapping_or_a_config_and_every_override(tmp_path):
    out = tmp_path / "out"
    first = config.resolve(
        {"train": {"epochs": 2}}, ["train.batch_size=64"], {"data.train_limit": 500}, 3, out
    )
    assert (first.train.epochs, first.train.batch_size, first.data.train_limit) == (2, 64, 500)
    assert (first.seed, first.output.dir) == (3, str(out))
    again = config.resolve(first, dotted={"train.epochs": 4})
    assert again.resolved() == {
        **first.resolved(),
        "train": {**first.resolved()["train"], "epochs": 4},
    }
    path = write(tmp_path, "train: {epochs: 2}\n")
    from_file = config.resolve(path, (), {"train.epochs": 5}, 6, out)
    assert (from_file.train.epochs, from_file.seed, from_file.output.dir) == (5, 6, str(out))
