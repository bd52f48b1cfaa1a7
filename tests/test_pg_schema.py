"""The migrated PostgreSQL schema (supabase/migrations) against the record contract.

Columns, CHECK constraints, keys, cascades, the updated_at and status-history triggers, the
row-level security set-up (enabled and forced everywhere, helpers evaluated once per statement,
policy columns indexed) and the migration ledger, on a real server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors

from ingest.contract import (
    Candidate,
    InterviewProcess,
    InterviewStage,
    InterviewStatus,
    StageOutcome,
    reachable,
)
from ingest.migrate import POSTGRES_MIGRATIONS, discover, upgrade_postgres

ORG = "0a000000-0000-4000-8000-00000000000a"
P1 = "11111111-1111-4111-8111-111111111111"
TABLES = (
    "candidates",
    "corrections",
    "deleted_rows",
    "interview_processes",
    "interview_stages",
    "interview_status_history",
    "service_calls",
)


@pytest.fixture(scope="module")
def conn(pg_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        connection.execute(
            "insert into candidates (id, organization_id, full_name, created_at)"
            " values ('cand-1', %s, 'Ann Lee', '2025-01-01Z')",
            [ORG],
        )
        yield connection


@pytest.fixture
def tx(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The module's connection inside a transaction that is rolled back."""
    conn.execute("begin")
    try:
        yield conn
    finally:
        conn.execute("rollback")


def _process(conn: psycopg.Connection, **over: Any) -> None:
    row = {
        "id": P1,
        "organization_id": ORG,
        "candidate_id": "cand-1",
        "company_name": "Acme",
        "role_title": "SWE",
        "created_at": "2025-01-05T00:00:00Z",
        **over,
    }
    names = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    conn.execute(f"insert into interview_processes ({names}) values ({marks})", list(row.values()))


def _stage(conn: psycopg.Connection, order: int = 1, **over: Any) -> None:
    row = {
        "organization_id": ORG,
        "interview_process_id": P1,
        "stage_name": "Phone Screen",
        "stage_order": order,
        "created_at": "2025-01-06T00:00:00Z",
        **over,
    }
    names = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    conn.execute(f"insert into interview_stages ({names}) values ({marks})", list(row.values()))


def _columns(conn: psycopg.Connection, table: str) -> set[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns"
        " where table_schema = 'public' and table_name = %s",
        [table],
    ).fetchall()
    return {row[0] for row in rows}


def test_columns_are_the_contracts_plus_organization(conn: psycopg.Connection) -> None:
    """Plus `_changed_at`, the server's clock at the row's last write (the extract's stamp)."""
    assert _columns(conn, "candidates") == set(Candidate.model_fields) | {
        "organization_id",
        "_changed_at",
    }
    assert _columns(conn, "interview_processes") == set(InterviewProcess.model_fields) | {
        "organization_id",
        "recruiter_id",
        "_changed_at",
    }
    assert _columns(conn, "interview_stages") == set(InterviewStage.model_fields) | {
        "organization_id",
        "_changed_at",
    }
    types = dict(
        conn.execute(
            "select column_name, data_type from information_schema.columns where table_schema ="
            " 'public' and table_name in ('interview_processes', 'interview_stages')"
            " and column_name in ('offer_details', 'interviewer_names', 'created_at')"
        ).fetchall()
    )
    assert types == {
        "offer_details": "jsonb",
        "interviewer_names": "ARRAY",
        "created_at": "timestamp with time zone",
    }


@pytest.mark.parametrize("status", [s.value for s in InterviewStatus])
def test_every_contract_status_is_accepted(tx: psycopg.Connection, status: str) -> None:
    _process(tx, status=status)
    assert tx.execute("select status from interview_processes").fetchone() == (status,)


@pytest.mark.parametrize("outcome", [o.value for o in StageOutcome])
def test_every_contract_outcome_is_accepted(tx: psycopg.Connection, outcome: str) -> None:
    _process(tx)
    _stage(tx, outcome=outcome)
    assert tx.execute("select outcome from interview_stages").fetchone() == (outcome,)


@pytest.mark.parametrize(
    ("table", "over", "constraint"),
    [
        ("process", {"status": "hired"}, "interview_processes_status_check"),
        ("process", {"offer_details": "[1]"}, "interview_processes_offer_details_object"),
        ("process", {"updated_at": "2025-01-04Z"}, "interview_processes_updated_after_created"),
        ("stage", {"outcome": "maybe"}, "interview_stages_outcome_check"),
        ("stage", {"stage_order": 0}, "interview_stages_stage_order_check"),
        ("stage", {"overall_rating": 0}, "interview_stages_overall_rating_check"),
        ("stage", {"technical_rating": 6}, "interview_stages_technical_rating_check"),
        ("stage", {"culture_fit_rating": 6}, "interview_stages_culture_fit_rating_check"),
        ("stage", {"communication_rating": 0}, "interview_stages_communication_rating_check"),
        (
            "stage",
            {"scheduled_date": "2025-02-02Z", "completed_date": "2025-02-01Z"},
            "interview_stages_completed_after_scheduled",
        ),
        ("stage", {"stage_name": "  "}, "interview_stages_stage_name_check"),
    ],
)
def test_check_constraints_refuse(
    tx: psycopg.Connection, table: str, over: dict[str, Any], constraint: str
) -> None:
    if table == "stage":
        _process(tx)
    with pytest.raises(errors.CheckViolation) as caught:
        _process(tx, **over) if table == "process" else _stage(tx, **over)
    assert caught.value.diag.constraint_name == constraint


def test_ratings_one_to_five_accepted(tx: psycopg.Connection) -> None:
    _process(tx)
    _stage(tx, 1, overall_rating=1, technical_rating=5, culture_fit_rating=3)
    row = tx.execute("select overall_rating, technical_rating from interview_stages").fetchone()
    assert row == (1, 5)


def test_stage_order_is_unique_per_process(tx: psycopg.Connection) -> None:
    _process(tx)
    _stage(tx, 1)
    with pytest.raises(errors.UniqueViolation) as caught:
        _stage(tx, 1, stage_name="Onsite")
    assert caught.value.diag.constraint_name == "interview_stages_process_stage_order_key"


def test_a_stage_stays_in_its_process_organization(tx: psycopg.Connection) -> None:
    _process(tx)
    with pytest.raises(errors.ForeignKeyViolation):
        _stage(tx, 1, organization_id="0b000000-0000-4000-8000-00000000000b")


def test_deleting_a_process_deletes_its_stages_and_keeps_its_history(
    tx: psycopg.Connection,
) -> None:
    _process(tx)
    _stage(tx, 1)
    _stage(tx, 2, stage_name="Onsite")
    tx.execute("delete from interview_processes where id = %s", [P1])
    assert tx.execute("select count(*) from interview_stages").fetchone() == (0,)
    assert tx.execute("select count(*) from interview_status_history").fetchone() == (1,)


def test_updated_at_defaults_to_created_at_and_moves_forward(tx: psycopg.Connection) -> None:
    _process(tx)
    first = tx.execute("select created_at, updated_at from interview_processes").fetchone()
    assert first[1] == first[0]
    tx.execute("update interview_processes set role_title = 'Staff SWE'")
    (second,) = tx.execute("select updated_at from interview_processes").fetchone()
    (now,) = tx.execute("select now()").fetchone()
    assert second == now  # not set by the writer: the transaction's time
    tx.execute("update interview_processes set updated_at = '2030-01-01Z'")
    tx.execute("update interview_processes set role_title = 'Principal SWE'")
    (third,) = tx.execute("select updated_at::text from interview_processes").fetchone()
    assert third == "2030-01-01 00:00:00.000001+00"  # never backwards, one tick past


def test_a_stage_change_touches_its_process(tx: psycopg.Connection) -> None:
    _process(tx, updated_at="2025-01-05Z")
    _stage(tx, 1)
    (after_insert,) = tx.execute("select updated_at from interview_processes").fetchone()
    (now,) = tx.execute("select now()").fetchone()
    assert after_insert == now
    tx.execute("update interview_processes set updated_at = '2031-01-01Z'")
    tx.execute("update interview_stages set outcome = 'passed'")
    (after_update,) = tx.execute("select updated_at::text from interview_processes").fetchone()
    assert after_update == "2031-01-01 00:00:00.000001+00"
    tx.execute("delete from interview_stages")
    (after_delete,) = tx.execute("select updated_at::text from interview_processes").fetchone()
    assert after_delete == "2031-01-01 00:00:00.000002+00"


def test_status_history_follows_every_status_change(tx: psycopg.Connection) -> None:
    _process(tx)
    tx.execute(
        "update interview_processes set status = 'offer_extended', updated_at = '2025-02-01Z'"
    )
    tx.execute("select set_config('itrack.run_id', 'api-1', true)")
    tx.execute("select set_config('itrack.source', 'service', true)")
    tx.execute(
        "update interview_processes set status = 'offer_accepted', updated_at = '2025-02-03Z'"
    )
    tx.execute("update interview_processes set role_title = 'Staff SWE'")  # not a status change
    rows = tx.execute(
        "select organization_id::text, interview_process_id::text, from_status, to_status,"
        " changed_at::text, run_id, source from interview_status_history order by id"
    ).fetchall()
    assert rows == [
        (ORG, P1, None, "in_progress", "2025-01-05 00:00:00+00", None, "postgres"),
        (ORG, P1, "in_progress", "offer_extended", "2025-02-01 00:00:00+00", None, "postgres"),
        (ORG, P1, "offer_extended", "offer_accepted", "2025-02-03 00:00:00+00", "api-1", "service"),
    ]


def test_other_writers_move_a_status_only_where_ingest_would_take_it(
    tx: psycopg.Connection,
) -> None:
    """A Supabase client (no `itrack.source`) moved a rejected process back to in_progress:
    every pair of statuses is tried, and the database takes exactly the moves ingest takes
    from a snapshot (`reachable`); the service (source set) is not checked here (found by the
    exploratory ops run)."""
    _process(tx)
    taken = set()
    for old in InterviewStatus:
        for new in InterviewStatus:
            if old == new:
                continue
            tx.execute("savepoint move")
            tx.execute("select set_config('itrack.source', 'service', true)")
            tx.execute("update interview_processes set status = %s", [old.value])
            tx.execute("select set_config('itrack.source', '', true)")
            try:
                tx.execute("update interview_processes set status = %s", [new.value])
                taken.add((old, new))
            except errors.CheckViolation as refused:
                assert refused.diag.message_primary == (
                    f"interview process {P1}: status cannot go from {old.value} to {new.value}"
                )
            tx.execute("rollback to savepoint move")
    assert taken == {(a, b) for a in InterviewStatus for b in reachable(a) if a != b}


def test_a_refused_move_says_why(tx: psycopg.Connection) -> None:
    _process(tx, status="rejected_by_company")
    with pytest.raises(errors.CheckViolation) as refused:
        tx.execute("update interview_processes set status = 'in_progress'")
    assert refused.value.diag.message_hint == (
        "rejected_by_company is final; a lead reopens a process with `itrack interview "
        "reopen` (a correction, with its reason)"
    )


def test_rls_enabled_and_forced_on_every_table(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select c.relname, c.relrowsecurity, c.relforcerowsecurity from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind = 'r' order by c.relname"
    ).fetchall()
    assert rows == [(table, True, True) for table in sorted(TABLES)]


def test_policies_are_scoped_and_evaluate_helpers_once(conn: psycopg.Connection) -> None:
    """No policy for anon; none `using (true)` for users; helpers always as `(select f())`."""
    rows = conn.execute(
        "select tablename, policyname, roles::text[], coalesce(qual, ''), coalesce(with_check, '')"
        " from pg_policies where schemaname = 'public'"
    ).fetchall()
    assert len(rows) == 35
    helper = re.compile(r"(auth\.uid|auth\.jwt|itrack\.org_id|itrack\.app_role)\(\)")
    for table, name, roles, qual, check in rows:
        assert "anon" not in roles, name
        if "authenticated" in roles or "public" in roles:
            assert qual != "true" and check != "true", name
        for expression in (qual, check):
            for match in helper.finditer(expression):
                assert expression[: match.start()].endswith("SELECT "), (name, expression)
        assert table in TABLES


def test_claim_helpers_are_inlined_into_the_policies(tx: psycopg.Connection) -> None:
    """The claim helpers and `may_change` are plain SQL expressions the planner inlines: a
    statement under the policies calls none of them (a SET clause on one would make it a
    function call planned again at every statement); `may_change_process` reads a table, so
    it stays a call."""
    _process(tx)
    claims = (
        '{"sub": "5950b438-b07c-4012-8190-6ce79e4bd8e5", "role": "authenticated",'
        f' "app_metadata": {{"org_id": "{ORG}", "itrack_role": "recruiter"}}}}'
    )
    tx.execute("select set_config('request.jwt.claims', %s, true)", [claims])
    tx.execute("set local role authenticated")
    plans = {
        sql: "\n".join(row[0] for row in tx.execute(f"explain (verbose, costs off) {sql}"))
        for sql in (
            f"update interview_processes set role_title = 'x' where id = '{P1}'",
            "insert into service_calls (run_id, command, started_at) values ('r', 'c', now())",
            f"update interview_stages set stage_name = 'x' where interview_process_id = '{P1}'",
        )
    }
    called = re.compile(r"(itrack\.(org_id|app_role|may_change)|auth\.(uid|jwt))\(")
    assert {sql: called.findall(plan) for sql, plan in plans.items()} == {sql: [] for sql in plans}
    assert all("current_setting('request.jwt.claims'" in plan for plan in plans.values())
    stage_update = plans[
        f"update interview_stages set stage_name = 'x' where interview_process_id = '{P1}'"
    ]
    assert "itrack.may_change_process(interview_stages.interview_process_id)" in stage_update
    helpers = tx.execute(
        "select p.proname, p.proconfig from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'itrack' and p.proname in ('org_id', 'app_role', 'may_change')"
        " order by 1"
    ).fetchall()
    assert helpers == [("app_role", None), ("may_change", None), ("org_id", None)]


def test_policy_columns_are_indexed(conn: psycopg.Connection) -> None:
    """Each column a policy filters on leads an index of its table."""
    rows = conn.execute(
        "select t.relname, a.attname from pg_index i"
        " join pg_class t on t.oid = i.indrelid"
        " join pg_namespace n on n.oid = t.relnamespace and n.nspname = 'public'"
        " join pg_attribute a on a.attrelid = t.oid and a.attnum = i.indkey[0]"
    ).fetchall()
    leading = set(rows)
    for table in TABLES:
        if table != "deleted_rows":  # no policy of it filters on the organization
            assert (table, "organization_id") in leading, table
    assert ("interview_stages", "interview_process_id") in leading
    two_columns = conn.execute(
        "select count(*) from pg_indexes where tablename = 'interview_processes'"
        " and indexdef like '%(organization_id, recruiter_id)%'"
    ).fetchone()
    assert two_columns == (1,)


def test_upgrade_is_versioned_and_rerunnable(pg_dsn: str, conn: psycopg.Connection) -> None:
    versions = [m.version for m in discover(POSTGRES_MIGRATIONS)]
    ledger = conn.execute(
        "select version from supabase_migrations.schema_migrations order by version"
    ).fetchall()
    assert [row[0] for row in ledger] == versions
    assert upgrade_postgres(pg_dsn, auth_shim=True) == []
    assert upgrade_postgres(pg_dsn) == []


def test_in_the_services_transactions_its_updated_at_is_kept(tx: psycopg.Connection) -> None:
    """The service moves updated_at itself (the same rule on both stores): with itrack.source
    set, the triggers neither bump a value written unchanged nor touch the process of a stage."""
    _process(tx, updated_at="2025-01-05Z")
    tx.execute("select set_config('itrack.source', 'service', true)")
    tx.execute("update interview_processes set role_title = 'Staff SWE'")
    _stage(tx, 1)
    (kept,) = tx.execute("select updated_at::text from interview_processes").fetchone()
    assert kept == "2025-01-05 00:00:00+00"
    (recorded, now) = tx.execute(
        "select max(recorded_at), now() from interview_status_history"
    ).fetchone()
    assert recorded > now  # the clock when written, not the transaction's start
