"""Options shared by every `itrack` command.

Most data commands take the same tail of options: `--db` (the warehouse), `--wait` (how long to
wait for a busy store), `--format` (table or json) and the hidden `--json` alias. They are
declared once here; a command decorated with `@with_target()` receives them as one `target`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ingest.errors import UserError
from ingest.store.duckdb.store import DEFAULT_WAIT_SECONDS
from itrack.cli.output import Format, FormatOption, JsonAlias
from itrack.errors import nonblank_filter
from itrack.settings import folder_spelling, get_settings


def path_value(value: str | Path) -> Path:
    """A file or folder argument as given. An empty one is refused, never taken as the current
    folder (what `Path("")` means): it is an unset shell variable (`--out "$DIR"`), and as `.` it
    made `ingest`/`build` read and `generate` overwrite whatever the current folder held.
    A leading `~` is the home folder: no shell expands it in `--out=~/demo`, and taken as
    written it made a folder named `~` in the current one."""
    if isinstance(value, Path):  # a default
        return value
    if not value:
        raise typer.BadParameter("an empty path names no file or folder (an unset variable?)")
    if "://" in value:  # a mistyped URL: as a path it lost a '/' and was printed whole
        from ingest.migrate import masked

        raise typer.BadParameter(f"'{masked(value, value)}' is a URL, not a file or folder")
    return Path(value).expanduser()


def file_value(value: str | Path, option: str) -> Path:
    """A file argument as given (`path_value`), refused, one line naming `option`, when its
    spelling names a folder (`folder_spelling`: `--out report.html/` wrote report.html)."""
    path = path_value(value)
    why = None if isinstance(value, Path) else folder_spelling(value)  # a Path: a default
    if why:
        raise UserError(f"{option}: {value} {why}")
    return path


def filter_value(value: str) -> str:
    """A list filter as given; a blank one is refused (`nonblank_filter`, the HTTP API's rule
    too)."""
    try:
        return nonblank_filter(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def path_option(*names: str, help: str, **options: Any) -> Any:
    """`typer.Option` for a file or folder: refuses an empty one (`path_value`), shown as
    `<path>` as Typer shows a plain `Path` option."""
    return typer.Option(*names, parser=path_value, metavar="<path>", help=help, **options)


def file_option(name: str, help: str, **options: Any) -> Any:
    """`typer.Option` for a file: as `path_option`, also refusing a path spelled as a folder
    (`file_value`), one line naming the option `name`."""
    return typer.Option(
        name,
        parser=functools.partial(file_value, option=name),
        metavar="<path>",
        help=help,
        **options,
    )


DbOption = Annotated[
    Path | None,
    file_option(
        "--db",
        help="Warehouse path (default: $ITRACK_DB or data/warehouse.duckdb); "
        "the raw store lives beside it.",
    ),
]
WaitOption = Annotated[
    float, typer.Option("--wait", min=0, help="Seconds to wait for a busy store before giving up.")
]


def warehouse(db: Path | None) -> Path:
    """The warehouse a command works on: `--db`, else the settings."""
    return get_settings().warehouse(db)


@dataclass(frozen=True)
class Target:
    """Where a command reads or writes and how it prints: `--db`, `--wait`, `--format`."""

    db: Path | None
    wait: float
    fmt: Any  # a Format (or the reports' Format, which adds csv)

    @property
    def warehouse(self) -> Path:
        return warehouse(self.db)

    @property
    def json(self) -> bool:
        return self.fmt == Format.json


_TAIL = {  # name: (annotation, default): the options `with_target` appends
    "db": (DbOption, None),
    "wait": (WaitOption, DEFAULT_WAIT_SECONDS),
    "fmt": (FormatOption, Format.table),
    "as_json": (JsonAlias, False),
}
Command = TypeVar("Command", bound=Callable[..., Any])


def with_target(
    *, wait: bool = True, formats: tuple[Any, Any] = (FormatOption, Format.table)
) -> Callable[[Command], Command]:
    """Append `--db`, `--wait` (unless `wait=False`), `--format` (`formats`: its option and
    default) and `--json` to a command whose last parameter is `target: Target`; Typer reads the
    rewritten signature."""
    tail = {k: v for k, v in _TAIL.items() if wait or k != "wait"} | {"fmt": formats}
    json_format = type(formats[1])("json")

    def decorate(command: Command) -> Command:
        own = [
            p
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.name != "target"
        ]
        extra = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
            for name, (a, d) in tail.items()
        ]

        @functools.wraps(command)
        def run(**options: Any) -> Any:
            fmt, as_json = options.pop("fmt"), options.pop("as_json")
            db, wait = options.pop("db"), options.pop("wait", DEFAULT_WAIT_SECONDS)
            return command(**options, target=Target(db, wait, json_format if as_json else fmt))

        run.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in own + extra}
        return run  # type: ignore[return-value]

    return decorate
