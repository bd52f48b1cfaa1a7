"""The raw store: where ingest and the service API write, and the lock that serialises writers.

Layout (see README "Where the data lives"):
- the *warehouse* (`--db` / `ITRACK_DB`, default `data/warehouse.duckdb`) is what analysts open
  read-only; `itrack build` publishes it atomically and never writes to it in place;
- the *raw store* beside it (`<warehouse stem>.raw.duckdb`) holds the raw tables, the
  quarantine, the audit of runs and the status history; only one writer at a time, serialised by
  a lock file that names its holder's PID.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ingest.errors import StoreBusyError, StoreError, StoreMissingError

# Writers wait this long for another writer before reporting "busy" (`--wait` overrides it).
DEFAULT_WAIT_SECONDS = 30.0


def raw_store_path(db: Path | str) -> Path:
    """The raw store beside warehouse `db`: `<warehouse stem>.raw.duckdb`."""
    warehouse = Path(db)
    return warehouse.with_name(f"{warehouse.stem}.raw.duckdb")


SCHEMA = """
create table if not exists candidates (
    id varchar primary key,
    full_name varchar not null,
    feeder_source varchar,
    current_company varchar,
    linkedin_url varchar,
    created_at timestamp not null,
    updated_at timestamp not null,
    _run_id varchar not null,
    _loaded_at timestamp not null
);
create table if not exists interview_processes (
    id uuid primary key,
    candidate_id varchar not null,
    company_name varchar not null,
    role_title varchar not null,
    status varchar not null,
    feeder_source varchar,
    recruiter_name varchar,
    final_outcome varchar,
    offer_details json,
    created_at timestamp not null,
    updated_at timestamp not null,
    _run_id varchar not null,
    _loaded_at timestamp not null
);
create table if not exists interview_stages (
    id uuid primary key,
    interview_process_id uuid not null,
    stage_name varchar not null,
    stage_order integer not null,
    scheduled_date timestamp,
    completed_date timestamp,
    outcome varchar not null,
    overall_rating integer,
    technical_rating integer,
    culture_fit_rating integer,
    communication_rating integer,
    feedback_notes varchar,
    interviewer_names varchar[] not null,
    next_steps varchar,
    created_at timestamp not null,
    updated_at timestamp not null,
    _run_id varchar not null,
    _loaded_at timestamp not null
);
create table if not exists interview_status_history (
    interview_process_id uuid not null,
    from_status varchar,
    to_status varchar not null,
    changed_at timestamp not null,
    run_id varchar not null,
    source varchar not null,
    recorded_at timestamp not null
);
create table if not exists ingest_runs (
    run_id varchar primary key,
    command varchar not null,
    status varchar not null,
    started_at timestamp not null,
    finished_at timestamp,
    rows_read bigint not null default 0,
    accepted bigint not null default 0,
    rejected bigint not null default 0,
    stale bigint not null default 0,
    unchanged bigint not null default 0
);
create table if not exists ingest_files (
    run_id varchar not null,
    file_path varchar not null,
    kind varchar not null,
    format varchar not null,
    sha256 varchar not null,
    skipped boolean not null,
    rows_read bigint not null,
    inserted bigint not null,
    updated bigint not null,
    unchanged bigint not null,
    stale bigint not null,
    rejected bigint not null,
    size_bytes bigint,
    mtime_ns bigint
);
-- stores created before the skip check by size and mtime
alter table ingest_files add column if not exists size_bytes bigint;
alter table ingest_files add column if not exists mtime_ns bigint;
create table if not exists quarantine (
    run_id varchar not null,
    file_path varchar,
    line_number bigint,
    kind varchar not null,
    record_id varchar,
    raw_payload varchar,
    error_code varchar not null,
    field varchar,
    error_message varchar not null,
    retryable boolean not null,
    resolved_run_id varchar,
    quarantined_at timestamp not null
);
create table if not exists corrections (
    run_id varchar not null,
    record_kind varchar not null,
    record_id varchar not null,
    interview_process_id varchar not null,
    field varchar not null,
    old_value varchar,
    new_value varchar,
    reason varchar not null,
    changed_by varchar not null,
    recorded_at timestamp not null
);
create table if not exists extract_watermarks (
    source varchar not null,
    table_name varchar not null,
    watermark timestamp,
    run_id varchar not null,
    updated_at timestamp not null,
    primary key (source, table_name)
);
create table if not exists feedback_runs (
    run_id varchar not null,
    feeder_source varchar not null,
    metrics json not null,
    written_at timestamp not null
);
create table if not exists extract_watermarks (
    source varchar not null,
    table_name varchar not null,
    watermark timestamp,
    run_id varchar not null,
    updated_at timestamp not null,
    primary key (source, table_name)
);
create table if not exists feedback_state (
    key varchar primary key,
    value varchar not null,
    updated_at timestamp not null
);
"""


@contextmanager
def store_lock(path: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Exclusive writer lock on the raw store; busy -> StoreBusyError naming the holder's PID."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+")  # noqa: SIM115 - held for the whole block
    except OSError as exc:
        raise StoreError(f"cannot create lock file {lock_path}: {exc.strerror}") from exc
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise StoreBusyError(
                        f"database is busy (held by PID {holder}): {path}; "
                        "retry later or pass --wait SECONDS"
                    ) from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock


def connect(
    path: Path, read_only: bool = False, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file, turning lock conflicts and I/O failures into one-line errors.

    `memory_limit` bounds DuckDB's memory whatever the file size (it spills to disk beyond it).
    """
    config = {"memory_limit": memory_limit} if memory_limit else {}
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        message = str(exc)
        if "lock" in message.lower():
            found = re.search(r"PID (\d+)", message)
            pid = found.group(1) if found else "?"
            raise StoreBusyError(f"database is busy (held by PID {pid}): {path}") from None
        raise StoreError(f"cannot open {path}: {message.splitlines()[0]}") from None
    except (OSError, duckdb.Error) as exc:
        raise StoreError(f"cannot open {path}: {str(exc).splitlines()[0]}") from None


@contextmanager
def open_store(
    db: Path | str,
    wait_seconds: float = 0.0,
    read_only: bool = False,
    create: bool = True,
    memory_limit: str | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The raw store beside warehouse `db`. Callers own their transactions.

    Writers (`read_only=False`) hold the writer lock and get the schema ensured; with
    `create=False` a missing store is an error instead of a new empty file. Readers never
    create anything (not even the folder or the lock file) and never take the writer lock: they
    open the file read-only, waiting up to `wait_seconds` while a writer has it open (DuckDB lets
    no other process open a file that one process writes).
    """
    path = raw_store_path(db)
    if (read_only or not create) and not path.exists():
        raise StoreMissingError(
            f"no raw store at {path}: check --db (or $ITRACK_DB), or load data first "
            "with `itrack ingest` / `itrack build PATH`"
        )
    if read_only:
        con = connect_waiting(path, wait_seconds)
        try:
            yield con
        finally:
            con.close()
        return
    with store_lock(path, wait_seconds):
        con = connect(path, memory_limit=memory_limit)
        try:
            con.execute(SCHEMA)
            yield con
        finally:
            con.close()


def connect_waiting(path: Path, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """A read-only connection, retried while a writer holds the file (up to `wait_seconds`)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return connect(path, read_only=True)
        except StoreBusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
