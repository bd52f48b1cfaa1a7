"""Reading the published marts: a read-only connection, and lookups that explain a miss."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from ingest.errors import Refused, StoreError, UserError


def open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a built warehouse file, failures worded for people."""
    try:
        return duckdb.connect(str(path), read_only=True)
    except (OSError, duckdb.Error) as exc:
        raise StoreError(f"cannot open {path}: {str(exc).splitlines()[0]}") from None


@contextmanager
def open_marts(db: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The published warehouse, read-only (never blocks nor is blocked by the nightly build)."""
    path = Path(db)
    if not path.exists():
        raise UserError(f"{path}: no warehouse yet; run `itrack build` first")
    con = open_read_only(path)
    try:
        yield con
    finally:
        con.close()


def require_known(
    con: duckdb.DuckDBPyConnection, table: str, column: str, value: str, what: str
) -> None:
    """Refuse an unknown name with the closest known ones: "no such company 'X' (did you mean
    ...)". `table` and `column` are ours; `value` is only ever a parameter."""
    known = [
        r[0]
        for r in con.execute(
            f"select distinct {column} from {table} where {column} is not null"
        ).fetchall()
    ]
    if value in known:
        return
    close = difflib.get_close_matches(value, known, n=3, cutoff=0.4)
    hint = f"; closest: {', '.join(close)}" if close else f"; known: {', '.join(sorted(known)[:8])}"
    raise Refused(f"no such {what} '{value}'{hint}")


def records(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
