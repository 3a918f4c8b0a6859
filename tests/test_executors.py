"""The executor registry: a new executor is one module and one entry, its options derived."""

import click
import pytest
from click.testing import CliRunner

from aeexp.cli import options
from aeexp.errors import UserError
from aeexp.execute import executors


class Counting:
    """A stand-in executor: what the registry's factory returns."""

    workers = 1

    def __init__(self, progress: bool, slots: int | None) -> None:
        self.progress, self.slots = progress, slots


def create_counting(progress: bool = False, slots: int | None = None) -> Counting:
    return Counting(progress, slots)


ENTRY = executors.ExecutorEntry(
    "Count jobs.",
    "test_executors:create_counting",
    (executors.ExecutorOption("slots", "How many at once.", "N", minimum=1),),
)


def test_a_new_executor_is_one_registry_entry(monkeypatch):
    monkeypatch.setitem(executors.EXECUTORS, "counting", ENTRY)
    made = executors.make_executor("counting", progress=True, slots=3)
    assert isinstance(made, Counting) and made.slots == 3 and made.progress
    with pytest.raises(UserError, match="^--slots need --executor counting$"):
        executors.make_executor("local", slots=3)
    with pytest.raises(UserError, match="unknown executor 'countin'.*did you mean 'counting'"):
        executors.make_executor("countin")


def test_the_cli_option_comes_from_the_entry():
    @click.command()
    @options._executor_option(ENTRY.options[0])
    def command(slots):
        click.echo(f"slots={slots}")

    assert CliRunner().invoke(command, ["--slots", "4"]).output == "slots=4\n"
    refused = CliRunner().invoke(command, ["--slots", "0"])
    assert refused.exit_code == 2
    assert "'--slots': expected a whole number in 1..1000000, got 0" in refused.output


def test_ray_and_local_options_stay_apart():
    with pytest.raises(UserError, match="^--address and --cpus-per-worker need --executor ray$"):
        executors.make_executor("local", address="auto", cpus_per_worker=2)
