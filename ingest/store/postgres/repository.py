"""The interview store on PostgreSQL (Supabase): the ports of `ingest.ports` on psycopg 3.

Concurrency is the database's business, not a lock file's:
- every unit of work is one transaction on a pooled connection (`psycopg_pool`);
- in a write, reading a process takes its row lock (`SELECT ... FOR UPDATE`), and reading a
  stage locks its process first, so two calls on one process run one after the other and the
  second sees what the first committed (two recruiters cannot both move one process; two
  stages cannot both take the next order);
- a stage order taken anyway (a writer outside the service) hits the unique constraint
  `(interview_process_id, stage_order)` and is reported as a refusal, not a crash.

Whose rights apply is decided by row-level security, not by this code: every transaction
starts with `SET LOCAL ROLE` and `set_config('request.jwt.claims', ..., true)` for the actor it
runs for (a user's JWT claims through `as_user`, else the `service_role`). New rows take their
organization from their parent (a process from its candidate, a stage from its process) and
`recruiter_id` from the acting user (`auth.uid()`); status history is written by the
database's trigger, stamped with this call's run id.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from ingest.contract import InterviewProcess, InterviewStage, to_row
from ingest.errors import (
    NotAllowed,
    NotFoundError,
    Refused,
    StoreBusyError,
    StoreError,
    UserError,
    not_yours,
)
from ingest.migrate import check_dsn, connect_seconds, display_dsn
from ingest.ports import HISTORY_SOURCE, Correction
from ingest.stamps import new_run_id
from ingest.store.common import (
    PROCESS_COLUMNS,
    STAGE_COLUMNS,
    SharedQueries,
    audit_text,
    select_sql,
)

# Roles a call may act as (the ones the migrations grant to).
# lock_timeout is an int of milliseconds; a larger value is refused as invalid
PG_MAX_LOCK_TIMEOUT_MS = 2**31 - 1
ROLES = frozenset({"anon", "authenticated", "service_role", "itrack_extract"})


class PostgresInterviewRepository(SharedQueries):
    """CRUD for processes and stages inside one transaction of a `PostgresInterviewStore`
    (ids by prefix, visible names and look-alike processes: `SharedQueries`)."""

    MARK = "%s"
    # `itrack ingest` loads the embedded store, never this one: the hint it gave sent people there
    candidates_come_from = (
        "add the candidate to the database's candidates table first (a Supabase client or "
        "SQL; itrack ingest loads the embedded store, not this database)"
    )

    def __init__(self, conn: psycopg.Connection, run_id: str, writing: bool) -> None:
        self.conn = conn
        self.run_id = run_id
        self.writing = writing
        self._history_source = HISTORY_SOURCE
        # processes as this transaction last read or wrote them (in a write, locked): not read
        # again; only this transaction changes them (the row lock; the service's own
        # transactions leave updated_at to it, so the stage triggers do not touch them)
        self._held: dict[UUID, InterviewProcess] = {}
        # in a read, the stages read with their process (one statement): not read again
        self._stages: dict[UUID, list[InterviewStage]] = {}

    @property
    def history_source(self) -> str:
        """What the status-history trigger stamps on the rows this call writes."""
        return self._history_source

    @history_source.setter
    def history_source(self, value: str) -> None:
        self.conn.execute("select set_config('itrack.source', %s, true)", [value])
        self._history_source = value

    # -- candidates (read only here: candidates arrive through ingest or the database) --------

    # -- processes ----------------------------------------------------------------------------

    def create_interview_process(self, process: InterviewProcess) -> InterviewProcess:
        """Insert a process in its candidate's organization, assigned to the acting user."""
        row = to_row(process)
        names = ", ".join(PROCESS_COLUMNS)
        values = ", ".join(_marks(PROCESS_COLUMNS))
        with self._refusals(f"process {process.id}"):
            inserted = self._one(
                f"insert into interview_processes ({names}, organization_id, recruiter_id)"
                f" select {values}, c.organization_id, (select auth.uid())"
                f" from candidates as c where c.id = %(candidate_id)s returning {names}",
                row,
            )
        if inserted is None:
            raise NotFoundError(f"candidate '{process.candidate_id}' not found")
        # the new row is this transaction's until it commits
        return self._hold(InterviewProcess.from_store(inserted))

    def get_interview_by_id(self, interview_id: UUID | str) -> InterviewProcess:
        """A process; in a write, with its row lock held until the transaction ends; in a
        read, with its stages in the same statement (`get_stages_by_interview` then reads
        none)."""
        process_id = self.resolve_id("process", interview_id)
        held = self._held.get(process_id)
        if held is not None:
            return held
        if self.writing:
            found = self._select_processes("where id = %s", [process_id], lock=True)
        else:
            found = self._select_with_stages(process_id)
        if not found:
            self._refuse_if_visible("interview_processes", process_id, "interview process")
            raise self._not_found("process", interview_id)
        return self._hold(found[0])

    def update_interview(self, process: InterviewProcess) -> InterviewProcess:
        """Save a process; a status change gets its history row from the database's trigger."""
        row = self._update("interview_processes", PROCESS_COLUMNS, to_row(process), "process")
        return self._hold(InterviewProcess.from_store(row))

    # -- stages -------------------------------------------------------------------------------

    def create_interview_stage(self, stage: InterviewStage) -> InterviewStage:
        if stage.interview_process_id not in self._held:
            self.get_interview_by_id(stage.interview_process_id)  # locks the process in a write
        row = to_row(stage)
        names = ", ".join(STAGE_COLUMNS)
        values = ", ".join(_marks(STAGE_COLUMNS))
        with self._refusals(f"stage {stage.id}", stage):
            inserted = self._one(
                f"insert into interview_stages ({names}, organization_id)"
                f" select {values}, p.organization_id from interview_processes as p"
                f" where p.id = %(interview_process_id)s returning {names}",
                row,
            )
        if inserted is None:  # the process went away between the check and the insert
            raise self._not_found("process", stage.interview_process_id)
        return InterviewStage.from_store(inserted)

    def get_stage_by_id(self, stage_id: UUID | str) -> InterviewStage:
        """A stage; in a write, its process's row lock is taken in the same statement (one
        lock order: the process before the stage)."""
        sid = self.resolve_id("stage", stage_id)
        if self.writing:  # the process comes along (the service reads it next)
            row = self._one(
                f"select {_JOINED} from interview_stages as s join interview_processes as p"
                " on s.interview_process_id = p.id where s.id = %s for update of p",
                [sid],
            )
            if row is None:
                self._refuse_if_visible("interview_stages", sid, "interview stage")
                raise self._not_found("stage", stage_id)
            self._hold(InterviewProcess.from_store(_columns(row, PROCESS_COLUMNS, "p_")))
            return InterviewStage.from_store(_columns(row, STAGE_COLUMNS, "s_"))
        found = self._select_stages("where id = %s", [sid])
        if not found:
            raise self._not_found("stage", stage_id)
        return found[0]

    def get_stages_by_interview(self, interview_id: UUID | str) -> list[InterviewStage]:
        process_id = self.resolve_id("process", interview_id)
        if process_id not in self._held:  # not found (or not visible) raises here
            process_id = self.get_interview_by_id(process_id).id
        read = self._stages.get(process_id)
        if read is not None:
            return read
        return self._select_stages("where interview_process_id = %s", [process_id])

    def update_stage(self, stage: InterviewStage) -> InterviewStage:
        row = self._update("interview_stages", STAGE_COLUMNS, to_row(stage), "stage", stage)
        return InterviewStage.from_store(row)

    def record_call(self, command: str, started_at: dt.datetime) -> None:
        """Audit one completed write call in `service_calls` (the user and organization are
        the acting user's, from the claims), in the call's own transaction."""
        with self._refusals(f"audit of call {command}"):
            self.conn.execute(
                "insert into service_calls (run_id, command, started_at) values (%s, %s, %s)",
                [self.run_id, f"interview {command}", started_at],
            )

    def assign_recruiter(self, interview_id: UUID | str, recruiter_id: UUID | str | None) -> None:
        """Assign a process to a user (auth.users id), or unassign it: a lead's change (row-level
        security refuses it to a recruiter, even for their own process)."""
        process = self.get_interview_by_id(interview_id)
        with self._refusals(f"process {process.id}"):
            cursor = self.conn.execute(
                "update interview_processes set recruiter_id = %s where id = %s",
                [recruiter_id, process.id],
            )
        if cursor.rowcount == 0:
            self._refuse_if_visible("interview_processes", process.id, "interview process")
            raise self._not_found("process", process.id)

    # -- ids, names, corrections ----------------------------------------------------------

    def record_correction(self, c: Correction) -> None:
        """One row of the corrections audit, in the process's organization, stamped with the
        clock (not the transaction's start) so a call's rows keep the order they were written."""
        with self._refusals(f"correction of {c.record_kind} {c.record_id}"):
            self.conn.execute(
                "insert into corrections (organization_id, interview_process_id,"
                " record_kind, record_id, field, old_value, new_value, reason, changed_by,"
                " run_id, recorded_at) select p.organization_id, p.id, %s, %s, %s, %s, %s, %s,"
                " %s, %s, clock_timestamp()"
                " from interview_processes as p where p.id = %s",
                [
                    c.record_kind,
                    c.record_id,
                    c.field,
                    audit_text(c.old_value),
                    audit_text(c.new_value),
                    c.reason,
                    c.changed_by,
                    self.run_id,
                    c.interview_process_id,
                ],
            )

    # -- helpers ------------------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, list(params)).fetchall()

    def _dicts(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Rows as dicts, timestamps as the contract holds time (naive UTC)."""
        return [
            {k: _naive(v) if isinstance(v, dt.datetime) else v for k, v in row.items()}
            for row in self._all(sql, params)
        ]

    def _all(self, sql: str, params: Any) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cursor:
            return cursor.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Any) -> dict[str, Any] | None:
        with self.conn.cursor(row_factory=dict_row) as cursor:
            return cursor.execute(sql, params).fetchone()

    def _update(
        self,
        table: str,
        columns: Sequence[str],
        row: dict[str, Any],
        what: str,
        stage: InterviewStage | None = None,
    ) -> dict[str, Any]:
        """The row as saved (`returning`: the database's triggers included), one statement."""
        assignments = ", ".join(
            f"{c} = %({c})s::jsonb" if c == "offer_details" else f"{c} = %({c})s"
            for c in columns
            if c != "id"
        )
        sql = f"update {table} set {assignments} where id = %(id)s returning {', '.join(columns)}"
        with self._refusals(f"{what} {row['id']}", stage):
            saved = self._one(sql, row)
        if saved is None:
            self._refuse_if_visible(table, UUID(row["id"]), f"interview {what}")
            raise self._not_found(what, row["id"])
        return saved

    def _refuse_if_visible(self, table: str, row_id: UUID, what: str) -> None:
        """A row a write did not reach but this user sees is not theirs to change (row-level
        security); one they do not see is the caller's 'not found'."""
        if self.writing:
            visible = self._one(f"select 1 as found from {table} where id = %s", [row_id])
            if visible is not None:
                raise not_yours(what, row_id)

    @contextmanager
    def _refusals(self, what: str, stage: InterviewStage | None = None) -> Iterator[None]:
        """The database's refusals as the service's: one line, never a driver error. No
        savepoint (two round trips per statement): a refusal ends the unit of work, whose
        transaction is rolled back as the exception leaves it."""
        try:
            yield
        except pg_errors.UniqueViolation as exc:
            if stage is not None and exc.diag.constraint_name == (
                "interview_stages_process_stage_order_key"
            ):
                raise Refused(
                    f"stage_order {stage.stage_order} refused: process "
                    f"{stage.interview_process_id} already has a stage with that order "
                    "(another call took it first); reload and add the next one"
                ) from None
            raise Refused(f"{what} refused: it already exists") from None
        except pg_errors.InsufficientPrivilege as exc:
            raise NotAllowed(f"{what} refused: {_first_line(exc)}") from None
        except (pg_errors.CheckViolation, pg_errors.ForeignKeyViolation) as exc:
            raise Refused(f"{what} refused by the database: {_first_line(exc)}") from None

    def _select_processes(
        self, where: str, params: list[Any], lock: bool = False, limit: int | None = None
    ) -> list[InterviewProcess]:
        sql = select_sql("interview_processes", PROCESS_COLUMNS, where, "created_at", limit)
        if lock:  # row-level security lets a user lock only the rows they may change
            sql += " for update"
        rows = self._all(sql, params)
        return [InterviewProcess.from_store(row) for row in rows]

    def _hold(self, process: InterviewProcess) -> InterviewProcess:
        self._held[process.id] = process
        return process

    def _select_with_stages(self, process_id: UUID) -> list[InterviewProcess]:
        """A process and its stages (in stage order) in one statement; the stages are kept for
        `get_stages_by_interview`."""
        rows = self._all(
            f"select {_JOINED} from interview_processes as p left join interview_stages as s"
            " on s.interview_process_id = p.id where p.id = %s order by s.stage_order, s.id",
            [process_id],
        )
        if not rows:
            return []
        self._stages[process_id] = [
            InterviewStage.from_store(_columns(row, STAGE_COLUMNS, "s_"))
            for row in rows
            if row["s_id"] is not None
        ]
        return [InterviewProcess.from_store(_columns(rows[0], PROCESS_COLUMNS, "p_"))]

    def _select_stages(self, where: str, params: list[Any]) -> list[InterviewStage]:
        sql = select_sql("interview_stages", STAGE_COLUMNS, where, "stage_order")
        rows = self._all(sql, params)
        return [InterviewStage.from_store(row) for row in rows]


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    """timestamptz as the contract holds time: naive UTC."""
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value is not None else None


# A process's columns and a stage's in one row (p_<column>, s_<column>): tables p and s.
_JOINED = ", ".join(
    [f"p.{c} as p_{c}" for c in PROCESS_COLUMNS] + [f"s.{c} as s_{c}" for c in STAGE_COLUMNS]
)


def _columns(row: Mapping[str, Any], columns: Sequence[str], prefix: str) -> dict[str, Any]:
    return {c: row[prefix + c] for c in columns}


def _marks(columns: Sequence[str]) -> list[str]:
    return [f"%({c})s::jsonb" if c == "offer_details" else f"%({c})s" for c in columns]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# What a database with no migrations, or only some, answers: run `itrack db upgrade`.
_UNMIGRATED = (
    pg_errors.UndefinedTable,
    pg_errors.UndefinedColumn,
    pg_errors.UndefinedFunction,
    pg_errors.InvalidSchemaName,
)

POOL_LOG = logging.getLogger("psycopg.pool")


class _ConnectFailures(logging.Filter):
    """While the pool opens: its failed attempts, one warning of several lines each (printed to
    stderr by Python's last-resort handler in a command), are kept instead, and the last one's
    first line ends the one-line error if the server never answers."""

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg != "error connecting in %r: %s" or len(args) != 2:
            return True  # anything else the pool says goes where it went before
        self.last = _first_line(args[1]) if isinstance(args[1], BaseException) else str(args[1])
        return False


class PostgresInterviewStore:
    """Units of work on a PostgreSQL/Supabase database through a connection pool.

    `PostgresInterviewStore(dsn)` acts as `service_role` (the server's own rights: every
    organization); `store.as_user(claims)` is the same pool acting for one user, so their
    JWT claims decide, through row-level security, what they see and change.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: ConnectionPool | None = None,
        role: str = "service_role",
        claims: Mapping[str, Any] | None = None,
        max_size: int = 10,
        timeout: float = 30.0,
        lock_wait: float | None = None,
        connect: bool = True,
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {sorted(ROLES)}")
        self.role = role
        self.claims = dict(claims or {"role": role})
        # how long a unit of work waits for a row another session is changing (the CLI's
        # --wait, as the embedded store waits for its writer lock); None: as long as it takes
        self.lock_wait = lock_wait
        if pool is not None:
            self.pool = pool
            return
        if not dsn:
            raise StoreError("no PostgreSQL connection string: set ITRACK_PG_DSN")
        check_dsn(dsn)  # at once: a pool would retry a DSN it cannot parse until timeout
        self.pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            open=False,
            configure=_configure,
            name="itrack",
        )
        if connect:
            self.connected(timeout)

    def connected(self, within: float) -> PostgresInterviewStore:
        """This store with its pool open. Opening waits for the server at most `within`
        seconds (a command's --wait; `connect_seconds`), then a StoreError naming it and why:
        the pool retries a server that refuses until then. An open pool is left as it is."""
        if not self.pool.closed:
            return self
        seconds = connect_seconds(within)
        failures = _ConnectFailures()
        POOL_LOG.addFilter(failures)
        try:
            self.pool.open(wait=True, timeout=seconds)
        except PoolTimeout:
            self.pool.close()
            why = f": {failures.last}" if failures.last else ""
            raise StoreError(
                f"cannot connect to PostgreSQL within {seconds} s: "
                f"{display_dsn(self.pool.conninfo)}{why}"
            ) from None
        finally:
            POOL_LOG.removeFilter(failures)
        return self

    def as_user(self, claims: Mapping[str, Any]) -> PostgresInterviewStore:
        """The same pool acting for the user whose verified JWT claims these are."""
        role = str(claims.get("role") or "authenticated")
        return PostgresInterviewStore(
            pool=self.pool, role=role, claims=claims, lock_wait=self.lock_wait
        )

    def waiting(self, seconds: float) -> PostgresInterviewStore:
        """The same pool and role, each unit of work waiting at most `seconds` for a row lock
        (0: not at all) before it is refused as busy."""
        return PostgresInterviewStore(
            pool=self.pool, role=self.role, claims=self.claims, lock_wait=seconds
        )

    def close(self) -> None:
        self.pool.close()

    def health(self, wait_seconds: float | None = None) -> tuple[bool, str]:
        """(reachable and migrated, one line saying so) for a health endpoint. Waits for a
        connection of the pool at most `wait_seconds`, by default as long as every unit of work
        of this store (the pool's timeout: the server's `wait_seconds`); it waited a fixed 5 s."""
        try:  # None: the pool's timeout
            with self.pool.connection(timeout=wait_seconds) as conn:
                row = conn.execute(
                    "select to_regclass('public.interview_processes') is not null"
                ).fetchone()
        except (PoolTimeout, psycopg.Error) as exc:
            return False, f"PostgreSQL unavailable: {_first_line(exc)}"
        if not row or not row[0]:
            return False, "PostgreSQL reachable but not migrated: run `itrack db upgrade --dsn ...`"
        return True, "PostgreSQL reachable"

    @contextmanager
    def reading(self) -> Iterator[PostgresInterviewRepository]:
        with self._unit(writing=False) as repo:
            yield repo

    @contextmanager
    def writing(self) -> Iterator[PostgresInterviewRepository]:
        with self._unit(writing=True) as repo:
            yield repo

    @contextmanager
    def _unit(self, writing: bool) -> Iterator[PostgresInterviewRepository]:
        run_id = new_run_id("api")
        try:
            with self.pool.connection() as conn:
                conn.read_only = not writing  # BEGIN READ ONLY: no statement of its own
                with conn.transaction():
                    self._act(conn, run_id)
                    yield PostgresInterviewRepository(conn, run_id, writing)
        except PoolTimeout:
            raise StoreBusyError(
                "PostgreSQL: no free connection in the pool; retry later"
            ) from None
        except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure):
            raise StoreBusyError("PostgreSQL: the change collided with another; retry") from None
        except pg_errors.LockNotAvailable:  # lock_timeout: this store's, else the server's
            waited = "" if self.lock_wait is None else f" after {self.lock_wait:g} s"
            more = "" if self.lock_wait is None else " or pass --wait SECONDS"
            raise StoreBusyError(
                "PostgreSQL: a record this change needs is being changed by another session "
                f"(lock timeout{waited}); retry later{more}"
            ) from None
        except psycopg.OperationalError as exc:
            raise StoreError(f"PostgreSQL unavailable: {_first_line(exc)}") from None
        except _UNMIGRATED as exc:  # no migrations, or only some (a table, column, function)
            raise StoreError(
                f"PostgreSQL {display_dsn(self.pool.conninfo)} is not migrated, or only partly "
                f"({_first_line(exc)}): run `itrack db upgrade --dsn ...`"
            ) from None
        except pg_errors.InsufficientPrivilege as exc:  # grants, not a rule (`_refusals`)
            raise StoreError(
                f"PostgreSQL refused {self.role}: {_first_line(exc)} (the migrations grant "
                "what each role needs: run `itrack db upgrade --dsn ...`)"
            ) from None
        except psycopg.DataError as exc:  # a value PostgreSQL cannot hold, e.g. a NUL in text
            raise UserError(f"invalid input: {_first_line(exc)}") from None

    def _act(self, conn: psycopg.Connection, run_id: str) -> None:
        """One round trip: the role (= set local role; a name from ROLES, never input), the
        caller's claims and the audit stamps, for this transaction. A connecting user who may
        not take the role, or a database without it, is one line naming the role."""
        settings = [self.role, json.dumps(self.claims), run_id, HISTORY_SOURCE]
        bounded = ", set_config('lock_timeout', %s, true)" if self.lock_wait is not None else ""
        if self.lock_wait is not None:
            settings.append(f"{lock_timeout_ms(self.lock_wait)}ms")
        try:
            conn.execute(
                "select set_config('role', %s, true),"
                " set_config('request.jwt.claims', %s, true),"
                " set_config('itrack.run_id', %s, true),"
                f" set_config('itrack.source', %s, true){bounded}",
                settings,
            )
        except pg_errors.InsufficientPrivilege as exc:
            user = conn.info.user
            raise StoreError(
                f"PostgreSQL user {user} cannot act as {self.role}: {_first_line(exc)} "
                f"(grant it: `grant {self.role} to {user}`; Supabase's postgres user has it)"
            ) from None
        except pg_errors.InvalidParameterValue as exc:  # e.g. role "service_role" does not exist
            raise StoreError(
                f"PostgreSQL cannot act as {self.role}: {_first_line(exc)} (plain PostgreSQL: "
                "run `itrack db upgrade --dsn ... --auth-shim`, which creates Supabase's roles)"
            ) from None


def lock_timeout_ms(seconds: float) -> int:
    """A wait for a row lock as PostgreSQL's `lock_timeout` (milliseconds): 0 is its "for
    ever", so no wait at all is 1 ms; it holds at most INT_MAX ms (24.8 days), so a longer
    wait (`--wait inf` among them, which the embedded store takes as for ever) is that."""
    return max(1, round(min(seconds * 1000, PG_MAX_LOCK_TIMEOUT_MS)))


def _configure(conn: psycopg.Connection) -> None:
    """Every pooled connection: UTC (timestamps are naive UTC in the contract)."""
    conn.execute("set timezone to 'UTC'")
    conn.commit()
