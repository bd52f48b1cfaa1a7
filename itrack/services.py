"""Wiring: the services of `ingest` and `feedback` on the store the settings name.

The CLI and the HTTP API build their services here, so which store is used (embedded DuckDB or
PostgreSQL) is decided in one place.
"""

from __future__ import annotations

import atexit
from functools import cache
from pathlib import Path

from ingest.errors import UserError
from ingest.ports import InterviewStore
from ingest.service import InterviewService
from ingest.store.duckdb.repository import DuckDBInterviewStore
from itrack.settings import get_settings


def interview_store(db: Path | None = None, wait_seconds: float = 0.0) -> InterviewStore:
    """The configured store: `ITRACK_STORE=duckdb` (default: the raw store beside the
    warehouse `db`) or `postgres` (`ITRACK_PG_DSN`, acting as service_role; the HTTP API acts
    for each user with `postgres_store().as_user(claims)`)."""
    settings = get_settings()
    if settings.store == "postgres":
        return postgres_store()
    return DuckDBInterviewStore(settings.warehouse(db), wait_seconds)


@cache
def postgres_store() -> InterviewStore:
    """One connection pool per process on `ITRACK_PG_DSN`, closed at exit."""
    from ingest.store.postgres.repository import PostgresInterviewStore

    dsn = get_settings().pg_dsn
    if not dsn:
        raise UserError("ITRACK_STORE=postgres needs ITRACK_PG_DSN (a postgresql:// URL)")
    store = PostgresInterviewStore(dsn)
    atexit.register(store.close)
    return store


def interview_service(db: Path | None = None, wait_seconds: float = 0.0) -> InterviewService:
    """The interview service on the configured store."""
    return InterviewService(interview_store(db, wait_seconds))
