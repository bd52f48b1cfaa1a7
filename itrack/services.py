"""Wiring: the services of `ingest` and `feedback` on the store the settings name.

The CLI and the HTTP API build their services here, so which store is used (embedded DuckDB or
PostgreSQL) is decided in one place.
"""

from __future__ import annotations

from pathlib import Path

from ingest.service import InterviewService
from ingest.store.duckdb.repository import DuckDBInterviewStore
from itrack.settings import get_settings


def interview_service(db: Path | None = None, wait_seconds: float = 0.0) -> InterviewService:
    """The interview service on the configured store (`ITRACK_STORE`, default the raw store
    beside the warehouse)."""
    settings = get_settings()
    return InterviewService(DuckDBInterviewStore(settings.warehouse(db), wait_seconds))
