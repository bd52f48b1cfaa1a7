"""Output of every `itrack` command: rich tables on a terminal, plain complete text in logs, JSON
for scripts (`--format json` everywhere; `--json` is kept as a hidden alias).

On a terminal tables are drawn by rich; a table wider than the terminal (`report funnel` at 80
columns) prints each record as a block of field/value rows instead. When stdout is not a
terminal (cron, a pipe, a test) the output is plain: no colour codes, no box drawing, nothing
cut to 80 columns, no blank lines.
Tables of a few columns print one record per line under one header line; wide tables and single
records print as `key: value` blocks. Values never wrap and never lose characters.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer

from ingest.text import printable

# At most this many columns print as one line per record; wider tables print key/value blocks.
MAX_LINE_COLUMNS = 9


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[
    Format,
    typer.Option("--format", help="table (readable; plain text when not a terminal) or json."),
]
JsonAlias = Annotated[
    bool, typer.Option("--json", hidden=True, help="Same as --format json (kept for scripts).")
]


def resolve(fmt: Any, as_json: bool) -> Any:
    """`--json` is `--format json`."""
    return Format.json if as_json else fmt


def is_terminal() -> bool:
    return sys.stdout.isatty()


def text(value: Any) -> str:
    """One cell: never more than one line, nothing dropped; control characters and bidi
    overrides (a refused name quoted in a reject, a file name) shown escaped, never raw."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return interval_text(value)
    if isinstance(value, list | dict):
        return printable(json.dumps(value, ensure_ascii=False, default=_in_cell))
    return printable(" ".join(str(value).splitlines()))


def _in_cell(value: Any) -> str:
    """A value inside a list or struct of a cell: an INTERVAL as DuckDB spells it, anything
    else as its text."""
    return interval_text(value) if isinstance(value, dt.timedelta) else str(value)


_DAY = dt.timedelta(days=1)


def interval_text(value: dt.timedelta) -> str:
    """A DuckDB INTERVAL (a `timedelta` in Python) as DuckDB spells it: `-1 day -01:30:00`,
    `2 days`, `00:00:00.5`. Python's own spelling reads wrong to anyone else: minus one hour
    is "-1 day, 23:00:00". (DuckDB hands Python a month as 30 days: "30 days".)"""
    sign = "-" if value < dt.timedelta(0) else ""
    days, rest = divmod(abs(value), _DAY)
    seconds, micros = rest.seconds, rest.microseconds
    clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if micros:
        clock += "." + f"{micros:06d}".rstrip("0")
    parts = [f"{sign}{days} day{'' if days == 1 else 's'}"] if days else []
    if rest or not days:
        parts.append(f"{sign}{clock}")
    return " ".join(parts)


def jsonable(value: Any) -> Any:
    """A value JSON has no type for: dates as ISO 8601 text; a DECIMAL (`select 1.5`,
    `count(*) * 1.0`) as a number, as DuckDB's own JSON writes it (it came out as the text
    "1.5"); anything else as its text."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):  # a double, as a JSON reader takes any number
        return float(value)
    if isinstance(value, dt.timedelta):  # an INTERVAL: DuckDB's own text, as its JSON writes it
        return interval_text(value)
    return str(value)


def print_json(value: Any) -> None:
    """`value` as indented JSON (RFC 8259). JSON has no NaN or infinity: a non-finite float
    prints as null, as orjson writes it in the project's files (feedback/atomic.py), so any
    JSON reader takes the output (`NaN`, the standard library's spelling, is not JSON)."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=jsonable, allow_nan=False)
    except ValueError:  # a non-finite float somewhere: only then walk every value
        text = json.dumps(finite(value), indent=2, ensure_ascii=False, default=jsonable)
    sys.stdout.write(text + "\n")


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float, at any depth (lists, structs, maps), None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def line(message: str = "") -> None:
    """A line on stdout, as is (no markup, no highlighting, no wrapping)."""
    sys.stdout.write(message + "\n")


def warn(message: str) -> None:
    sys.stderr.write(f"warning: {printable(message)}\n")


def print_record(record: dict[str, Any], title: str, shown: Any = text) -> None:
    """One record as a key/value block (a two-column table on a terminal)."""
    pairs = [
        (key, shown(key, value) if shown is not text else text(value))
        for key, value in record.items()
    ]
    if is_terminal():
        from rich.console import Console

        _print_blocks(Console(markup=False), [pairs], title)  # data is never markup
        return
    line(f"{title}:")
    for key, value in pairs:
        line(_pair("  ", key, value))


def _print_blocks(console: Any, records: Sequence[Sequence[tuple[str, str]]], title: str) -> None:
    """Records on a terminal as one two-column table of field/value rows, a rule between
    records; a long value wraps in its column."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), show_header=False)
    table.add_column("field", style="bold", overflow="fold")
    table.add_column("value", overflow="fold")
    for i, pairs in enumerate(records):
        if i:
            table.add_section()
        for key, value in pairs:
            table.add_row(key, value)
    console.print(table)


def print_table(
    rows: Sequence[dict[str, Any]],
    title: str,
    columns: Sequence[str] | None = None,
    shown: Any = None,
) -> None:
    """Rows as a table: rich on a terminal; else one line per record (or key/value blocks)."""
    names = list(columns if columns is not None else (rows[0] if rows else ()))
    cell = shown or (lambda _name, value: text(value))
    cells = [[cell(n, row.get(n)) for n in names] for row in rows]
    numeric = {n for i, n in enumerate(names) if rows and all(_is_number(r.get(n)) for r in rows)}
    if is_terminal():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console(markup=False)  # data is never markup
        table = Table(title=Text(title))
        for n in names:
            table.add_column(n, justify="right" if n in numeric else "left", overflow="fold")
        for values in cells:
            table.add_row(*values)
        if rows and table.__rich_measure__(console, console.options).maximum > console.width:
            # wider than the terminal: its columns were folded to a few characters each
            # (`report funnel` at 80 columns), so each record is a block of field/value rows
            _print_blocks(console, [list(zip(names, v, strict=True)) for v in cells], title)
            return
        console.print(table)
        return
    line(f"{title}:")
    if not rows:
        line("  (none)")
        return
    if len(names) > MAX_LINE_COLUMNS:
        for values in cells:
            for i, (n, v) in enumerate(zip(names, values, strict=True)):
                line(_pair("- " if i == 0 else "  ", n, v))
        return
    widths = [max(len(n), *(len(v[i]) for v in cells)) for i, n in enumerate(names)]

    def joined(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if n in numeric else v.ljust(w)
            for n, v, w in zip(names, values, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    line(joined(names))
    for values in cells:
        line(joined(values))


def _pair(indent: str, key: str, value: str) -> str:
    """`key: value`; an empty value leaves no trailing space."""
    return f"{indent}{key}: {value}" if value else f"{indent}{key}:"


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))
