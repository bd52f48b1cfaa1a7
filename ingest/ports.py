"""Ports: what the interview service needs from a store, as Protocols.

The service (`ingest/service.py`) holds the business rules and sees only these interfaces, never
a path, a connection or SQL. Adapters implement them: `ingest/store/duckdb/` (the embedded
default) and `ingest/store/postgres/` (a team's PostgreSQL/Supabase).
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from typing import Protocol
from uuid import UUID

from ingest.contract import InterviewProcess, InterviewStage, InterviewStatus


class InterviewRepository(Protocol):
    """Processes and stages inside one unit of work (one transaction for writes)."""

    run_id: str  # stamped on every row written and on status-history rows

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
    ) -> list[InterviewProcess]: ...

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


class InterviewStore(Protocol):
    """A unit-of-work factory: `reading()` for queries, `writing()` for one transaction that
    commits when the block ends and rolls back if it raises."""

    def reading(self) -> AbstractContextManager[InterviewRepository]: ...

    def writing(self) -> AbstractContextManager[InterviewRepository]: ...
