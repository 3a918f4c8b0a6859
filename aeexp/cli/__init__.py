"""The ``aeexp`` command line: parse, one library call, print, exit code.

``commands`` holds the commands, ``options`` the option sets several commands share and
``errors`` the one error policy. TensorFlow is imported only inside commands that train, so
``--help`` and config errors answer at once.
"""

from aeexp.cli.commands import main

__all__ = ["main"]
