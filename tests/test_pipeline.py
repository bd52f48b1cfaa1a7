"""The nightly pipeline end to end: marts recover the planted signal, the funnel equals a plain
Python computation, a failing dbt test stops the pipeline, and an analyst holding the warehouse
open read-only never blocks a build nor sees a half-built state."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from ingest.cli import app
from ingest.generate import PLANTED, generate
from ingest.pipeline import run_build
from ingest.store import raw_store_path

QUIET = {"take_backup": False, "write_html": False, "note": lambda _m: None}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """One build of 2,500 generated processes, shared by the read-only tests below."""
    root = tmp_path_factory.mktemp("pipeline")
    generate(root / "in", 2500, seed=2024)
    db = root / "warehouse.duckdb"
    run_build([root / "in"], db=db, **QUIET)
    return db


def rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_marts_recover_the_planted_feeder_ranking(built):
    ranked = [f for (f,) in rows(built, "select feeder_source from mart_feeder_conversion "
                                        "order by conversion_rate desc")]
    assert ranked[0] == PLANTED.best_feeder
    assert ranked[-1] == PLANTED.worst_feeder


def test_companies_preferred_feeder_tops_preferred_feeders(built):
    for company, feeder in PLANTED.company_preference.items():
        [(preferred,)] = rows(built, "select preferred_feeders from mart_company_insights "
                                     f"where company_name = '{company}'")
        assert json.loads(preferred)[0]["feeder_source"] == feeder, company


def test_funnel_equals_a_plain_python_computation(built):
    processes = rows(built, "select interview_process_id, feeder_source, company_name, "
                            "strftime(cohort_month, '%Y-%m'), status, offer_details is not null "
                            "from fct_interview_processes")
    stages = rows(built, "select interview_process_id, stage_type, outcome "
                         "from fct_interview_stages")
    by_process: dict = defaultdict(list)
    for pid, stage_type, outcome in stages:
        by_process[pid].append((stage_type, outcome))
    groups: dict = defaultdict(list)
    for pid, feeder, company, cohort, status, has_offer in processes:
        for key in (("overall", "all"), ("feeder_source", feeder), ("company_name", company),
                    ("feeder_company", f"{feeder} @ {company}"), ("cohort_month", cohort)):
            groups[key].append((pid, status, has_offer))
    expected = {}
    for key, members in groups.items():
        row = {"total_started": len(members)}
        for t in ("phone_screen", "technical", "onsite"):
            outcomes = [[o for st, o in by_process[pid] if st == t] for pid, _, _ in members]
            entered = [o for o in outcomes if o]
            passed = sum("passed" in o for o in entered)
            failed = sum("failed" in o and "passed" not in o for o in entered)
            row[f"{t}_entered"], row[f"{t}_passed"], row[f"{t}_failed"] = (
                len(entered), passed, failed)
            row[f"{t}_pass_rate"] = passed / (passed + failed) if passed + failed else None
        offered = {pid for pid, status, has_offer in members if has_offer or status in (
            "offer_extended", "offer_accepted", "offer_declined")}
        cleared = {pid for pid, _, _ in members if by_process[pid] and all(
            o not in ("pending", "failed") for _, o in by_process[pid])}
        accepted = sum(s == "offer_accepted" for _, s, _ in members)
        declined = sum(s == "offer_declined" for _, s, _ in members)
        row.update(offers_extended=len(offered), cleared_interviewing=len(cleared),
                   offer_extended_rate=len(offered & cleared) / len(cleared) if cleared else None,
                   offers_accepted=accepted, offers_declined=declined,
                   offer_accepted_rate=accepted / (accepted + declined)
                   if accepted + declined else None,
                   in_flight=sum(s in ("in_progress", "on_hold") for _, s, _ in members))
        expected[key] = row
    con = duckdb.connect(str(built), read_only=True)
    cur = con.execute("select * from mart_conversion_funnel")
    names = [d[0] for d in cur.description]
    actual = {(r["grain"], r["group_key"]): r for r in
              (dict(zip(names, row, strict=True)) for row in cur.fetchall())}
    con.close()
    assert set(actual) == set(expected)
    for key, row in expected.items():
        for column, value in row.items():
            assert actual[key][column] == pytest.approx(value), (key, column)


def test_feeder_conversion_by_hand(built):
    import math

    total, placed = rows(built, "select count(*), count(*) filter (where is_placement) "
                                "from fct_interview_processes")[0]
    prior = placed / total
    for feeder, n, k, rate, low, high, smoothed in rows(
            built, "select feeder_source, candidates_sourced, placements, conversion_rate, "
                   "wilson_lower, wilson_upper, smoothed_conversion_rate "
                   "from mart_feeder_conversion"):
        [(n_fct, k_fct)] = rows(built, "select count(*), count(*) filter (where is_placement) "
                                       f"from fct_interview_processes where feeder_source = "
                                       f"'{feeder}'")
        assert (n, k) == (n_fct, k_fct)
        p, z = k / n, 1.96
        centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        assert rate == pytest.approx(p)
        assert low == pytest.approx((centre - half) / (1 + z * z / n))
        assert high == pytest.approx((centre + half) / (1 + z * z / n))
        assert smoothed == pytest.approx((k + 10 * prior) / (n + 10))


READER = textwrap.dedent("""
    import duckdb, sys, time
    con = duckdb.connect(sys.argv[1], read_only=True)
    before = con.execute("select count(*) from fct_interview_processes").fetchone()[0]
    print(before, flush=True)
    sys.stdin.readline()          # the build runs meanwhile
    after = con.execute("select count(*) from fct_interview_processes").fetchone()[0]
    print(after, flush=True)
""")


def test_reader_holding_the_warehouse_open_during_a_build(tmp_path):
    generate(tmp_path / "day1", 200, seed=1)
    generate(tmp_path / "day2", 260, seed=1)  # same first 200 processes plus 60 more
    db = tmp_path / "warehouse.duckdb"
    run_build([tmp_path / "day1"], db=db, **QUIET)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert int(reader.stdout.readline()) == 200
        run_build([tmp_path / "day2"], db=db, **QUIET)  # must not fail on the reader's lock
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert int(reader.stdout.readline()) == 200  # the reader's view stays consistent
    finally:
        reader.kill()
    assert rows(db, "select count(*) from fct_interview_processes") == [(260,)]


def test_failing_dbt_test_stops_before_publishing(tmp_path):
    generate(tmp_path / "in", 50, seed=3)
    db = tmp_path / "warehouse.duckdb"
    run_build([tmp_path / "in"], db=db, **QUIET)
    published, feeders = db.read_bytes(), (tmp_path / "feeders.json").read_bytes()
    con = duckdb.connect(str(raw_store_path(db)))
    con.execute("update interview_stages set overall_rating = 7 "  # bypasses the contract
                "where id = (select min(id) from interview_stages where overall_rating = 5)")
    con.close()
    result = CliRunner().invoke(app, ["build", str(tmp_path / "in"), "--db", str(db),
                                      "--no-backup", "--no-html"])
    assert result.exit_code == 1
    assert "dbt build failed" in result.output
    assert "accepted_values_stg_itrack__interview_stages_overall_rating" in result.output
    assert db.read_bytes() == published
    assert (tmp_path / "feeders.json").read_bytes() == feeders  # no feedback written
