"""Domain errors: what went wrong, in one line a person can act on.

They say nothing about exit codes or HTTP statuses: the application shell maps them, in one place
(`itrack/errors.py`), for the CLI and for the HTTP API alike.
"""


class UserError(Exception):
    """A problem with the input or the environment that the user can fix."""


class Refused(UserError):
    """A business rule refused the request (an invalid move, a closed process, ...)."""


class NotFoundError(Refused):
    """The record asked for does not exist."""


class StoreBusyError(UserError):
    """Another process holds the store; retry later or wait."""


class StoreError(UserError):
    """The store cannot be opened or written (permissions, disk, corruption)."""


class StoreMissingError(StoreError):
    """A command that only uses an existing store was pointed at a path with none."""
