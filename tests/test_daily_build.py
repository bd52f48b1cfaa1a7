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
from itrack.settings import get_settings
from tests.conftest import assert_exit, read

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str, code: int = 0, stdin: str | None = None):
    result = runner.invoke(app, list(args), input=stdin)
    assert_exit(result, code)
    assert "\x1b[" not in result.stdout + result.stderr
    assert "\n\n" not in result.stdout.strip("\n")
    return result


rows = read


P1 = "11111111-0000-4000-8000-000000000001"
P2 = "22222222-0000-4000-8000-000000000002"
P3 = "33333333-0000-4000-8000-000000000003"
P9 = "99999999-0000-4000-8000-000000000009"


def stage(n: int, process: str, name: str, order: int, outcome: str, day: str | None) -> dict:
    record = {
        "id": f"5{n}5{n}5{n}5{n}-0000-4000-8000-00000000000{n}",
        "interview_process_id": process,
        "stage_name": name,
        "stage_order": order,
        "outcome": outcome,
        "created_at": "2025-01-04",
    }
    if day:
        record["completed_date"] = day
    return record


def write_inputs(folder: Path) -> None:
    """By hand: 3 candidates (+1 without a name), 3 processes (+1 whose candidate is unknown),
    6 stages (+1 whose process is unknown), one stage name the seed does not map."""
    folder.mkdir(parents=True)
    candidates = [
        {
            "id": "c1",
            "full_name": "Ann Lee",
            "feeder_source": "referral",
            "created_at": "2025-01-01",
        },
        {
            "id": "c2",
            "full_name": "Bo Chen",
            "feeder_source": "bootcamp",
            "created_at": "2025-01-01",
        },
        {
            "id": "c3",
            "full_name": "Cy Dunn",
            "feeder_source": "referral",
            "created_at": "2025-01-01",
        },
        {"id": "c4", "created_at": "2025-01-01"},
    ]
    processes = [
        {
            "id": P1,
            "candidate_id": "c1",
            "company_name": "Stripe",
            "role_title": "Data Engineer",
            "status": "offer_accepted",
            "created_at": "2025-01-02",
            "updated_at": "2025-02-01",
        },
        {
            "id": P2,
            "candidate_id": "c2",
            "company_name": "Stripe",
            "role_title": "SWE",
            "status": "rejected_by_company",
            "final_outcome": "Failed Technical Interview",
            "created_at": "2025-01-03",
            "updated_at": "2025-01-20",
        },
        {
            "id": P3,
            "candidate_id": "c3",
            "company_name": "Acme",
            "role_title": "SWE",
            "created_at": "2025-01-03",
        },
        {
            "id": P9,
            "candidate_id": "c9",
            "company_name": "Acme",
            "role_title": "SWE",
            "created_at": "2025-01-03",
        },
    ]
    stages = [
        stage(1, P1, "Phone Screen", 1, "passed", "2025-01-05"),
        stage(2, P1, "Technical Interview", 2, "passed", "2025-01-10"),
        stage(3, P1, "Onsite", 3, "passed", "2025-01-15"),
        stage(4, P2, "Phone Screen", 1, "passed", "2025-01-06"),
        stage(5, P2, "Technical Interview", 2, "failed", "2025-01-12"),
        stage(6, P3, "Take-home Review", 1, "pending", None),
        stage(7, P9, "Phone Screen", 1, "pending", None),
    ]
    for name, records in (("candidates", candidates), ("processes", processes), ("stages", stages)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("daily_build")
    write_inputs(root / "in")
    db = root / "data" / "warehouse.duckdb"
    # the log of a first build as on a new machine: dbt runs (no plan shared by other builds)
    with pytest.MonkeyPatch.context() as env:
        env.delenv("ITRACK_PLAN_CACHE")
        get_settings.cache_clear()
        try:
            result = invoke("build", str(root / "in"), "--db", str(db))
        finally:
            get_settings.cache_clear()
    return root, db, result.stdout


def test_build_log_reads_at_a_glance(built):
    root, db, log = built
    data = db.parent
    in_ = root / "in"
    expected = [
        r"\d\d:\d\d:\d\d ingest: run (run-\S+): 12 accepted, 3 rejected \(\d+\.\d s\)",
        r"\d\d:\d\d:\d\d unmapped stage names \(.*\): 'Take-home Review' \(1\)",
        r"\d\d:\d\d:\d\d dbt build: ok: ran dbt \(4 seeds, 20 models, 23 data tests\) "
        r"\(\d+\.\d s\)",
        r"\d\d:\d\d:\d\d feedback: 2 feeder\(s\) recomputed, 2 changed \(bootcamp, referral\), "
        r"1 placements \(\d+\.\d s\)",
        rf"\d\d:\d\d:\d\d publish: {re.escape(str(db))} \(\d+\.\d s\)",
        rf"\d\d:\d\d:\d\d report: {re.escape(str(data / 'report.html'))} \(\d+\.\d s\)",
        r"build summary: started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, took \d+\.\d s",
        r"steps:",
        r"step       seconds  result",
        r"ingest +\d+\.\d  run run-\S+: 12 accepted, 3 rejected",
        r"dbt build +\d+\.\d  ok: ran dbt \(4 seeds, 20 models, 23 data tests\)",
        r"feedback +\d+\.\d  2 feeder\(s\) recomputed, 2 changed \(bootcamp, referral\), "
        r"1 placements",
        rf"publish +\d+\.\d  {re.escape(str(db))}",
        rf"report +\d+\.\d  {re.escape(str(data / 'report.html'))}",
        r"ingest run run-\S+: 12 accepted, 3 rejected:",
        r"file +kind +rows_read  accepted  rejected  inserted  updated  unchanged  stale",
        rf"{re.escape(str(in_ / 'candidates.jsonl'))} +candidates +4 +3 +1 +3 +0 +0 +0",
        rf"{re.escape(str(in_ / 'processes.jsonl'))} +processes +4 +3 +1 +3 +0 +0 +0",
        rf"{re.escape(str(in_ / 'stages.jsonl'))} +stages +7 +6 +1 +6 +0 +0 +0",
        r"rejected records by error code:",
        r"error_code      records",
        r"missing_field         1",
        r"orphan_process        1",
        r"orphan_stage          1",
        r"details: itrack rejects --run run-\S+",
        r"orphans waiting for their parent record: 2 \(oldest quarantined "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\); see itrack rejects",
        r"unmapped stage names \(.*\): 'Take-home Review' \(1\)",
        r"feeders: 2 recomputed, 2 changed \(bootcamp, referral\)",
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
        r"\d\d:\d\d:\d\d dbt build: ok: replayed dbt's compiled plan \(20 models, "
        r"23 data tests\) \(\d+\.\d s\)",
        result.stderr.splitlines()[-3],
    )


def test_build_without_paths_ingests_nothing(built, tmp_path):
    _root, db, _log = built
    runs = rows(raw_store_path(db), "select count(*) from ingest_runs")
    invoke("build", "--db", str(db), "--no-html")  # settles what earlier tests changed
    out = invoke("build", "--db", str(db), "--no-html").stdout  # nothing can have changed
    assert "dbt build: skipped: nothing changed since the last build (" in out
    assert "ingest: no paths given, nothing ingested\n" in out
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
    out = invoke("build", "--db", str(db), "--no-html", "--no-backup").stdout
    assert "ingest: no paths given, nothing ingested (the marts were rebuilt)\n" in out
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
    assert out == "1 row(s):\nprocesses\n        3\n"
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


def test_sql_writes_no_file_and_runs_every_statement_it_is_given(built, tmp_path):
    """Found by an exploratory run: `copy ... to` and `export database` wrote the warehouse's
    rows (names, notes) to any path; `-c` with two statements printed only the last; an
    apostrophe in a `--` comment swallowed the rest of a script; a statement of comments only
    exited 3 (a bug by the CLI's codes)."""
    _root, db, _log = built
    written = tmp_path / "out.csv"
    for statement in (f"copy (select 1) to '{written}'", f"export database '{tmp_path / 'x'}'"):
        refused = invoke("sql", "--db", str(db), "-c", statement, code=1)
        assert refused.stderr.startswith("error: Permission Error: Cannot access file")
    assert sorted(tmp_path.iterdir()) == []
    both = invoke("sql", "--db", str(db), "-c", "select 1 as a; select 2 as b").stdout
    assert both == "1 row(s):\na\n1\n1 row(s):\nb\n2\n"
    script = "select 1 as a -- it's a comment; not the end\n;\n/* ' */ select 2 as b;\n"
    assert invoke("sql", "--db", str(db), stdin=script).stdout == both
    for nothing in ("", "-- only a comment", ";"):
        assert invoke("sql", "--db", str(db), "-c", nothing).stdout == ""


def test_sql_json_prints_nan_and_infinity_as_null(tmp_path):
    """Found by an exploratory run: `--format json` printed NaN, Infinity and -Infinity, which
    no JSON reader takes (RFC 8259). They print as null at any depth, as orjson writes them;
    the table format and text that spells NaN are unchanged. Any DuckDB file is a warehouse
    to `itrack sql`: an empty one keeps this test off the build."""
    db = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(db)).close()
    select = (
        "select 'nan'::double as n, 'inf'::double as i, '-infinity'::double as m, "
        "1.5::double as x, ['nan'::double, 2.0] as l, {'a': '-inf'::float} as s, 'NaN' as t"
    )
    out = invoke("sql", "--db", str(db), "--format", "json", "-c", select).stdout
    assert out == (
        "[\n  {\n"
        '    "n": null,\n    "i": null,\n    "m": null,\n    "x": 1.5,\n'
        '    "l": [\n      null,\n      2.0\n    ],\n'
        '    "s": {\n      "a": null\n    },\n'
        '    "t": "NaN"\n'
        "  }\n]\n"
    )
    assert json.loads(out, parse_constant=lambda name: pytest.fail(name))[0]["n"] is None
    table = invoke("sql", "--db", str(db), "-c", "select 'nan'::double as n, 'inf'::double as i")
    assert table.stdout == "1 row(s):\n  n    i\nnan  inf\n"


def test_sql_keeps_every_column_of_a_name_given_twice(tmp_path):
    """Found by the exploratory analytics run: rows were dicts keyed by column name, so a name
    given twice (a join's `select *`, `p.company_name, s.company_name`) kept only its last
    copy: `--format json` dropped the others and the table printed the last value under each.
    A repeat is now `name_1`, `name_2`, ... (the first name not already a column)."""
    db = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(db)).close()
    select = "select 1 as a, 2 as a, 3 as a_1, 4 as a"
    table = invoke("sql", "--db", str(db), "-c", select).stdout
    assert table == "1 row(s):\na  a_2  a_1  a_3\n1    2    3    4\n"
    joined = "select * from (select 1 as x) as l, (select 2 as x) as r"
    out = invoke("sql", "--db", str(db), "--format", "json", "-c", joined).stdout
    assert json.loads(out) == [{"x": 1, "x_1": 2}]


def test_sql_json_prints_decimals_as_numbers(tmp_path):
    """Found by the exploratory analytics run: `--format json` printed a DECIMAL (`select
    1.5`, `count(*) * 1.0`) as the text "1.5": a script reading a number got a string. It is
    now a JSON number, as DuckDB's own JSON writes it; the table is unchanged."""
    db = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(db)).close()
    select = "select 1.5 as d, 2.00 as two, 0.1 + 0.2 as s, [1.25] as l, 'x' as t"
    out = invoke("sql", "--db", str(db), "--format", "json", "-c", select).stdout
    assert out == (
        '[\n  {\n    "d": 1.5,\n    "two": 2.0,\n    "s": 0.3,\n'
        '    "l": [\n      1.25\n    ],\n    "t": "x"\n  }\n]\n'
    )
    table = invoke("sql", "--db", str(db), "-c", "select 1.5 as d, 2.00 as two").stdout
    assert table == "1 row(s):\nd    two\n1.5  2.00\n"


def test_sql_never_splits_a_dollar_quote_or_an_escape_string(tmp_path):
    """Found by the exploratory analytics run: statements were split at every `;` outside
    '...', "...", and comments, so DuckDB's dollar quotes (`$$a;b$$`, `$t$...$t$`) and escape
    strings (`E'a\\';b'`) were cut in two: two parser errors, exit 1, for valid SQL. They are
    one token now, as DuckDB reads them; `-c` and stdin split alike."""
    db = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(db)).close()
    script = "select $$a;b$$ as x; select $t$c;d$t$ as y; select E'e\\';f' as z; select 'g;' as w"
    expected = "1 row(s):\nx\na;b\n1 row(s):\ny\nc;d\n1 row(s):\nz\ne';f\n1 row(s):\nw\ng;\n"
    assert invoke("sql", "--db", str(db), "-c", script).stdout == expected
    assert invoke("sql", "--db", str(db), stdin=script + ";\n").stdout == expected


def test_sql_tables_show_timestamps_to_their_last_digit(tmp_path):
    """Found by the exploratory analytics run: the table cut timestamps to the second, so
    10:00:00.25 and 10:00:00.75 printed alike (status changes recorded within a second looked
    simultaneous), while a TIME kept its fraction. A timestamp shows every digit it has."""
    db = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(db)).close()
    select = (
        "select timestamp '2025-01-01 10:00:00.25' as a, timestamp '2025-01-01 10:00:00.75' as b, "
        "timestamp '2025-01-01 10:00:00' as c"
    )
    assert invoke("sql", "--db", str(db), "-c", select).stdout == (
        "1 row(s):\n"
        "a                           b                           c\n"
        "2025-01-01 10:00:00.250000  2025-01-01 10:00:00.750000  2025-01-01 10:00:00\n"
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
        ["db", "status"],
    ):
        by_format = invoke(*args, "--db", str(db), "--format", "json").stdout
        assert json.loads(by_format)
        assert invoke(*args, "--db", str(db), "--json").stdout == by_format
        plain = invoke(*args, "--db", str(db)).stdout
        assert plain and not plain.lstrip().startswith(("[", "{"))


def test_feedback_full_says_what_it_recomputed(built):
    _root, db, _log = built
    out = invoke("feedback", "--full", "--db", str(db)).stdout
    assert out == "feedback: 2 feeder(s) recomputed, 0 changed, 1 placements\n", out


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


def test_one_concept_one_name_across_marts(built):
    _root, db, _log = built
    for mart in ("mart_conversion_funnel", "mart_company_insights", "mart_feeder_conversion"):
        names = {r[0] for r in rows(db, f"describe {mart}")}
        assert "processes_started" in names, mart
    [(overall, offers, offer_rate, cleared, after)] = rows(
        db,
        "select processes_started, offers_extended, offer_rate, cleared_interviewing, "
        "offer_rate_after_interviews from mart_conversion_funnel where grain = 'overall'",
    )
    assert offer_rate == pytest.approx(offers / overall)
    assert after == pytest.approx(offers / cleared)
    assert rows(
        db,
        "select sum(processes_started), bool_and(processes_started = candidates_sourced)"
        " from mart_feeder_conversion",
    ) == [(overall, True)]
    assert rows(
        db,
        "select sum(processes_started), bool_and(processes_started = processes) "
        "from mart_company_insights",
    ) == [(overall, True)]
    mismatched = rows(
        db,
        "select c.company_name from mart_company_insights c join mart_conversion_funnel f "
        "on f.grain = 'company_name' and f.company_name = c.company_name "
        "where c.processes_started <> f.processes_started "
        "or abs(c.offer_rate - f.offer_rate) > 1e-9 "
        "or abs(coalesce(c.offer_accepted_rate, -1) - coalesce(f.offer_accepted_rate, -1)) > 1e-9",
    )
    assert mismatched == []
    assert rows(db, "select count(*) from mart_company_insights") == rows(
        db, "select count(*) from mart_conversion_funnel where grain = 'company_name'"
    )


def test_reports_print_one_name_per_concept(built):
    """Tables show the one name (processes_started, offer_accepted_rate); JSON keeps the older
    aliases beside them, with equal values."""
    _root, db, _log = built

    def keys(text: str) -> list[str]:
        return [line.split(":")[0].lstrip("- ").strip() for line in text.splitlines()[1:]]

    company = invoke("report", "company", "stripe", "--db", str(db)).stdout
    assert company.splitlines()[0] == "company Stripe:"
    assert keys(company) == [
        "company_name",
        "total_candidates_sent",
        "processes_started",
        "interview_rate",
        "offer_rate",
        "offer_accepted_rate",
        "avg_time_to_decision",
        "avg_days_to_decision",
        "median_days_to_decision",
        "preferred_feeders",
        "rejection_reasons",
    ]
    [as_json] = json.loads(invoke("report", "company", "Stripe", "--db", str(db), "--json").stdout)
    assert as_json["processes_started"] == as_json["processes"] == 2
    assert as_json["offer_accepted_rate"] == as_json["acceptance_rate"]
    feeder = invoke("report", "feeder", "referral", "--db", str(db)).stdout
    assert "candidates_sourced" not in keys(feeder) and "processes_started" in keys(feeder)
    [as_json] = json.loads(invoke("report", "feeder", "referral", "--db", str(db), "--json").stdout)
    assert as_json["candidates_sourced"] == as_json["processes_started"] == 2


def test_a_rerun_with_nothing_new_says_what_it_skipped(tmp_path):
    write_inputs(tmp_path / "in")
    db = tmp_path / "data" / "warehouse.duckdb"
    build = ("build", str(tmp_path / "in"), "--db", str(db), "--no-html")
    invoke(*build)
    backups = db.parent / "backups"
    assert not backups.exists()  # the first build had no raw store to back up
    second = invoke(*build).stdout
    (taken,) = backups.iterdir()  # the first build changed the raw store since: backed up
    third = invoke(*build).stdout
    assert list(backups.iterdir()) == [taken]
    for out, backup in (
        (second, re.escape(str(taken))),
        (third, "skipped: the newest backup holds the raw store as it is"),
    ):
        steps = [s for s in out.splitlines() if re.match(r"\d\d:\d\d:\d\d ", s)]
        expected = [
            rf"\d\d:\d\d:\d\d backup: {backup} \(\d+\.\d s\)",
            r"\d\d:\d\d:\d\d ingest: skipped: every file is loaded already \(same path, size and "
            r"mtime\) \(\d+\.\d s\)",
            r"\d\d:\d\d:\d\d dbt build: skipped: nothing changed since the last build "
            r"\(\d+\.\d s\)",
        ]
        assert len(steps) == len(expected), out
        for pattern, got in zip(expected, steps, strict=True):
            assert re.fullmatch(pattern, got), (pattern, got)
        assert "no paths given" not in out and "ingest run" not in out
