"""The one exception type that means "the user's input is wrong"."""


class UserError(Exception):
    """A user mistake: the CLI prints its message on one line and exits with code 2."""
