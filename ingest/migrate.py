"""Versioned, re-runnable schema migrations for both stores (PostgreSQL and the DuckDB raw store).

A migration is a plain SQL file `<version>_<name>.sql` (the Supabase CLI's layout: the version
is a UTC timestamp `YYYYMMDDHHMMSS`), applied once, in version order, each in its own
transaction together with the ledger row that records it. Running the upgrade again applies
only what is missing; files are never edited once released (the DuckDB ledger keeps a checksum
and refuses an edited file; the PostgreSQL ledger is the Supabase CLI's own
`supabase_migrations.schema_migrations`, so `supabase db push` and `itrack db upgrade` agree on
what has been applied).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import UserError

if TYPE_CHECKING:  # imported when used: the embedded store's commands never load psycopg
    import psycopg

_FILE = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")
POSTGRES_MIGRATIONS = Path(__file__).parent / "store" / "postgres" / "migrations"
POSTGRES_AUTH_SHIM = Path(__file__).parent / "store" / "postgres" / "auth_shim.sql"
# Advisory lock key taken while PostgreSQL migrations run: concurrent upgrades queue up.
_PG_LOCK_KEY = 7_311_560_015


class MigrationError(UserError):
    """A migration folder or ledger that cannot be applied as is (exit 2)."""


class InvalidDsn(UserError):
    """A connection string libpq cannot parse (exit 2, refused before any connection)."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version}_{self.name}"


def discover(folder: Path) -> list[Migration]:
    """The migrations in `folder`, in version order; a stray or duplicate file is an error."""
    found: dict[str, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE.fullmatch(path.name)
        if match is None:
            raise MigrationError(
                f"{path}: migration files are named <YYYYMMDDHHMMSS>_<name>.sql "
                "(lowercase name, digits and underscores)"
            )
        version = match["version"]
        if version in found:
            raise MigrationError(f"{path}: version {version} is used by two files")
        found[version] = Migration(version, match["name"], path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def pending(migrations: Iterable[Migration], applied: Iterable[str]) -> list[Migration]:
    done = set(applied)
    return [m for m in migrations if m.version not in done]


# -- PostgreSQL -------------------------------------------------------------------------------

_PG_LEDGER = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
    version text not null primary key
);
alter table supabase_migrations.schema_migrations add column if not exists statements text[];
alter table supabase_migrations.schema_migrations add column if not exists name text;
"""


def upgrade_postgres(
    dsn: str,
    folder: Path = POSTGRES_MIGRATIONS,
    auth_shim: bool = False,
    report: Callable[[str], None] | None = None,
    wait_seconds: float = 10.0,
) -> list[str]:
    """Apply the pending migrations to the database at `dsn`; returns the labels applied.

    `auth_shim` first creates what Supabase provides and plain PostgreSQL lacks (roles anon,
    authenticated, service_role and the auth.uid()/auth.jwt() helpers). Concurrent upgrades
    serialize on an advisory lock; each migration commits with its ledger row or not at all.
    Connecting waits for the server as a command waits (`wait_seconds`, its --wait), and so
    does queueing behind another upgrade (`_lock_within`).
    """
    import psycopg

    check_dsn(dsn)
    migrations = discover(folder)
    applied: list[str] = []
    try:
        conn = connect_within(dsn, wait_seconds, autocommit=True)
    except psycopg.Error as exc:
        raise MigrationError(f"cannot connect to {display_dsn(dsn)}: {_first_line(exc)}") from None
    with conn:
        try:  # the lock too: a connection lost while queued for it is one line as well
            _lock_within(conn, wait_seconds, dsn)
            try:
                _apply_postgres(conn, migrations, auth_shim, applied, report)
            finally:
                if not conn.closed:
                    conn.execute("select pg_advisory_unlock(%s)", [_PG_LOCK_KEY])
        except psycopg.Error as exc:
            done = ", ".join(applied) or "none"
            if conn.closed:  # the server ended the session: its open transaction rolled back
                raise MigrationError(
                    f"lost the connection to {display_dsn(dsn)} during the upgrade: "
                    f"{_first_line(exc)} (applied: {done}; nothing else was written)"
                ) from None
            raise MigrationError(
                f"migration failed on {display_dsn(dsn)}: {_first_line(exc)} "
                f"(applied before the failure: {done})"
            ) from None
    return applied


def _lock_within(conn: Any, wait_seconds: float, dsn: str) -> None:
    """Take the upgrade lock, waiting for another upgrade at most `wait_seconds` (the command's
    --wait, as PostgreSQL's `lock_timeout` for this one statement): it waited for ever, so an
    upgrade stuck behind a hung one (or a session holding the lock) never ended. Busy past the
    wait: a MigrationError naming the lock, the database and the backend holding it."""
    import psycopg

    from ingest.store.postgres.repository import lock_timeout_ms

    conn.execute(
        "select set_config('lock_timeout', %s, false)", [f"{lock_timeout_ms(wait_seconds)}ms"]
    )
    try:
        conn.execute("select pg_advisory_lock(%s)", [_PG_LOCK_KEY])
    except psycopg.errors.LockNotAvailable:
        holder = conn.execute(
            # advisory locks are per database: a holder in another one is not in the way
            "select string_agg(pid::text, ', ') from pg_locks where locktype = 'advisory'"
            " and granted and classid = %s and objid = %s and objsubid = 1 and database ="
            " (select oid from pg_database where datname = current_database())",
            [_PG_LOCK_KEY >> 32, _PG_LOCK_KEY & 0xFFFFFFFF],
        ).fetchone()[0]
        by = f" (held by PostgreSQL backend {holder})" if holder else ""
        raise MigrationError(
            f"waited {wait_seconds:g} s for the upgrade lock on {display_dsn(dsn)}: another "
            f"`itrack db upgrade` is migrating it{by}; nothing was applied: run again when it "
            "is done, or pass --wait SECONDS"
        ) from None
    finally:
        if not conn.closed:
            conn.execute("reset lock_timeout")  # the migrations wait as the server says


def applied_postgres(dsn: str, wait_seconds: float = 10.0) -> list[str]:
    """Versions recorded in the database's ledger (none when it has no ledger yet)."""
    import psycopg

    check_dsn(dsn)
    try:
        with connect_within(dsn, wait_seconds, autocommit=True) as conn:
            exists = conn.execute(
                "select to_regclass('supabase_migrations.schema_migrations') is not null"
            ).fetchone()[0]
            if not exists:
                return []
            rows = conn.execute(
                "select version from supabase_migrations.schema_migrations order by version"
            ).fetchall()
    except psycopg.Error as exc:
        raise MigrationError(f"cannot read {display_dsn(dsn)}: {_first_line(exc)}") from None
    return [row[0] for row in rows]


def _apply_postgres(
    conn: Any,
    migrations: list[Migration],
    auth_shim: bool,
    applied: list[str],
    report: Callable[[str], None] | None,
) -> None:
    if auth_shim:
        with conn.transaction():
            conn.execute(POSTGRES_AUTH_SHIM.read_text(encoding="utf-8"))
    with conn.transaction():
        conn.execute(_PG_LEDGER)
    done = [
        row[0] for row in conn.execute("select version from supabase_migrations.schema_migrations")
    ]
    todo = pending(migrations, done)
    if todo and not _has_supabase_auth(conn):
        # the policies need auth.uid()/auth.jwt(): refused before the first migration, not
        # after two of them ('schema "auth" does not exist', half an upgrade applied)
        raise MigrationError(
            "this database has no Supabase auth schema (auth.uid(), auth.jwt()); on plain "
            "PostgreSQL run `itrack db upgrade --auth-shim` to create what Supabase provides "
            "(nothing was applied)"
        )
    for migration in todo:
        with conn.transaction():
            conn.execute(migration.sql)
            conn.execute(
                "insert into supabase_migrations.schema_migrations (version, statements, name)"
                " values (%s, %s, %s)",
                [migration.version, [migration.sql], migration.name],
            )
        applied.append(migration.label)
        if report:
            report(migration.label)


def _has_supabase_auth(conn: Any) -> bool:
    found = conn.execute(
        "select to_regprocedure('auth.uid()') is not null"
        " and to_regprocedure('auth.jwt()') is not null"
    ).fetchone()
    return bool(found and found[0])


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_dsn(dsn: str) -> str:
    """`dsn` when libpq can parse it, else `InvalidDsn` saying why (its password masked: libpq
    quotes what it refuses). The one rule of every command that takes a DSN (`itrack db`, the
    extract, the PostgreSQL store): a malformed one is one line at once, never a driver error
    or a wait for a pool that can never connect."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception as exc:  # psycopg raises ProgrammingError (a ValueError for a NUL)
        raise InvalidDsn(f"not a valid PostgreSQL URL: {masked(_first_line(exc), dsn)}") from None
    if not _names_a_database(parts):
        raise InvalidDsn(
            f"{display_dsn(dsn)} names no database (an unset variable?): libpq would take the "
            "one named after the user; give it, e.g. postgresql://host:5432/dbname"
        )
    return dsn


# libpq's floor: a connect_timeout of 1 is taken as 2 (and 0 as no limit at all)
MIN_CONNECT_SECONDS = 2
# libpq reads connect_timeout as an int: a longer wait (`--wait inf`) is that long
MAX_CONNECT_SECONDS = 2**31 - 1


def connect_seconds(wait: float) -> int:
    """How long connecting to PostgreSQL may take for a command that waits `wait` seconds
    (its --wait): whole seconds, as libpq's connect_timeout counts, and at least libpq's floor,
    so `--wait 0` (do not queue behind a busy store) still reaches a server that answers.
    The pool waited 30 s, `itrack db` and the extract 10 s, whatever --wait said."""
    if not wait <= MAX_CONNECT_SECONDS:  # inf (and nan, which compares false)
        return MAX_CONNECT_SECONDS
    return max(MIN_CONNECT_SECONDS, math.ceil(wait))


def connect_within(dsn: str, wait_seconds: float, **options: Any) -> psycopg.Connection[Any]:
    """A connection of its own to `dsn` (no pool: `itrack db`, the extract), waiting for the
    server at most `connect_seconds(wait_seconds)`: each waited a fixed 10 s whatever --wait
    said. A server that does not answer in time is an OperationalError saying how long was
    waited (psycopg's own "connection timeout expired" said neither that nor how long)."""
    import psycopg

    seconds = connect_seconds(wait_seconds)
    try:
        return psycopg.connect(dsn, connect_timeout=seconds, **options)
    except psycopg.errors.ConnectionTimeout:
        raise psycopg.OperationalError(f"no answer within {seconds} s") from None


def _names_a_database(parts: dict[str, Any]) -> bool:
    """Whether a parsed DSN says which database, itself or through what libpq reads besides
    (a service file entry, PGDATABASE, PGSERVICE). Without any, libpq connects to the database
    named after the user: `postgresql://$HOST/$DB` with DB unset migrated `postgres`."""
    given = parts.get("dbname") or parts.get("service")
    return bool(given or os.environ.get("PGDATABASE") or os.environ.get("PGSERVICE"))


def masked(text: str, dsn: str) -> str:
    """`text` with every password part of `dsn` (`_secrets`) as `***`: for messages that quote
    a DSN, or what a driver said about it, whole."""
    for secret in _secrets(dsn):
        text = text.replace(secret, "***")
    return text


def _secrets(dsn: str) -> list[str]:
    """The password parts of a DSN as written (URI user info, `password=` in a query or in
    key=value form), whether or not the rest parses."""
    found = []
    userinfo = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://([^@/?#]*)@", dsn)
    if userinfo and ":" in userinfo[1]:
        found.append(userinfo[1].split(":", 1)[1])
    found += re.findall(r"[?&]password=([^&#]*)", dsn)
    for quoted, bare in re.findall(r"password\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))", dsn):
        found.append(quoted or bare)
    return sorted({s for s in found if s}, key=len, reverse=True)


def display_dsn(dsn: str) -> str:
    """A DSN for messages: `postgresql://user@host:port/dbname`, never the password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except Exception:  # an unparsable DSN: show nothing of it
        return "the database"
    user = f"{params['user']}@" if params.get("user") else ""
    host = params.get("host") or "localhost"
    return f"postgresql://{user}{host}:{params.get('port') or 5432}/{params.get('dbname') or ''}"


# -- DuckDB -----------------------------------------------------------------------------------

_DUCKDB_LEDGER = """
create table if not exists schema_migrations (
    version varchar primary key,
    name varchar not null,
    checksum varchar not null,
    applied_at timestamp not null default current_timestamp
)
"""


def duckdb_applied(con: Any) -> dict[str, str] | None:
    """version -> checksum of the migrations applied to a DuckDB file; None without a ledger."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_name = 'schema_migrations'"
    ).fetchone()[0]
    if not exists:
        return None
    return dict(con.execute("select version, checksum from schema_migrations").fetchall())


def upgrade_duckdb(
    con: Any, folder: Path, report: Callable[[str], None] | None = None
) -> list[str]:
    """Apply the pending migrations on a DuckDB connection (the caller holds the writer lock).

    A store that is current costs two reads and runs no DDL.

    An applied migration whose file has changed since is refused: a released file is never
    edited; write a new migration instead.
    """
    migrations = discover(folder)
    done = duckdb_applied(con)
    if done is None:  # a new store, or one from before migrations were versioned
        con.execute(_DUCKDB_LEDGER)
        done = {}
    for migration in migrations:
        recorded = done.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.label} was edited after it was applied; "
                "released migrations are never edited: add a new one"
            )
    applied: list[str] = []
    for migration in pending(migrations, done):
        con.begin()
        try:
            con.execute(migration.sql)
            con.execute(
                "insert into schema_migrations (version, name, checksum) values (?, ?, ?)",
                [migration.version, migration.name, migration.checksum],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        applied.append(migration.label)
        if report:
            report(migration.label)
    return applied
