"""The command line's one error policy: a mistake is one line and exit code 2.

A usage error prints one line naming the command, a UserError its message; output that
cannot be written (stdout on a full disk, a closed pipe) one line too; Ctrl-C exits 130 with
one line; anything else is a bug and shows a traceback.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from aeexp.errors import UserError, clip

EXIT_USER_ERROR = 2
# The most characters an error line shows: one line however long the value it quotes (a
# 5,000-digit --seed, a newline in a path), and clip() makes it one line.
MESSAGE_LIMIT = 960
EXIT_INTERRUPTED = 130
# What writing stdout fails with when the disk is full, the reader has gone or the device failed.
STDOUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EPIPE, errno.EIO})


def _subcommand_path(ctx: click.Context | None) -> str:
    """Return e.g. ``run`` or ``report thesis``: the command names after the program's."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


class OneLineError(click.ClickException):
    """A user mistake click shows as ``aeexp: error: ...`` on one line, exit code 2."""

    exit_code = EXIT_USER_ERROR

    def show(self, file: Any = None) -> None:
        """Print the message alone: no usage block, no hint, whatever the message held."""
        click.echo(f"aeexp: error: {clip(self.message, MESSAGE_LIMIT)}", err=True)


def _one_line(error: click.UsageError, ctx: click.Context) -> OneLineError:
    """Turn a click usage error into one line that still names the command and the option."""
    where = _subcommand_path(error.ctx or ctx)  # Click leaves ctx unset on some parse errors.
    return OneLineError(f"{where}: {error.format_message()}" if where else error.format_message())


class OutputError(UserError):
    """Stdout could not take the output: a full disk, a closed pipe, a failing device."""


@contextmanager
def stdout_writes() -> Iterator[None]:
    """Turn a failure writing stdout into an OutputError: one line and exit 2, not a traceback."""
    try:
        yield
    except OSError as error:
        if error.errno not in STDOUT_ERRNOS:
            raise
        reason = error.strerror or errno.errorcode.get(error.errno or 0, str(error))
        raise OutputError(f"cannot write the output: {reason}") from None


def echo(message: str = "", nl: bool = True) -> None:
    """Print to stdout as click.echo does; a write that fails raises OutputError."""
    with stdout_writes():
        click.echo(message, nl=nl)


def _silence_stdout() -> None:
    """Point stdout's descriptor at /dev/null: Python's flush at exit must not fail again.

    Else the interpreter prints "Exception ignored ... BrokenPipeError" and exits 120.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # a test runner's stream: nothing to flush
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


@contextmanager
def one_error_policy(ctx: click.Context) -> Iterator[None]:
    """Apply the policy to parsing and running alike."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # A bare ``aeexp`` or ``aeexp report`` asks for help: click prints it.
    except click.UsageError as error:
        raise _one_line(error, ctx) from None
    except UserError as error:
        click.echo(f"aeexp: error: {clip(str(error), MESSAGE_LIMIT)}", err=True)
        if isinstance(error, OutputError):
            _silence_stdout()
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        click.echo("aeexp: interrupted; complete runs are kept, rerun to resume", err=True)
        sys.exit(EXIT_INTERRUPTED)


class OneLineErrorCommand(click.Command):
    """A command whose parse errors (bad option, missing argument) print one line, exit 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse as click does; report a mistake on one line naming this command."""
        with one_error_policy(ctx), stdout_writes():  # --help and --version print here
            return super().parse_args(ctx, args)


class OneLineErrorGroup(click.Group):
    """The root group: every command's usage errors print one line and exit 2.

    Each command parses its own arguments in ``parse_args``; commands and subgroups made with
    ``@main.command()`` and ``@main.group()`` get these classes, so all of them answer alike.
    ``invoke`` covers what is left (an unknown command name, errors raised while running), and
    click's --help, --version and exit handling stay untouched.
    """

    command_class = OneLineErrorCommand
    group_class = type  # Click's convention: subgroups are of this same class.

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse the group's own options; report a mistake on one line."""
        with one_error_policy(ctx), stdout_writes():  # --help and --version print here
            return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Resolve and run the subcommand, reporting mistakes on one line."""
        with one_error_policy(ctx):
            result = super().invoke(ctx)
            with stdout_writes():  # here, not in Python's flush at exit, which shows a traceback
                sys.stdout.flush()
            return result
