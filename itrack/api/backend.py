"""The store behind the API: a unit of work per request, with the caller's rights applied.

`Backend.session(principal, write)` yields a `Session`: the interview service bound to one
transaction-capable connection plus the access rules for that caller. On DuckDB the rules are
enforced here (the store has no row-level security); on PostgreSQL the claims go into the
transaction and row-level security decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import duckdb

from ingest.contract import InterviewStage
from ingest.errors import not_yours
from ingest.ports import InterviewStore
from ingest.service import FeedbackStatus, FeedbackTrigger, InterviewService, run_feedback_callbacks
from ingest.stamps import utc_now
from ingest.store.duckdb.repository import DuckDBInterviewStore, InterviewRepository
from ingest.store.duckdb.store import open_store
from itrack.api.auth import Principal
from itrack.api.duckdb_gate import DuckDBGate
from itrack.api.errors import ApiError
from itrack.services import feedback_service  # with the server, not at the first offer


class Session(Protocol):
    service: InterviewService
    triggers: list[FeedbackTrigger]

    def check_org(self) -> None: ...
    def check_can_change(self, process_id: UUID | str) -> None: ...
    def check_can_change_stage(self, stage_id: UUID | str) -> None: ...
    def assign(self, process_id: UUID, recruiter_id: str | None) -> None: ...


class Backend(Protocol):
    name: str

    def session(self, principal: Principal, write: bool) -> Iterator[Session]: ...
    def released(self) -> AbstractContextManager[None]: ...
    def feedback_store(self) -> InterviewStore: ...
    def store_health(self) -> tuple[bool, str]: ...
    def close(self) -> None: ...


class _RoleRules:
    """The parts of the rights the API decides itself on every store: who may create, and
    who may assign a process to someone else."""

    principal: Principal

    def check_can_create(self, recruiter_id: str | None) -> str | None:
        """Who the new process is assigned to (None: nobody, leads only); the organization
        was checked when the session began (`deps.write_session`)."""
        p = self.principal
        if p.is_lead:
            return recruiter_id
        if p.app_role != "recruiter":
            raise ApiError(403, "only recruiters and leads may create interview processes")
        if recruiter_id not in (None, p.sub):
            raise ApiError(403, "a recruiter may not assign a process to someone else")
        return p.sub


@dataclass
class DuckDBSession(_RoleRules):
    """Access rules on DuckDB: the store belongs to one organization (`organization_id` in the
    settings, any when unset); leads change any process, recruiters only those assigned to them
    (api_process_assignments), anyone else nothing."""

    service: InterviewService
    con: duckdb.DuckDBPyConnection
    principal: Principal
    organization_id: str | None
    triggers: list[FeedbackTrigger] = field(default_factory=list)

    def check_org(self) -> None:
        p = self.principal
        if p.is_service or self.organization_id is None:
            return
        if p.organization_id != self.organization_id:
            raise ApiError(403, "this store belongs to another organization than the token's")

    def check_can_change(self, process_id: UUID | str) -> None:
        # the repository's lookup: its 'not found' names an id of another kind as such
        repo = InterviewRepository(self.con)
        self._refuse_unless_mine(repo.get_interview_by_id(process_id).id, "interview process")

    def check_can_change_stage(self, stage_id: UUID | str) -> None:
        stage = InterviewRepository(self.con).get_stage_by_id(stage_id)
        self._refuse_unless_mine(stage.interview_process_id, "interview stage", stage.id)

    def _refuse_unless_mine(self, pid: UUID, what: str, row_id: UUID | None = None) -> None:
        """A lead changes any process; a recruiter only those assigned to them, else refused as
        row-level security refuses it on PostgreSQL (`not_yours`, naming the row changed)."""
        self.check_org()
        p = self.principal
        if p.is_lead:
            return
        if p.app_role != "recruiter":
            raise ApiError(403, "only recruiters and leads may change interview processes")
        row = self.con.execute(
            "select recruiter_id from api_process_assignments where interview_process_id = ?",
            [pid],
        ).fetchone()
        if row is None or row[0] != p.sub:
            raise not_yours(what, row_id or pid)

    def get_stage(self, stage_id: UUID | str) -> InterviewStage:
        return InterviewRepository(self.con).get_stage_by_id(stage_id)

    def assign(self, process_id: UUID, recruiter_id: str | None) -> None:
        if recruiter_id is not None:
            self.con.execute(
                "insert or replace into api_process_assignments values (?, ?, ?)",
                [process_id, recruiter_id, utc_now()],
            )


class _JoinedRepository(InterviewRepository):
    """Writes join the request's transaction (begun and committed by `DuckDBBackend.session`),
    so the access checks, the service call and the assignment commit together or not at all."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield


class _RequestStore:
    """The interview store port on the request's cursor, inside the request's transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    @contextmanager
    def reading(self) -> Iterator[InterviewRepository]:
        yield _JoinedRepository(self.con)

    writing = reading  # the unit of work is the request's transaction, either way


class _LockedStore(DuckDBInterviewStore):
    """The raw store with reads under the store lock too. A read-only open takes no lock, and
    an ingest or build that finds the file open in another process fails instead of waiting:
    a server reading beside them must queue on the lock like every writer."""

    @contextmanager
    def reading(self) -> Iterator[InterviewRepository]:
        with open_store(self.db, self.wait_seconds, create=False) as con:
            yield InterviewRepository(con)


class DuckDBBackend:
    name = "duckdb"

    def __init__(self, db: Path, wait_seconds: float, organization_id: str | None) -> None:
        self.db = Path(db)
        self.gate = DuckDBGate(self.db, wait=wait_seconds)
        self.organization_id = organization_id

    @contextmanager
    def session(self, principal: Principal, write: bool) -> Iterator[DuckDBSession]:
        """One transaction per request (a consistent snapshot for reads; for writes the checks
        and every change of the request commit together)."""
        with self.gate.session(write) as con:
            con.begin()
            try:
                yield _collecting(
                    DuckDBSession(
                        InterviewService(_RequestStore(con)), con, principal, self.organization_id
                    )
                )
            except BaseException:
                con.rollback()
                raise
            con.commit()

    def store_health(self) -> tuple[bool, str]:
        return self.gate.reachable()

    def released(self):
        """The store let go for a component that opens it itself (the feedback step)."""
        return self.gate.released()

    def feedback_store(self) -> InterviewStore:
        """Where the feedback step reads a process: the raw store, opened by itself."""
        return _LockedStore(self.db, self.gate.wait)

    def close(self) -> None:
        self.gate.close()


@dataclass
class PostgresSession(_RoleRules):
    """On PostgreSQL the database decides: every unit of work runs as the caller (`set local
    role`, `request.jwt.claims`) and row-level security filters what they see (another
    organization's rows are not found) and refuses what they may not change (403)."""

    service: InterviewService
    store: Any
    principal: Principal
    triggers: list[FeedbackTrigger] = field(default_factory=list)

    def check_org(self) -> None:  # row-level security scopes every statement
        return None

    def check_can_change(self, process_id: UUID | str) -> None:
        return None

    def check_can_change_stage(self, stage_id: UUID | str) -> None:
        return None

    def get_stage(self, stage_id: UUID | str) -> InterviewStage:
        with self.store.reading() as repo:
            return repo.get_stage_by_id(stage_id)

    def assign(self, process_id: UUID, recruiter_id: str | None) -> None:
        """A new process is assigned to its creator by the database; a lead may name another
        user (a second statement, as the caller: row-level security checks it)."""
        if recruiter_id is None or recruiter_id == self.principal.sub:
            return
        try:
            assignee = UUID(recruiter_id)
        except ValueError:
            raise ApiError(
                422,
                "invalid input: body.recruiter_id: not a user id (UUID)",
                field="body.recruiter_id",
            ) from None
        with self.store.writing() as repo:
            repo.conn.execute(
                "update interview_processes set recruiter_id = %s where id = %s",
                [assignee, process_id],
            )


class PostgresBackend:
    name = "postgres"

    def __init__(self, dsn: str | None, pool_size: int, wait_seconds: float) -> None:
        """A request waits at most `wait_seconds` for a pooled connection and for each row
        lock (`lock_timeout`), then gets 503 + Retry-After: a busy database never hangs it."""
        from ingest.store.postgres.repository import PostgresInterviewStore

        self.store = PostgresInterviewStore(
            _with_lock_timeout(dsn, wait_seconds), max_size=pool_size, timeout=wait_seconds
        )

    @contextmanager
    def session(self, principal: Principal, write: bool) -> Iterator[PostgresSession]:
        store = self.store if principal.local else self.store.as_user(principal.claims)
        yield _collecting(PostgresSession(InterviewService(store), store, principal))

    def store_health(self) -> tuple[bool, str]:
        """The store's own check (reachable and migrated), waiting as long as a request does."""
        return self.store.health()

    @contextmanager
    def released(self) -> Iterator[None]:  # nothing held between requests
        yield

    def feedback_store(self) -> InterviewStore:
        """Where the feedback step reads a process: the pool as service_role (the process was
        just changed by a user allowed to; the step itself acts for the organization)."""
        return self.store

    def close(self) -> None:
        self.store.close()


def _collecting(session: Any) -> Any:
    """The session's service hands the processes that reached a feedback-trigger status to
    `session.triggers` instead of running the step: inside the request's transaction (DuckDB)
    the change is not committed yet. `run_feedback` runs it after the commit."""
    session.service.on_feedback_trigger(session.triggers.append)
    return session


def run_feedback(
    backend: Backend,
    triggers: list[FeedbackTrigger],
    warehouse: Path,
    feeders: Path | None,
    wait_seconds: float,
) -> FeedbackStatus | None:
    """`FeedbackService.process_interview_outcome` for each process a committed request moved
    to a trigger status, with the store let go (the step opens it itself). Never raises: what
    prevented it is reported as `deferred`, and the next build does it (the shared rule,
    `run_feedback_callbacks`)."""
    if not triggers:
        return None

    def outcome(trigger: FeedbackTrigger) -> object:
        with backend.released():
            service = feedback_service(
                warehouse, wait_seconds, store=backend.feedback_store(), feeders=feeders
            )
            return service.process_interview_outcome(str(trigger.interview_id))

    return run_feedback_callbacks([outcome], triggers)


def _with_lock_timeout(dsn: str | None, seconds: float) -> str | None:
    """The DSN with `lock_timeout` set for every session (added to any `options` it has)."""
    if not dsn:
        return dsn
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from ingest.migrate import check_dsn
    from ingest.store.postgres.repository import lock_timeout_ms

    check_dsn(dsn)  # a malformed DSN is one line (exit 2), never the parser's error below
    options = conninfo_to_dict(dsn).get("options") or ""
    timeout = f"-c lock_timeout={lock_timeout_ms(seconds)}"
    return make_conninfo(dsn, options=f"{options} {timeout}".strip())
