"""The nightly extract: rows changed in the operational PostgreSQL store, into the raw store.

`itrack ingest postgresql://...` (and `itrack build --from postgresql://...`) run this. Per
table it pulls the rows whose change stamp is past the last successful extract's watermark,
minus a safety overlap (a transaction still open at the last extract may commit rows stamped
before its watermark), and the status history, corrections and deletions recorded since. Every
stamp is the server's clock when the row was written (`_changed_at`, set by a trigger whatever
the writer sends; the history's `recorded_at` and `deleted_at`, written by triggers), never a
business time a writer sets (`updated_at`, `created_at`, a correction's `recorded_at`): a row
backfilled with an old time, or dated in the future, is extracted like any other. The
transfer is bulk: one `COPY (select <contract columns> ...) TO STDOUT (format csv)` per table,
in one read-only repeatable-read transaction (every table from the same snapshot), streamed to
a local CSV file that DuckDB turns into Parquet (typed so each value reads as its JSON value),
which the ordinary ingest run then reads. So database rows pass the same contract checks,
quarantine and audit as files; the quarantine and `ingest_files` name the table they came from
(`postgresql://host:port/db#interview_stages`) and the row's id.

Safe to kill and to repeat: the rows, the status history and the new watermarks are written in
the ingest run's single transaction; a killed extract leaves the raw store and the watermarks
as they were, and rows pulled twice (the overlap) are merged as unchanged.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ingest.checksum import sha256_of
from ingest.contract import LOAD_ORDER, MODELS, TABLES, InterviewStatus
from ingest.errors import UserError
from ingest.inputs import InputFile
from ingest.interrupts import interruptible
from ingest.load import Progress, RunSummary, ingest_inputs, reached
from ingest.migrate import connect_within, display_dsn
from ingest.readers import MAX_RECORD_BYTES
from ingest.stamps import utc_now
from ingest.store.duckdb.store import connect_waiting, raw_store_path

DATABASE_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_OVERLAP = dt.timedelta(minutes=15)
HISTORY = "interview_status_history"
CORRECTIONS = "corrections"
DELETIONS = "deleted_rows"


@dataclass(frozen=True)
class Log:
    """An append-only table of the operational store pulled as typed CSV (not through the
    contract): rows `stamp`ed after the watermark, in `id` order."""

    table: str
    stamp: str
    columns: dict[str, str]  # name -> DuckDB type
    computed: dict[str, str] = field(default_factory=dict)  # name -> PostgreSQL expression

    def copy_out(self) -> str:
        picks = ", ".join(self.computed.get(name, name) for name in self.columns)
        return f"select {picks} from public.{self.table}"


# The change stamp of the contract tables (migration 20261127090100_change_stamps).
CHANGED_AT = "_changed_at"

LOGS = (
    Log(
        HISTORY,
        "recorded_at",  # the server's clock: only a trigger writes the history
        {
            "id": "BIGINT",
            "interview_process_id": "UUID",
            "from_status": "VARCHAR",
            "to_status": "VARCHAR",
            "changed_at": "TIMESTAMPTZ",
            "run_id": "VARCHAR",
            "source": "VARCHAR",
            "recorded_at": "TIMESTAMPTZ",
        },
    ),
    Log(
        CORRECTIONS,
        CHANGED_AT,  # recorded_at is the writer's (a service run's time, a client's value)
        {
            "run_id": "VARCHAR",
            "record_kind": "VARCHAR",
            "record_id": "VARCHAR",
            "interview_process_id": "VARCHAR",
            "field": "VARCHAR",
            "old_value": "VARCHAR",
            "new_value": "VARCHAR",
            "reason": "VARCHAR",
            "changed_by": "VARCHAR",
            "recorded_at": "TIMESTAMPTZ",
        },
    ),
    Log(
        DELETIONS,
        "deleted_at",  # the server's clock: only a trigger writes deletions
        {
            "table_name": "VARCHAR",
            "record_id": "VARCHAR",
            "deleted_at": "TIMESTAMPTZ",
            "gone": "BOOLEAN",
        },
        # Whether the id is absent from the source in the extract's snapshot: only then is it
        # deleted from the raw store. An id inserted again (or changed back) after its deletion
        # is there, and the raw store keeps it, whatever the row's timestamps say (they are
        # business times a writer sets, not when the row came back).
        {
            "gone": "case table_name"
            + "".join(
                f" when '{table}' then not exists (select 1 from public.{table} x"
                f" where x.id = record_id{cast})"
                for table, cast in (
                    ("candidates", ""),
                    ("interview_processes", "::uuid"),
                    ("interview_stages", "::uuid"),
                )
            )
            + " end"
        },
    ),
)


class ExtractError(UserError):
    """The source database cannot be read as an itrack operational store (exit 2)."""


def is_database_url(text: str) -> bool:
    return str(text).startswith(DATABASE_SCHEMES)


@dataclass
class ExtractSummary:
    source: str
    run: RunSummary
    pulled: dict[str, int] = field(default_factory=dict)  # table -> rows pulled
    history_added: int = 0
    corrections_added: int = 0
    deleted: dict[str, int] = field(default_factory=dict)  # raw-store table -> rows deleted
    watermarks: dict[str, dt.datetime | None] = field(default_factory=dict)

    @property
    def still_refused(self) -> int:
        """Rows pulled again (the overlap) and refused again as an earlier run quarantined
        them: that entry stays, and they are no reject of this run."""
        return self.run.still_refused


def source_name(dsn: str) -> str:
    """The database as `postgresql://user@host:port/dbname`: no password, stable per source. A
    malformed DSN is refused by the one rule for every command (`check_dsn`: its password
    masked; this check of its own echoed it)."""
    from ingest.migrate import check_dsn

    return display_dsn(check_dsn(dsn))


def read_watermarks(
    db: Path | str, source: str, wait_seconds: float = 0.0
) -> dict[str, dt.datetime]:
    """The last successful extract's watermark per table (none before the first), waiting up
    to `wait_seconds` while another writer has the raw store open, as the ingest run that
    follows does: `--wait` covers the whole extract."""
    return _read_state(db, source, wait_seconds)[0]


def _read_state(
    db: Path | str, source: str, wait_seconds: float
) -> tuple[dict[str, dt.datetime], frozenset[str]]:
    """The watermarks of the source and the runs that wrote them (`_written_runs`)."""
    path = raw_store_path(db)
    if not path.exists():
        return {}, frozenset()
    con = connect_waiting(path, wait_seconds)
    try:
        exists = con.execute(
            "select count(*) from information_schema.tables where table_name = 'extract_watermarks'"
        ).fetchone()[0]
        if not exists:
            return {}, frozenset()
        rows = con.execute(
            "select table_name, watermark from extract_watermarks where source = ?", [source]
        ).fetchall()
        runs = _written_runs(con, source)
    finally:
        con.close()
    return {table: mark for table, mark in rows if mark is not None}, runs


def _written_runs(con: duckdb.DuckDBPyConnection, source: str) -> frozenset[str]:
    rows = con.execute(
        "select distinct run_id from extract_watermarks where source = ?", [source]
    ).fetchall()
    return frozenset(run for (run,) in rows)


def _staging(raw_store: Path) -> tempfile.TemporaryDirectory[str]:
    """The private folder an extract stages the pulled tables in (names, notes: personal
    data): beside the raw store they go into, `.<store>.extract-<pid>-*`, not the system's
    temporary folder, where an extract killed mid-way left them for good. Such leftovers (their
    process gone) are removed first; a running extract's are left alone."""
    prefix = f".{raw_store.name}.extract-"
    for left in raw_store.parent.glob(f"{prefix}*-*"):
        pid = left.name.removeprefix(prefix).split("-")[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(left, ignore_errors=True)
    raw_store.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-", dir=raw_store.parent)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running
        return True
    return True


def extract(
    dsn: str,
    db: Path | str,
    wait_seconds: float = 0.0,
    progress: Progress | None = None,
    overlap: dt.timedelta = DEFAULT_OVERLAP,
    full: bool = False,
) -> ExtractSummary:
    """Pull the changes since the last extract from `dsn` into the raw store beside `db`."""
    source = source_name(dsn)
    previous, runs = _read_state(db, source, wait_seconds)
    if full:
        previous = {}
    with _staging(raw_store_path(db)) as folder:
        pulled, marks, columns = _pull(dsn, Path(folder), previous, overlap, wait_seconds)
        reached("pulled")  # (the fault tests' hook: another extract may commit from here)
        files = []
        for kind in LOAD_ORDER:
            if not pulled[TABLES[kind]]:  # a table without changes is not an empty file
                continue
            parquet = _to_parquet(Path(folder), kind, columns[kind])
            files.append(
                InputFile(
                    parquet, kind, "parquet", sha256_of(parquet), origin=f"{source}#{TABLES[kind]}"
                )
            )
        summary = ExtractSummary(source, RunSummary(""), pulled)
        start, finish = _finisher(source, Path(folder), marks, summary, runs)
        summary.run = ingest_inputs(
            files,
            db,
            wait_seconds,
            progress,
            force=True,
            derive_history=False,
            before_commit=finish,
            before_merge=start,
            refused_again_once=True,  # the overlap pulls rows again
        )
    summary.watermarks = marks
    return summary


# -- reading PostgreSQL -----------------------------------------------------------------------


# How a PostgreSQL column of the contract leaves the database (text in CSV) and how DuckDB
# types it in the Parquet file the ingest reads, so that every value reads back as the JSON
# value a JSON Lines export would hold: timestamps as ISO 8601 text, offer details as an
# object, interviewer names as a list, numbers as numbers, the rest as text.
_OUT = {
    "timestamp with time zone": ("to_json({c}) #>> '{{}}'", "VARCHAR", "{c}"),
    "jsonb": ("{c}::text", "VARCHAR", "json_transform({c}, '\"MAP(VARCHAR, JSON)\"')"),
    "ARRAY": ("to_json({c})::text", "VARCHAR", "{c}::json::varchar[]"),
    "integer": ("{c}", "BIGINT", "{c}"),
    "smallint": ("{c}", "BIGINT", "{c}"),
}
_TEXT = ("{c}", "VARCHAR", "{c}")

# How DuckDB reads what PostgreSQL's COPY (format csv) wrote, for the contract tables and the
# logs alike: no header, the types given; an unquoted empty field is NULL and a quoted one ("")
# the empty string, as COPY writes them (DuckDB's default reads both as NULL). A row may be as
# long as a record of a file (MAX_RECORD_BYTES), not DuckDB's default 2,000,000 bytes: the
# contract allows 2,000,000 characters in a text field, up to 4 bytes each, and CSV doubles
# every quote, so one valid stage can be several times that default.
_CSV_OPTIONS = (
    "header = false, auto_detect = false, allow_quoted_nulls = false,"
    f" max_line_size = {MAX_RECORD_BYTES}"
)


def _column_types(conn: Any, kind: str) -> dict[str, str]:
    """The contract's columns of a table with their PostgreSQL types (nothing else leaves)."""
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = 'public' and table_name = %s",
        [TABLES[kind]],
    ).fetchall()
    types = dict(rows)
    return {name: types.get(name, "text") for name in MODELS[kind].model_fields}


def _csv_select(kind: str, columns: dict[str, str]) -> str:
    picks = ", ".join(_OUT.get(t, _TEXT)[0].format(c=c) for c, t in columns.items())
    return f"select {picks} from public.{TABLES[kind]}"


def _to_parquet(folder: Path, kind: str, columns: dict[str, str]) -> Path:
    """The pulled CSV of a contract table as Parquet (DuckDB's fastest input for the ingest)."""
    csv, parquet = folder / f"{kind}.csv", folder / f"{kind}.parquet"
    types = ", ".join(f"'{c}': '{_OUT.get(t, _TEXT)[1]}'" for c, t in columns.items())
    picks = ", ".join(f"{_OUT.get(t, _TEXT)[2].format(c=c)} as {c}" for c, t in columns.items())
    con = interruptible(duckdb.connect())
    try:
        con.execute(
            f"copy (select {picks} from read_csv(?, {_CSV_OPTIONS}, columns = {{{types}}}))"
            f" to '{parquet}' (format parquet)",
            [str(csv)],
        )
    finally:
        con.close()
    csv.unlink()
    return parquet


def _pull(
    dsn: str,
    folder: Path,
    previous: dict[str, dt.datetime],
    overlap: dt.timedelta,
    wait_seconds: float,
) -> tuple[dict[str, int], dict[str, dt.datetime | None], dict[str, dict[str, str]]]:
    """Every table's changes as CSV files in `folder`, from one snapshot: rows pulled per
    table, the new watermarks, and the contract tables' column types. Connecting waits as
    long as the command does (`connect_within`)."""
    import psycopg

    pulled: dict[str, int] = {}
    marks: dict[str, dt.datetime | None] = {}
    columns: dict[str, dict[str, str]] = {}
    try:
        conn = connect_within(dsn, wait_seconds)
    except psycopg.OperationalError as exc:
        raise ExtractError(f"cannot connect to {source_name(dsn)}: {_first_line(exc)}") from None
    try:
        with conn:
            conn.execute(
                "set session characteristics as transaction isolation level"
                " repeatable read, read only"
            )
            conn.execute("set timezone = 'UTC'")
            with conn.transaction():
                previous = _trusted(conn, previous)
                for kind in LOAD_ORDER:
                    table = TABLES[kind]
                    since = _since(previous.get(table), overlap)
                    where, params = _where(CHANGED_AT, since)
                    columns[kind] = _column_types(conn, kind)
                    pulled[table] = _copy_out(
                        conn,
                        f"copy ({_csv_select(kind, columns[kind])} {where}) to stdout (format csv)",
                        params,
                        folder / f"{kind}.csv",
                    )
                    marks[table] = _max(conn, table, CHANGED_AT, previous.get(table))
                for log in LOGS:
                    since = _since(previous.get(log.table), overlap)
                    where, params = _where(log.stamp, since)
                    pulled[log.table] = _copy_out(
                        conn,
                        f"copy ({log.copy_out()} {where}) to stdout (format csv)",
                        params,
                        folder / f"{log.table}.csv",
                    )
                    marks[log.table] = _max(conn, log.table, log.stamp, previous.get(log.table))
    except psycopg.errors.UndefinedTable as exc:
        raise ExtractError(
            f"{source_name(dsn)} is not an itrack operational store ({_first_line(exc)}); "
            "run `itrack db upgrade --dsn ...` there first"
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ExtractError(
            f"{source_name(dsn)}: {_first_line(exc)}; the extract needs a role with the "
            "itrack_extract privileges (see README)"
        ) from None
    except psycopg.Error as exc:
        raise ExtractError(f"extract from {source_name(dsn)} failed: {_first_line(exc)}") from None
    return pulled, marks, columns


def _trusted(conn: Any, previous: dict[str, dt.datetime]) -> dict[str, dt.datetime]:
    """The watermarks that can be stamps of this server's clock: one past its clock now was
    taken from a business time (before the change stamps; a row dated in the future moved it
    there), and the table is pulled whole once instead of nothing until that date."""
    (now,) = conn.execute("select clock_timestamp()").fetchone()
    now = now.astimezone(dt.UTC).replace(tzinfo=None)
    return {table: mark for table, mark in previous.items() if mark <= now}


def _since(mark: dt.datetime | None, overlap: dt.timedelta) -> dt.datetime | None:
    return None if mark is None else mark - overlap


def _where(column: str, since: dt.datetime | None) -> tuple[str, list[Any]]:
    if since is None:
        return "", []
    return f"where {column} > %s", [since.replace(tzinfo=dt.UTC)]


def _copy_out(conn: Any, statement: str, params: list[Any], target: Path) -> int:
    """Stream one COPY ... TO STDOUT into `target`; returns the rows copied."""
    with conn.cursor() as cursor, target.open("wb") as out:
        with cursor.copy(statement, params or None) as copy:
            for chunk in copy:
                out.write(chunk)
        return max(cursor.rowcount, 0)


def _max(conn: Any, table: str, column: str, previous: dt.datetime | None) -> dt.datetime | None:
    """The table's latest stamp in the snapshot (its index answers): the next extract pulls
    what was stamped after it, less the overlap. Not kept at the previous mark when lower (the
    latest row deleted): that only pulls a few rows again, and a mark never outruns the clock."""
    (latest,) = conn.execute(f"select max({column}) from public.{table}").fetchone()
    if latest is None:
        return previous
    return latest.astimezone(dt.UTC).replace(tzinfo=None)


# -- writing the raw store (inside the ingest run's transaction) ------------------------------


_Hook = Callable[[duckdb.DuckDBPyConnection, RunSummary], None]


def _finisher(
    source: str,
    folder: Path,
    marks: dict[str, dt.datetime | None],
    summary: ExtractSummary,
    runs: frozenset[str],
) -> tuple[_Hook, _Hook]:
    """What the extract writes in the ingest run's transaction: the logs read and the source's
    deletions applied before the rows merge (a row taking a deleted row's stage order or id
    then merges against a store without it), the rest after.

    First, that no other extract of the source was written since this one read its
    watermarks (`runs`): two at once (a nightly job and a hand-run one) pull concurrently and
    wait for the raw store in turn, and the second to write may hold the older snapshot, whose
    rows would bring back what the other's deletions removed and whose watermarks would move
    back. The second writes nothing; the next extract goes on from the first's watermarks."""

    def start(con: duckdb.DuckDBPyConnection, run: RunSummary) -> None:
        written = _written_runs(con, source) - runs
        if written:
            raise ExtractError(
                f"another extract from {source} (run {', '.join(sorted(written))}) was written "
                "while this one pulled: nothing of this run was written; the next extract goes "
                "on from its watermarks"
            )
        for log in LOGS:
            _read_log(con, log, folder / f"{log.table}.csv")
        summary.deleted = _apply_deletions(con, source, run.run_id)

    def finish(con: duckdb.DuckDBPyConnection, run: RunSummary) -> None:
        summary.history_added = _load_history(con, run.run_id, source)
        summary.corrections_added = _load_corrections(con, run.run_id)
        _save_watermarks(con, source, marks, run.run_id)
        for log in LOGS:
            con.execute(f"drop table pulled_{log.table}")

    return start, finish


def _read_log(con: duckdb.DuckDBPyConnection, log: Log, csv: Path) -> None:
    """The pulled rows of a log as temp table `pulled_<table>`, typed as the log declares."""
    columns = ", ".join(f"{name} {kind}" for name, kind in log.columns.items())
    con.execute(f"create or replace temp table pulled_{log.table} ({columns})")
    if csv.stat().st_size:
        types = ", ".join(f"'{name}': '{kind}'" for name, kind in log.columns.items())
        con.execute(
            f"insert into pulled_{log.table} select * from read_csv(?, {_CSV_OPTIONS},"
            f" columns = {{{types}}})",
            [str(csv)],
        )


# A raw-store row is deleted when the source deleted it (or changed its id) and the id is not
# at the source in the extract's snapshot (an id deleted and then inserted again stays).
_DELETED_TABLES = ("interview_stages", "interview_processes", "candidates")


def _apply_deletions(con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, int]:
    """Delete from the raw store what the source deleted (children first), and note each
    deletion in `source_deletions`; status history and corrections are kept. A row of the
    source refused earlier and still waiting in the quarantine is resolved by its deletion:
    nothing is left to fix, and an orphan must not load from the quarantine once its parent
    arrives (the ingest run drops its retry)."""
    con.execute(
        """
        update quarantine q set resolved_run_id = $run
        where q.resolved_run_id is null and exists (
            select 1 from pulled_deleted_rows d
            where d.gone and q.file_path = $source || '#' || d.table_name
              and q.record_id = d.record_id)
        """,
        {"source": source, "run": run_id},
    )
    deleted = {}
    for table in _DELETED_TABLES:
        (deleted[table],) = con.execute(
            f"""
            delete from {table} t where exists (
                select 1 from pulled_deleted_rows d
                where d.gone and d.table_name = $table
                  and d.record_id = cast(t.id as varchar))
            """,
            {"table": table},
        ).fetchone()
    con.execute(
        """
        insert into source_deletions
        select distinct $source, d.table_name, d.record_id, timezone('UTC', d.deleted_at), $run
        from pulled_deleted_rows d
        where not exists (
            select 1 from source_deletions o
            where o.source = $source and o.table_name = d.table_name
              and o.record_id = d.record_id and o.deleted_at = timezone('UTC', d.deleted_at))
        """,
        {"source": source, "run": run_id},
    )
    return {table: int(n) for table, n in deleted.items() if n}


def _load_corrections(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """The source's corrections not yet in the raw store (the same row: same record, field,
    reason and time; the overlap pulls some twice). Kept for deleted processes too."""
    (added,) = con.execute(
        """
        insert into corrections (run_id, record_kind, record_id, interview_process_id, field,
            old_value, new_value, reason, changed_by, recorded_at)
        select distinct coalesce(c.run_id, $run), c.record_kind, c.record_id,
               c.interview_process_id, c.field, c.old_value, c.new_value, c.reason,
               c.changed_by, timezone('UTC', c.recorded_at)
        from pulled_corrections c
        where not exists (
            select 1 from corrections o
            where o.record_kind = c.record_kind and o.record_id = c.record_id
              and o.field = c.field and o.reason = c.reason
              and o.recorded_at = timezone('UTC', c.recorded_at))
        """,
        {"run": run_id},
    ).fetchone()
    return int(added)


def _load_history(con: duckdb.DuckDBPyConnection, run_id: str, source: str) -> int:
    """The source's status-history rows not yet in the raw store, for processes it holds or
    that were deleted at the source (their history stays, as everywhere).

    Rows land as recorded by the `service` (written live by the operational store, as the
    service's own rows are; `ingest` marks rows inferred from snapshots), or as `correction`
    when an amend or reopen wrote them. A row is the same
    row when process, from, to and time agree (the overlap pulls some twice).
    A row whose process is not in the raw store (quarantined) is quarantined as
    `orphan_history` once, and retried by every later extract from the same source until its
    process arrives (or is deleted there); a status outside the contract is quarantined for good.
    """
    origin = f"{source}#{HISTORY}"
    statuses = ", ".join(f"'{s.value}'" for s in InterviewStatus)
    waiting = """kind = 'history' and file_path = $origin and resolved_run_id is null
        and error_code = 'orphan_history'"""
    con.execute(
        f"""
        insert into pulled_interview_status_history
        select (j->>'id')::bigint, (j->>'interview_process_id')::uuid, j->>'from_status',
               j->>'to_status', (j->>'changed_at')::timestamptz, j->>'run_id', j->>'source',
               (j->>'recorded_at')::timestamptz
        from (select raw_payload::json as j, * from quarantine)
        where {waiting}
          and record_id not in (select id::varchar from pulled_interview_status_history)
        """,
        {"origin": origin},
    )
    known = """(h.interview_process_id in (select id from interview_processes)
        or cast(h.interview_process_id as varchar) in (
            select record_id from source_deletions
            where source = $source and table_name = 'interview_processes'))"""
    valid_status = f"""h.to_status in ({statuses})
        and (h.from_status is null or h.from_status in ({statuses}))"""
    con.execute(
        f"""
        insert into quarantine
        select $run, $origin, null, 'history', h.id::varchar, to_json(h)::varchar,
               case when not ({valid_status}) then 'invalid_status' else 'orphan_history' end,
               case when not ({valid_status}) then 'to_status' else 'interview_process_id' end,
               case when not ({valid_status})
                    then 'status ' || coalesce(h.to_status, 'null') || ' is not in the contract'
                    else 'interview process ' || h.interview_process_id || ' is not in the raw '
                         || 'store (quarantined); retried by the next extract'
               end,
               false, null, $now
        from pulled_interview_status_history h
        where (not ({valid_status}) or not {known})
          and h.id::varchar not in (
              select record_id from quarantine where kind = 'history' and file_path = $origin)
        """,
        {"run": run_id, "origin": origin, "now": utc_now(), "source": source},
    )
    (added,) = con.execute(
        f"""
        insert into interview_status_history
        select h.interview_process_id, h.from_status, h.to_status,
               timezone('UTC', h.changed_at), coalesce(h.run_id, $run),
               case when h.source = 'correction' then 'correction' else 'service' end,
               timezone('UTC', h.recorded_at)
        from pulled_interview_status_history h
        where {known} and {valid_status}
          and not exists (
            select 1 from interview_status_history o
            where o.interview_process_id = h.interview_process_id
              and o.from_status is not distinct from h.from_status
              and o.to_status = h.to_status
              and o.changed_at = timezone('UTC', h.changed_at))
        """,
        {"run": run_id, "source": source},
    ).fetchone()
    con.execute(
        f"""
        update quarantine set resolved_run_id = $run
        where {waiting} and record_id in (
            select h.id::varchar from pulled_interview_status_history h where {known})
        """,
        {"run": run_id, "origin": origin, "source": source},
    )
    return int(added)


def _save_watermarks(
    con: duckdb.DuckDBPyConnection,
    source: str,
    marks: dict[str, dt.datetime | None],
    run_id: str,
) -> None:
    for table, mark in marks.items():
        con.execute(
            "insert or replace into extract_watermarks (source, table_name, watermark, run_id,"
            " updated_at) values (?, ?, ?, ?, ?)",
            [source, table, mark, run_id, utc_now()],
        )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
