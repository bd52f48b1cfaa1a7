"""The published warehouse, read-only, and which build a response comes from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from ingest.errors import UserError
from ingest.store.duckdb.store import connect


class BuildInfo(BaseModel):
    """The published warehouse a response was read from.

    `itrack build` publishes each build as a new file (one atomic rename), so the file's
    identity (inode and modification time) names the build: two responses with the same
    `build_id` were read from the same build.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "build_id": "1f3a9c2b7d-4e21",
                    "published_at": "2026-03-06T02:14:09Z",
                    "warehouse": "data/warehouse.duckdb",
                }
            ]
        },
    )
    build_id: str = Field(description="Identity of the published build (file inode + mtime).")
    published_at: str = Field(description="When the build was published (UTC, ISO 8601).")
    warehouse: str = Field(description="Path of the published warehouse.")


class WarehouseMissing(UserError):
    """No published warehouse yet (HTTP 503: run `itrack build`)."""


@contextmanager
def open_warehouse(path: Path) -> Iterator[tuple[duckdb.DuckDBPyConnection, BuildInfo]]:
    """A read-only connection on the published warehouse and the build it holds.

    The connection keeps the file it opened even if a new build is published meanwhile, so
    the build info and the rows always match."""
    if not path.exists():
        raise WarehouseMissing(f"{path}: no warehouse published yet; run `itrack build` first")
    for _ in range(3):  # a build published between stat and connect: look again
        before = path.stat()
        con = connect(path, read_only=True)
        stat = path.stat()
        if (before.st_ino, before.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns):
            break
        con.close()
    try:
        info = BuildInfo(
            build_id=f"{stat.st_mtime_ns:x}-{stat.st_ino:x}",
            published_at=dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            warehouse=str(path),
        )
        yield con, info
    finally:
        con.close()
