"""Both interview stores behind one test interface, so behaviour tests run on each.

`DuckStore` is the embedded raw store beside a warehouse path; `PgStore` a migrated PostgreSQL
database (tests/pg.py). Each seeds candidates the way its data arrives and answers `query`
with DuckDB-style SQL (`?` parameters); PostgreSQL's timestamps come back as naive UTC, as the
contract and DuckDB hold them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg

from ingest.service import InterviewService
from ingest.store.duckdb.repository import DuckDBInterviewStore
from ingest.store.duckdb.store import open_store

T0 = dt.datetime(2025, 1, 1)
ORG = "0a000000-0000-4000-8000-00000000000a"


class DuckStore:
    kind = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = path

    def service(self, wait_seconds: float = 0.0) -> InterviewService:
        return InterviewService(DuckDBInterviewStore(self.path, wait_seconds))

    def add_candidate(self, cid: str, feeder: str | None) -> None:
        self.execute(
            "insert into candidates values (?, ?, ?, null, null, ?, ?, 'seed', ?)",
            [cid, f"Candidate {cid}", feeder, T0, T0, T0],
        )

    def add_process(self, pid: str, cid: str) -> None:
        """A process written straight into the store (an id chosen by the test)."""
        self.execute(
            "insert into interview_processes values (?, ?, 'Acme', 'Engineer', 'in_progress',"
            " null, null, null, null, ?, ?, 'seed', ?)",
            [pid, cid, T0, T0, T0],
        )

    def calls(self) -> list[tuple]:
        """(run id, command) of every audited service call, in order."""
        return self.query(
            "select run_id, command from ingest_runs where command like 'interview %'"
            " order by started_at"
        )

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with open_store(self.path) as con:
            return con.execute(sql, params or []).fetchall()

    def execute(self, sql: str, params: list | None = None) -> None:
        with open_store(self.path) as con:
            con.execute(sql, params or [])

    def close(self) -> None:
        pass


class PgStore:
    kind = "postgres"

    def __init__(self, dsn: str) -> None:
        from ingest.store.postgres.repository import PostgresInterviewStore

        self.dsn = dsn
        self.store = PostgresInterviewStore(dsn, max_size=2)

    def service(self, wait_seconds: float = 0.0) -> InterviewService:
        return InterviewService(self.store)

    def add_candidate(self, cid: str, feeder: str | None) -> None:
        self.execute(
            "insert into candidates (id, organization_id, full_name, feeder_source, created_at)"
            " values (?, ?, ?, ?, ?)",
            [cid, ORG, f"Candidate {cid}", feeder, T0],
        )

    def add_process(self, pid: str, cid: str) -> None:
        self.execute(
            "insert into interview_processes (id, organization_id, candidate_id, company_name,"
            " role_title, created_at) values (?, ?, ?, 'Acme', 'Engineer', ?)",
            [pid, ORG, cid, T0],
        )

    def calls(self) -> list[tuple]:
        return self.query("select run_id, command from service_calls order by id")

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("set timezone = 'UTC'")
            rows = conn.execute(_pg(sql, params), params or None).fetchall()
        return [tuple(_naive(v) for v in row) for row in rows]

    def execute(self, sql: str, params: list | None = None) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("set timezone = 'UTC'")
            conn.execute(_pg(sql, params), params or None)

    def close(self) -> None:
        self.store.close()


def _pg(sql: str, params: list | None) -> str:
    """DuckDB-style SQL for psycopg: `?` -> `%s` (and a literal % doubled when parameters go)."""
    return sql.replace("%", "%%").replace("?", "%s") if params else sql


def _naive(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
