"""The nightly pipeline end to end: a failing dbt test stops it before feedback and publishing,
and an analyst holding the warehouse open read-only never blocks a build nor sees a half-built
state. (The marts' values are tested in tests/test_dbt_marts.py and test_dbt_planted.py.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest
from typer.testing import CliRunner

from ingest.store.duckdb.store import raw_store_path
from itrack.cli.main import app
from itrack.generate import generate
from itrack.pipeline import run_build
from tests.conftest import read

QUIET = {"take_backup": False, "write_html": False, "note": lambda _m: None}


rows = read


READER = textwrap.dedent("""
    import duckdb, sys, time
    con = duckdb.connect(sys.argv[1], read_only=True)
    before = con.execute("select count(*) from fct_interview_processes").fetchone()[0]
    print(before, flush=True)
    sys.stdin.readline()          # the build runs meanwhile
    after = con.execute("select count(*) from fct_interview_processes").fetchone()[0]
    print(after, flush=True)
""")


def test_reader_holding_the_warehouse_open_during_a_build(tmp_path, shared_plans):
    generate(tmp_path / "day1", 200, seed=1)
    generate(tmp_path / "day2", 260, seed=1)  # same first 200 processes plus 60 more
    db = tmp_path / "warehouse.duckdb"
    run_build([tmp_path / "day1"], db=db, **QUIET, plan_cache=shared_plans)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert int(reader.stdout.readline()) == 200
        run_build([tmp_path / "day2"], db=db, **QUIET)  # must not fail on the reader's lock
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert int(reader.stdout.readline()) == 200  # the reader's view stays consistent
    finally:
        reader.kill()
    assert rows(db, "select count(*) from fct_interview_processes") == [(260,)]


@pytest.mark.parametrize("replay", [False, True])
def test_a_process_writing_the_published_warehouse_does_not_stop_a_build(
    tmp_path, replay, shared_plans
):
    """dbt's build file takes the published warehouse's seeds by attaching it read-only; a
    process holding it open for writing (DuckDB's default mode) refuses that, and dbt then
    loads the seeds itself. A replay of the compiled plan takes the seeds recorded with the
    plan and never opens the published file."""
    generate(tmp_path / "day1", 200, seed=1)
    generate(tmp_path / "day2", 260, seed=1)
    db = tmp_path / "warehouse.duckdb"
    run_build([tmp_path / "day1"], db=db, **QUIET, plan_cache=shared_plans)
    writer = subprocess.Popen(
        [sys.executable, "-c", READER.replace(", read_only=True", ""), str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert int(writer.stdout.readline()) == 200
        second = run_build([tmp_path / "day2"], db=db, replay=replay, **QUIET)
    finally:
        writer.kill()
        writer.wait()
    assert len([n for n in second.dbt_nodes if n.startswith("seed.")]) == (0 if replay else 4)
    (dbt_step,) = [s.result for s in second.steps if s.name == "dbt build"]
    assert dbt_step == (
        "ok: replayed dbt's compiled plan (20 models, 23 data tests)"
        if replay
        else "ok: ran dbt (4 seeds, 20 models, 23 data tests)"
    )
    assert rows(db, "select count(*) from fct_interview_processes") == [(260,)]
    assert rows(db, "select count(*) from main_reference.interview_statuses") == [(7,)]


def test_failing_dbt_test_stops_before_publishing(tmp_path, shared_plans):
    generate(tmp_path / "in", 50, seed=3)
    db = tmp_path / "warehouse.duckdb"
    run_build([tmp_path / "in"], db=db, **QUIET, plan_cache=shared_plans)
    published, feeders = db.read_bytes(), (tmp_path / "feeders.json").read_bytes()
    con = duckdb.connect(str(raw_store_path(db)))
    con.execute(
        "update interview_stages set overall_rating = 7 "  # bypasses the contract
        "where id = (select min(id) from interview_stages where overall_rating = 5)"
    )
    con.close()
    result = CliRunner().invoke(
        app, ["build", str(tmp_path / "in"), "--db", str(db), "--no-backup", "--no-html"]
    )
    assert result.exit_code == 1
    assert "dbt build failed" in result.output
    assert "\x1b[" not in result.output  # stdout not a terminal: no colour codes from dbt
    assert (
        "stg_itrack__interview_stages_invariants (fail: accepted_values(overall_rating): "
        "1 row(s), e.g. '7')" in result.output
    )
    assert db.read_bytes() == published
    assert (tmp_path / "feeders.json").read_bytes() == feeders  # no feedback written
