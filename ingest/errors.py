"""Domain errors: what went wrong, in one line a person can act on.

They say nothing about exit codes or HTTP statuses: the application shell maps them, in one place
(`itrack/errors.py`), for the CLI and for the HTTP API alike.
"""

import json
import sys
from pathlib import Path
from typing import Any


class UserError(Exception):
    """A problem with the input or the environment that the user can fix."""


class Refused(UserError):
    """A business rule refused the request (an invalid move, a closed process, ...)."""


class NotFoundError(Refused):
    """The record asked for does not exist."""


class NotAllowed(Refused):
    """The caller may see the record but not change it (row-level security on PostgreSQL, the
    API's own rules on the embedded store)."""


def not_yours(what: str, row_id: object) -> NotAllowed:
    """A recruiter's change of a process assigned to someone else (or of its stage), worded
    alike on every store: the API answers it 403 on PostgreSQL and DuckDB."""
    return NotAllowed(
        f"{what} '{row_id}' is not yours to change: it is assigned to another recruiter "
        "(a lead of the organization may change it)"
    )


class StoreBusyError(UserError):
    """Another process holds the store; retry later or wait."""


class StoreError(UserError):
    """The store cannot be opened or written (permissions, disk, corruption)."""


class StoreMissingError(StoreError):
    """A command that only uses an existing store was pointed at a path with none."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, saying what of the run stands (exit 130 with this message): an ingest that
    committed before it, for one. A bare KeyboardInterrupt says nothing of the run was written."""


def json_reason(exc: ValueError) -> str:
    """Why `json.loads` refused a text, in words: its JSONDecodeError with the column, or the
    plain ValueError it raises for an integer of more than `sys.get_int_max_str_digits()` digits
    (4300; a guard against quadratic parsing), which is bad input like any other, never a bug."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg.removesuffix(' at')} at column {exc.colno}"
    text = str(exc)
    if "integer string conversion" in text:
        digits = text.rsplit("value has ", 1)[-1].split(" ", 1)[0]
        return (
            f"a number of {digits} digits (at most {sys.get_int_max_str_digits()} are read)"
            if digits.isdigit()
            else f"a number of more than {sys.get_int_max_str_digits()} digits"
        )
    return text.splitlines()[0] if text else type(exc).__name__


class DuplicateKey(ValueError):
    """A JSON object naming a key twice: ambiguous (which value is meant?)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {json.dumps(key)} (which value is meant?)")
        self.key = key


def refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads(..., object_pairs_hook=...)`: an object with a key twice is refused, at any
    depth (SQL would keep the first value, Python the last). The common case costs one dict."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return record


def make_folder(path: Path, name: str) -> None:
    """Create the folder `path` a command writes into (and its parents), unless it is one. A
    path that cannot be a folder is a UserError naming `name` (the option, or what the folder
    is for), the path and why, before anything is written: a file there or above it said
    "cannot write: [Errno 17] File exists" (or "[Errno 20] Not a directory")."""
    for place in (path, *path.parents):
        if place.is_dir():
            break
        if place.exists() or place.is_symlink():  # a file, a FIFO, a dangling link
            what = f"{place} is {'a file, ' if place.is_file() else ''}not a folder"
            made = "" if place == path else f"{path} cannot be made: "
            raise UserError(f"{name}: {made}{what}; nothing was written")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"{name}: cannot create folder {path}: {exc.strerror}; nothing was written"
        ) from None
