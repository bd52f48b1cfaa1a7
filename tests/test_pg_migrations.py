"""Versioned, re-runnable migrations for both stores, and the commands that use PostgreSQL.

`itrack db upgrade|status` on the DuckDB raw store and on a real PostgreSQL database, the ledger,
edited and broken migrations, reads that run no DDL; `itrack ingest postgresql://...` and
`itrack build --from postgresql://...` end to end.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest
from typer.testing import CliRunner

from ingest.migrate import (
    _PG_LOCK_KEY,
    POSTGRES_MIGRATIONS,
    MigrationError,
    discover,
    upgrade_duckdb,
    upgrade_postgres,
)
from ingest.store.duckdb.store import MIGRATIONS, raw_store_path
from itrack.cli.main import app
from tests import pg
from tests.conftest import assert_exit, query

runner = CliRunner()
DUCKDB_LABELS = [m.label for m in discover(MIGRATIONS)]
PG_LABELS = [m.label for m in discover(POSTGRES_MIGRATIONS)]
ORG = "0a000000-0000-4000-8000-00000000000a"
P1 = "11111111-1111-4111-8111-111111111111"
S1 = "aaaaaaaa-0000-4000-8000-000000000001"


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=True)


# -- DuckDB raw store -------------------------------------------------------------------------


def test_duckdb_upgrade_creates_then_has_nothing_to_do(db: Path) -> None:
    first = invoke("db", "upgrade", "--db", str(db), "--create")
    assert_exit(first, 0)
    raw = raw_store_path(db)
    assert first.output.splitlines() == [
        *(f"applied {label}" for label in DUCKDB_LABELS),
        f"{raw}: applied {len(DUCKDB_LABELS)}; {len(DUCKDB_LABELS)} migration(s) in place",
    ]
    again = invoke("db", "upgrade", "--db", str(db))
    assert_exit(again, 0)
    assert again.output == f"{raw}: nothing to apply; {len(DUCKDB_LABELS)} migration(s) in place\n"
    status = invoke("db", "status", "--db", str(db))
    assert_exit(status, 0)
    assert status.output.splitlines() == [f"applied  {label}" for label in DUCKDB_LABELS]
    assert [row[0] for row in query(db, "select version from schema_migrations order by 1")] == [
        label.split("_", 1)[0] for label in DUCKDB_LABELS
    ]


def test_status_lists_a_migration_applied_by_a_newer_itrack(db: Path) -> None:
    """Found by exploratory testing: a store a newer itrack had upgraded (a ledger row this
    version has no file for) was listed as every migration applied, nothing more."""
    assert_exit(invoke("db", "upgrade", "--db", str(db), "--create"), 0)
    con = duckdb.connect(str(raw_store_path(db)))
    con.execute("insert into schema_migrations values ('20991231000000', 'later', 'x', now())")
    con.close()
    status = invoke("db", "status", "--db", str(db))
    assert_exit(status, 0)
    assert status.output.splitlines() == [
        *(f"applied  {label}" for label in DUCKDB_LABELS),
        "unknown  20991231000000",
        "unknown: applied by a newer itrack than this one; upgrade itrack before using it",
    ]
    as_json = invoke("db", "status", "--db", str(db), "--format", "json")
    assert json.loads(as_json.output)[-1] == {"migration": "20991231000000", "state": "unknown"}


def test_a_store_from_before_versioned_migrations_is_adopted_with_its_rows(db: Path) -> None:
    """The seed created tables at every connect and kept no ledger: the baseline applies as a
    no-op, the rows stay, later migrations are added."""
    raw = raw_store_path(db)
    raw.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(raw))
    con.execute(discover(MIGRATIONS)[0].sql)
    con.execute(
        "insert into candidates values ('c1', 'Ann', null, null, null, '2025-01-01',"
        " '2025-01-01', 'seed', '2025-01-01')"
    )
    con.close()
    assert_exit(invoke("db", "status", "--db", str(db)), 0)
    assert invoke("db", "status", "--db", str(db)).output.splitlines() == [
        f"pending  {label}" for label in DUCKDB_LABELS
    ]
    assert_exit(invoke("db", "upgrade", "--db", str(db)), 0)
    assert query(db, "select id from candidates") == [("c1",)]
    assert query(db, "select count(*) from extract_watermarks") == [(0,)]


RAW_TABLES = ("candidates", "interview_processes", "interview_stages")
IN_RAW_TABLES = "table_name in (" + ", ".join(f"'{t}'" for t in RAW_TABLES) + ")"


def test_the_raw_tables_lose_their_key_index_and_keep_rows_columns_and_not_nulls(
    tmp_path: Path, db: Path
) -> None:
    """Migration 20261126120000 rebuilds the three raw tables without the primary-key index
    (ingest keeps ids unique; issue #17): a store migrated up to the one before keeps its rows,
    its columns in order with their types, and every NOT NULL."""
    before = tmp_path / "before"
    before.mkdir()
    for migration in discover(MIGRATIONS):
        if migration.version < "20261126120000":
            (before / f"{migration.label}.sql").write_text(migration.sql, encoding="utf-8")
    raw = raw_store_path(db)
    con = duckdb.connect(str(raw))
    upgrade_duckdb(con, before)
    con.execute(
        "insert into candidates values ('c1', 'Ann', null, null, null, '2025-01-01',"
        " '2025-01-02', 'seed', '2025-01-03')"
    )
    con.execute(
        f"insert into interview_processes values ('{P1}', 'c1', 'Acme', 'SWE', 'on_hold', null,"
        " null, null, '{\"currency\":\"USD\"}', '2025-01-01', '2025-01-02', 'seed', '2025-01-03')"
    )
    con.execute(
        f"insert into interview_stages values ('{S1}', '{P1}', 'Phone Screen', 1, null, null,"
        " 'pending', null, null, null, null, null, ['Dana'], null, '2025-01-01', '2025-01-02',"
        " 'seed', '2025-01-03')"
    )

    def shape(c: duckdb.DuckDBPyConnection) -> list[tuple]:
        return c.execute(
            "select table_name, column_name, data_type, is_nullable from "
            f"information_schema.columns where {IN_RAW_TABLES} "
            "order by table_name, ordinal_position"
        ).fetchall()

    columns = shape(con)
    rows = {t: con.execute(f"select * from {t}").fetchall() for t in RAW_TABLES}
    assert con.execute(
        "select table_name from duckdb_constraints() where constraint_type = 'PRIMARY KEY' "
        f"and {IN_RAW_TABLES} order by 1"
    ).fetchall() == [(t,) for t in RAW_TABLES]
    con.close()
    assert_exit(invoke("db", "upgrade", "--db", str(db)), 0)
    con = duckdb.connect(str(raw), read_only=True)
    assert shape(con) == columns
    assert {t: con.execute(f"select * from {t}").fetchall() for t in RAW_TABLES} == rows
    assert con.execute(
        "select count(*) from duckdb_constraints() where constraint_type = 'PRIMARY KEY' "
        f"and {IN_RAW_TABLES}"
    ).fetchall() == [(0,)]
    assert len(columns) == 9 + 13 + 18
    con.close()


def test_reading_commands_run_no_ddl(db: Path) -> None:
    """`itrack rejects` on a store without the ledger leaves it without the ledger."""
    raw = raw_store_path(db)
    raw.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(raw))
    con.execute(discover(MIGRATIONS)[0].sql)
    con.close()
    result = invoke("rejects", "--db", str(db))
    assert_exit(result, 0)
    tables = {row[0] for row in query(db, "select table_name from information_schema.tables")}
    assert "schema_migrations" not in tables
    assert "extract_watermarks" not in tables


def test_an_edited_migration_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20260101000000_first.sql").write_text("create table t (a integer);")
    con = duckdb.connect()
    assert upgrade_duckdb(con, folder) == ["20260101000000_first"]
    (folder / "20260101000000_first.sql").write_text("create table t (a bigint);")
    with pytest.raises(MigrationError, match=r"^migration 20260101000000_first was edited after"):
        upgrade_duckdb(con, folder)


def test_a_failing_duckdb_migration_leaves_nothing_of_itself(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20260101000000_first.sql").write_text("create table t (a integer);")
    (folder / "20260102000000_broken.sql").write_text("create table u (b integer); select nope;")
    con = duckdb.connect()
    with pytest.raises(duckdb.BinderException):
        upgrade_duckdb(con, folder)
    tables = con.execute("select table_name from information_schema.tables").fetchall()
    assert {row[0] for row in tables} == {"t", "schema_migrations"}
    assert con.execute("select version from schema_migrations").fetchall() == [("20260101000000",)]


@pytest.mark.parametrize(
    "name", ["1_first.sql", "20260101000000-first.sql", "20260101000000_A.sql"]
)
def test_misnamed_migration_files_are_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("select 1;")
    with pytest.raises(MigrationError, match=r"migration files are named <YYYYMMDDHHMMSS>_<name>"):
        discover(tmp_path)


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def empty_pg(pg_server: str):
    with pg.database(pg_server, migrate=False) as dsn:
        yield dsn


def test_plain_postgres_without_the_auth_shim_is_refused_before_any_migration(
    empty_pg: str,
) -> None:
    """On plain PostgreSQL `db upgrade` without --auth-shim applied two migrations, then
    failed on 'schema "auth" does not exist' without naming the flag (found by the
    exploratory run of backup, db and settings). Refused first, naming it; nothing applied."""
    refused = invoke("db", "upgrade", "--dsn", empty_pg)
    assert_exit(refused, 2)
    assert refused.output == (
        "error: this database has no Supabase auth schema (auth.uid(), auth.jwt()); on plain "
        "PostgreSQL run `itrack db upgrade --auth-shim` to create what Supabase provides "
        "(nothing was applied)\n"
    )
    status = invoke("db", "status", "--dsn", empty_pg)
    assert status.output.splitlines() == [f"pending  {label}" for label in PG_LABELS]


def test_postgres_upgrade_applies_once_and_reports(empty_pg: str) -> None:
    status = invoke("db", "status", "--dsn", empty_pg)
    assert_exit(status, 0)
    assert status.output.splitlines() == [f"pending  {label}" for label in PG_LABELS]
    first = invoke("db", "upgrade", "--dsn", empty_pg, "--auth-shim")
    assert_exit(first, 0)
    assert first.output.splitlines() == [
        *(f"applied {label}" for label in PG_LABELS),
        f"PostgreSQL: applied {len(PG_LABELS)}; {len(PG_LABELS)} migration(s) in place",
    ]
    again = invoke("db", "upgrade", "--dsn", empty_pg)
    assert_exit(again, 0)
    assert again.output == f"PostgreSQL: nothing to apply; {len(PG_LABELS)} migration(s) in place\n"
    assert invoke("db", "status", "--dsn", empty_pg).output.splitlines() == [
        f"applied  {label}" for label in PG_LABELS
    ]


def _upgrade(dsn: str) -> list[str]:
    return upgrade_postgres(dsn, auth_shim=True)


def test_concurrent_postgres_upgrades_apply_each_migration_once(empty_pg: str) -> None:
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        applied = pool.map_async(_upgrade, [empty_pg] * 3).get(timeout=120)
    assert sorted(len(a) for a in applied) == [0, 0, len(PG_LABELS)]
    with psycopg.connect(empty_pg) as conn:
        rows = conn.execute("select count(*) from supabase_migrations.schema_migrations")
        assert rows.fetchone() == (len(PG_LABELS),)


def test_a_failing_postgres_migration_is_one_line_and_rolled_back(
    empty_pg: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(POSTGRES_MIGRATIONS, folder)
    (folder / "20991231000000_broken.sql").write_text(
        "create table public.half_done (a integer);\nselect no_such_function();\n"
    )
    with pytest.raises(MigrationError) as caught:
        upgrade_postgres(empty_pg, folder=folder, auth_shim=True)
    assert str(caught.value).startswith(
        f"migration failed on {pg.display(empty_pg)}: function no_such_function() does not exist"
    )
    assert str(caught.value).endswith(f"(applied before the failure: {', '.join(PG_LABELS)})")
    with psycopg.connect(empty_pg) as conn:
        assert conn.execute("select to_regclass('public.half_done')").fetchone() == (None,)
        versions = conn.execute("select count(*) from supabase_migrations.schema_migrations")
        assert versions.fetchone() == (len(PG_LABELS),)


def test_upgrade_without_a_server_is_one_line_exit_2() -> None:
    result = invoke("db", "upgrade", "--dsn", "postgresql://nobody@127.0.0.1:1/x")
    assert_exit(result, 2)
    assert result.output.startswith(
        "error: cannot connect to postgresql://nobody@127.0.0.1:1/x: connection"
    )
    assert len(result.output.strip().splitlines()) == 1


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers: the kernel completes the handshake
    for a socket that listens; nobody reads what the client sends."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("command", "what"),
    [
        ("db status --dsn", "cannot read"),
        ("db upgrade --dsn", "cannot connect to"),
        ("ingest", "cannot connect to"),
    ],
)
def test_a_server_that_never_answers_is_given_the_commands_wait(
    silent_port: int, tmp_path: Path, command: str, what: str
) -> None:
    """`itrack db` and the extract connected with a fixed 10 s timeout whatever --wait said,
    then "connection timeout expired" (neither how long nor that it was the wait). They wait
    as the command does now, and say so in one line naming the server."""
    url = f"postgresql://postgres@127.0.0.1:{silent_port}/x"
    db = str(tmp_path / "warehouse.duckdb")
    result = invoke(*command.split(), url, "--db", db, "--wait", "2")
    assert_exit(result, 2)
    assert result.stderr == f"error: {what} {url}: no answer within 2 s\n"


# -- the extract through the CLI --------------------------------------------------------------


@pytest.fixture
def source(pg_server: str):
    with pg.database(pg_server) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "insert into candidates (id, organization_id, full_name, feeder_source,"
                " created_at) values ('cand-1', %s, 'Ann Lee', 'referral', '2025-01-01Z')",
                [ORG],
            )
            conn.execute(
                "insert into interview_processes (id, organization_id, candidate_id,"
                " company_name, role_title, created_at) values (%s, %s, 'cand-1', 'Acme',"
                " 'SWE', '2025-01-05Z')",
                [P1, ORG],
            )
            # as the service writes a stage: it moves the process itself (the update below);
            # the trigger would move it to now, and updated_at never moves back
            conn.execute("select set_config('itrack.source', 'seed', false)")
            conn.execute(
                "insert into interview_stages (organization_id, interview_process_id,"
                " stage_name, stage_order, outcome, created_at, completed_date,"
                " scheduled_date) values (%s, %s, 'Phone Screen', 1, 'passed', '2025-01-06Z',"
                " '2025-01-06T11:00Z', '2025-01-06T10:00Z')",
                [ORG, P1],
            )
            conn.execute("select set_config('itrack.source', '', false)")
            conn.execute(
                "update interview_processes set status = 'offer_extended',"
                " updated_at = '2025-02-01Z' where id = %s",
                [P1],
            )
        yield dsn


def test_itrack_ingest_a_database_url(source: str, db: Path) -> None:
    result = invoke("ingest", source, "--db", str(db), "--json")
    assert_exit(result, 0)
    summary = json.loads(result.output)
    assert (summary["accepted"], summary["rejected"]) == (3, 0)
    assert summary["extract"]["pulled"] == pg.SEED_PULLED
    assert summary["extract"]["history_added"] == 2
    assert (summary["extract"]["corrections_added"], summary["extract"]["deleted"]) == (0, {})
    # the server's clock at the process's last write, not its updated_at (2025-02-01)
    with psycopg.connect(source) as conn:
        (stamp,) = conn.execute(
            "select _changed_at at time zone 'UTC' from interview_processes"
        ).fetchone()
    assert summary["extract"]["watermarks"]["interview_processes"] == stamp.isoformat()
    assert query(db, "select status from interview_processes") == [("offer_extended",)]


def test_itrack_ingest_refuses_a_url_mixed_with_files(source: str, db: Path) -> None:
    result = invoke("ingest", source, "data/sample", "--db", str(db))
    assert_exit(result, 2)
    assert result.output == (
        "error: a postgresql:// URL is extracted on its own: ingest files separately\n"
    )


def test_itrack_build_from_a_database(source: str, tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    result = invoke("build", "--from", source, "--db", str(db), "--no-backup", "--no-html")
    assert_exit(result, 0)
    assert "extract from postgresql://" in result.output
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "select interview_process_id::varchar, status from fct_interview_processes"
        ).fetchall()
    finally:
        con.close()
    assert rows == [(P1, "offer_extended")]


MALFORMED = [
    (
        "postgresql://[::1",
        'end of string reached when looking for matching "]" in IPv6 host address in URI: '
        '"postgresql://[::1"',
    ),
    ("postgresql://postgres@127.0.0.1/x?foo=bar", 'invalid URI query parameter: "foo"'),
    ("postgresql://postgres@127.0.0.1/hunt_%zz", 'invalid percent-encoded token: "hunt_%zz"'),
    # libpq quotes what it refuses: the password is masked
    (
        "postgresql://u:s3cret@[::1",
        'end of string reached when looking for matching "]" in IPv6 host address in URI: '
        '"postgresql://u:***@[::1"',
    ),
]
DSN_COMMANDS = {
    "db upgrade": ("db", "upgrade", "--dsn"),
    "db status": ("db", "status", "--dsn"),
    "ingest": ("ingest",),
    "build --from": ("build", "--no-backup", "--from"),
}


@pytest.mark.parametrize("dsn, reason", MALFORMED, ids=["ipv6", "query", "percent", "password"])
@pytest.mark.parametrize("command", DSN_COMMANDS)
def test_every_command_refuses_a_malformed_dsn_alike(
    command: str, dsn: str, reason: str, tmp_path: Path
) -> None:
    """One rule (`ingest.migrate.check_dsn`): one line, exit 2, before any connection."""
    result = invoke(*DSN_COMMANDS[command], dsn, "--db", str(tmp_path / "warehouse.duckdb"))
    assert_exit(result, 2)
    assert result.output == f"error: not a valid PostgreSQL URL: {reason}\n"


@pytest.mark.parametrize(
    "dsn, shown",
    [
        ("postgresql://", "postgresql://localhost:5432/"),
        ("postgresql://postgres:s3cret@127.0.0.1:1/", "postgresql://postgres@127.0.0.1:1/"),
    ],
    ids=["bare", "no-database"],
)
@pytest.mark.parametrize("command", DSN_COMMANDS)
def test_every_command_refuses_a_dsn_naming_no_database(
    command: str, dsn: str, shown: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`postgresql://$HOST/$DB` with DB unset: libpq took the database named after the user,
    and `itrack db upgrade` migrated the server's `postgres` (or `root`) database (found by the
    exploratory ops run). Refused, one line, exit 2, before any connection."""
    monkeypatch.delenv("PGDATABASE", raising=False)
    monkeypatch.delenv("PGSERVICE", raising=False)
    monkeypatch.setenv("PGPORT", "1")  # had the check let one through: no server, nothing done
    result = invoke(*DSN_COMMANDS[command], dsn, "--db", str(tmp_path / "warehouse.duckdb"))
    assert_exit(result, 2)
    assert result.output == (
        f"error: {shown} names no database (an unset variable?): libpq would take the one "
        "named after the user; give it, e.g. postgresql://host:5432/dbname\n"
    )


def test_a_dsn_without_a_database_is_taken_where_libpq_is_told_which(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    """PGDATABASE (or a service entry) says which database: such a DSN stays valid."""
    server, _, database = pg_dsn.partition("?")[0].rpartition("/")
    monkeypatch.setenv("PGDATABASE", database)
    result = invoke("db", "status", "--dsn", f"{server}/", "--db", str(db))
    assert_exit(result, 0)
    assert "pending" not in result.output


@pytest.fixture
def postgres_store_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """`ITRACK_STORE=postgres`, `ITRACK_PG_DSN` unset: the test sets it as it needs."""
    from itrack.settings import get_settings

    monkeypatch.setenv("ITRACK_STORE", "postgres")
    monkeypatch.delenv("ITRACK_PG_DSN", raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.mark.parametrize("given", [None, "", "  "], ids=["unset", "empty", "blank"])
@pytest.mark.parametrize("command", ["upgrade", "status"])
def test_db_on_the_postgres_store_needs_its_dsn(
    command: str, given: str | None, postgres_store_env: pytest.MonkeyPatch, db: Path
) -> None:
    """Found by trying `ITRACK_STORE=postgres itrack db upgrade` without ITRACK_PG_DSN: it
    created and upgraded a DuckDB raw store (exit 0), where `itrack interview` refuses."""
    if given is not None:
        postgres_store_env.setenv("ITRACK_PG_DSN", given)
    result = invoke("db", command, "--db", str(db))
    assert_exit(result, 2)
    assert (
        result.output == "error: ITRACK_STORE=postgres needs ITRACK_PG_DSN (a postgresql:// URL)\n"
    )
    assert not db.parent.joinpath("warehouse.raw.duckdb").exists()


def test_a_dsn_that_is_no_url_is_refused_naming_its_source_without_its_password(
    postgres_store_env: pytest.MonkeyPatch, db: Path
) -> None:
    """The line goes to logs: it printed the password of a mistyped scheme in clear."""
    typo = "postgresq://u:s3cret@127.0.0.1/x"
    given = invoke("db", "status", "--dsn", typo, "--db", str(db))
    assert_exit(given, 2)
    assert (
        given.output
        == "error: --dsn takes a postgresql:// URL, not 'postgresq://u:***@127.0.0.1/x'\n"
    )
    postgres_store_env.setenv("ITRACK_PG_DSN", typo)
    configured = invoke("db", "upgrade", "--db", str(db))
    assert_exit(configured, 2)
    assert configured.output == (
        "error: ITRACK_PG_DSN takes a postgresql:// URL, not 'postgresq://u:***@127.0.0.1/x'\n"
    )


def test_serve_refuses_a_malformed_dsn_before_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from itrack.settings import get_settings

    dsn, reason = MALFORMED[-1]
    monkeypatch.setenv("ITRACK_STORE", "postgres")
    monkeypatch.setenv("ITRACK_PG_DSN", dsn)
    get_settings.cache_clear()
    try:
        result = invoke("serve", "--no-auth", "--port", "1")
    finally:
        get_settings.cache_clear()
    assert_exit(result, 2)
    assert result.output == f"error: not a valid PostgreSQL URL: {reason}\n"


def _terminate_when_waiting(dsn: str, holder: psycopg.Connection, what: str) -> None:
    """Terminate the backend of `dsn`'s database waiting for a lock (not `holder`'s)."""
    database = dsn.rsplit("/", 1)[1]
    with psycopg.connect(dsn, autocommit=True) as admin:
        for _ in range(300):
            found = admin.execute(
                "select pid from pg_stat_activity where datname = %s and pid <> %s"
                " and wait_event_type = 'Lock' and query like %s",
                [database, holder.info.backend_pid, f"%{what}%"],
            ).fetchall()
            if found:
                admin.execute("select pg_terminate_backend(%s)", [found[0][0]])
                return
            time.sleep(0.05)
    raise AssertionError(f"no backend waited on {what}")


def test_a_connection_lost_while_queued_for_the_upgrade_lock_is_one_line(empty_pg: str) -> None:
    with psycopg.connect(empty_pg, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", [_PG_LOCK_KEY])
        results: list = []
        upgrade = threading.Thread(
            target=lambda: results.append(invoke("db", "upgrade", "--dsn", empty_pg))
        )
        upgrade.start()
        _terminate_when_waiting(empty_pg, holder, "pg_advisory_lock")
        upgrade.join(60)
    assert_exit(results[0], 2)
    assert results[0].output == (
        f"error: lost the connection to {pg.display(empty_pg)} during the upgrade: "
        "terminating connection due to administrator command "
        "(applied: none; nothing else was written)\n"
    )
    with psycopg.connect(empty_pg) as conn:
        ledger = "select to_regclass('supabase_migrations.schema_migrations')"
        assert conn.execute(ledger).fetchone() == (None,)


@pytest.mark.parametrize("held_elsewhere", [False, True], ids=["here", "here and elsewhere"])
def test_an_upgrade_waits_for_another_upgrade_only_as_long_as_its_wait(
    empty_pg: str, pg_server: str, held_elsewhere: bool
) -> None:
    """Found by running `itrack db upgrade --dsn ... --wait 1` while another upgrade held the
    upgrade lock: it waited for ever (pg_advisory_lock, whatever --wait said). It waits --wait
    now, then exit 2 in one line naming the lock, the database and the backend holding it;
    nothing is applied. Fails before the fix (it waited until the holder let go, then exit 0).
    Advisory locks are per database, but the holder was looked up in pg_locks across the server:
    an upgrade of another database at the same time (the suite's workers run them) was named
    too, "held by PostgreSQL backend 81, 95" (this test failed once so): `held_elsewhere`, a
    session of a second database holds the same key, and only this database's holder is named."""
    results: list = []
    with contextlib.ExitStack() as held:
        if held_elsewhere:
            other = held.enter_context(pg.database(pg_server, migrate=False))
            elsewhere = held.enter_context(psycopg.connect(other, autocommit=True))
            elsewhere.execute("select pg_advisory_lock(%s)", [_PG_LOCK_KEY])
        holder = held.enter_context(psycopg.connect(empty_pg, autocommit=True))
        holder.execute("select pg_advisory_lock(%s)", [_PG_LOCK_KEY])
        pid = holder.info.backend_pid
        upgrade = threading.Thread(
            target=lambda: results.append(
                invoke("db", "upgrade", "--dsn", empty_pg, "--auth-shim", "--wait", "1")
            )
        )
        upgrade.start()
        upgrade.join(60)  # (the code before waited for the holder: it lets go below)
    upgrade.join()
    assert_exit(results[0], 2)
    assert results[0].output == (
        f"error: waited 1 s for the upgrade lock on {pg.display(empty_pg)}: another `itrack db "
        f"upgrade` is migrating it (held by PostgreSQL backend {pid}); nothing was applied: "
        "run again when it is done, or pass --wait SECONDS\n"
    )
    with psycopg.connect(empty_pg) as conn:
        ledger = "select to_regclass('supabase_migrations.schema_migrations')"
        assert conn.execute(ledger).fetchone() == (None,)


def test_a_connection_lost_inside_a_migration_rolls_it_back(empty_pg: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(POSTGRES_MIGRATIONS, folder)
    (folder / "20991231000000_slow.sql").write_text(
        "create table public.half_done (a integer);\nselect pg_advisory_xact_lock(4242);\n"
    )
    with psycopg.connect(empty_pg, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(4242)")
        errors: list[BaseException] = []

        def run() -> None:
            try:
                upgrade_postgres(empty_pg, folder=folder, auth_shim=True)
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                errors.append(exc)

        upgrade = threading.Thread(target=run)
        upgrade.start()
        _terminate_when_waiting(empty_pg, holder, "half_done")
        upgrade.join(60)
    assert type(errors[0]) is MigrationError
    assert str(errors[0]) == (
        f"lost the connection to {pg.display(empty_pg)} during the upgrade: "
        "terminating connection due to administrator command "
        f"(applied: {', '.join(PG_LABELS)}; nothing else was written)"
    )
    with psycopg.connect(empty_pg) as conn:
        assert conn.execute("select to_regclass('public.half_done')").fetchone() == (None,)
        versions = conn.execute("select count(*) from supabase_migrations.schema_migrations")
        assert versions.fetchone() == (len(PG_LABELS),)


@pytest.mark.parametrize(
    "overlap, shown",
    [("inf", "inf"), ("nan", "nan"), ("1e16", "1e+16"), ("525601", "525601"), ("-1", "-1")],
)
def test_the_extract_refuses_an_overlap_outside_0_to_a_year(
    overlap: str, shown: str, db: Path
) -> None:
    url = "postgresql://nobody@127.0.0.1:1/x"  # refused before any connection
    result = invoke("ingest", url, "--overlap", overlap, "--db", str(db))
    assert_exit(result, 2)
    assert result.output == (
        f"error: --overlap must be from 0 to 525600 minutes (one year), not {shown}\n"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["data/sample", "--full"],
            "--full and --overlap apply to a postgresql:// extract, not to files",
        ),
        (
            ["data/sample", "--overlap", "30"],
            "--full and --overlap apply to a postgresql:// extract, not to files",
        ),
        (
            ["postgresql://nobody@127.0.0.1:1/x", "--kind", "stages"],
            "--kind and --force apply to files, not to a postgresql:// extract"
            " (it reads each table as its kind; --full pulls every row again)",
        ),
        (
            ["postgresql://nobody@127.0.0.1:1/x", "--force"],
            "--kind and --force apply to files, not to a postgresql:// extract"
            " (it reads each table as its kind; --full pulls every row again)",
        ),
    ],
)
def test_ingest_refuses_the_options_of_the_other_source(
    args: list[str], message: str, db: Path
) -> None:
    """`itrack ingest exports --full` loaded the files as without it (exit 0), and an extract
    ignored --kind and --force: an option that does nothing there is refused, nothing read."""
    result = invoke("ingest", *args, "--db", str(db))
    assert_exit(result, 2)
    assert result.output == f"error: {message}\n"
    assert not raw_store_path(db).exists()


def test_the_extract_takes_an_overlap_of_a_year(source: str, db: Path) -> None:
    result = invoke("ingest", source, "--overlap", "525600", "--db", str(db), "--json")
    assert_exit(result, 0)
    assert json.loads(result.output)["extract"]["pulled"] == pg.SEED_PULLED
