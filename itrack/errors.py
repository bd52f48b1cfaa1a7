"""The one mapping from domain errors to what a person or a client sees.

Exit codes are an interface: 0 done, 1 refused (a business rule said no, or --strict saw
rejects), 2 cannot run (bad input, busy store, I/O), 3 a bug (never for anything a user can give),
130 interrupted, 141 stdout's reader went away (`| head`; silently). HTTP statuses follow the same
classes (the API uses `http_status`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click
import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from ingest.errors import (
    Interrupted,
    NotFoundError,
    Refused,
    StoreBusyError,
    StoreError,
    UserError,
)
from ingest.interrupts import ctrl_c_stops_queries, interrupted
from ingest.text import printable, storable
from itrack.settings import get_settings

# Typer >= 0.20 ships its own click: its usage errors are not `click.ClickException`.
_TYPER_CLICK_ERRORS: tuple[type[BaseException], ...] = tuple(
    cls for cls in typer.BadParameter.__mro__ if cls.__name__ in ("ClickException", "Exit", "Abort")
) or (click.ClickException,)

# Most specific first: the first class an error is an instance of decides.
_CLASSES: tuple[tuple[type[BaseException], int, int], ...] = (
    # (error class, exit code, HTTP status)
    (NotFoundError, 1, 404),
    (Refused, 1, 409),
    (StoreBusyError, 2, 503),
    (StoreError, 2, 503),
    (UserError, 2, 422),
    (OSError, 2, 503),  # disk full, read-only folder, ... : nothing of the run was written
)

err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def _classes() -> tuple[tuple[type[BaseException], int, int], ...]:
    """`_CLASSES` and DuckDB's errors (a store that cannot do what was asked: corrupt, locked,
    I/O). DuckDB is imported by what opens a store, not here: an error can only be DuckDB's
    when DuckDB was imported, and a command that never opens one starts 0.1 s sooner."""
    duckdb = sys.modules.get("duckdb")
    if duckdb is None:
        return _CLASSES
    return (*_CLASSES, (duckdb.IOException, 2, 503), (duckdb.Error, 2, 503))


def exit_code(exc: BaseException) -> int:
    for cls, code, _ in _classes():
        if isinstance(exc, cls):
            return code
    return 3


def http_status(exc: BaseException) -> int:
    for cls, _, status in _classes():
        if isinstance(exc, cls):
            return status
    return 500


BLANK_FILTER = "a blank filter matches nothing (an unset variable?)"


def nonblank_filter(value: str) -> str:
    """A list filter as given (a company, a feeder, a candidate); a blank one is refused
    (ValueError): it is an unset shell variable (`--company "$COMPANY"`, `?company=$COMPANY`)
    and matches nothing, so the list said "0 processes". `itrack interview list` and the HTTP
    API's lists both refuse it with this rule."""
    if not value.strip():
        raise ValueError(BLANK_FILTER)
    return value


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def message(exc: BaseException) -> str:
    """One line for people: the domain error's own words, I/O trouble worded, bugs labelled."""
    if isinstance(exc, UserError):
        return first_line(exc)
    duckdb = sys.modules.get("duckdb")  # see `_classes`
    if isinstance(exc, OSError) or (duckdb is not None and isinstance(exc, duckdb.IOException)):
        return f"cannot write: {first_line(exc)}; nothing of this run was written"
    return (
        f"unexpected {type(exc).__name__}: {first_line(exc)} (set ITRACK_DEBUG=1 for the traceback)"
    )


def fail(text: str, code: int) -> None:
    """Print `error: <text>` on stderr (data never read as markup, control characters and bidi
    overrides escaped) and exit with `code`."""
    err_console.print(Text("error: ", style="bold red") + Text(printable(text)))
    raise typer.Exit(code)


def reader_left() -> None:
    """stdout's reader closed the pipe (`| head`): stop quietly with 141, the status of a
    process killed by SIGPIPE, as `git log | head` does; no error line (what ran stands, e.g.
    an ingest committed before its summary was printed)."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush must not fail again
    raise typer.Exit(BROKEN_PIPE)


BROKEN_PIPE = 141


class OnceEach:
    """Every `itrack` command and group: an option that takes one value (or a flag) given more
    than once is refused, one line naming it, exit 2. Click kept the last one silently:
    `report html --out a.html --out b.html` wrote b.html, `--strict --no-strict` ran without
    --strict. Options that take a list (`--interviewer A --interviewer B`) are given once per
    item, and eager ones (`--help`, `--version`) end the run before any value is used."""

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)  # type: ignore[misc]
        parse = parser.parse_args

        def parse_once(args: list[str]) -> Any:
            opts, rest, order = parse(args=args)  # `order`: each option once per occurrence
            if not ctx.resilient_parsing:  # shell completion parses half-typed lines
                _refuse_repeats(order)
            return opts, rest, order

        parser.parse_args = parse_once
        return parser


def _refuse_repeats(order: list[Any]) -> None:
    """`order`: the parameters as the parser met them, once per occurrence."""
    single = [
        p
        for p in order
        if p.param_type_name == "option" and not (p.multiple or p.count or p.is_eager)
    ]
    for param in single:
        given = sum(p is param for p in single)
        if given > 1:
            names = [*(o for o in param.opts if o.startswith("--")), *param.secondary_opts]
            takes = "" if param.is_flag else " (it takes one value)"
            name = "/".join(names) or param.opts[0]
            fail(f"{name} was given {given} times; give it once{takes}", 2)


class HandledCommand(OnceEach, TyperCommand):
    """Every `itrack` command (`HandledTyper.command`): options given once (`OnceEach`)."""


class HandledGroup(OnceEach, TyperGroup):
    """Every `itrack` command group: errors become one line and an exit code, never a
    traceback; its own options given once (`OnceEach`). Registered on each Typer app
    (`new_app`), so sub-apps invoked on their own (tests, `python -m`) behave as under the
    root."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for arg in args:  # bytes that are not UTF-8 reach Python as lone surrogates
            if storable(arg) != arg:
                fail(f"argument '{printable(arg)}' is not valid UTF-8", 2)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        with handled():
            return super().invoke(ctx)


@contextmanager
def handled() -> Iterator[None]:
    """Errors inside become one line on stderr and an exit code (`typer.Exit`), never a
    traceback: the one handling of every command (`HandledGroup.invoke`) and script
    (`run_script`)."""
    try:
        with ctrl_c_stops_queries():  # DuckDB alone noticed Ctrl-C only when a query returned
            yield
    except (typer.Exit, typer.Abort, click.exceptions.Exit, click.Abort, click.ClickException):
        raise
    except _TYPER_CLICK_ERRORS:  # usage errors of typer's own click (exit 2, its message)
        raise
    except Interrupted as exc:  # Ctrl-C after part of the run was written: which part
        fail(str(exc), 130)
    except KeyboardInterrupt:
        fail("interrupted; nothing of this run was written", 130)
    except BrokenPipeError:  # `itrack ... | head`: the reader left; what ran stands
        reader_left()
    except Exception as exc:
        if interrupted(exc):  # Ctrl-C inside a DuckDB query: was "unexpected", exit 3
            fail("interrupted; nothing of this run was written", 130)
        code = exit_code(exc)
        if code == 3 and _debugging():
            raise
        fail(message(exc), code)


def run_script(main: Callable[[], object]) -> NoReturn:
    """Run a script's `main` (examples/) as `itrack` runs a command: an error is one line on
    stderr and the command's exit code (1 refused, 2 cannot run, 3 a bug, 130 interrupted),
    never a traceback."""
    try:
        with handled():
            main()
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)


def _debugging() -> bool:
    """ITRACK_DEBUG, off when the settings themselves are not valid (that error is shown)."""
    try:
        return get_settings().debug
    except UserError:
        return False


class HandledTyper(typer.Typer):
    """A Typer app whose commands are `HandledCommand`s (Typer's default is `TyperCommand`)."""

    def command(self, *args: Any, cls: Any = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or HandledCommand, **kwargs)


def new_app(help: str, **settings: Any) -> typer.Typer:
    """Every `itrack` app and sub-app: the shared error handling (`HandledGroup`) and options
    given once (`OnceEach`); `settings` are Typer's (no_args_is_help by default)."""
    return HandledTyper(
        help=help,
        pretty_exceptions_enable=False,
        cls=HandledGroup,
        **{"no_args_is_help": True, **settings},
    )
