"""The JSON Schemas: committed copies are current, every config validates, mistakes do not."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from aeexp import cli, schema

REPO = Path(__file__).resolve().parents[1]
RUN_CONFIGS = sorted((REPO / "configs" / "thesis").glob("*.yaml"))
SWEEPS = sorted((REPO / "configs" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("kind", ["run", "sweep"])
def test_the_committed_schema_is_what_aeexp_schema_prints(kind):
    name = schema.RUN_SCHEMA_FILE if kind == "run" else schema.SWEEP_SCHEMA_FILE
    printed = CliRunner().invoke(cli.main, ["schema", "--kind", kind]).output
    assert (schema.schema_folder() / name).read_text() == printed
    jsonschema.Draft7Validator.check_schema(json.loads(printed))


@pytest.mark.parametrize("path", RUN_CONFIGS + SWEEPS, ids=lambda p: p.name)
def test_every_config_names_its_schema_and_validates(path):
    first = path.read_text().splitlines()[0]
    kind = "run" if path in RUN_CONFIGS else "sweep"
    target = schema.RUN_SCHEMA_FILE if kind == "run" else schema.SWEEP_SCHEMA_FILE
    assert first.startswith("# yaml-language-server: $schema=")
    assert (path.parent / first.split("=", 1)[1]).resolve() == schema.schema_folder() / target
    spec = json.loads((schema.schema_folder() / target).read_text())
    jsonschema.validate(yaml.safe_load(path.read_text()), spec)


def run_validator():
    return jsonschema.Draft7Validator(schema.run_config_schema())


@pytest.mark.parametrize(
    "config",
    [
        {"optimizer": {"name": "adam", "rho": 0.9}},  # Adam takes no rho
        {"optimizer": {"name": "sgd", "momentum": 1.5}},
        {"optimizer": {"name": "adagrad", "epsilon": 0}},
        {"optimizer": {"learning_rate": -1}},  # Adam, the default, by its keywords
        {"optimizer": {"name": "adamw"}},
        {"loss": {"name": "beta"}},  # beta needs its beta
        {"loss": {"name": "mse", "beta": 1}},
        {"loss": {"name": "beta", "beta": 1, "order": "sideways"}},
        {"model": {"code_dim": 5000}},
        {"name": "../escape"},
        {"trian": {"epochs": 1}},
    ],
)
def test_the_run_schema_is_as_strict_as_aeexp(config):
    assert list(run_validator().iter_errors(config))


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"optimizer": {"name": "nadam", "lr": 0.001, "schedule_decay": 0.004}},
        {"optimizer": {"name": "sgd", "momentum": 0.9, "nesterov": True}},
        {"loss": {"name": "beta", "beta": 0.5, "order": "recon_first"}},
        {"output": {"tensorboard": True}},
    ],
)
def test_the_run_schema_accepts_what_aeexp_accepts(config):
    from aeexp.config import validate

    validate(config)
    assert not list(run_validator().iter_errors(config))
