"""Daily use (#14) around a real build: the nightly log, `itrack build` without paths, the cron
line of the README as written, corrections reaching the marts, `itrack sql`, the docs catalog,
one flag name for JSON. CLI output is not a terminal (CliRunner); whole outputs asserted."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from ingest.store.duckdb.store import raw_store_path
from itrack.cli.main import app
from itrack.generate import generate
from itrack.services import interview_service

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str, code: int = 0, stdin: str | None = None):
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stdout + result.stderr
    assert "\x1b[" not in result.stdout + result.stderr
    assert "\n\n" not in result.stdout.strip("\n")
    return result


def rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("daily_build")
    generate(root / "in", 40, seed=1, invalid_share=0.05)
    db = root / "data" / "warehouse.duckdb"
    result = invoke("build", str(root / "in"), "--db", str(db))
    return root, db, result.stdout


def test_build_log_reads_at_a_glance(built):
    root, db, log = built
    data = db.parent
    in_ = root / "in"
    expected = [
        r"\d\d:\d\d:\d\d ingest: run (run-\S+): 152 accepted, 10 rejected \(\d+\.\d s\)",
        r"\d\d:\d\d:\d\d unmapped stage names \(1 stages, counted as other; add them to "
        r"dbt_project/seeds/stage_types\.csv\): 'Take-home Review' \(1\)",
        r"\d\d:\d\d:\d\d dbt build: ok \(\d+\.\d s\)",
        r"\d\d:\d\d:\d\d feedback: 6 feeder\(s\) recomputed, 6 changed \(bootcamp, ex-amazon, "
        r"ex-google, linkedin-outbound, referral, university\), 8 placements \(\d+\.\d s\)",
        rf"\d\d:\d\d:\d\d publish: {re.escape(str(db))} \(\d+\.\d s\)",
        rf"\d\d:\d\d:\d\d report: {re.escape(str(data / 'report.html'))} \(\d+\.\d s\)",
        r"build summary: started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, took \d+\.\d s",
        r"steps:",
        r"step       seconds  result",
        r"ingest +\d+\.\d  run run-\S+: 152 accepted, 10 rejected",
        r"dbt build +\d+\.\d  ok",
        r"feedback +\d+\.\d  6 feeder\(s\) recomputed, 6 changed \(.*\), 8 placements",
        rf"publish +\d+\.\d  {re.escape(str(db))}",
        rf"report +\d+\.\d  {re.escape(str(data / 'report.html'))}",
        r"ingest run run-\S+: 152 accepted, 10 rejected:",
        r"file +kind +rows_read  accepted  rejected  inserted  updated  unchanged  stale",
        rf"{re.escape(str(in_ / 'candidates.jsonl'))}  candidates +34 +33 +1 +33 +0 +0 +0",
        rf"{re.escape(str(in_ / 'processes.jsonl'))} +processes +40 +38 +2 +38 +0 +0 +0",
        rf"{re.escape(str(in_ / 'stages.jsonl'))} +stages +88 +81 +7 +81 +0 +0 +0",
        r"rejected records by error code:",
        r"error_code      records",
        r"orphan_stage          4",
        r"malformed_json        2",
        r"invalid_rating        1",
        r"missing_field         1",
        r"orphan_process        1",
        r"unknown_field         1",
        r"details: itrack rejects --run run-\S+",
        r"orphans waiting for their parent record: 5 \(oldest quarantined "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\); see itrack rejects",
        r"unmapped stage names \(1 stages, .*\): 'Take-home Review' \(1\)",
        r"feeders: 6 recomputed, 6 changed \(bootcamp, ex-amazon, ex-google, linkedin-outbound, "
        r"referral, university\)",
        r"published:",
        rf"  feeders: {re.escape(str(data / 'feeders.json'))}",
        rf"  placements: {re.escape(str(data / 'candidate_placements.json'))}",
        rf"  warehouse: {re.escape(str(db))}",
        rf"  report: {re.escape(str(data / 'report.html'))}",
    ]
    lines = log.splitlines()
    assert len(lines) == len(expected), log
    for pattern, got in zip(expected, lines, strict=True):
        assert re.fullmatch(pattern, got), (pattern, got)


def test_build_json_summary(built, tmp_path):
    _root, db, _log = built
    result = invoke("build", "--db", str(db), "--no-html", "--no-backup", "--format", "json")
    summary = json.loads(result.stdout)
    assert [s["name"] for s in summary["steps"]] == ["dbt build", "feedback", "publish"]
    assert summary["ingest"] is None
    assert summary["published"]["warehouse"] == str(db)
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d dbt build: ok \(\d+\.\d s\)", result.stderr.splitlines()[-3]
    )


def test_build_without_paths_ingests_nothing(built, tmp_path):
    _root, db, _log = built
    runs = rows(raw_store_path(db), "select count(*) from ingest_runs")
    out = invoke("build", "--db", str(db), "--no-html").stdout
    assert "ingest: no paths given, nothing ingested (the marts were rebuilt)\n" in out
    assert rows(raw_store_path(db), "select count(*) from ingest_runs") == runs
    fresh = tmp_path / "prod" / "warehouse.duckdb"
    result = invoke("build", "--db", str(fresh), code=2)
    assert result.stderr == (
        f"error: no raw store at {raw_store_path(fresh.absolute())}: nothing to build; name the "
        "files to ingest (itrack build PATH...) or check --db\n"
    )
    assert not (tmp_path / "prod").exists()


def test_corrections_reach_the_marts(built):
    _root, db, _log = built
    [(stage_id, process_id, before)] = rows(
        db,
        "select s.interview_stage_id, p.interview_process_id, p.status "
        "from fct_interview_stages s join fct_interview_processes p using (interview_process_id) "
        "where s.outcome = 'failed' and p.status = 'rejected_by_company' "
        "and p.final_outcome = 'Failed ' || s.stage_name order by 1 limit 1",
    )
    service = interview_service(db)
    done = service.amend_stage_outcome(stage_id, "passed", "typo in the ATS export", "qa")
    assert done.process.status.value == "in_progress" and before == "rejected_by_company"
    invoke("build", "--db", str(db), "--no-html", "--no-backup")
    assert rows(
        db,
        f"select status, is_terminal from fct_interview_processes "
        f"where interview_process_id = '{process_id}'",
    ) == [("in_progress", False)]
    assert rows(
        db, f"select outcome from fct_interview_stages where interview_stage_id = '{stage_id}'"
    ) == [("passed",)]
    history = rows(
        db,
        "select status, recorded_by from fct_process_status_history "
        f"where interview_process_id = '{process_id}' order by valid_from",
    )
    assert history[-2:] == [("rejected_by_company", "ingest"), ("in_progress", "correction")]


def test_sql_opens_the_warehouse_read_only(built, tmp_path):
    _root, db, _log = built
    out = invoke(
        "sql", "--db", str(db), "-c", "select count(*) as processes from fct_interview_processes"
    ).stdout
    assert out == "1 row(s):\nprocesses\n       38\n"
    as_json = invoke(
        "sql", "--db", str(db), "--format", "json", "-c", "select 1 as one, 'a;b' as text"
    ).stdout
    assert json.loads(as_json) == [{"one": 1, "text": "a;b"}]
    refused = invoke("sql", "--db", str(db), "-c", "drop table fct_interview_processes", code=1)
    assert refused.stderr.startswith("error: Invalid Input Error: Cannot execute statement of type")
    assert "read-only mode" in refused.stderr
    script = invoke("sql", "--db", str(db), stdin="select 2 as two;\nselect 'x;y' as z;\n").stdout
    assert script == "1 row(s):\ntwo\n  2\n1 row(s):\nz\nx;y\n"
    missing = tmp_path / "nope.duckdb"
    assert invoke("sql", "--db", str(missing), "-c", "select 1", code=2).stderr == (
        f"error: {missing}: no warehouse yet; run `itrack build PATH` first (or check --db)\n"
    )


def test_docs_catalog_has_every_model_and_column_type(built):
    _root, db, _log = built
    out = invoke("docs", "--db", str(db)).stdout
    target = ROOT / "dbt_project" / "target"
    assert out == (
        f"dbt docs: open {target / 'static_index.html'} (self-contained, offline; "
        f"{target / 'index.html'} needs the files beside it)\n"
    )
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    models = {k for k, v in manifest["nodes"].items() if v["resource_type"] == "model"}
    assert len(models) >= 17
    assert models <= set(catalog["nodes"])
    for key in models:
        columns = catalog["nodes"][key]["columns"]
        assert columns, key
        assert all(c["type"] for c in columns.values()), key
        documented = set(manifest["nodes"][key]["columns"])
        assert documented <= set(columns), (key, documented - set(columns))


def test_json_is_one_flag_everywhere(built):
    _root, db, _log = built
    for args in (
        ["report", "funnel"],
        ["report", "feeder", "referral"],
        ["report", "company", "Stripe"],
        ["report", "stage", "technical"],
        ["feedback", "report", "referral"],
        ["rejects"],
        ["interview", "list"],
    ):
        by_format = invoke(*args, "--db", str(db), "--format", "json").stdout
        assert json.loads(by_format)
        assert invoke(*args, "--db", str(db), "--json").stdout == by_format
        plain = invoke(*args, "--db", str(db)).stdout
        assert plain and not plain.lstrip().startswith(("[", "{"))


def test_feedback_full_says_what_it_recomputed(built):
    _root, db, _log = built
    out = invoke("feedback", "--full", "--db", str(db)).stdout
    assert re.fullmatch(r"feedback: 6 feeder\(s\) recomputed, 0 changed, \d+ placements\n", out), (
        out
    )


def test_readme_cron_line_runs_as_written(tmp_path):
    readme = (ROOT / "README.md").read_text()
    [cron] = re.findall(r"^30 2 \* \* \*\s+(.+)$", readme, re.M)
    project = tmp_path / "srv" / "interview-tracking"
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "itrack").symlink_to(ROOT / ".venv" / "bin" / "itrack")
    exports = tmp_path / "srv" / "exports" / "latest"
    generate(exports, 30, seed=4)
    command = cron.replace("/srv/", f"{tmp_path}/srv/")
    assert "mkdir -p logs" in command and ">> logs/nightly.log 2>&1" in command
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}  # cron's
    done = subprocess.run(
        ["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
    log = (project / "logs" / "nightly.log").read_text()
    assert "\nbuild summary: started " in log and "\x1b[" not in log
    assert (project / "data" / "warehouse.duckdb").exists()
    assert os.path.getsize(project / "data" / "feeders.json") > 0
