"""Repository: interview processes and stages in the raw store, one record at a time.

Works on a DuckDB connection to the raw store (`ingest.store.duckdb.store.open_store`). Records
go in and come out as the contract models, so whatever is written was validated by the one
contract and whatever is read compares equal to what was written (offer details as JSON text,
interviewer names as VARCHAR[]). Every write runs in a transaction; every status write also
appends to `interview_status_history` in that same transaction, which is what the feedback
step's watermark reads. Business rules (which moves are allowed, what an outcome implies) live
in the service.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb

from ingest.contract import (
    InterviewProcess,
    InterviewStage,
    InterviewStatus,
    to_row,
)
from ingest.errors import NotFoundError
from ingest.ports import HISTORY_SOURCE, Correction
from ingest.stamps import new_run_id, utc_now
from ingest.store.common import (
    PROCESS_COLUMNS,
    STAGE_COLUMNS,
    SharedQueries,
    audit_text,
    select_sql,
)
from ingest.store.duckdb.store import open_store


def parse_id(value: UUID | str, what: str) -> UUID:
    """An id given by a person: a malformed one cannot exist, so it is 'not found'."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value).strip())
    except ValueError:
        raise NotFoundError(f"{what} '{value}' not found (not a valid id)") from None


class InterviewRepository(SharedQueries):
    """CRUD for `interview_processes` and `interview_stages` on one raw-store connection
    (ids by prefix, stored names and look-alike processes: `SharedQueries`).

    `run_id` is stamped on every row written (`_run_id`) and on status-history rows.
    """

    candidates_come_from = "load the candidate first (itrack ingest)"

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> None:
        self.con = con
        self.run_id = run_id or new_run_id("api")
        self.history_source = HISTORY_SOURCE  # CORRECTION_SOURCE while amending / reopening
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; nested uses join the outer one so a service call commits once."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.con.begin()
        self._depth = 1
        try:
            yield
            self.con.commit()
        except BaseException:
            self.con.rollback()
            raise
        finally:
            self._depth = 0

    # -- candidates (read only: candidates arrive through ingest) ------------------------------

    # -- processes ----------------------------------------------------------------------------

    def create_interview_process(self, process: InterviewProcess) -> InterviewProcess:
        """Insert a process and its first status-history row (from NULL at `created_at`)."""
        with self.transaction():
            row = to_row(process)
            self._insert("interview_processes", PROCESS_COLUMNS, row)
            self._append_history(process.id, None, process.status, process.created_at)
        return self.get_interview_by_id(process.id)

    def get_interview_by_id(self, interview_id: UUID | str) -> InterviewProcess:
        found = self._select_processes("where id = ?", [self.resolve_id("process", interview_id)])
        if not found:
            raise self._not_found("process", interview_id)
        return found[0]

    def update_interview(self, process: InterviewProcess) -> InterviewProcess:
        """Replace a stored process; a status change is appended to the history at updated_at."""
        with self.transaction():
            current = self.get_interview_by_id(process.id)
            row = to_row(process)
            self._update("interview_processes", PROCESS_COLUMNS, row)
            if current.status != process.status:
                self._append_history(process.id, current.status, process.status, process.updated_at)
        return self.get_interview_by_id(process.id)

    # -- stages -------------------------------------------------------------------------------

    def create_interview_stage(self, stage: InterviewStage) -> InterviewStage:
        with self.transaction():
            self.get_interview_by_id(stage.interview_process_id)
            self._insert("interview_stages", STAGE_COLUMNS, to_row(stage))
        return self.get_stage_by_id(stage.id)

    def get_stage_by_id(self, stage_id: UUID | str) -> InterviewStage:
        found = self._select_stages("where id = ?", [self.resolve_id("stage", stage_id)])
        if not found:
            raise self._not_found("stage", stage_id)
        return found[0]

    def get_stages_by_interview(self, interview_id: UUID | str) -> list[InterviewStage]:
        """The stages of a process in stage order; NotFoundError if the process is unknown."""
        process_id = self.get_interview_by_id(interview_id).id
        return self._select_stages("where interview_process_id = ?", [process_id])

    def update_stage(self, stage: InterviewStage) -> InterviewStage:
        with self.transaction():
            self.get_stage_by_id(stage.id)
            self._update("interview_stages", STAGE_COLUMNS, to_row(stage))
        return self.get_stage_by_id(stage.id)

    def record_call(self, command: str, started_at: dt.datetime) -> None:
        """Audit one completed write call in `ingest_runs` (one record accepted)."""
        self.con.execute(
            "insert into ingest_runs (run_id, command, status, started_at, finished_at,"
            " rows_read, accepted) values (?, ?, 'completed', ?, ?, 1, 1)",
            [self.run_id, f"interview {command}", started_at, utc_now()],
        )

    # -- ids, names, corrections -----------------------------------------------------------

    def record_correction(self, c: Correction) -> None:
        """One row of the corrections audit: what changed, from what to what, why, by whom."""
        self.con.execute(
            "insert into corrections (run_id, record_kind, record_id, interview_process_id, "
            "field, old_value, new_value, reason, changed_by, recorded_at) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.run_id,
                c.record_kind,
                str(c.record_id),
                str(c.interview_process_id),
                c.field,
                audit_text(c.old_value),
                audit_text(c.new_value),
                c.reason,
                c.changed_by,
                utc_now(),
            ],
        )

    # -- helpers ------------------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    def _dicts(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _insert(self, table: str, columns: Sequence[str], row: dict[str, Any]) -> None:
        names = [*columns, "_run_id", "_loaded_at"]
        values = [row[c] for c in columns] + [self.run_id, utc_now()]
        marks = ", ".join("?" for _ in names)
        self.con.execute(f"insert into {table} ({', '.join(names)}) values ({marks})", values)

    def _update(self, table: str, columns: Sequence[str], row: dict[str, Any]) -> None:
        names = [c for c in columns if c != "id"] + ["_run_id", "_loaded_at"]
        values = [row[c] for c in columns if c != "id"] + [self.run_id, utc_now(), row["id"]]
        assignments = ", ".join(f"{name} = ?" for name in names)
        self.con.execute(f"update {table} set {assignments} where id = ?", values)

    def _append_history(
        self,
        interview_id: UUID,
        from_status: InterviewStatus | None,
        to_status: InterviewStatus,
        changed_at: dt.datetime,
    ) -> None:
        self.con.execute(
            "insert into interview_status_history (interview_process_id, from_status, "
            "to_status, changed_at, run_id, source, recorded_at) values (?, ?, ?, ?, ?, ?, ?)",
            [
                str(interview_id),
                from_status.value if from_status else None,
                to_status.value,
                changed_at,
                self.run_id,
                self.history_source,
                utc_now(),
            ],
        )

    def _select_processes(
        self, where: str, params: list[Any], limit: int | None = None
    ) -> list[InterviewProcess]:
        rows = self._dicts(
            select_sql("interview_processes", PROCESS_COLUMNS, where, "created_at", limit), params
        )
        for row in rows:
            if row["offer_details"] is not None:
                row["offer_details"] = json.loads(row["offer_details"])
        return [InterviewProcess.from_store(row) for row in rows]

    def _select_stages(self, where: str, params: list[Any]) -> list[InterviewStage]:
        sql = select_sql("interview_stages", STAGE_COLUMNS, where, "stage_order")
        rows = self._dicts(sql, params)
        return [InterviewStage.from_store(row) for row in rows]


class DuckDBInterviewStore:
    """The embedded store: the raw store beside warehouse `db`, opened for each unit of work
    under the writer lock, so a second process gets StoreBusyError ("database is busy (held by
    PID n)") after `wait_seconds` instead of interleaving writes."""

    def __init__(self, db: Path | str, wait_seconds: float = 0.0) -> None:
        self.db = Path(db)
        self.wait_seconds = wait_seconds

    @contextmanager
    def reading(self) -> Iterator[InterviewRepository]:
        """Read-only: no writer lock, and a missing store is an error (never created)."""
        with open_store(self.db, self.wait_seconds, read_only=True) as con:
            yield InterviewRepository(con)

    @contextmanager
    def writing(self) -> Iterator[InterviewRepository]:
        """Under the writer lock, on an existing store (a wrong --db is an error, not a new
        empty store)."""
        with open_store(self.db, self.wait_seconds, create=False) as con:
            repo = InterviewRepository(con)
            with repo.transaction():
                yield repo


class ConnectionInterviewStore:
    """Units of work on a connection someone else holds open (and locked): a server that keeps
    one connection, or a test. Writes are one transaction each, as with `DuckDBInterviewStore`."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    @contextmanager
    def reading(self) -> Iterator[InterviewRepository]:
        yield InterviewRepository(self.con)

    @contextmanager
    def writing(self) -> Iterator[InterviewRepository]:
        repo = InterviewRepository(self.con)
        with repo.transaction():
            yield repo
