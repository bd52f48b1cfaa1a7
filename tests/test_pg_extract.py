"""The nightly extract from PostgreSQL into the DuckDB raw store (ingest/extract.py).

A real server: the operational schema migrated into a throw-away database, rows written with
SQL as the service or a user would, then extracted into a raw store in a temporary folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest
from typer.testing import CliRunner

from ingest.extract import ExtractError, extract, read_watermarks, source_name
from ingest.load import ingest_paths
from ingest.store.duckdb.store import raw_store_path
from itrack.cli.main import app
from tests import pg
from tests.conftest import assert_exit, query

ORG = "0a000000-0000-4000-8000-00000000000a"
P1 = "11111111-1111-4111-8111-111111111111"
P2 = "22222222-2222-4222-8222-222222222222"
P3 = "33333333-3333-4333-8333-333333333333"
S1 = "aaaaaaaa-0000-4000-8000-000000000001"
S2 = "aaaaaaaa-0000-4000-8000-000000000002"
REPO = Path(__file__).resolve().parents[1]

SEED = f"""
insert into candidates (id, organization_id, full_name, feeder_source, created_at)
values ('cand-1', '{ORG}', 'Ann Lee', 'ex-amazon', '2025-01-01Z');
insert into interview_processes
    (id, organization_id, candidate_id, company_name, role_title, created_at)
values ('{P1}', '{ORG}', 'cand-1', 'Acme', 'SWE', '2025-01-05Z');
-- as the service writes a stage: it moves the process itself (here, by the update below; the
-- trigger would move it to now, and updated_at never moves back)
select set_config('itrack.source', 'seed', false);
insert into interview_stages (id, organization_id, interview_process_id, stage_name,
    stage_order, scheduled_date, completed_date, outcome, overall_rating, interviewer_names,
    created_at)
values ('{S1}', '{ORG}', '{P1}', 'Phone Screen', 1, '2025-01-06T10:00Z', '2025-01-06T11:00Z',
        'passed', 4, '{{Dana,"Lee \\"LJ\\" Jones"}}', '2025-01-06Z');
select set_config('itrack.source', '', false);
update interview_processes set status = 'offer_extended', updated_at = '2025-02-01Z',
    offer_details = '{{"base_salary": 150000, "currency": "USD", "offer_date": "2025-02-01"}}'
where id = '{P1}';
"""


@pytest.fixture
def source(pg_server: str) -> Iterator[str]:
    """A migrated operational database holding one candidate, process and stage."""
    with pg.database(pg_server) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SEED)
        yield dsn


def sql(dsn: str, statement: str, params: list | None = None) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def test_first_extract_pulls_every_row_with_its_history(source: str, db: Path) -> None:
    summary = extract(source, db)
    assert summary.pulled == pg.SEED_PULLED
    assert (summary.run.accepted, summary.run.rejected, summary.history_added) == (3, 0, 2)
    assert query(db, "select id, full_name, feeder_source, created_at from candidates") == [
        ("cand-1", "Ann Lee", "ex-amazon", dt.datetime(2025, 1, 1))
    ]
    assert query(
        db, "select id::varchar, status, offer_details, updated_at from interview_processes"
    ) == [
        (
            P1,
            "offer_extended",
            '{"base_salary":150000,"currency":"USD","offer_date":"2025-02-01"}',
            dt.datetime(2025, 2, 1),
        )
    ]
    assert query(
        db,
        "select stage_order, outcome, overall_rating, interviewer_names, scheduled_date,"
        " completed_date from interview_stages",
    ) == [
        (
            1,
            "passed",
            4,
            ["Dana", 'Lee "LJ" Jones'],
            dt.datetime(2025, 1, 6, 10),
            dt.datetime(2025, 1, 6, 11),
        )
    ]
    assert query(
        db,
        "select from_status, to_status, changed_at, source from interview_status_history"
        " order by changed_at",
    ) == [
        (None, "in_progress", dt.datetime(2025, 1, 5), "service"),
        ("in_progress", "offer_extended", dt.datetime(2025, 2, 1), "service"),
    ]
    name = source_name(source)
    assert query(db, "select file_path, kind, inserted from ingest_files order by kind") == [
        (f"{name}#candidates", "candidates", 1),
        (f"{name}#interview_processes", "processes", 1),
        (f"{name}#interview_stages", "stages", 1),
    ]
    # Watermarks are the server's clock when the rows were written, not their business times.
    assert read_watermarks(db, name) == _latest_stamps(source)


def _latest_stamps(dsn: str) -> dict[str, dt.datetime]:
    stamps = {
        "candidates": "_changed_at",
        "interview_processes": "_changed_at",
        "interview_stages": "_changed_at",
        "interview_status_history": "recorded_at",
    }
    return {
        table: sql(dsn, f"select max({stamp}) at time zone 'UTC' from {table}")[0][0]
        for table, stamp in stamps.items()
    }


def test_repeating_the_extract_changes_nothing(source: str, db: Path) -> None:
    extract(source, db)
    before = query(db, "select * exclude (_run_id, _loaded_at) from interview_processes")
    again = extract(source, db, overlap=dt.timedelta(days=3650))  # pulls everything again
    assert again.pulled["interview_processes"] == 1
    assert (again.run.total("inserted"), again.run.total("updated")) == (0, 0)
    assert again.run.total("unchanged") == 3
    assert again.history_added == 0
    assert query(db, "select count(*) from interview_status_history") == [(2,)]
    assert query(db, "select * exclude (_run_id, _loaded_at) from interview_processes") == before


def test_only_rows_changed_since_the_watermark_are_pulled(source: str, db: Path) -> None:
    assert extract(source, db).pulled == pg.SEED_PULLED
    # One stage changes now (the trigger touches its process); no candidate changes.
    sql(source, "update interview_stages set feedback_notes = 'Strong' where id = %s", [S1])
    summary = extract(source, db, overlap=dt.timedelta(0))
    assert summary.pulled == {
        "candidates": 0,
        "interview_processes": 1,
        "interview_stages": 1,
        "interview_status_history": 0,
        "corrections": 0,
        "deleted_rows": 0,
    }
    assert (summary.run.total("updated"), summary.run.total("unchanged")) == (2, 0)
    assert query(db, "select feedback_notes from interview_stages") == [("Strong",)]


def test_the_overlap_catches_a_late_commit(source: str, db: Path) -> None:
    """A row is stamped when written and visible when its transaction commits: one written
    before a row the extract saw, and committed after the extract, is older than the watermark.
    The next extract pulls it when the time from its write to its commit is within the overlap."""
    extract(source, db)
    with psycopg.connect(source) as late:
        late.execute("select set_config('itrack.source', 'service', true)")  # no process touch
        late.execute(
            "insert into interview_stages (id, organization_id, interview_process_id,"
            " stage_name, stage_order, created_at) values (%s, %s, %s, 'Onsite', 2, now())",
            [S2, ORG, P1],
        )
        sql(source, "update interview_stages set feedback_notes = 'Strong' where id = %s", [S1])
        assert extract(source, db, overlap=dt.timedelta(0)).pulled["interview_stages"] == 1
        late.commit()
    assert extract(source, db, overlap=dt.timedelta(0)).pulled["interview_stages"] == 0
    assert extract(source, db, overlap=dt.timedelta(minutes=1)).pulled["interview_stages"] == 2
    assert query(db, "select stage_order from interview_stages order by 1") == [(1,), (2,)]


def test_rows_the_contract_refuses_are_quarantined_naming_the_table(source: str, db: Path) -> None:
    """PostgreSQL's checks are looser than the contract here (currency codes): the extract
    quarantines the process; its history waits as an orphan and loads once the process does."""
    sql(
        source,
        "insert into interview_processes (id, organization_id, candidate_id, company_name,"
        " role_title, created_at, offer_details) values (%s, %s, 'cand-1', 'Initech', 'SRE',"
        ' \'2025-03-01Z\', \'{"base_salary": 1, "currency": "ZZZ"}\')',
        [P2, ORG],
    )
    (history_id,) = sql(
        source,
        "select id::text from interview_status_history where interview_process_id = %s",
        [P2],
    )[0]
    summary = extract(source, db)
    assert (summary.run.rejects_by_code, summary.history_added) == ({"invalid_offer": 1}, 2)
    name = source_name(source)
    waiting = (
        f"{name}#interview_status_history",
        "history",
        history_id,
        "orphan_history",
        "interview_process_id",
    )
    quarantined = (
        "select file_path, kind, record_id, error_code, field from quarantine"
        " where resolved_run_id is null order by kind"
    )
    assert query(db, quarantined) == [
        waiting,
        (f"{name}#interview_processes", "processes", P2, "invalid_offer", "offer_details.currency"),
    ]
    # The next extract does not quarantine the waiting history row twice.
    extract(source, db, overlap=dt.timedelta(days=1))
    assert query(db, "select count(*) from quarantine where kind = 'history'") == [(1,)]
    # Fixed at the source: the process loads, and so does its waiting history row.
    sql(
        source,
        'update interview_processes set offer_details = offer_details || \'{"currency": "EUR"}\''
        " where id = %s",
        [P2],
    )
    fixed = extract(source, db, overlap=dt.timedelta(0))
    assert (fixed.run.total("updated") + fixed.run.total("inserted"), fixed.history_added) == (1, 1)
    # the run that loaded the corrected process resolved its reject (and the history row's)
    assert query(db, quarantined) == []
    assert query(
        db, "select count(*) from quarantine where resolved_run_id = ?", [fixed.run.run_id]
    ) == [(2,)]
    assert query(
        db,
        "select from_status, to_status from interview_status_history where"
        f" interview_process_id = '{P2}'",
    ) == [(None, "in_progress")]


def test_a_killed_extract_leaves_store_and_watermark_as_they_were(source: str, db: Path) -> None:
    extract(source, db)
    sql(source, "update interview_stages set feedback_notes = 'Strong' where id = %s", [S1])
    before = query(db, "select * from extract_watermarks order by table_name")
    script = (
        "import os, signal, sys; from ingest import load; from ingest.extract import extract\n"
        "load.STEP_HOOKS.append(lambda step: step == 'commit' and os.kill(os.getpid(), 9))\n"
        "extract(sys.argv[1], sys.argv[2])"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed = subprocess.Popen([sys.executable, "-c", script, source, str(db)], env=env)
    assert killed.wait(timeout=120) == -9
    assert query(db, "select * from extract_watermarks order by table_name") == before
    assert query(db, "select feedback_notes from interview_stages") == [(None,)]
    assert query(db, "select count(*) from ingest_runs") == [(1,)]
    # the tables it pulled (names, notes) stay beside the raw store, not in the system's /tmp
    # (each killed extract left one there for good), until the next extract removes them
    staged = f".{raw_store_path(db).name}.extract-{killed.pid}-*"
    [left] = db.parent.glob(staged)
    assert sorted(p.name for p in left.iterdir()) == [
        "candidates.parquet",
        "corrections.csv",
        "deleted_rows.csv",
        "interview_status_history.csv",
        "processes.parquet",
        "stages.parquet",
    ]
    summary = extract(source, db, overlap=dt.timedelta(minutes=1))  # the next one catches up
    assert summary.run.total("updated") == 2
    assert query(db, "select feedback_notes from interview_stages") == [("Strong",)]
    assert list(db.parent.glob(".*.extract-*")) == []


def test_the_extract_role_reads_everything_and_writes_nothing(source: str, db: Path) -> None:
    """A login role that is a member of itrack_extract (as the README sets it up)."""
    role = f"nightly_{uuid.uuid4().hex[:8]}"
    sql(source, f"create role {role} login in role itrack_extract")
    try:
        as_role = pg.with_user(source, role)
        assert extract(as_role, db).run.accepted == 3
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sql(as_role, "update candidates set full_name = 'X'")
    finally:
        sql(source, f"drop owned by {role}")
        sql(source, f"drop role {role}")


def test_a_role_without_read_access_is_one_clear_error(source: str, db: Path) -> None:
    role = f"nobody_{uuid.uuid4().hex[:8]}"
    sql(source, f"create role {role} login")
    try:
        with pytest.raises(ExtractError, match=r"permission denied for table candidates; the "):
            extract(pg.with_user(source, role), db)
    finally:
        sql(source, f"drop role {role}")
    assert not (db.parent / "warehouse.raw.duckdb").exists()


def test_an_unreachable_server_is_one_clear_error(db: Path) -> None:
    with pytest.raises(ExtractError, match=r"^cannot connect to postgresql://x@127\.0\.0\.1:1/d: "):
        extract("postgresql://x@127.0.0.1:1/d", db)


def _rows(db: Path, statement: str) -> set[tuple]:
    return set(query(db, statement))


def test_corrections_are_extracted_once(source: str, db: Path) -> None:
    sql(
        source,
        "insert into corrections (organization_id, interview_process_id, record_kind, record_id,"
        " field, old_value, new_value, reason, changed_by, run_id, recorded_at) values"
        " (%s, %s, 'stage', %s, 'outcome', 'failed', 'passed', 'typo', 'rita', 'api-1',"
        "  '2025-02-02T10:00Z'),"
        " (%s, %s, 'process', %s, 'status', 'rejected_by_company', 'in_progress', 'typo', 'rita',"
        "  null, '2025-02-02T10:00Z')",
        [ORG, P1, S1, ORG, P1, P1],
    )
    first = extract(source, db)
    assert (first.pulled["corrections"], first.corrections_added) == (2, 2)
    columns = (
        "select run_id = $run, record_kind, record_id, interview_process_id, field, old_value,"
        " new_value, reason, changed_by, recorded_at from corrections"
    )
    expected = {
        (False, "stage", S1, P1, "outcome", "failed", "passed", "typo", "rita", T_FIX),
        (
            True,
            "process",
            P1,
            P1,
            "status",
            "rejected_by_company",
            "in_progress",
            "typo",
            "rita",
            T_FIX,
        ),
    }
    run = first.run.run_id
    assert _rows(db, columns.replace("$run", f"'{run}'")) == expected
    assert query(db, "select run_id from corrections where record_kind = 'stage'") == [("api-1",)]
    again = extract(source, db, overlap=dt.timedelta(days=3650))
    assert (again.pulled["corrections"], again.corrections_added) == (2, 0)
    assert _rows(db, columns.replace("$run", f"'{run}'")) == expected


T_FIX = dt.datetime(2025, 2, 2, 10)


def test_deletions_at_the_source_are_deleted_from_the_raw_store(source: str, db: Path) -> None:
    """A deleted process goes with its stages, a deleted candidate too; their status history
    and corrections stay (nobody deletes history); each deletion is noted once."""
    sql(
        source,
        "insert into candidates (id, organization_id, full_name, created_at) values"
        " ('cand-2', %s, 'Bo Ma', '2025-01-01Z'), ('cand-3', %s, 'Cy Ng', '2025-01-01Z')",
        [ORG, ORG],
    )
    sql(
        source,
        "insert into interview_processes (id, organization_id, candidate_id, company_name,"
        " role_title, created_at) values (%s, %s, 'cand-2', 'Initech', 'SRE', '2025-03-01Z')",
        [P2, ORG],
    )
    sql(
        source,
        "insert into interview_stages (id, organization_id, interview_process_id, stage_name,"
        " stage_order, created_at) values (%s, %s, %s, 'Onsite', 1, '2025-03-02Z')",
        [S2, ORG, P2],
    )
    extract(source, db)
    history_before = _rows(
        db, "select interview_process_id::varchar, to_status from interview_status_history"
    )
    assert len(history_before) == 3
    sql(source, "delete from interview_processes where id = %s", [P1])
    sql(source, "delete from candidates where id = 'cand-3'")
    # created and deleted between two extracts: only its history and its deletion arrive
    sql(
        source,
        "insert into interview_processes (id, organization_id, candidate_id, company_name,"
        " role_title, created_at) values (%s, %s, 'cand-2', 'Hooli', 'PM', '2025-03-05Z')",
        [P3, ORG],
    )
    sql(source, "delete from interview_processes where id = %s", [P3])
    summary = extract(source, db, overlap=dt.timedelta(0))
    assert summary.pulled["deleted_rows"] == 4
    assert summary.deleted == {
        "interview_stages": 1,
        "interview_processes": 1,
        "candidates": 1,
    }
    assert _rows(db, "select id from candidates") == {("cand-1",), ("cand-2",)}
    assert _rows(db, "select id::varchar from interview_processes") == {(P2,)}
    assert _rows(db, "select id::varchar from interview_stages") == {(S2,)}
    assert _rows(
        db, "select interview_process_id::varchar, to_status from interview_status_history"
    ) == history_before | {(P3, "in_progress")}
    assert query(db, "select count(*) from quarantine") == [(0,)]
    noted = "select table_name, record_id, run_id = '{}' from source_deletions"
    expected = {
        ("interview_processes", P1, True),
        ("interview_stages", S1, True),
        ("candidates", "cand-3", True),
        ("interview_processes", P3, True),
    }
    assert _rows(db, noted.format(summary.run.run_id)) == expected
    again = extract(source, db, overlap=dt.timedelta(days=3650))
    assert (again.pulled["deleted_rows"], again.deleted) == (4, {})
    assert _rows(db, noted.format(summary.run.run_id)) == expected
    assert _rows(db, "select id::varchar from interview_processes") == {(P2,)}


def test_a_quarantined_row_deleted_at_the_source_is_resolved_and_never_loaded(
    source: str, db: Path
) -> None:
    """A stage waiting for its quarantined process, then deleted at the source, was retried
    from the quarantine and loaded once its process was fixed: a stage the source no longer
    has. A refused candidate deleted at the source stayed in `itrack rejects` for good. Both
    are resolved by the extract that brings their deletion, and nothing of them loads."""
    sql(
        source,
        "insert into candidates (id, organization_id, full_name, created_at) values"
        " ('cand-bad', %s, E'Bo\tMa', '2025-01-01Z')",
        [ORG],
    )
    sql(
        source,
        "insert into interview_processes (id, organization_id, candidate_id, company_name,"
        " role_title, created_at, offer_details) values (%s, %s, 'cand-1', 'Initech', 'SRE',"
        ' \'2025-03-01Z\', \'{"base_salary": 1, "currency": "ZZZ"}\')',
        [P2, ORG],
    )
    sql(
        source,
        "insert into interview_stages (id, organization_id, interview_process_id, stage_name,"
        " stage_order, created_at) values (%s, %s, %s, 'Onsite', 1, '2025-03-02Z')",
        [S2, ORG, P2],
    )
    first = extract(source, db)
    assert first.run.rejects_by_code == {
        "control_character": 1,
        "invalid_offer": 1,
        "orphan_stage": 1,
    }
    sql(source, "delete from interview_stages where id = %s", [S2])
    sql(source, "delete from candidates where id = 'cand-bad'")
    gone = extract(source, db, overlap=dt.timedelta(0))
    assert query(
        db,
        "select kind, record_id from quarantine where resolved_run_id = ? order by kind",
        [gone.run.run_id],
    ) == [("candidates", "cand-bad"), ("stages", S2)]
    sql(source, "update interview_processes set offer_details = null where id = %s", [P2])
    fixed = extract(source, db, overlap=dt.timedelta(0))
    assert (fixed.run.retried, fixed.run.total("inserted")) == (0, 1)
    assert _rows(db, "select id::varchar from interview_processes") == {(P1,), (P2,)}
    assert _rows(db, "select id::varchar from interview_stages") == {(S1,)}
    assert query(db, "select count(*) from quarantine where resolved_run_id is null") == [(0,)]


def test_a_process_inserted_closed_has_the_history_a_file_gives_it(
    source: str, db: Path, tmp_path: Path
) -> None:
    """A process a client inserts already closed (an import by SQL, a backfill) got one history
    row, NULL -> rejected_by_company at created_at: the marts took it as closed the day it was
    created (0 days to close) where the same record from a file closes at its updated_at.
    Its history is now the one ingest gives the record: in_progress at created_at, then the
    status at updated_at, so both sources build the same warehouse."""
    record = {
        "id": P2,
        "candidate_id": "cand-1",
        "company_name": "Initech",
        "role_title": "SRE",
        "status": "rejected_by_company",
        "created_at": "2025-03-01T00:00:00Z",
        "updated_at": "2025-03-20T00:00:00Z",
    }
    sql(
        source,
        "insert into interview_processes (id, organization_id, candidate_id, company_name,"
        " role_title, status, created_at, updated_at) values (%s, %s, %s, %s, %s, %s, %s, %s)",
        [P2, ORG, *(record[k] for k in list(record)[1:])],
    )
    extract(source, db)
    from_file = tmp_path / "from_file" / "warehouse.duckdb"
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "candidates.jsonl").write_text(
        json.dumps({"id": "cand-1", "full_name": "Ann Lee", "created_at": "2025-01-01T00:00:00Z"})
        + "\n"
    )
    (exports / "processes.jsonl").write_text(json.dumps(record) + "\n")
    ingest_paths([exports], db=from_file)
    history = (
        "select from_status, to_status, changed_at from interview_status_history"
        f" where interview_process_id = '{P2}' order by changed_at"
    )
    assert (
        query(db, history)
        == query(from_file, history)
        == [
            (None, "in_progress", dt.datetime(2025, 3, 1)),
            ("in_progress", "rejected_by_company", dt.datetime(2025, 3, 20)),
        ]
    )


def test_a_row_pulled_again_and_still_refused_is_not_a_new_reject(source: str, db: Path) -> None:
    """The overlap pulls a refused row again: it keeps its one quarantine entry, and the run
    does not count it as its own reject. It said '1 rejected ... details: itrack rejects --run
    <run>', which listed nothing, and --strict failed every night the row was in the overlap."""
    sql(
        source,
        "insert into candidates (id, organization_id, full_name, created_at) values"
        " ('cand-bad', %s, E'Bo\\tMa', '2025-01-01Z')",
        [ORG],
    )
    first = extract(source, db)
    assert first.run.rejects_by_code == {"control_character": 1}
    again = extract(source, db)  # the default overlap pulls every row again
    assert (again.run.rejected, again.run.rejects_by_code) == (0, {})
    assert (first.still_refused, again.still_refused) == (0, 1)
    assert [(f.rows_read, f.rejected) for f in again.run.files if f.kind == "candidates"] == [
        (2, 0)
    ]
    assert query(db, "select rejected from ingest_runs where run_id = ?", [again.run.run_id]) == [
        (0,)
    ]
    assert query(
        db, "select run_id, resolved_run_id from quarantine where record_id = 'cand-bad'"
    ) == [(first.run.run_id, None)]
    strict = CliRunner().invoke(app, ["ingest", source, "--db", str(db), "--strict"])
    assert_exit(strict, 0)
    assert "still refused: 1 row(s) pulled again, quarantined by an earlier run" in strict.stdout


def test_an_extract_overtaken_by_another_writes_nothing(source: str, db: Path) -> None:
    """Two extracts at once pull concurrently and write in turn: the second to write held the
    older snapshot, and brought back the stage the first had deleted (and moved the
    watermarks back). It now writes nothing, in one line; the next extract goes on."""
    from ingest import load

    extract(source, db)
    sql(source, "update interview_stages set feedback_notes = 'Strong' where id = %s", [S1])
    overtaking = []

    def overtake(step: str) -> None:
        if step == "pulled" and not overtaking:  # this extract's snapshot holds the stage
            overtaking.append(None)
            sql(source, "delete from interview_processes where id = %s", [P1])
            overtaking.append(extract(source, db))  # another extract: the deletion

    load.STEP_HOOKS.append(overtake)
    try:
        with pytest.raises(ExtractError) as refused:
            extract(source, db)
    finally:
        load.STEP_HOOKS.remove(overtake)
    other = overtaking[1].run.run_id
    assert str(refused.value) == (
        f"another extract from {source_name(source)} (run {other}) was written while this one"
        " pulled: nothing of this run was written; the next extract goes on from its watermarks"
    )
    assert query(db, "select count(*) from interview_stages") == [(0,)]
    assert query(db, "select count(*) from interview_processes") == [(0,)]
    assert query(db, "select distinct run_id from extract_watermarks") == [(other,)]
    assert extract(source, db).run.rejected == 0
    assert query(db, "select count(*) from interview_stages") == [(0,)]


def test_text_survives_the_csv_transfer_exactly(source: str, db: Path) -> None:
    """Newlines, quotes, commas, backslashes and non-ASCII text come through the CSV and
    Parquet steps unchanged."""
    notes = 'line one\nline "two", with a comma\\n and a tab\t and ünïcødé ✓'
    sql(source, "update interview_stages set feedback_notes = %s where id = %s", [notes, S1])
    extract(source, db)
    assert query(db, "select feedback_notes, interviewer_names from interview_stages") == [
        (notes, ["Dana", 'Lee "LJ" Jones'])
    ]


def test_an_empty_corrected_value_stays_empty_not_null(source: str, db: Path) -> None:
    sql(
        source,
        "insert into corrections (organization_id, interview_process_id, record_kind, record_id,"
        " field, old_value, new_value, reason, changed_by, recorded_at) values"
        " (%s, %s, 'stage', %s, 'next_steps', '', null, 'typo', 'rita', '2025-02-02T10:00Z')",
        [ORG, P1, S1],
    )
    assert extract(source, db).corrections_added == 1
    assert query(db, "select field, old_value, new_value from corrections") == [
        ("next_steps", "", None)
    ]


def test_a_stage_with_the_longest_valid_text_extracts(source: str, db: Path) -> None:
    """The contract allows 2,000,000 characters in a text field, up to 4 bytes each in UTF-8,
    and CSV doubles a quote: one row of the pulled CSV is far over DuckDB's default line limit
    (2,000,000 bytes), which failed the whole extract."""
    notes = "😀" * 2_000_000  # 8,000,000 bytes
    steps = '"' * 2_000_000  # 4,000,002 bytes as a CSV field
    sql(
        source,
        "update interview_stages set feedback_notes = %s, next_steps = %s where id = %s",
        [notes, steps, S1],
    )
    summary = extract(source, db)
    assert (summary.run.accepted, summary.run.rejected) == (3, 0)
    ((stored_notes, stored_steps),) = query(
        db, "select feedback_notes, next_steps from interview_stages"
    )
    assert (stored_notes == notes, stored_steps == steps) == (True, True)


def test_the_extract_waits_for_a_busy_raw_store(source: str, db: Path) -> None:
    """`--wait` covers the whole extract: reading the watermarks waited for no one (exit 2,
    'database is busy', with the writer gone a second later)."""
    extract(source, db)
    script = (
        "import sys, time; from ingest.store.duckdb.store import open_store\n"
        "with open_store(sys.argv[1]):\n"
        "    print('held', flush=True); time.sleep(2)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-c", script, str(db)], env=env, stdout=subprocess.PIPE, text=True
    ) as writer:
        assert writer.stdout is not None and writer.stdout.readline() == "held\n"
        sql(source, "update interview_stages set feedback_notes = 'Strong' where id = %s", [S1])
        summary = extract(source, db, wait_seconds=20, overlap=dt.timedelta(0))
        assert writer.wait(timeout=30) == 0
    assert summary.run.total("updated") == 2
    assert query(db, "select feedback_notes from interview_stages") == [("Strong",)]


RECRUITER = "0b000000-0000-4000-8000-00000000000b"


def as_recruiter(dsn: str, statement: str, params: list | None = None) -> int:
    """One statement as a signed-in recruiter of ORG (row-level security applies, as for a
    Supabase client); the rows it changed."""
    claims = {
        "sub": RECRUITER,
        "role": "authenticated",
        "app_metadata": {"org_id": ORG, "itrack_role": "recruiter"},
    }
    with psycopg.connect(dsn) as conn:
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
        return conn.execute(statement, params).rowcount


def test_an_id_changed_at_the_source_replaces_the_old_id(source: str, db: Path) -> None:
    """A recruiter renames a candidate's id (the cascade moves its process): the raw store
    holds the candidate once, under its new id, and notes the old id as deleted."""
    extract(source, db)
    assert as_recruiter(source, "update candidates set id = 'cand-0001' where id = 'cand-1'") == 1
    summary = extract(source, db, overlap=dt.timedelta(0))
    assert (summary.pulled["deleted_rows"], summary.deleted) == (1, {"candidates": 1})
    assert query(db, "select id, full_name from candidates") == [("cand-0001", "Ann Lee")]
    assert query(db, "select id::varchar, candidate_id from interview_processes") == [
        (P1, "cand-0001")
    ]
    assert query(db, "select table_name, record_id from source_deletions") == [
        ("candidates", "cand-1")
    ]
    # A stage's id changed by SQL: the same.
    sql(source, "update interview_stages set id = %s where id = %s", [S2, S1])
    assert extract(source, db, overlap=dt.timedelta(0)).deleted == {"interview_stages": 1}
    assert query(db, "select id::varchar, stage_name from interview_stages") == [
        (S2, "Phone Screen")
    ]


@pytest.mark.parametrize("created_at", ["now()", "'2025-01-06Z'"])
def test_an_id_inserted_again_after_its_deletion_stays(
    source: str, db: Path, created_at: str
) -> None:
    """Whether a deleted id is back is the source's answer in the same snapshot, not a
    comparison of times: a stage inserted again with its original (business) times is older
    than its deletion by the clock, and was deleted from the raw store though the source has it."""
    extract(source, db)
    sql(source, "delete from interview_stages where id = %s", [S1])
    sql(
        source,
        "insert into interview_stages (id, organization_id, interview_process_id, stage_name,"
        f" stage_order, created_at) values (%s, %s, %s, 'Phone Screen', 1, {created_at})",
        [S1, ORG, P1],
    )
    summary = extract(source, db, overlap=dt.timedelta(0))
    assert (summary.pulled["deleted_rows"], summary.deleted) == (1, {})
    assert query(db, "select id::varchar, outcome from interview_stages") == [(S1, "pending")]
    assert query(db, "select table_name, record_id from source_deletions") == [
        ("interview_stages", S1)
    ]


# -- change stamps: the server's clock, never a time a writer sets ----------------------------


@pytest.fixture
def service_on(source: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`ITRACK_STORE=postgres ITRACK_PG_DSN=<source>` for in-process CLI calls."""
    with pg.store_settings(source, monkeypatch) as dsn:
        yield dsn


def test_a_process_backfilled_with_at_is_extracted(service_on: str, db: Path) -> None:
    """`itrack interview create --at` stamps the process with the backfill time, older than
    the last extract's latest updated_at: it was never extracted, and its status-history row
    was quarantined as orphan_history for good."""
    from typer.testing import CliRunner

    from itrack.cli.main import app

    extract(service_on, db)
    created = CliRunner().invoke(
        app,
        [
            "interview",
            "create",
            "--candidate",
            "cand-1",
            "--company",
            "Acme",
            "--role",
            "ML Engineer",
            "--at",
            "2025-01-20T09:00:00Z",
        ],
    )
    assert created.exit_code == 0, created.output
    summary = extract(service_on, db, overlap=dt.timedelta(0))
    assert (summary.pulled["interview_processes"], summary.history_added) == (1, 1)
    assert summary.run.rejects_by_code == {}
    assert query(
        db,
        "select role_title, status, created_at, updated_at from interview_processes"
        " where role_title = 'ML Engineer'",
    ) == [("ML Engineer", "in_progress", dt.datetime(2025, 1, 20, 9), dt.datetime(2025, 1, 20, 9))]
    assert query(db, "select count(*) from quarantine") == [(0,)]


def test_a_future_dated_row_holds_nothing_back(source: str, db: Path) -> None:
    """A candidate and a correction dated 2062 moved their tables' watermarks to 2062: nothing
    of either table was extracted after, even once the row was deleted."""
    extract(source, db)
    sql(
        source,
        "insert into candidates (id, organization_id, full_name, created_at)"
        " values ('cand-9', %s, 'Fu Ture', '2062-01-01Z')",
        [ORG],
    )
    correction = (
        "insert into corrections (organization_id, interview_process_id, record_kind, record_id,"
        " field, old_value, new_value, reason, changed_by, recorded_at) values"
        " (%s, %s, 'stage', %s, 'outcome', 'failed', 'passed', %s, 'rita', %s)"
    )
    sql(source, correction, [ORG, P1, S1, "typo", "2062-01-01Z"])
    first = extract(source, db, overlap=dt.timedelta(0))
    assert (first.run.rejects_by_code, first.corrections_added) == ({"future_date": 1}, 1)
    sql(source, "delete from candidates where id = 'cand-9'")
    sql(
        source,
        "insert into candidates (id, organization_id, full_name, created_at)"
        " values ('cand-2', %s, 'Bo Ma', '2024-06-01Z')",
        [ORG],
    )
    sql(source, correction, [ORG, P1, S1, "second look", "2025-02-03Z"])
    summary = extract(source, db, overlap=dt.timedelta(0))
    assert (summary.pulled["candidates"], summary.corrections_added) == (1, 1)
    assert query(db, "select id from candidates order by id") == [("cand-1",), ("cand-2",)]
    assert query(db, "select reason, recorded_at from corrections order by recorded_at") == [
        ("second look", dt.datetime(2025, 2, 3)),
        ("typo", dt.datetime(2062, 1, 1)),
    ]
    assert read_watermarks(db, source_name(source)) == {
        **_latest_stamps(source),
        "corrections": sql(source, "select max(_changed_at) at time zone 'UTC' from corrections")[
            0
        ][0],
        "deleted_rows": sql(source, "select max(deleted_at) at time zone 'UTC' from deleted_rows")[
            0
        ][0],
    }


def test_a_watermark_past_the_servers_clock_pulls_its_table_whole(source: str, db: Path) -> None:
    """A raw store extracted before the change stamps may hold a watermark in the future (a
    row dated 2062): it is no stamp of the server's clock, and the table is pulled whole."""
    extract(source, db)
    con = duckdb.connect(str(db.parent / "warehouse.raw.duckdb"))
    con.execute(
        "update extract_watermarks set watermark = '2062-01-01' where table_name = 'candidates'"
    )
    con.close()
    sql(
        source,
        "insert into candidates (id, organization_id, full_name, created_at)"
        " values ('cand-2', %s, 'Bo Ma', '2024-06-01Z')",
        [ORG],
    )
    summary = extract(source, db, overlap=dt.timedelta(0))
    assert summary.pulled["candidates"] == 2
    assert query(db, "select id from candidates order by id") == [("cand-1",), ("cand-2",)]


def test_a_clients_change_behind_the_watermark_is_extracted_and_never_backwards(
    source: str, db: Path
) -> None:
    """A recruiter (a Supabase client, under row-level security) sets updated_at themselves:
    a time after the row's last change but before the table's watermark was never extracted
    (its history row arrived, the process stayed in_progress); a time before the row's last
    change is refused, for every writer, the service's transactions too (the raw store keeps
    the latest updated_at per id, so a change dated back would never apply)."""
    sql(
        source,
        "insert into interview_processes (id, organization_id, candidate_id, company_name,"
        " role_title, created_at, recruiter_id) values"
        " (%s, %s, 'cand-1', 'Initech', 'SRE', '2025-01-10Z', %s)",
        [P2, ORG, RECRUITER],
    )
    extract(source, db)  # the processes' latest updated_at: 2025-02-01
    moved = "update interview_processes set status = 'on_hold', updated_at = %s where id = %s"
    assert as_recruiter(source, moved, ["2025-01-15Z", P2]) == 1
    summary = extract(source, db, overlap=dt.timedelta(0))
    assert (summary.pulled["interview_processes"], summary.history_added) == (1, 1)
    assert query(db, f"select status, updated_at from interview_processes where id = '{P2}'") == [
        ("on_hold", dt.datetime(2025, 1, 15))
    ]
    back = "update interview_processes set status = 'in_progress', updated_at = %s where id = %s"
    message = (
        r"^updated_at may not move backwards: 2025-01-12 00:00:00\+00 is before the row's last"
        r" change \(2025-01-15 00:00:00\+00\)\n"
    )
    with pytest.raises(psycopg.errors.CheckViolation, match=message):
        as_recruiter(source, back, ["2025-01-12Z", P2])
    with psycopg.connect(source) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("select set_config('itrack.source', 'service', true)")
        conn.execute(back, ["2025-01-12Z", P2])
    assert sql(
        source, "select status, updated_at::text from interview_processes where id = %s", [P2]
    ) == [("on_hold", "2025-01-15 00:00:00+00")]


def test_a_malformed_source_url_is_refused_with_its_password_masked():
    """The extract checked a DSN by its own rule and echoed it whole, password included; it
    now takes the one rule of every command that takes a DSN (`check_dsn`)."""
    from ingest.errors import UserError

    with pytest.raises(UserError) as refused:
        source_name("postgresql://u:s3cret@[::1/x")
    assert str(refused.value) == (
        'not a valid PostgreSQL URL: end of string reached when looking for matching "]" in '
        'IPv6 host address in URI: "postgresql://u:***@[::1/x"'
    )
