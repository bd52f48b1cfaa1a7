"""The raw store: where ingest and the service API write, and the lock that serialises writers.

Layout (see README "Where the data lives"):
- the *warehouse* (`--db` / `ITRACK_DB`, default `data/warehouse.duckdb`) is what analysts open
  read-only; `itrack build` publishes it atomically and never writes to it in place;
- the *raw store* beside it (`<warehouse stem>.raw.duckdb`) holds the raw tables, the
  quarantine, the audit of runs and the status history; only one writer at a time, serialised by
  a lock file that names its holder's PID.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.errors import StoreBusyError, StoreError, StoreMissingError
from ingest.interrupts import interruptible
from ingest.migrate import discover, upgrade_duckdb
from ingest.pidlock import pid_lock

if TYPE_CHECKING:
    import duckdb

# Writers wait this long for another writer before reporting "busy" (`--wait` overrides it).
DEFAULT_WAIT_SECONDS = 30.0


RAW_SUFFIX = ".raw.duckdb"
# Beside a raw store while `itrack restore` fills its replacement (backup.py), only ever under
# the raw store's writer lock; here, not there, so that `store_lock` and what checks a warehouse
# location need not import the backup module.
RESTORING_SUFFIX = ".restoring"


def raw_store_path(db: Path | str) -> Path:
    """The raw store beside warehouse `db`: `<warehouse stem>.raw.duckdb`."""
    warehouse = Path(db)
    return warehouse.with_name(warehouse.stem + RAW_SUFFIX)


def location(warehouse: Path | str) -> Path:
    """One warehouse location however it is spelled: absolute, with the symlinks and `..` of its
    folder resolved (what a build keys its fingerprint and notes by, and hands dbt). The file
    name is kept, not followed if it is a symlink: every command finds the raw store, the lock
    files and `.build/` beside that name, and the build publishes by renaming its new file over
    that entry (replacing a link, not writing through it); following the link would put the
    build's raw store and notes beside the target, where no other command looks. Here, beside
    `raw_store_path`, so that a backup's manifest names its raw store by the same rule."""
    path = Path(warehouse).absolute()
    return path.parent.resolve() / path.name


def warehouse_beside(raw_store: Path) -> Path:
    """The warehouse whose raw store `raw_store` is, as `raw_store_path` names it from a
    `.duckdb` warehouse (the usual spelling; `raw_store_path` drops any suffix)."""
    return raw_store.with_name((raw_store.name.removesuffix(RAW_SUFFIX) or "warehouse") + ".duckdb")


def restore_staging(raw_store: Path) -> Path:
    """Where a restore fills the replacement of `raw_store` before renaming it over it."""
    return raw_store.with_name(raw_store.name + RESTORING_SUFFIX)


def remove_database(path: Path) -> None:
    """A DuckDB file and its WAL (a killed writer's), if there."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)


MIGRATIONS = Path(__file__).parent / "migrations"
# Every migration's SQL in order: the whole schema, for in-memory and test databases. A raw
# store on disk is created and upgraded by `upgrade` (versioned, recorded, never at a read).
SCHEMA = "\n".join(m.sql for m in discover(MIGRATIONS))


def upgrade(
    con: duckdb.DuckDBPyConnection, report: Callable[[str], None] | None = None
) -> list[str]:
    """Apply the raw store's pending migrations (the caller holds the writer lock)."""
    return upgrade_duckdb(con, MIGRATIONS, report)


def upgrade_store(
    db: Path | str,
    wait_seconds: float = 0.0,
    report: Callable[[str], None] | None = None,
    create: bool = False,
) -> list[str]:
    """`itrack db upgrade`: upgrade the raw store beside warehouse `db`; a missing one only
    with `create` (an upgrade of a mistyped --db made a new empty store and said "applied")."""
    path = raw_store_path(db)
    if not create:
        require_store(path, "or pass --create to make a new, empty one")
    with store_lock(path, wait_seconds):
        con = connect(path)
        try:
            return upgrade(con, report)
        finally:
            con.close()


LOAD_FIRST = "or load data first with `itrack ingest` / `itrack build PATH`"


def require_store(path: Path, remedy: str = LOAD_FIRST) -> None:
    """The one refusal of a missing raw store (a mistyped --db), naming it and the `remedy`."""
    if not path.exists():
        raise StoreMissingError(f"no raw store at {path}: check --db (or $ITRACK_DB), {remedy}")


@contextmanager
def store_lock(
    path: Path,
    wait_seconds: float = 0.0,
    what: str = "database",
    busy_error: type[StoreBusyError] = StoreBusyError,
) -> Iterator[None]:
    """Exclusive writer lock on the raw store; busy -> `busy_error` naming the holder's PID (a
    lock of its own kind raises its own subclass, which a caller tells from other busy errors).

    Once held, a restore's staging file beside the store (`restore_staging`) is a leftover of
    a killed restore (a live one holds this lock): the next writer, whichever it is (restore,
    build, ingest, ...), removes it. The build lock's file has none beside it."""
    lock_path = path.with_name(path.name + ".lock")

    def busy(holder: str) -> Exception:
        return busy_error(
            f"{what} is busy (held by PID {holder}): {path}; retry later or pass --wait SECONDS"
        )

    def cannot_open(exc: OSError) -> Exception:
        return StoreError(f"cannot create lock file {lock_path}: {exc.strerror}")

    with pid_lock(lock_path, wait_seconds, busy, cannot_open):
        remove_database(restore_staging(path))
        yield


def connect(
    path: Path, read_only: bool = False, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file, turning lock conflicts and I/O failures into one-line errors.

    `memory_limit` bounds DuckDB's memory whatever the file size (it spills to disk beyond it).
    """
    import duckdb  # here, not at the top: a no-op build never opens a store (0.1 s of its start)

    config = {"memory_limit": memory_limit} if memory_limit else {}
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        return interruptible(duckdb.connect(str(path), read_only=read_only, config=config))
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

    Writers (`read_only=False`) hold the writer lock and apply any pending migration first
    (nothing at all when the store is current); with
    `create=False` a missing store is an error instead of a new empty file. Readers never
    create anything (not even the folder or the lock file) and never take the writer lock: they
    open the file read-only, waiting up to `wait_seconds` while a writer has it open (DuckDB lets
    no other process open a file that one process writes).
    """
    path = raw_store_path(db)
    if read_only or not create:
        require_store(path)
    if read_only:
        con = connect_waiting(path, wait_seconds)
        try:
            yield con
        finally:
            con.close()
        return
    with store_lock(path, wait_seconds):
        # a reader may have the file open (DuckDB then lets no process write it): wait for it
        # as readers wait for a writer, rather than fail at once naming the reader
        con = connect_waiting(path, wait_seconds, read_only=False, memory_limit=memory_limit)
        try:
            upgrade(con)  # versioned migrations; no DDL when the store is current
            yield con
        finally:
            con.close()


def connect_waiting(
    path: Path, wait_seconds: float, read_only: bool = True, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection (read-only by default), retried while another process holds the file in a
    way that excludes it (a writer; for a writer, a reader too) up to `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return connect(path, read_only=read_only, memory_limit=memory_limit)
        except StoreBusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
