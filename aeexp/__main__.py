"""Allow ``python -m aeexp``."""

from aeexp.cli import main

main()
