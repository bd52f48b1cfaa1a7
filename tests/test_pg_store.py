"""The PostgreSQL store under the service: users' claims, row locks' refusals, the wiring.

What differs from the embedded store is tested here (the behaviour both share is in
tests/test_service.py, run on both): calls made for a user carry that user's claims, so row-level
security decides what they see and change; a stage order taken behind the service's back is a
refusal; reads are read-only transactions; `ITRACK_STORE=postgres` routes the CLI to it.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest
from typer.testing import CliRunner, Result

from ingest.contract import InterviewStage
from ingest.errors import NotFoundError, Refused, StoreError
from ingest.migrate import POSTGRES_MIGRATIONS, upgrade_postgres
from ingest.service import InterviewService
from ingest.stamps import utc_now
from ingest.store.common import process_filters
from ingest.store.postgres.repository import NotAllowed, PostgresInterviewStore, lock_timeout_ms
from itrack.cli.main import app
from itrack.settings import get_settings
from tests import pg
from tests.conftest import assert_exit

ORG_A = "0a000000-0000-4000-8000-00000000000a"
ORG_B = "0b000000-0000-4000-8000-00000000000b"
RA1 = "a1000000-0000-4000-8000-0000000000a1"
RA2 = "a2000000-0000-4000-8000-0000000000a2"
RB = "b1000000-0000-4000-8000-0000000000b1"
LEAD_A = "1ead0000-0000-4000-8000-00000000001a"


def _rows(dsn: str, sql: str, params: list) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()


def claims(user: str, org: str, role: str) -> dict:
    return {
        "sub": user,
        "role": "authenticated",
        "app_metadata": {"org_id": org, "itrack_role": role},
    }


@pytest.fixture
def dsn(pg_server: str) -> Iterator[str]:
    with pg.database(pg_server) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "insert into candidates (id, organization_id, full_name, feeder_source,"
                " created_at) values ('ca', %s, 'Ann A', 'referral', '2025-01-01Z'),"
                " ('cb', %s, 'Bea B', 'linkedin', '2025-01-01Z')",
                [ORG_A, ORG_B],
            )
        yield url


@pytest.fixture
def store(dsn: str) -> Iterator[PostgresInterviewStore]:
    store = PostgresInterviewStore(dsn, max_size=2)
    yield store
    store.close()


def as_user(store: PostgresInterviewStore, user: str, org: str, role: str) -> InterviewService:
    return InterviewService(store.as_user(claims(user, org, role)))


def test_a_recruiter_creates_processes_assigned_to_them_in_their_organization(
    store: PostgresInterviewStore, dsn: str
) -> None:
    process = as_user(store, RA1, ORG_A, "recruiter").create_interview_process("ca", "Acme", "SWE")
    row = _rows(
        dsn,
        "select organization_id::text, recruiter_id::text from interview_processes where id = %s",
        [process.id],
    )
    assert row == [(ORG_A, RA1)]


def test_users_see_their_organization_only(store: PostgresInterviewStore) -> None:
    service = InterviewService(store)  # service_role: every organization
    a = service.create_interview_process("ca", "Acme", "SWE")
    b = service.create_interview_process("cb", "Globex", "PM")
    assert [p.id for p in as_user(store, RA1, ORG_A, "recruiter").list_interviews()] == [a.id]
    assert [p.id for p in as_user(store, RB, ORG_B, "recruiter").list_interviews()] == [b.id]
    with pytest.raises(NotFoundError, match=f"^interview process '{a.id}' not found$"):
        as_user(store, RB, ORG_B, "recruiter").get_interview(a.id)
    with pytest.raises(NotFoundError, match="^candidate 'ca' not found"):
        as_user(store, RB, ORG_B, "recruiter").create_interview_process("ca", "X", "Y")
    assert {p.id for p in service.list_interviews()} == {a.id, b.id}


def test_only_the_assigned_recruiter_or_a_lead_changes_a_process(
    store: PostgresInterviewStore,
) -> None:
    process = as_user(store, RA1, ORG_A, "recruiter").create_interview_process("ca", "Acme", "SWE")
    other = as_user(store, RA2, ORG_A, "recruiter")
    assert other.get_interview(process.id).process.id == process.id  # may read it
    with pytest.raises(NotAllowed, match=f"^interview process '{process.id}' is not yours"):
        other.add_interview_stage(process.id, "Phone Screen", 1)
    with pytest.raises(NotAllowed):
        other.complete_interview_process(process.id, "on_hold")
    lead = as_user(store, LEAD_A, ORG_A, "lead")
    assert lead.add_interview_stage(process.id, "Phone Screen", 1).stage_order == 1
    assert lead.complete_interview_process(process.id, "on_hold").status == "on_hold"
    detail = InterviewService(store).get_interview(process.id)
    assert (detail.process.status, len(detail.stages)) == ("on_hold", 1)


def test_a_taken_stage_order_is_a_refusal_not_a_crash(store: PostgresInterviewStore) -> None:
    """A writer outside the service took the order between the service's check and insert:
    the unique constraint answers, reported as the service's refusal."""
    service = InterviewService(store)
    process = service.create_interview_process("ca", "Acme", "SWE")
    service.add_interview_stage(process.id, "Phone Screen", 1)
    twin = InterviewStage(
        id=UUID("5aaa0001-0000-4000-8000-0000000000ff"),
        interview_process_id=process.id,
        stage_name="Onsite",
        stage_order=1,
        created_at=utc_now(),
    )
    with pytest.raises(Refused, match=r"^stage_order 1 refused: process .* already has a stage"):
        with store.writing() as repo:
            repo.create_interview_stage(twin)
    assert [s.stage_name for s in service.get_interview(process.id).stages] == ["Phone Screen"]


def test_reads_are_read_only_transactions(store: PostgresInterviewStore) -> None:
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        with store.reading() as repo:
            repo.conn.execute("update candidates set full_name = 'X'")


def test_history_rows_carry_the_call_run_id(store: PostgresInterviewStore, dsn: str) -> None:
    service = InterviewService(store)
    process = service.create_interview_process("ca", "Acme", "SWE")
    service.complete_interview_process(process.id, "on_hold")
    rows = _rows(
        dsn,
        "select to_status, run_id like 'api-%%', source from interview_status_history"
        " where interview_process_id = %s order by id",
        [process.id],
    )
    assert rows == [("in_progress", True, "service"), ("on_hold", True, "service")]


def test_an_unreachable_server_is_one_line(caplog, pg_server: str) -> None:
    """One line naming the server and why, and nothing else: the pool's own warning of each
    failed attempt (several lines each, on stderr in a command) is folded into it."""
    caplog.set_level("WARNING", logger="psycopg.pool")
    with pytest.raises(StoreError) as refused:
        PostgresInterviewStore("postgresql://nobody@127.0.0.1:1/none", timeout=2)
    assert str(refused.value) == (
        "cannot connect to PostgreSQL within 2 s: postgresql://nobody@127.0.0.1:1/none: "
        'connection failed: connection to server at "127.0.0.1", port 1 failed: '
        "Connection refused"
    )
    missing = pg_server.rsplit("/", 1)[0] + "/itrack_test_no_such_database"
    with pytest.raises(StoreError) as refused:
        PostgresInterviewStore(missing, timeout=1)
    assert str(refused.value).endswith(
        'failed: FATAL:  database "itrack_test_no_such_database" does not exist'
    )
    assert [r.getMessage() for r in caplog.records if r.name == "psycopg.pool"] == []


@pytest.fixture
def postgres_settings(dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with pg.store_settings(dsn, monkeypatch) as configured:
        yield configured


def test_itrack_store_postgres_routes_the_interview_commands(postgres_settings: str) -> None:
    runner = CliRunner()
    created = runner.invoke(
        app,
        [
            "interview",
            "create",
            "--candidate",
            "ca",
            "--company",
            "Acme",
            "--role",
            "SWE",
            "--new-company",
            "--json",
        ],
    )
    assert_exit(created, 0)
    process_id = json.loads(created.output)["id"]
    with psycopg.connect(postgres_settings) as conn:
        stored = conn.execute(
            "select company_name, organization_id::text from interview_processes where id = %s",
            [process_id],
        ).fetchone()
    assert stored == ("Acme", ORG_A)


def test_an_unknown_candidate_is_explained_for_this_store(postgres_settings: str) -> None:
    """On PostgreSQL the hint for a process naming an unknown candidate said "load the
    candidate first (itrack ingest)", which loads the embedded DuckDB store: following it,
    the same refusal came again. It names this store's way now."""
    refused = CliRunner().invoke(
        app,
        ["interview", "create", "--candidate", "ghost", "--company", "Acme", "--role", "SWE"],
    )
    assert_exit(refused, 1)
    assert refused.output == (
        "error: candidate 'ghost' not found: add the candidate to the database's candidates "
        "table first (a Supabase client or SQL; itrack ingest loads the embedded store, not "
        "this database); a process without its candidate is an orphan\n"
    )


def test_only_a_lead_assigns_a_process(store: PostgresInterviewStore, dsn: str) -> None:
    process = as_user(store, RA1, ORG_A, "recruiter").create_interview_process("ca", "Acme", "SWE")
    with pytest.raises(NotAllowed, match="refused: new row violates row-level security"):
        with store.as_user(claims(RA1, ORG_A, "recruiter")).writing() as repo:
            repo.assign_recruiter(process.id, RA2)
    with store.as_user(claims(LEAD_A, ORG_A, "lead")).writing() as repo:
        repo.assign_recruiter(process.id, RA2)
    row = _rows(
        dsn, "select recruiter_id::text from interview_processes where id = %s", [process.id]
    )
    assert row == [(RA2,)]


def test_health_says_reachable_and_migrated(store: PostgresInterviewStore, pg_server: str) -> None:
    assert store.health() == (True, "PostgreSQL reachable")
    with pg.database(pg_server, migrate=False) as empty:
        bare = PostgresInterviewStore(empty, max_size=1)
        try:
            assert bare.health() == (
                False,
                "PostgreSQL reachable but not migrated: run `itrack db upgrade --dsn ...`",
            )
        finally:
            bare.close()


def test_health_waits_for_a_pooled_connection_as_long_as_the_store_does(dsn: str) -> None:
    """health() waited a fixed 5 s for a connection of the pool, whatever wait the store was
    made with (the server's `wait_seconds`): a busy pool now answers after the store's own
    wait, or the one given. What it says names the wait; no clock is read here."""
    store = PostgresInterviewStore(dsn, max_size=1, timeout=0.25)
    try:
        with store.pool.connection():  # the pool's only connection, held
            assert store.health() == (
                False,
                "PostgreSQL unavailable: couldn't get a connection after 0.25 sec",
            )
            assert store.health(0.5) == (
                False,
                "PostgreSQL unavailable: couldn't get a connection after 0.50 sec",
            )
        assert store.health() == (True, "PostgreSQL reachable")
    finally:
        store.close()


@pytest.fixture
def cli_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """`itrack <args>` with ITRACK_STORE=postgres and ITRACK_PG_DSN=dsn; the pool closed after."""
    from itrack import services

    def run(dsn: str, *args: str) -> Result:
        monkeypatch.setenv("ITRACK_STORE", "postgres")
        monkeypatch.setenv("ITRACK_PG_DSN", dsn)
        get_settings.cache_clear()
        services.postgres_store.cache_clear()
        return CliRunner().invoke(app, list(args))

    yield run
    if services.postgres_store.cache_info().currsize:
        services.postgres_store().close()
    get_settings.cache_clear()
    services.postgres_store.cache_clear()


@pytest.mark.parametrize(("wait", "within"), [("2", 2), ("0", 2), ("2.5", 3)])
def test_a_command_connects_within_its_wait(cli_on, wait: str, within: int) -> None:
    """`itrack interview list --wait 2` on ITRACK_STORE=postgres with no server at the port
    waited 30 s, the pool's own wait, whatever --wait said. The connect honours the command's
    wait now (whole seconds, at least libpq's 2: `--wait 0` still reaches a server that
    answers), and says so in one line naming the server."""
    result = cli_on("postgresql://postgres@127.0.0.1:1/x", "interview", "list", "--wait", wait)
    assert_exit(result, 2)
    assert result.stderr == (
        f"error: cannot connect to PostgreSQL within {within} s: "
        "postgresql://postgres@127.0.0.1:1/x: connection failed: connection to server at "
        '"127.0.0.1", port 1 failed: Connection refused\n'
    )


def test_the_company_filter_is_served_by_its_index(dsn: str) -> None:
    """The list filter compares the company's name key (`name_key_sql`); the index of migration
    20261127150000 is on that expression, spelled alike, so the planner can use it (a
    difference in spelling would leave every filtered list a scan of all processes)."""
    where, params = process_filters("%s", " Stripe", "in_progress")
    with psycopg.connect(dsn) as conn:
        conn.execute("set enable_seqscan = off")  # a handful of rows: a scan would win
        plan = conn.execute(f"explain select id from interview_processes {where}", params)
        lines = [line for (line,) in plan.fetchall()]
    # the name key is the index's condition (not a filter over a scan by status alone)
    assert len(lines) == 2, lines
    assert lines[0].startswith("Index Scan using interview_processes_company_key_status_idx ")
    assert lines[1].strip() == (
        "Index Cond: ((lower(TRIM(BOTH FROM regexp_replace(company_name, "
        "'[ \\t\\n\\v\\f\\r]+'::text, ' '::text, 'g'::text))) = 'stripe'::text) "
        "AND (status = 'in_progress'::text))"
    )


def test_a_record_another_session_is_changing_is_waited_for_wait_seconds_then_busy(
    cli_on, dsn: str, store: PostgresInterviewStore
) -> None:
    """The CLI's --wait bounds the wait for a row another session holds, as it bounds the wait
    for the embedded store's writer lock: busy after that long, one line, exit 2 (it waited for
    as long as the other session took: for ever, were it not for the database's own default
    below, which stands in for a session that never ends)."""
    process = InterviewService(store).create_interview_process("ca", "Acme", "SWE")
    with psycopg.connect(dsn, autocommit=True) as admin:
        name = admin.info.dbname
        admin.execute(f"alter database \"{name}\" set lock_timeout = '60s'")
    with psycopg.connect(dsn) as holder:  # mid-change, its transaction open
        holder.execute("select 1 from interview_processes where id = %s for update", [process.id])
        result = cli_on(dsn, "interview", "complete", str(process.id), "on_hold", "--wait", "0.2")
    assert_exit(result, 2)
    assert result.output == (
        "error: PostgreSQL: a record this change needs is being changed by another session "
        "(lock timeout after 0.2 s); retry later or pass --wait SECONDS\n"
    )
    result = cli_on(dsn, "interview", "complete", str(process.id), "on_hold", "--wait", "0")
    assert_exit(result, 0)  # free again: done
    assert _rows(dsn, "select status from interview_processes where id = %s", [process.id]) == [
        ("on_hold",)
    ]


@pytest.mark.parametrize("wait", ["inf", "3000000"])
def test_a_wait_longer_than_postgresql_holds_is_its_longest_not_a_crash(
    cli_on, dsn: str, store: PostgresInterviewStore, wait: str
) -> None:
    """--wait takes any number of seconds, `inf` too (the embedded store waits for ever);
    PostgreSQL's lock_timeout holds at most INT_MAX ms (24.8 days), so a longer wait is that.
    It was 'unexpected OverflowError' for inf, and for 35 days 'PostgreSQL cannot act as
    service_role: invalid value for parameter "lock_timeout"' with advice to install the
    auth shim, exit 2 (found by the exploratory ops run)."""
    process = InterviewService(store).create_interview_process("ca", "Acme", "SWE")
    result = cli_on(dsn, "interview", "complete", str(process.id), "on_hold", "--wait", wait)
    assert_exit(result, 0)
    assert _rows(dsn, "select status from interview_processes where id = %s", [process.id]) == [
        ("on_hold",)
    ]
    assert lock_timeout_ms(float(wait)) == 2**31 - 1


def test_an_unmigrated_database_says_what_to_run(cli_on, pg_server: str) -> None:
    with pg.database(pg_server, migrate=False) as empty:
        result = cli_on(empty, "interview", "list")
        assert_exit(result, 2)
        assert result.output == (
            f"error: PostgreSQL {pg.display(empty)} is not migrated, or only partly "
            '(relation "interview_processes" does not exist): run `itrack db upgrade --dsn ...`\n'
        )


def test_a_partly_migrated_database_says_what_to_run(
    cli_on, pg_server: str, tmp_path: Path
) -> None:
    for migration in sorted(POSTGRES_MIGRATIONS.glob("*.sql"))[:3]:  # no service_calls yet
        shutil.copy(migration, tmp_path)
    with pg.database(pg_server, migrate=False) as partial:
        upgrade_postgres(partial, folder=tmp_path, auth_shim=True)
        with psycopg.connect(partial, autocommit=True) as conn:
            conn.execute(
                "insert into candidates (id, organization_id, full_name, feeder_source,"
                " created_at) values ('ca', %s, 'Ann A', 'referral', '2025-01-01Z')",
                [ORG_A],
            )
        result = cli_on(
            partial, "interview", "create", "--candidate", "ca", "--company", "Acme",
            "--role", "SWE", "--new-company",
        )  # fmt: skip
        assert_exit(result, 2)
        assert result.output == (
            f"error: PostgreSQL {pg.display(partial)} is not migrated, or only partly "
            '(relation "service_calls" does not exist): run `itrack db upgrade --dsn ...`\n'
        )


def test_a_user_who_cannot_act_as_service_role_is_told_which_role(cli_on, dsn: str) -> None:
    user = f"itrack_test_{uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"create role {user} login")
    try:
        result = cli_on(pg.with_user(dsn, user), "interview", "list")
        assert_exit(result, 2)
        assert result.output == (
            f"error: PostgreSQL user {user} cannot act as service_role: permission denied to "
            f'set role "service_role" (grant it: `grant service_role to {user}`; Supabase\'s '
            "postgres user has it)\n"
        )
    finally:
        from itrack import services

        if services.postgres_store.cache_info().currsize:
            services.postgres_store().close()
            services.postgres_store.cache_clear()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"drop role {user}")


def test_a_connection_the_server_kills_is_the_one_error_line(
    cli_on, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing but the error line: not the pool's `discarding closed connection` warning,
    which logging's last-resort handler prints on stderr when, as in a command, no logging is
    configured (pytest configures some: taken away here)."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    database = dsn.rsplit("/", 1)[1]
    with psycopg.connect(dsn) as holder:
        holder.execute("lock table interview_processes in access exclusive mode")
        results: list[Result] = []
        listing = threading.Thread(target=lambda: results.append(cli_on(dsn, "interview", "list")))
        listing.start()
        with psycopg.connect(dsn, autocommit=True) as admin:
            for _ in range(300):
                waiting = admin.execute(
                    "select pid from pg_stat_activity where datname = %s and pid <> %s"
                    " and wait_event_type = 'Lock'",
                    [database, holder.info.backend_pid],
                ).fetchall()
                if waiting:
                    break
                time.sleep(0.05)
            admin.execute("select pg_terminate_backend(%s)", [waiting[0][0]])
        listing.join(60)
    assert_exit(results[0], 2)
    assert results[0].output == (
        "error: PostgreSQL unavailable: terminating connection due to administrator command\n"
    )


@pytest.mark.parametrize(
    "dsn, reason",
    [
        ("mysql://x", 'missing "=" after "mysql://x" in connection info string'),
        ("postgresql://u:s3cret@[::1", 'end of string reached when looking for matching "]" in '
         'IPv6 host address in URI: "postgresql://u:***@[::1"'),
    ],
)  # fmt: skip
def test_a_dsn_that_cannot_be_parsed_is_refused_at_once(cli_on, dsn: str, reason: str) -> None:
    """The rule of every command taking a DSN (`check_dsn`), before the pool would retry it
    for its whole timeout (30 s)."""
    started = time.monotonic()
    result = cli_on(dsn, "interview", "list")
    assert_exit(result, 2)
    assert result.output == f"error: not a valid PostgreSQL URL: {reason}\n"
    assert time.monotonic() - started < 5
