from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ingest.store import raw_store_path
from tests import pg


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A warehouse path in a temporary folder (its raw store lives beside it)."""
    return tmp_path / "warehouse.duckdb"


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Read the raw store of warehouse `db` with a short-lived read-only connection."""
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Admin DSN of a real PostgreSQL server (tests/pg.py): never skipped when none runs."""
    try:
        with pg.server() as dsn:
            yield dsn
    except pg.NoServer as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A migrated throw-away database for one test module, dropped afterwards."""
    with pg.database(pg_server) as dsn:
        yield dsn
