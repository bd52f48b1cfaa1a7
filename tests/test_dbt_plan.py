"""The nightly build's replay of dbt's compiled plan (itrack/dbt_plan.py) against dbt itself:
on the shipped sample (rejected records, an unmapped stage name: a warning test) both leave
the same tables, views, column types, constraints and rows, and the same test verdicts; a
model that fails is reported as dbt reports it and what is built on it is skipped; an enforced
contract is enforced; the plan is tied to the project's files."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb

from ingest.store.duckdb.store import raw_store_path
from itrack import dbt_plan
from itrack.dbt_runner import PROJECT_DIR, FailedNode, run_dbt
from itrack.pipeline import project_state, run_build
from tests.dbt_helpers import Process, RawData, add_process, catalog, query, write_raw_store

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
QUIET = {"take_backup": False, "write_html": False, "note": lambda _m: None}
AS_OF = dt.datetime(2026, 6, 1, 12, 30, 5)


def _recorded(tmp_path: Path) -> tuple[Path, dbt_plan.Plan, Path]:
    """A location built once by dbt (which records the plan), and a private copy of its raw
    store to build from."""
    db = tmp_path / "data" / "warehouse.duckdb"
    first = run_build([SAMPLE], db=db, replay=False, **QUIET)
    assert [s.result for s in first.steps if s.name == "dbt build"] == [
        "ok: ran dbt (4 seeds, 20 models, 23 data tests)"
    ]
    raw_store = raw_store_path(db)
    plan = dbt_plan.load(raw_store, dbt_plan.plan_key(project_state(), "warehouse"))
    assert plan is not None
    snapshot = tmp_path / "snapshot" / raw_store.name
    snapshot.parent.mkdir()
    shutil.copyfile(raw_store, snapshot)
    return raw_store, plan, snapshot


def _by_dbt(tmp_path: Path, raw_store: Path, snapshot: Path, **variables: str) -> tuple:
    """`dbt build` of everything but the unit tests on a new file: (outcome, the file)."""
    by_dbt = tmp_path / "dbt" / "warehouse.duckdb"
    by_dbt.parent.mkdir()
    outcome = run_dbt(
        ["build", "--full-refresh", "--exclude-resource-type", "unit_test"],
        warehouse=by_dbt,
        raw_store=snapshot,
        variables=variables,
        location=raw_store,
    )
    return outcome, by_dbt


def _replayed(
    tmp_path: Path, name: str, plan: dbt_plan.Plan, snapshot: Path, raw_store: Path, as_of
) -> tuple:
    """The plan replayed on a new file named like the warehouse: (outcome, the file)."""
    out = tmp_path / name / "warehouse.duckdb"
    out.parent.mkdir()
    return dbt_plan.replay(plan, out, snapshot, raw_store, as_of=as_of), out


def _max_days_in_current_status(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "select max(days_in_status) from fct_process_status_history where valid_until is null"
        ).fetchone()[0]
    finally:
        con.close()


def test_a_replay_builds_what_dbt_builds(tmp_path):
    raw_store, plan, snapshot = _recorded(tmp_path)
    dbt, by_dbt = _by_dbt(tmp_path, raw_store, snapshot, as_of=f"{AS_OF:%Y-%m-%d %H:%M:%S}")
    assert dbt.ok, dbt.failures
    replayed, replayed_file = _replayed(tmp_path, "replay", plan, snapshot, raw_store, AS_OF)
    assert replayed is not None and replayed.ok
    assert replayed.nodes == [n.unique_id for n in plan.nodes]
    assert sorted(replayed.nodes) == sorted(n for n in dbt.nodes if not n.startswith("seed."))
    assert len(replayed.nodes) == 43
    assert (
        replayed.warned
        == dbt.warned
        == [
            FailedNode(
                "assert_stage_names_mapped",
                "test",
                "warn",
                "Got 1 result, configured to warn if != 0",
            )
        ]
    )
    expected, got = catalog(by_dbt), catalog(replayed_file)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], name
    # the replay's own build time takes the place of the run's start: ten days later, the
    # longest current status is ten days longer
    later, later_file = _replayed(
        tmp_path, "later", plan, snapshot, raw_store, AS_OF + dt.timedelta(days=10)
    )
    assert later is not None and later.ok
    assert _max_days_in_current_status(later_file) == _max_days_in_current_status(by_dbt) + 10


def test_a_failing_model_is_reported_as_dbt_does_and_its_dependents_are_skipped(tmp_path):
    raw_store, plan, snapshot = _recorded(tmp_path)
    con = duckdb.connect(str(snapshot))
    con.execute("alter table interview_stages drop column next_steps")
    con.close()
    dbt, _ = _by_dbt(tmp_path, raw_store, snapshot)
    replayed, out = _replayed(tmp_path, "replay", plan, snapshot, raw_store, AS_OF)
    assert replayed is not None and not replayed.ok and not dbt.ok
    [failed] = replayed.failed
    assert (
        [(f.name, f.kind, f.status) for f in dbt.failed]
        == [(failed.name, failed.kind, failed.status)]
        == [("stg_itrack__interview_stages", "model", "error")]
    )
    assert failed.message.startswith('Binder Error: Referenced column "next_steps" not found')
    # what dbt ran, not skipped, the replay ran (the seeds aside), and nothing else
    ran_by_dbt = {r.node.unique_id for r in dbt.results if str(r.status).lower() != "skipped"}
    assert set(replayed.nodes) == {n for n in ran_by_dbt if not n.startswith("seed.")}
    assert [n.split(".")[-1] for n in replayed.nodes if n.startswith("model.")] == [
        "stg_itrack__candidates",
        "stg_itrack__feedback_runs",
        "stg_itrack__interview_processes",
        "stg_itrack__interview_stages",
        "stg_itrack__interview_status_history",
        "int_status_changes_sequenced",
        "int_processes_status_dates",
    ]
    con = duckdb.connect(str(out), read_only=True)
    tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    con.close()
    assert "stg_itrack__interview_stages" not in tables  # its transaction was rolled back
    assert "stg_itrack__interview_processes" in tables


def test_an_enforced_contract_is_enforced(tmp_path):
    location = tmp_path / "warehouse.raw.duckdb"
    duckdb.connect(str(location)).close()
    seeds = dbt_plan.seeds_path(location)
    seeds.parent.mkdir(parents=True)
    duckdb.connect(str(seeds)).close()

    def contracted(sql: str) -> dbt_plan.Plan:
        node = dbt_plan.PlanNode(
            unique_id="model.p.m",
            name="m",
            kind="model",
            sql=sql,
            depends_on=[],
            database="warehouse",
            schema="main",
            relation='"warehouse"."main"."m"',
            materialized="table",
            contract=[["id", "integer", True], ["label", "varchar", False]],
        )
        return dbt_plan.Plan("k", [node])

    def replay(sql: str, name: str):
        return _replayed(tmp_path, name, contracted(sql), location, location, AS_OF)

    ok, out = replay("select 1 as id, 'a' as label", "ok")
    assert ok is not None and ok.ok
    con = duckdb.connect(str(out), read_only=True)
    assert con.execute("select id, label from m").fetchall() == [(1, "a")]
    assert con.execute(
        "select column_name, data_type, is_nullable from information_schema.columns "
        "where table_name = 'm' order by ordinal_position"
    ).fetchall() == [("id", "INTEGER", "NO"), ("label", "VARCHAR", "YES")]
    con.close()

    wrong, _ = replay("select 'x' as id, 'a' as label, 2 as extra", "wrong")
    assert wrong is not None
    assert wrong.failed == [
        FailedNode(
            "m",
            "model",
            "error",
            "m: the enforced contract failed: id is VARCHAR, the contract says INTEGER; "
            "extra is not in the contract",
        )
    ]
    null, _ = replay("select cast(null as integer) as id, 'a' as label", "null")
    assert null is not None and [f.status for f in null.failed] == ["error"]
    assert null.failed[0].message.startswith("Constraint Error: NOT NULL constraint failed")


def test_the_plan_is_valid_for_its_project_only(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    assert project_state(project) == project_state(PROJECT_DIR)
    key = dbt_plan.plan_key(project_state(project), "warehouse")
    model = project / "models" / "marts" / "mart_data_quality.sql"
    model.write_text(model.read_text() + "\n-- changed\n")
    assert dbt_plan.plan_key(project_state(project), "warehouse") != key
    assert dbt_plan.plan_key(project_state(PROJECT_DIR), "other") != key

    raw_store, plan, _snapshot = _recorded(tmp_path / "built")
    assert dbt_plan.load(raw_store, "another key") is None
    dbt_plan.seeds_path(raw_store).unlink()  # no seeds: no plan, dbt runs
    assert dbt_plan.load(raw_store, plan.key) is None


def test_the_build_time_keeps_its_fraction_of_a_second(tmp_path, monkeypatch):
    """A process created and put on hold at 12:30:05.25, built at 12:30:05.75: half a second
    in its status, nothing out of order. The build time was cut to 12:30:05, so the change
    looked later than the build: days_in_status null and counted in mart_data_quality as
    out of order and started in the future (found by the exploratory marts run)."""
    db = tmp_path / "data" / "warehouse.duckdb"
    db.parent.mkdir()
    changed = "2026-06-01 12:30:05.250000"
    held = Process(1, "c1", "Acme", "referral", "on_hold", changed, changed)
    held.history = [("in_progress", changed), ("on_hold", changed)]
    write_raw_store(raw_store_path(db), RawData(candidates={"c1": "referral"}, processes=[]))
    run_build(None, db=db, replay=False, **QUIET)  # records the plan
    add_process(raw_store_path(db), held)
    built_at = dt.datetime(2026, 6, 1, 12, 30, 5, 750000)
    monkeypatch.setattr("itrack.pipeline.utc_now", lambda: built_at)
    result = run_build(None, db=db, **QUIET)
    assert [s.result for s in result.steps if s.name == "dbt build"][0].startswith("ok: replayed")
    history = query(
        db,
        "select status, days_in_status, elapsed_days_in_status * 86400 as seconds, "
        "is_out_of_order from fct_process_status_history order by status_sequence",
    )
    assert history == [
        {"status": "in_progress", "days_in_status": 0, "seconds": 0.0, "is_out_of_order": False},
        {"status": "on_hold", "days_in_status": 0, "seconds": 0.5, "is_out_of_order": False},
    ]
    checks = query(db, "select check_name, affected from mart_data_quality order by 1")
    assert {c["check_name"]: c["affected"] for c in checks} == {
        "decided_before_start": 0,
        "started_in_future": 0,
        "status_history_out_of_order": 0,
        "unmapped_stage_names": 0,
    }
    assert dbt_plan.stamped(dbt_plan.RUN_START_TOKEN, built_at) == (
        "cast('2026-06-01 12:30:05.750000' as timestamp) /* itrack:run_started_at */"
    )
