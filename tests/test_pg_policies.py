"""Row-level security, cell by cell: every role x every table x select/insert/update/delete.

Each case runs on the migrated schema (supabase/migrations) in its own transaction, as the role
itself (`set local role ...`) with its JWT claims in `request.jwt.claims`, exactly as PostgREST
or the service runs a user's request; the transaction is rolled back afterwards.

Outcomes: a select yields the exact set of rows visible; a write of one target row yields "ok"
(one row written), "none" (the row is not there for this role: zero rows) or "denied" (the
database refused it: SQLSTATE 42501, missing privilege or a failed WITH CHECK).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors

ORG_A = "0a000000-0000-4000-8000-00000000000a"
ORG_B = "0b000000-0000-4000-8000-00000000000b"
RA1 = "a1000000-0000-4000-8000-0000000000a1"  # recruiter in org A
RA2 = "a2000000-0000-4000-8000-0000000000a2"  # another recruiter in org A
RB = "b1000000-0000-4000-8000-0000000000b1"  # recruiter in org B
LEAD_A = "1ead0000-0000-4000-8000-00000000001a"

IDS = {
    "pA1": "aaaa0001-0000-4000-8000-000000000001",
    "pA2": "aaaa0002-0000-4000-8000-000000000002",
    "pB": "bbbb0001-0000-4000-8000-000000000001",
    "sA1": "5aaa0001-0000-4000-8000-000000000001",
    "sA2": "5aaa0002-0000-4000-8000-000000000002",
    "sB": "5bbb0001-0000-4000-8000-000000000001",
    "cA": "cand-a",
    "cA0": "cand-a0",
    "cB": "cand-b",
    "cB0": "cand-b0",
    "callA": "api-call-a",
    "callB": "api-call-b",
    "delA": "gone-a",
    "delB": "gone-b",
}
LABELS = {value: key for key, value in IDS.items()}


def _claims(user: str, org: str, role: str) -> dict[str, Any]:
    return {
        "sub": user,
        "role": "authenticated",
        "app_metadata": {"org_id": org, "itrack_role": role},
    }


# actor -> (database role, JWT claims)
ACTORS: dict[str, tuple[str, dict[str, Any]]] = {
    "anon": ("anon", {"role": "anon"}),
    "recruiter_a": ("authenticated", _claims(RA1, ORG_A, "recruiter")),
    "recruiter_b": ("authenticated", _claims(RB, ORG_B, "recruiter")),
    "lead_a": ("authenticated", _claims(LEAD_A, ORG_A, "lead")),
    "service": ("service_role", {"role": "service_role"}),
    "extract": ("itrack_extract", {}),
}
TABLES = ("candidates", "processes", "stages", "history", "corrections", "calls", "deletions")
TABLE_NAMES = {
    "candidates": "candidates",
    "processes": "interview_processes",
    "stages": "interview_stages",
    "history": "interview_status_history",
    "corrections": "corrections",
    "calls": "service_calls",
    "deletions": "deleted_rows",
}
# the column each table's rows are told apart by in these tests
KEYS = {
    **dict.fromkeys(TABLES, "id"),
    "history": "interview_process_id",
    "corrections": "interview_process_id",
    "calls": "run_id",
    "deletions": "record_id",
}
ALL = "all"

SEED = f"""
insert into candidates (id, organization_id, full_name, created_at) values
    ('cand-a', '{ORG_A}', 'Ann A', '2025-01-01Z'), ('cand-a0', '{ORG_A}', 'Al A', '2025-01-01Z'),
    ('cand-b', '{ORG_B}', 'Bea B', '2025-01-01Z'), ('cand-b0', '{ORG_B}', 'Bo B', '2025-01-01Z');
insert into interview_processes
    (id, organization_id, candidate_id, company_name, role_title, recruiter_id, created_at)
values
    ('{IDS["pA1"]}', '{ORG_A}', 'cand-a', 'Acme', 'SWE', '{RA1}', '2025-01-02Z'),
    ('{IDS["pA2"]}', '{ORG_A}', 'cand-a', 'Initech', 'SRE', '{RA2}', '2025-01-02Z'),
    ('{IDS["pB"]}', '{ORG_B}', 'cand-b', 'Globex', 'PM', '{RB}', '2025-01-02Z');
insert into interview_stages
    (id, organization_id, interview_process_id, stage_name, stage_order, created_at)
values
    ('{IDS["sA1"]}', '{ORG_A}', '{IDS["pA1"]}', 'Phone Screen', 1, '2025-01-03Z'),
    ('{IDS["sA2"]}', '{ORG_A}', '{IDS["pA2"]}', 'Phone Screen', 1, '2025-01-03Z'),
    ('{IDS["sB"]}', '{ORG_B}', '{IDS["pB"]}', 'Phone Screen', 1, '2025-01-03Z');
insert into corrections
    (organization_id, interview_process_id, record_kind, record_id, field, reason, changed_by)
select organization_id, id, 'process', id, 'status', 'typo', 'seed' from interview_processes;
insert into service_calls (run_id, command, organization_id, user_id, started_at) values
    ('api-call-a', 'interview create', '{ORG_A}', '{RA1}', '2025-01-02Z'),
    ('api-call-b', 'interview create', '{ORG_B}', '{RB}', '2025-01-02Z');
insert into deleted_rows (table_name, record_id, organization_id) values
    ('interview_stages', 'gone-a', '{ORG_A}'), ('interview_stages', 'gone-b', '{ORG_B}');
"""

# -- what each actor sees ---------------------------------------------------------------------
ORG_A_ROWS = {
    "candidates": {"cA", "cA0"},
    "processes": {"pA1", "pA2"},
    "stages": {"sA1", "sA2"},
    "history": {"pA1", "pA2"},
    "corrections": {"pA1", "pA2"},
    "calls": {"callA"},
    "deletions": "denied",  # the server's and the extract's business
}
ORG_B_ROWS = {
    "candidates": {"cB", "cB0"},
    "processes": {"pB"},
    "stages": {"sB"},
    "history": {"pB"},
    "corrections": {"pB"},
    "calls": {"callB"},
    "deletions": "denied",
}
EVERY_ROW = {
    **{table: ORG_A_ROWS[table] | ORG_B_ROWS[table] for table in TABLES if table != "deletions"},
    "deletions": {"delA", "delB"},
}
SELECT: dict[str, dict[str, set[str] | str]] = {
    "anon": dict.fromkeys(TABLES, "denied"),
    "recruiter_a": dict(ORG_A_ROWS),
    "recruiter_b": dict(ORG_B_ROWS),
    "lead_a": dict(ORG_A_ROWS),
    "service": dict(EVERY_ROW),
    "extract": dict(EVERY_ROW),
}

# -- inserts: a new row in each scope -> outcome ----------------------------------------------
INSERT_TARGETS = {
    "candidates": ("in_org_a", "in_org_b"),
    "processes": ("org_a_for_ra1", "org_a_for_ra2", "org_b_for_rb"),
    "stages": ("of_pA1", "of_pA2", "of_pB"),
    "history": ("of_pA1",),
    "corrections": ("of_pA1", "of_pA2", "of_pB"),
    # a call logged with the defaults (the acting user and organization), or for someone
    "calls": ("defaults", "ra1_in_org_a", "ra2_in_org_a", "rb_in_org_b"),
    "deletions": ("of_sA1",),
}
DENIED_CALLS = {"ra1_in_org_a": "denied", "ra2_in_org_a": "denied", "rb_in_org_b": "denied"}
INSERT: dict[str, dict[str, dict[str, str]]] = {
    "anon": {t: dict.fromkeys(INSERT_TARGETS[t], "denied") for t in TABLES},
    "recruiter_a": {
        "candidates": {"in_org_a": "ok", "in_org_b": "denied"},
        "processes": {"org_a_for_ra1": "ok", "org_a_for_ra2": "denied", "org_b_for_rb": "denied"},
        "stages": {"of_pA1": "ok", "of_pA2": "denied", "of_pB": "denied"},
        "history": {"of_pA1": "denied"},
        "corrections": {"of_pA1": "ok", "of_pA2": "denied", "of_pB": "denied"},
        "calls": {**DENIED_CALLS, "defaults": "ok", "ra1_in_org_a": "ok"},
        "deletions": {"of_sA1": "denied"},
    },
    "recruiter_b": {
        "candidates": {"in_org_a": "denied", "in_org_b": "ok"},
        "processes": {"org_a_for_ra1": "denied", "org_a_for_ra2": "denied", "org_b_for_rb": "ok"},
        "stages": {"of_pA1": "denied", "of_pA2": "denied", "of_pB": "ok"},
        "history": {"of_pA1": "denied"},
        "corrections": {"of_pA1": "denied", "of_pA2": "denied", "of_pB": "ok"},
        "calls": {**DENIED_CALLS, "defaults": "ok", "rb_in_org_b": "ok"},
        "deletions": {"of_sA1": "denied"},
    },
    "lead_a": {
        "candidates": {"in_org_a": "ok", "in_org_b": "denied"},
        "processes": {"org_a_for_ra1": "ok", "org_a_for_ra2": "ok", "org_b_for_rb": "denied"},
        "stages": {"of_pA1": "ok", "of_pA2": "ok", "of_pB": "denied"},
        "history": {"of_pA1": "denied"},
        "corrections": {"of_pA1": "ok", "of_pA2": "ok", "of_pB": "denied"},
        "calls": {**DENIED_CALLS, "defaults": "ok"},  # a lead logs their own calls only
        "deletions": {"of_sA1": "denied"},
    },
    "service": {
        "candidates": {"in_org_a": "ok", "in_org_b": "ok"},
        "processes": {"org_a_for_ra1": "ok", "org_a_for_ra2": "ok", "org_b_for_rb": "ok"},
        "stages": {"of_pA1": "ok", "of_pA2": "ok", "of_pB": "ok"},
        "history": {"of_pA1": "denied"},
        "corrections": {"of_pA1": "ok", "of_pA2": "ok", "of_pB": "ok"},
        "calls": dict.fromkeys(INSERT_TARGETS["calls"], "ok"),
        "deletions": {"of_sA1": "denied"},
    },
    "extract": {t: dict.fromkeys(INSERT_TARGETS[t], "denied") for t in TABLES},
}

# -- updates and deletes: each existing row -> outcome ----------------------------------------
ROW_TARGETS = {
    "candidates": ("cA", "cB"),
    "processes": ("pA1", "pA2", "pB"),
    "stages": ("sA1", "sA2", "sB"),
    "history": ("pA1", "pB"),
    "corrections": ("pA1", "pB"),
    "calls": ("callA", "callB"),
    "deletions": ("delA", "delB"),
}
DELETE_TARGETS = {**ROW_TARGETS, "candidates": ("cA0", "cB0")}  # candidates without processes
# Nobody updates or deletes a row of a log (history, corrections, calls, deletions).
LOG_ROWS_DENIED = {
    t: dict.fromkeys(ROW_TARGETS[t], "denied")
    for t in ("history", "corrections", "calls", "deletions")
}
UPDATE: dict[str, dict[str, dict[str, str]]] = {
    "anon": {t: dict.fromkeys(ROW_TARGETS[t], "denied") for t in TABLES},
    "recruiter_a": {
        "candidates": {"cA": "ok", "cB": "none"},
        "processes": {"pA1": "ok", "pA2": "none", "pB": "none"},
        "stages": {"sA1": "ok", "sA2": "none", "sB": "none"},
        **LOG_ROWS_DENIED,
    },
    "recruiter_b": {
        "candidates": {"cA": "none", "cB": "ok"},
        "processes": {"pA1": "none", "pA2": "none", "pB": "ok"},
        "stages": {"sA1": "none", "sA2": "none", "sB": "ok"},
        **LOG_ROWS_DENIED,
    },
    "lead_a": {
        "candidates": {"cA": "ok", "cB": "none"},
        "processes": {"pA1": "ok", "pA2": "ok", "pB": "none"},
        "stages": {"sA1": "ok", "sA2": "ok", "sB": "none"},
        **LOG_ROWS_DENIED,
    },
    "service": {
        "candidates": {"cA": "ok", "cB": "ok"},
        "processes": {"pA1": "ok", "pA2": "ok", "pB": "ok"},
        "stages": {"sA1": "ok", "sA2": "ok", "sB": "ok"},
        **LOG_ROWS_DENIED,
    },
    "extract": {t: dict.fromkeys(ROW_TARGETS[t], "denied") for t in TABLES},
}
DELETE: dict[str, dict[str, dict[str, str]]] = {
    "anon": {t: dict.fromkeys(DELETE_TARGETS[t], "denied") for t in TABLES},
    "recruiter_a": {
        "candidates": {"cA0": "none", "cB0": "none"},
        "processes": {"pA1": "none", "pA2": "none", "pB": "none"},
        "stages": {"sA1": "none", "sA2": "none", "sB": "none"},
        **LOG_ROWS_DENIED,
    },
    "recruiter_b": {
        "candidates": {"cA0": "none", "cB0": "none"},
        "processes": {"pA1": "none", "pA2": "none", "pB": "none"},
        "stages": {"sA1": "none", "sA2": "none", "sB": "none"},
        **LOG_ROWS_DENIED,
    },
    "lead_a": {
        "candidates": {"cA0": "ok", "cB0": "none"},
        "processes": {"pA1": "ok", "pA2": "ok", "pB": "none"},
        "stages": {"sA1": "ok", "sA2": "ok", "sB": "none"},
        **LOG_ROWS_DENIED,
    },
    "service": {
        "candidates": {"cA0": "ok", "cB0": "ok"},
        "processes": {"pA1": "ok", "pA2": "ok", "pB": "ok"},
        "stages": {"sA1": "ok", "sA2": "ok", "sB": "ok"},
        **LOG_ROWS_DENIED,
    },
    "extract": {t: dict.fromkeys(DELETE_TARGETS[t], "denied") for t in TABLES},
}


# -- statements -------------------------------------------------------------------------------
def _insert_sql(table: str, target: str) -> tuple[str, list[Any]]:
    if table == "candidates":
        org = ORG_A if target == "in_org_a" else ORG_B
        return (
            "insert into candidates (id, organization_id, full_name, created_at) "
            "values (%s, %s, 'New One', now())",
            [f"new-{target}", org],
        )
    if table == "processes":
        org, cand, recruiter = {
            "org_a_for_ra1": (ORG_A, "cand-a", RA1),
            "org_a_for_ra2": (ORG_A, "cand-a", RA2),
            "org_b_for_rb": (ORG_B, "cand-b", RB),
        }[target]
        return (
            "insert into interview_processes (organization_id, candidate_id, company_name, "
            "role_title, recruiter_id, created_at) values (%s, %s, 'Hooli', 'SWE', %s, now())",
            [org, cand, recruiter],
        )
    if table == "stages":
        process = target.removeprefix("of_")
        org = ORG_B if process == "pB" else ORG_A
        return (
            "insert into interview_stages (organization_id, interview_process_id, stage_name, "
            "stage_order, created_at) values (%s, %s, 'Onsite', 2, now())",
            [org, IDS[process]],
        )
    if table == "calls":
        if target == "defaults":
            return (
                "insert into service_calls (run_id, command, started_at)"
                " values ('api-new', 'interview create', now())",
                [],
            )
        user, org = {
            "ra1_in_org_a": (RA1, ORG_A),
            "ra2_in_org_a": (RA2, ORG_A),
            "rb_in_org_b": (RB, ORG_B),
        }[target]
        return (
            "insert into service_calls (run_id, command, started_at, organization_id, user_id)"
            " values ('api-new', 'interview create', now(), %s, %s)",
            [org, user],
        )
    if table == "deletions":
        return (
            "insert into deleted_rows (table_name, record_id, organization_id)"
            " values ('interview_stages', %s, %s)",
            [IDS["sA1"], ORG_A],
        )
    if table == "corrections":
        process = target.removeprefix("of_")
        org = ORG_B if process == "pB" else ORG_A
        return (
            "insert into corrections (organization_id, interview_process_id,"
            " record_kind, record_id, field, reason, changed_by)"
            " values (%s, %s, 'process', %s, 'role_title', 'typo', 'me')",
            [org, IDS[process], IDS[process]],
        )
    return (
        "insert into interview_status_history (organization_id, interview_process_id, "
        "to_status, changed_at) values (%s, %s, 'offer_accepted', now())",
        [ORG_A, IDS["pA1"]],
    )


def _update_sql(table: str, target: str) -> tuple[str, list[Any]]:
    statement = {
        "candidates": "update candidates set current_company = 'Moved' where id = %s",
        "processes": "update interview_processes set role_title = 'Staff SWE' where id = %s",
        "stages": "update interview_stages set feedback_notes = 'Strong' where id = %s",
        "history": (
            "update interview_status_history set source = 'x' where interview_process_id = %s"
        ),
        "corrections": ("update corrections set reason = 'x' where interview_process_id = %s"),
        "calls": "update service_calls set command = 'x' where run_id = %s",
        "deletions": "update deleted_rows set table_name = 'x' where record_id = %s",
    }[table]
    return statement, [IDS[target]]


def _delete_sql(table: str, target: str) -> tuple[str, list[Any]]:
    return f"delete from {TABLE_NAMES[table]} where {KEYS[table]} = %s", [IDS[target]]


# -- running as a role ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def conn(pg_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        connection.execute(SEED)
        yield connection


def _as(conn: psycopg.Connection, actor: str, sql: str, params: list[Any]) -> Any:
    """Run one statement as `actor` in a transaction that is rolled back; its outcome."""
    role, claims = ACTORS[actor]
    conn.execute("begin")
    try:
        conn.execute(f"set local role {role}")
        conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
        cursor = conn.execute(sql, params)
        if sql.startswith("select"):
            return {LABELS[str(row[0])] for row in cursor.fetchall()}
        return {1: "ok", 0: "none"}[cursor.rowcount]
    except errors.InsufficientPrivilege:
        return "denied"
    finally:
        conn.execute("rollback")


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("actor", ACTORS)
def test_select(conn: psycopg.Connection, actor: str, table: str) -> None:
    seen = _as(conn, actor, f"select {KEYS[table]} from {TABLE_NAMES[table]}", [])
    assert seen == SELECT[actor][table]


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("actor", ACTORS)
def test_insert(conn: psycopg.Connection, actor: str, table: str) -> None:
    outcomes = {
        target: _as(conn, actor, *_insert_sql(table, target)) for target in INSERT_TARGETS[table]
    }
    assert outcomes == INSERT[actor][table]


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("actor", ACTORS)
def test_update(conn: psycopg.Connection, actor: str, table: str) -> None:
    outcomes = {
        target: _as(conn, actor, *_update_sql(table, target)) for target in ROW_TARGETS[table]
    }
    assert outcomes == UPDATE[actor][table]


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("actor", ACTORS)
def test_delete(conn: psycopg.Connection, actor: str, table: str) -> None:
    outcomes = {
        target: _as(conn, actor, *_delete_sql(table, target)) for target in DELETE_TARGETS[table]
    }
    assert outcomes == DELETE[actor][table]


# -- the edges of the policies ----------------------------------------------------------------
def test_recruiter_cannot_hand_a_process_to_someone_else(conn: psycopg.Connection) -> None:
    sql = "update interview_processes set recruiter_id = %s where id = %s"
    assert _as(conn, "recruiter_a", sql, [RA2, IDS["pA1"]]) == "denied"
    assert _as(conn, "lead_a", sql, [RA2, IDS["pA1"]]) == "ok"


def test_nobody_moves_a_row_to_another_organization(conn: psycopg.Connection) -> None:
    sql = "update candidates set organization_id = %s where id = %s"
    assert _as(conn, "recruiter_a", sql, [ORG_B, "cand-a0"]) == "denied"
    assert _as(conn, "lead_a", sql, [ORG_B, "cand-a0"]) == "denied"


def test_a_correction_is_its_authors_about_its_process_and_dated_now(
    conn: psycopg.Connection,
) -> None:
    """A recruiter appended corrections in another user's name, about another organization's
    stage filed under their own process, and dated them at will (migration 20261127120000)."""
    sql = (
        "insert into corrections (organization_id, interview_process_id, record_kind,"
        " record_id, field, reason, changed_by, changed_by_user, recorded_at)"
        " values (%s, %s, %s, %s, 'outcome', 'typo', 'me', %s, %s) returning recorded_at > now()"
        " - interval '1 minute'"
    )
    own = [ORG_A, IDS["pA1"], "stage", IDS["sA1"], RA1, "2001-01-01T00:00:00Z"]
    assert _as(conn, "recruiter_a", sql, own) == "ok"
    assert _as(conn, "recruiter_a", sql, [*own[:4], RA2, own[5]]) == "denied"
    assert _as(conn, "recruiter_a", sql, [*own[:3], IDS["sB"], RA1, own[5]]) == "denied"
    assert _as(conn, "recruiter_a", sql, [*own[:3], IDS["sA2"], RA1, own[5]]) == "denied"
    process = [ORG_A, IDS["pA1"], "process", IDS["pA2"], RA1, own[5]]
    assert _as(conn, "recruiter_a", sql, process) == "denied"
    conn.execute("begin")
    try:
        conn.execute("set local role authenticated")
        claims = json.dumps(ACTORS["recruiter_a"][1])
        conn.execute("select set_config('request.jwt.claims', %s, true)", [claims])
        assert conn.execute(sql, own).fetchone() == (True,)  # dated now, not 2001
    finally:
        conn.execute("rollback")


def test_claims_decide_not_the_role_name(conn: psycopg.Connection) -> None:
    """No organization claim, or one in user_metadata (which users can edit), sees nothing."""
    select = "select id from interview_processes"
    ACTORS["no_org"] = ("authenticated", {"sub": RA1, "role": "authenticated"})
    ACTORS["self_claimed"] = (
        "authenticated",
        {"sub": RA1, "user_metadata": {"org_id": ORG_A, "itrack_role": "lead"}},
    )
    ACTORS["anon_with_claims"] = ("anon", _claims(RA1, ORG_A, "lead"))
    try:
        assert _as(conn, "no_org", select, []) == set()
        assert _as(conn, "self_claimed", select, []) == set()
        assert _as(conn, "anon_with_claims", select, []) == "denied"
        # a recruiter of org A with an unknown role string writes nothing
        ACTORS["odd_role"] = ("authenticated", _claims(RA1, ORG_A, "admin"))
        assert _as(conn, "odd_role", select, []) == {"pA1", "pA2"}
        assert _as(conn, "odd_role", *_update_sql("processes", "pA1")) == "none"
    finally:
        for extra in ("no_org", "self_claimed", "anon_with_claims", "odd_role"):
            ACTORS.pop(extra, None)


@pytest.mark.parametrize(
    ("table", "column", "rows"),
    [
        ("interview_status_history", "source", 3),
        ("corrections", "reason", 3),
        ("service_calls", "command", 2),
        ("deleted_rows", "table_name", 2),
    ],
)
def test_logs_are_append_only_even_for_the_owner(
    conn: psycopg.Connection, table: str, column: str, rows: int
) -> None:
    """The table owner (here a superuser) is refused too: a trigger, not only grants."""
    for sql in (f"update {table} set {column} = 'x'", f"delete from {table}", f"truncate {table}"):
        conn.execute("begin")
        try:
            with pytest.raises(errors.InsufficientPrivilege, match=f"{table} is append-only"):
                conn.execute(sql)
        finally:
            conn.execute("rollback")
    assert conn.execute(f"select count(*) from {table}").fetchone() == (rows,)


def test_deletions_are_logged_with_the_cascade(conn: psycopg.Connection) -> None:
    """A lead deletes a process: it and its stage are in deleted_rows, written as the owner."""
    role, claims = ACTORS["lead_a"]
    conn.execute("begin")
    try:
        conn.execute(f"set local role {role}")
        conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
        conn.execute("delete from interview_processes where id = %s", [IDS["pA1"]])
        conn.execute("reset role")
        logged = conn.execute(
            "select table_name, record_id, organization_id::text, deleted_by::text"
            " from deleted_rows where record_id not like 'gone-%' order by table_name"
        ).fetchall()
    finally:
        conn.execute("rollback")
    assert logged == [
        ("interview_processes", IDS["pA1"], ORG_A, LEAD_A),
        ("interview_stages", IDS["sA1"], ORG_A, LEAD_A),
    ]


def test_status_history_written_for_a_recruiter_who_cannot_insert_it(
    conn: psycopg.Connection,
) -> None:
    """The recruiter moves their process; the trigger appends the history row as its owner."""
    role, claims = ACTORS["recruiter_a"]
    conn.execute("begin")
    try:
        conn.execute(f"set local role {role}")
        conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
        conn.execute("select set_config('itrack.run_id', 'api-test-1', true)")
        conn.execute(
            "update interview_processes set status = 'on_hold' where id = %s", [IDS["pA1"]]
        )
        rows = conn.execute(
            "select from_status, to_status, changed_by::text, run_id, source "
            "from interview_status_history where interview_process_id = %s order by id",
            [IDS["pA1"]],
        ).fetchall()
    finally:
        conn.execute("rollback")
    assert rows == [
        (None, "in_progress", None, None, "postgres"),
        ("in_progress", "on_hold", RA1, "api-test-1", "postgres"),
    ]


@pytest.mark.parametrize("role", ["authenticated", "anon"])
def test_every_row_policies_are_only_for_the_server_and_the_extract(
    conn: psycopg.Connection, role: str
) -> None:
    """`itrack.allow_all` (a policy on every row) refuses a user's role: no `using (true)` for
    anyone who signs in with the public key."""
    with conn.transaction(force_rollback=True):
        with pytest.raises(errors.RaiseException) as refused:
            conn.execute("select itrack.allow_all('interview_processes', %s, 'select')", [role])
    assert str(refused.value).splitlines()[0] == (
        f"itrack.allow_all is for service_role and itrack_extract, not {role}"
    )
