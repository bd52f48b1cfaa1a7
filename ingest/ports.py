"""Ports: what the interview service needs from a store, as Protocols.

The service (`ingest/service.py`) holds the business rules and sees only these interfaces, never
a path, a connection or SQL. Adapters implement them: `ingest/store/duckdb/` (the embedded
default) and `ingest/store/postgres/` (a team's PostgreSQL/Supabase).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, Unpack
from uuid import UUID

from ingest.contract import InterviewProcess, InterviewStage, InterviewStatus

HISTORY_SOURCE = "service"  # status-history rows written by the service
CORRECTION_SOURCE = "correction"  # ... and by its corrections (amend / reopen)


@dataclass(frozen=True)
class Correction:
    """One row of the corrections audit: a field of a stage or process changed after the fact,
    from what to what, why and by whom."""

    record_kind: str  # "stage" or "process"
    record_id: UUID
    interview_process_id: UUID
    field: str
    old_value: Any
    new_value: Any
    reason: str
    changed_by: str


class ProcessFilters(TypedDict, total=False):
    """List filters beyond company, status and candidate (`find_interviews`)."""

    feeder: str  # the process's feeder, else its candidate's
    created_from: dt.datetime  # created at or after
    created_to: dt.datetime  # created before
    after: tuple[dt.datetime, UUID]  # keyset cursor: the rows after this (created_at, id)


class InterviewRepository(Protocol):
    """Processes and stages inside one unit of work (one transaction for writes)."""

    run_id: str  # stamped on every row written and on status-history rows
    history_source: str  # HISTORY_SOURCE, or CORRECTION_SOURCE while correcting
    # how candidates get into this store, the hint when a process names an unknown one
    candidates_come_from: str

    def candidate_feeder(self, candidate_id: str) -> str | None:
        """The candidate's feeder source; NotFoundError when the candidate is unknown."""
        ...

    def create_interview_process(self, process: InterviewProcess) -> InterviewProcess: ...

    def get_interview_by_id(self, interview_id: UUID | str) -> InterviewProcess: ...

    def get_interviews_by_candidate(self, candidate_id: str) -> list[InterviewProcess]: ...

    def find_interviews(
        self,
        company_name: str | None = None,
        status: InterviewStatus | None = None,
        candidate_id: str | None = None,
        *,
        limit: int | None = None,
        **filters: Unpack[ProcessFilters],
    ) -> list[InterviewProcess]:
        """Matching processes in the stable order (created_at, id), at most `limit`."""
        ...

    def update_interview(self, process: InterviewProcess) -> InterviewProcess:
        """Save a process; a status change appends its status-history row."""
        ...

    def create_interview_stage(self, stage: InterviewStage) -> InterviewStage: ...

    def get_stage_by_id(self, stage_id: UUID | str) -> InterviewStage: ...

    def get_stages_by_interview(self, interview_id: UUID | str) -> list[InterviewStage]: ...

    def update_stage(self, stage: InterviewStage) -> InterviewStage: ...

    def max_stage_order(self, interview_id: UUID) -> int:
        """Highest stage_order of a process, 0 when it has no stages."""
        ...

    def record_call(self, command: str, started_at: dt.datetime) -> None:
        """Audit one completed write call (`ingest_runs` on DuckDB)."""
        ...

    def known_names(self, column: str) -> list[str]:
        """Distinct stored `company_name`s or `feeder_source`s, sorted."""
        ...

    def open_processes_like(
        self, candidate_id: str, company_name: str, role_title: str, terminal: Sequence[str]
    ) -> list[InterviewProcess]: ...

    def status_before(
        self, interview_id: UUID, status: InterviewStatus
    ) -> InterviewStatus | None: ...

    def record_correction(self, correction: Correction) -> None: ...

    def corrections(self, interview_id: UUID) -> list[dict[str, Any]]: ...

    def status_history(self, interview_id: UUID) -> list[dict[str, Any]]: ...


class InterviewStore(Protocol):
    """A unit-of-work factory: `reading()` for queries, `writing()` for one transaction that
    commits when the block ends and rolls back if it raises."""

    def reading(self) -> AbstractContextManager[InterviewRepository]: ...

    def writing(self) -> AbstractContextManager[InterviewRepository]: ...
