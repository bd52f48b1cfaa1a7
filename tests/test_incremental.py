"""A build on an existing warehouse equals a fresh one: build, change the raw store (a delta
ingested, a row edited by hand without a new load time, a row deleted as a restored backup
would), build again on the same warehouse, and every published table equals, row for row, a
full-refresh build of the same raw store (the guard for any model made incremental). Also:
`itrack build` refreshes fully when the dbt project changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from ingest.load import ingest_paths
from ingest.store.duckdb.store import raw_store_path
from itrack.dbt_runner import PROJECT_DIR, run_dbt
from itrack.generate import generate, generate_delta

AS_OF = {"as_of": "2026-06-01 00:00:00"}  # "now" pinned: both builds measure days alike
BUILD = ["build", "--exclude-resource-type", "unit_test"]


def tables(db: Path) -> dict[str, list[tuple[str, str]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        found: dict[str, list[tuple[str, str]]] = {}
        for schema, table, column, data_type in con.execute(
            "select table_schema, table_name, column_name, data_type from information_schema"
            ".columns where table_catalog = current_database() order by table_schema, "
            "table_name, ordinal_position"
        ).fetchall():
            found.setdefault(f"{schema}.{table}", []).append((column, data_type))
        return found
    finally:
        con.close()


def differences(left: Path, right: Path, table: str) -> tuple[int, int, int]:
    """(rows, rows only in left, rows only in right), duplicates counted."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{left}' as l (read_only)")
        con.execute(f"attach '{right}' as r (read_only)")
        rows = con.execute(f"select count(*) from l.{table}").fetchone()[0]
        only_left = con.execute(
            f"select count(*) from (select * from l.{table} except all select * from r.{table})"
        ).fetchone()[0]
        only_right = con.execute(
            f"select count(*) from (select * from r.{table} except all select * from l.{table})"
        ).fetchone()[0]
        return rows, only_left, only_right
    finally:
        con.close()


def build(db: Path, raw: Path, *extra: str) -> None:
    outcome = run_dbt([*BUILD, *extra], db, raw, variables=AS_OF)
    assert outcome.ok, outcome.failures


def test_incremental_build_after_changes_equals_a_full_refresh(tmp_path):
    generate(tmp_path / "day1", 300, seed=5)
    incremental = tmp_path / "warehouse.duckdb"
    raw = raw_store_path(incremental)
    ingest_paths([tmp_path / "day1"], db=incremental)
    build(incremental, raw)
    before = tables(incremental)["main.stg_itrack__interview_stages"]

    generate_delta(tmp_path / "day1", tmp_path / "delta", share=0.05)
    ingest_paths([tmp_path / "delta"], db=incremental)
    con = duckdb.connect(str(raw))
    try:  # by hand, bypassing ingest: no new load time, no new run id
        con.execute(
            "update interview_stages set feedback_notes = 'edited by hand' "
            "where id = (select min(id) from interview_stages)"
        )
        # a restored older backup lacks the newest rows: one stage and one history row gone
        con.execute(
            "delete from interview_stages where id = (select max(id) from interview_stages)"
        )
        con.execute(
            "delete from interview_status_history where rowid = "
            "(select max(rowid) from interview_status_history)"
        )
    finally:
        con.close()
    build(incremental, raw)

    full = tmp_path / "full" / "warehouse.duckdb"
    full.parent.mkdir()
    shutil.copyfile(raw, raw_store_path(full))
    build(full, raw_store_path(full), "--full-refresh")

    published = tables(incremental)
    assert published == tables(full)
    assert published["main.stg_itrack__interview_stages"] == before
    for table in published:
        rows, only_incremental, only_full = differences(incremental, full, table)
        assert (table, only_incremental, only_full) == (table, 0, 0)
        assert rows > 0 or table == "main.stg_itrack__feedback_runs", table
    edited = duckdb.connect(str(incremental), read_only=True)
    try:
        assert edited.execute(
            "select count(*) from stg_itrack__interview_stages "
            "where feedback_notes = 'edited by hand'"
        ).fetchone() == (1,)
    finally:
        edited.close()


def test_project_state_changes_with_any_project_file(tmp_path):
    from itrack.pipeline import project_state

    copy = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    first = project_state(copy)
    assert project_state(copy) == first
    model = copy / "models" / "marts" / "fct_interview_stages.sql"
    model.write_text(model.read_text() + "\n-- changed\n")
    assert project_state(copy) != first
    (copy / "target").mkdir()
    (copy / "target" / "x.json").write_text("{}")  # dbt's outputs are not the project
    changed = project_state(copy)
    (copy / "target" / "x.json").write_text("[]")
    assert project_state(copy) == changed
