from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ingest.store import raw_store_path


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
