"""A small hand-written raw store for the dbt tests, and a reader for the built warehouse.

Rows go straight into the raw tables (ingest.store.duckdb.store.SCHEMA), the way ingest leaves
them, so the tests pin what dbt computes from raw data and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ingest.store.duckdb.store import SCHEMA

LOADED = dt.datetime(2025, 4, 1)


def ts(day: str) -> dt.datetime:
    """'2025-01-25' or '2025-01-25 10:00' as a naive UTC datetime."""
    return dt.datetime.fromisoformat(day)


def pid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


@dataclass
class Stage:
    name: str
    outcome: str
    rating: int | None = None
    notes: str | None = None
    interviewers: list[str] = field(default_factory=lambda: ["Dana"])
    scheduled: str | None = None
    completed: str | None = None


@dataclass
class Process:
    n: int
    candidate: str
    company: str
    feeder: str | None
    status: str
    created: str
    updated: str
    stages: list[Stage] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)  # (to_status, changed_at)
    final_outcome: str | None = None
    offer: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return pid(self.n)


@dataclass
class RawData:
    candidates: dict[str, str | None]  # id -> feeder
    processes: list[Process]


def write_raw_store(path: Path, data: RawData) -> Path:
    """Create the raw store at `path` with the project schema and `data`'s rows."""
    con = duckdb.connect(str(path))
    try:
        con.execute(SCHEMA)
        for cid, feeder in data.candidates.items():
            con.execute(
                "insert into candidates values (?, ?, ?, null, null, ?, ?, 'r1', ?)",
                [cid, f"Name {cid}", feeder, ts("2024-12-01"), ts("2024-12-01"), LOADED],
            )
        for p in data.processes:
            _insert_process(con, p)
    finally:
        con.close()
    return path


def _insert_process(con: duckdb.DuckDBPyConnection, p: Process) -> None:
    con.execute(
        "insert into interview_processes values (?, ?, ?, 'Engineer', ?, ?, 'Rae', ?, ?, ?, ?, "
        "'r1', ?)",
        [
            p.id,
            p.candidate,
            p.company,
            p.status,
            p.feeder,
            p.final_outcome,
            json.dumps(p.offer) if p.offer else None,
            ts(p.created),
            ts(p.updated),
            LOADED,
        ],
    )
    for order, s in enumerate(p.stages, start=1):
        con.execute(
            "insert into interview_stages values (?, ?, ?, ?, ?, ?, ?, ?, null, null, null, ?, ?,"
            " null, ?, ?, 'r1', ?)",
            [
                f"00000000-0000-4100-8{p.n:03d}-{order:012d}",
                p.id,
                s.name,
                order,
                ts(s.scheduled) if s.scheduled else None,
                ts(s.completed) if s.completed else None,
                s.outcome,
                s.rating,
                s.notes,
                s.interviewers,
                ts(p.created),
                ts(p.created),
                LOADED,
            ],
        )
    previous = None
    for to_status, changed in p.history:
        con.execute(
            "insert into interview_status_history values (?, ?, ?, ?, 'r1', 'ingest', ?)",
            [p.id, previous, to_status, ts(changed), LOADED],
        )
        previous = to_status


def query(db: Path, sql: str) -> list[dict[str, Any]]:
    """Rows of `sql` on the built warehouse as dicts (read-only connection)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
