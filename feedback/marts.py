"""Reading the published marts: a read-only connection (names are resolved by
`feedback.analytics.resolve_name`, which explains a miss)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from ingest.errors import StoreError, UserError
from ingest.interrupts import interruptible


def open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a built warehouse file, failures worded for people."""
    try:
        return interruptible(duckdb.connect(str(path), read_only=True))
    except (OSError, duckdb.Error) as exc:
        raise StoreError(f"cannot open {path}: {str(exc).splitlines()[0]}") from None


def require_published(db: Path | str) -> Path:
    """The published warehouse's path; UserError when no build has published one yet."""
    path = Path(db)
    if not path.exists():
        raise UserError(f"{path}: no warehouse yet; run `itrack build` first")
    return path


@contextmanager
def open_marts(db: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The published warehouse, read-only (never blocks nor is blocked by the nightly build)."""
    con = open_read_only(require_published(db))
    try:
        yield con
    finally:
        con.close()


def require_marts(
    con: duckdb.DuckDBPyConnection, db: Path | str, tables: tuple[str, ...], why: str = ""
) -> None:
    """UserError naming the `tables` a warehouse file lacks (a DuckDB file that is not a built
    warehouse: the raw store named by mistake, an empty file): said in one line, before any
    output is written, instead of an unexpected catalog error or an empty result (`why`:
    added to it)."""
    present = {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
        ).fetchall()
    }
    missing = [t for t in tables if t not in present]
    if missing:
        raise UserError(f"{db}: no {', '.join(missing)}; run `itrack build` first{why}")


def records(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
