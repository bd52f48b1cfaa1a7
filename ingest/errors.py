"""Errors a person sees: one line, what went wrong, where; the CLI maps them to exit codes."""


class UserError(Exception):
    """A problem with the input or environment that the user can fix (exit 2, no traceback)."""

    exit_code = 2


class Refused(UserError):
    """A business rule refused the request (exit 1)."""

    exit_code = 1
