"""Daily use (#14): what a nightly log shows, writes that cannot silently go wrong, mistakes that
can be corrected. Every CLI call runs with stdout not a terminal (CliRunner), asserts the whole
output, the exact exit code and that no exception escaped."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from ingest.store.duckdb.store import open_store, raw_store_path, store_lock
from itrack.cli.main import app
from tests.conftest import assert_exit, read

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
T0 = "2025-01-01T00:00:00"
ANSI = re.compile(r"\x1b\[")


def invoke(command: str, *args: str, code: int = 0, stdin: str | None = None):
    """`itrack COMMAND ARGS...`: COMMAND is split on spaces (plain tokens), ARGS are taken as
    they are (values with spaces, paths)."""
    result = runner.invoke(app, [*command.split(), *args], input=stdin)
    assert_exit(result, code)
    for stream in (result.stdout, result.stderr):
        assert not ANSI.search(stream)
    assert "\n\n" not in result.stdout.strip("\n")  # no stray blank lines
    assert not re.search(r" $", result.stdout, re.M)  # no trailing spaces (an empty value)
    return result


def out(command: str, *args: str, code: int = 0) -> str:
    return invoke(command, *args, code=code).stdout


def err(command: str, *args: str, code: int) -> str:
    result = invoke(command, *args, code=code)
    assert result.stdout == ""
    return result.stderr


def jsonl(path: Path, *records: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


rows = read


PROCESS_ORPHAN = "9b1c1f0e-0000-4000-8000-000000000001"


@pytest.fixture
def day1(tmp_path, monkeypatch) -> Path:
    """Two good candidates, one without a name, a process whose candidate is not known yet and
    a stray file; relative paths so the log lines are exact."""
    monkeypatch.chdir(tmp_path)
    jsonl(
        Path("in/candidates.jsonl"),
        {"id": "c1", "full_name": "Ann Lee", "feeder_source": "referral", "created_at": T0},
        {"id": "c2", "full_name": "Bo Chen", "feeder_source": "bootcamp", "created_at": T0},
        {"id": "c3", "created_at": T0},
    )
    jsonl(
        Path("in/processes.jsonl"),
        {
            "id": PROCESS_ORPHAN,
            "candidate_id": "c9",
            "company_name": "Acme",
            "role_title": "SWE",
            "created_at": "2025-01-03",
        },
    )
    Path("in/notes.txt").write_text("not data\n")
    return tmp_path


def since(text: str) -> tuple[str, str]:
    """(the output with the run id and quarantine time replaced, the run id)."""
    run_id = re.search(r"run (run-\d{8}T\d{6}-[0-9a-f]{8})", text).group(1)
    text = text.replace(run_id, "RUN")
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "TS UTC", text), run_id


# -- logs and terminal output -----------------------------------------------------------------


def test_ingest_log_is_plain_and_complete(day1):
    text, _run = since(out("ingest in --db w.duckdb"))
    assert text == textwrap.dedent("""\
        ingest run RUN: 2 accepted, 2 rejected:
        file                 kind        rows_read  accepted  rejected  inserted  updated  unchanged  stale
        in/candidates.jsonl  candidates          3         2         1         2        0          0      0
        in/processes.jsonl   processes           1         0         1         0        0          0      0
        skipped in/notes.txt: not a data file (.jsonl, .json, .csv or .parquet)
        rejected records by error code:
        error_code      records
        missing_field         1
        orphan_process        1
        details: itrack rejects --run RUN
        orphans waiting for their parent record: 1 (oldest quarantined TS UTC); see itrack rejects
        """)  # noqa: E501


def test_orphan_retries_say_resolved_and_waiting_since_when(day1):
    first = out("ingest in --db w.duckdb")
    quarantined = re.search(r"quarantined (\S+ \S+) UTC", first).group(1)
    jsonl(Path("day2/candidates.jsonl"), {"id": "c4", "full_name": "Cy", "created_at": T0})
    second = out("ingest day2 --db w.duckdb")
    assert second.splitlines()[-2:] == [
        "orphans from earlier runs: 1 retried, 0 resolved, 1 still waiting",
        f"orphans waiting for their parent record: 1 (oldest quarantined {quarantined} UTC); "
        "see itrack rejects",
    ]
    jsonl(Path("day3/candidates.jsonl"), {"id": "c9", "full_name": "Di", "created_at": T0})
    third = out("ingest day3 --db w.duckdb")
    assert (
        third.splitlines()[-1]
        == "orphans from earlier runs: 1 retried, 1 resolved, 0 still waiting"
    )
    assert rows(raw_store_path("w.duckdb"), "select count(*) from interview_processes") == [(1,)]


def test_a_folder_inside_an_input_folder_is_named_as_not_read(day1):
    """Found by the exploratory analytics run: an input folder's subfolders were passed over
    without a word (a night's files one level down, `exports/2025-03-01/`, gave "0 accepted"),
    though the summary lists every file that was not read. Each is named as skipped."""
    jsonl(Path("in/2025-03-01/candidates.jsonl"), {"id": "c9", "full_name": "Di", "created_at": T0})
    text, _run = since(out("ingest in --db w.duckdb"))
    assert text.splitlines()[4:6] == [
        "skipped in/2025-03-01: a folder (not read: name it to ingest its files)",
        "skipped in/notes.txt: not a data file (.jsonl, .json, .csv or .parquet)",
    ]
    assert rows(raw_store_path("w.duckdb"), "select count(*) from candidates where id = 'c9'") == [
        (0,)
    ]


def test_named_file_of_unknown_kind_is_refused_but_a_folder_skips_it(day1):
    Path("in/export.jsonl").write_text('{"id": "x"}\n')
    text = out("ingest in --db w.duckdb")
    assert (
        "skipped in/export.jsonl: kind unknown (name it *candidates*, *processes* or *stages*, "
        "or pass --kind)\nskipped in/notes.txt: not a data file" in text
    )
    message = err("ingest in/export.jsonl --db w.duckdb", code=2)
    assert message == (
        "error: in/export.jsonl: cannot tell the record kind from the file name; name it "
        "*candidates*, *processes* or *stages*, or pass --kind\n"
    )


def test_rejects_plain_json_and_unknown_run(day1):
    _text, run_id = since(out("ingest in --db w.duckdb"))
    listed = out("rejects --db w.duckdb")
    assert listed == textwrap.dedent("""\
        quarantine: 2 of 2 shown:
        file_path            line_number  kind        record_id                             error_code      error_message
        in/candidates.jsonl            3  candidates  c3                                    missing_field   field 'full_name': Field required
        in/processes.jsonl             1  processes   9b1c1f0e-0000-4000-8000-000000000001  orphan_process  candidate c9 is not known yet; retried on the next run
        """)  # noqa: E501
    as_json = json.loads(out("rejects --db w.duckdb --format json"))
    assert [(r["record_id"], r["error_code"], r["run_id"]) for r in as_json] == [
        ("c3", "missing_field", run_id),
        (PROCESS_ORPHAN, "orphan_process", run_id),
    ]
    assert out("rejects --db w.duckdb --json") == out("rejects --db w.duckdb --format json")
    assert out("rejects --db w.duckdb --limit 1").splitlines()[-1] == ("1 more: pass --limit 2")
    store = raw_store_path("w.duckdb")
    assert err("rejects --run nonexistent --db w.duckdb", code=1) == (
        f"error: no run 'nonexistent' in {store}\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["rejects"],
        ["interview", "list"],
        ["interview", "show", "9b1c"],
        ["interview", "history", "c1"],
        ["backup"],
        ["db", "status"],
        ["interview", "create", "--candidate", "c1", "--company", "A", "--role", "B"],
    ],
)
def test_a_wrong_db_creates_nothing_and_names_the_missing_path(tmp_path, args):
    db = tmp_path / "typo" / "warehouse.duckdb"
    message = err(*args, "--db", str(db), code=2)
    assert message == (
        f"error: no raw store at {raw_store_path(db)}: check --db (or $ITRACK_DB), or load data "
        "first with `itrack ingest` / `itrack build PATH`\n"
    )
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["docs"], "no raw store at {raw}: check --db, or build first (`itrack build PATH`)"),
        (
            ["export", "--anonymize", "--out", "{tmp}/typo/out"],
            "{db}: no warehouse yet; run `itrack build` first",
        ),
        (["report", "funnel"], "{db}: no warehouse yet; run `itrack build` first"),
        (
            ["report", "html", "--out", "{tmp}/typo/report.html"],
            "{db}: no warehouse yet; run `itrack build` first",
        ),
        (["feedback"], "{db}: no warehouse yet; run `itrack build` first"),
        (["feedback", "report", "referral"], "{db}: no warehouse yet; run `itrack build` first"),
        (
            ["sql", "-c", "select 1"],
            "{db}: no warehouse yet; run `itrack build PATH` first (or check --db)",
        ),
    ],
)
def test_warehouse_commands_on_a_wrong_db_create_nothing(tmp_path, args, message):
    db = tmp_path / "typo" / "warehouse.duckdb"
    args = [a.format(tmp=tmp_path) for a in args]
    expected = message.format(raw=raw_store_path(db), db=db)
    assert err(*args, "--db", str(db), code=2) == f"error: {expected}\n"
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("where", ["typo/warehouse.duckdb", "warehuose.duckdb"])
def test_db_upgrade_of_a_missing_store_is_refused_unless_create(tmp_path, where):
    """Found by upgrading a mistyped --db: `itrack db upgrade --db data/warehuose.duckdb` (or
    into a folder that does not exist) made a new empty raw store and said "applied 7", and
    the real store stayed as it was. A missing store is refused, naming it, and made only with
    --create. Fails before the fix (exit 0, a new store)."""
    db = tmp_path / where
    assert err("db upgrade --db", str(db), code=2) == (
        f"error: no raw store at {raw_store_path(db)}: check --db (or $ITRACK_DB), or pass "
        "--create to make a new, empty one\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    made = out("db upgrade --create --db", str(db)).splitlines()[-1]
    assert made.startswith(f"{raw_store_path(db)}: applied ")
    assert out("db upgrade --create --db", str(db)).startswith(
        f"{raw_store_path(db)}: nothing to apply;"
    )
    assert err("db upgrade --create --dsn", "postgresql://u@127.0.0.1:1/x", code=2) == (
        "error: --create is for the DuckDB raw store, not PostgreSQL\n"
    )


def test_serve_of_a_missing_store_is_refused(tmp_path):
    """Found by serving a mistyped --db: `itrack serve --db typo/warehouse.duckdb` started,
    and its first request made an empty raw store there, so the API answered with no
    interviews instead of an error. It is refused before the server starts. The port is taken,
    so that the code before the fix stops at binding it instead of serving: it fails there
    (a port in use, not the missing store)."""
    import socket

    db = tmp_path / "typo" / "warehouse.duckdb"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        message = err("serve --no-auth --port", port, "--db", str(db), code=2)
    assert message == (
        f"error: no raw store at {raw_store_path(db)}: check --db (or $ITRACK_DB), or make it "
        "first (`itrack build PATH` loads data, `itrack db upgrade --create` makes an empty "
        "one)\n"
    )
    assert not (tmp_path / "typo").exists()


def test_report_html_and_export_of_a_file_without_marts_are_refused_in_one_line(tmp_path):
    """A DuckDB file that is not a built warehouse (the raw store named by mistake, an empty
    file): `report html` failed with "unexpected CatalogException", and `export` wrote an empty
    folder and a manifest, said "exported 0 tables (0 rows)" and exited 0."""
    db = tmp_path / "raw.duckdb"
    duckdb.connect(str(db)).close()
    assert err("report html --out", str(tmp_path / "r.html"), "--db", str(db), code=2) == (
        f"error: {db}: no fct_interview_processes, mart_conversion_funnel, "
        "mart_feeder_conversion, mart_stage_performance, stg_itrack__feedback_runs; "
        "run `itrack build` first\n"
    )
    assert not (tmp_path / "r.html").exists()
    exported = tmp_path / "shared"
    assert err("export --anonymize --out", str(exported), "--db", str(db), code=2) == (
        f"error: {db}: no fct_interview_processes, fct_interview_stages, "
        "fct_process_status_history, mart_conversion_funnel, mart_stage_performance, "
        "mart_company_insights, mart_feeder_conversion, mart_interviewer_calibration; "
        "run `itrack build` first\n"
    )
    assert not exported.exists()
    assert err("feedback --db", str(db), code=2) == (  # the same check, its own reason
        f"error: {db}: no fct_interview_processes, mart_feeder_conversion; run `itrack build` "
        "first (feedback is never written from a failed or missing build)\n"
    )
    assert not (tmp_path / "feeders.json").exists()


@pytest.mark.parametrize(
    ("command", "mart"),
    [
        ("report funnel", "mart_conversion_funnel"),
        ("report company Acme", "mart_company_insights"),
        ("report stage onsite", "mart_stage_performance"),
        ("report feeder referral", "mart_feeder_conversion"),
        ("feedback report referral", "mart_feeder_conversion"),
    ],
)
def test_reports_of_a_file_without_marts_name_the_file(tmp_path, command, mart):
    """Found by exploratory testing: `itrack report company X --db other.duckdb` (a DuckDB file
    that is not a warehouse) said only "the warehouse has no marts yet (...)", not which file,
    unlike `report html` and `export`."""
    db = tmp_path / "other.duckdb"
    duckdb.connect(str(db)).close()
    assert err(command, "--db", str(db), code=2) == (
        f"error: {db}: the warehouse has no marts yet (Catalog Error: Table with name {mart} "
        "does not exist!); run `itrack build`\n"
    )


def test_docs_before_a_build_is_refused(day1):
    """A raw store but no built warehouse: a catalog would describe no model; say so."""
    out("ingest in --db w.duckdb")
    catalog = ROOT / "dbt_project" / "target" / "catalog.json"
    before = catalog.stat().st_mtime_ns if catalog.exists() else None
    assert err("docs --db w.duckdb", code=2) == (
        "error: w.duckdb: no warehouse yet; the catalog describes the built tables: run "
        "`itrack build` first\n"
    )
    assert (catalog.stat().st_mtime_ns if catalog.exists() else None) == before


def test_docs_refuses_a_file_that_is_no_built_warehouse(day1):
    """Found by exploratory testing: with an empty DuckDB file as the warehouse, `itrack docs`
    wrote a catalog of no model and said where to open it (exit 0); with a file DuckDB cannot
    open, dbt printed pages of tracebacks. Both are one line now, exit 2, before dbt runs."""
    out("ingest in --db w.duckdb")
    duckdb.connect("w.duckdb").close()
    catalog = ROOT / "dbt_project" / "target" / "catalog.json"
    before = catalog.stat().st_mtime_ns if catalog.exists() else None
    assert err("docs --db w.duckdb", code=2) == (
        "error: w.duckdb: no fct_interview_processes, mart_feeder_conversion; run `itrack build` "
        "first (the catalog describes the built tables)\n"
    )
    Path("w.duckdb").write_bytes(b"")
    assert err("docs --db w.duckdb", code=2) == (
        f'error: cannot open w.duckdb: IO Error: The file "{day1 / "w.duckdb"}" exists, but it '
        "is not a valid DuckDB database file!\n"
    )
    assert (catalog.stat().st_mtime_ns if catalog.exists() else None) == before


def test_rejects_all_says_which_run_resolved_each(day1):
    first = out("ingest in --db w.duckdb")
    jsonl(Path("day2/candidates.jsonl"), {"id": "c9", "full_name": "Di", "created_at": T0})
    _text, resolver = since(out("ingest day2 --db w.duckdb"))
    assert out("rejects --db w.duckdb").splitlines()[1:] == [
        "file_path            line_number  kind        record_id  error_code     error_message",
        "in/candidates.jsonl            3  candidates  c3         missing_field  field "
        "'full_name': Field required",
    ]
    assert out("rejects --all --db w.duckdb") == textwrap.dedent(f"""\
        quarantine: 2 of 2 shown:
        file_path            line_number  kind        record_id                             error_code      error_message                                           resolved_run_id
        in/candidates.jsonl            3  candidates  c3                                    missing_field   field 'full_name': Field required
        in/processes.jsonl             1  processes   9b1c1f0e-0000-4000-8000-000000000001  orphan_process  candidate c9 is not known yet; retried on the next run  {resolver}
        """)  # noqa: E501
    _text, run_id = since(first)
    assert (
        out(f"rejects --run {run_id} --db w.duckdb")
        .splitlines()[1]
        .endswith("error_message                                           resolved_run_id")
    )
    [db_status] = [
        r
        for r in json.loads(out("db status --db w.duckdb --format json"))
        if r["migration"].endswith("_raw_store")
    ]
    assert db_status == {"migration": "20261125000000_raw_store", "state": "applied"}
    assert out("db status --db w.duckdb").splitlines()[0] == "applied  20261125000000_raw_store"


def test_a_reject_is_resolved_by_the_run_that_loads_its_corrected_record(day1):
    """Candidate c3 was rejected (no full_name); a later run loads it corrected, and the
    reject stayed in `itrack rejects` as waiting for attention, for ever (found by two
    exploratory runs). The run that accepts a record resolves the earlier rejects of its id;
    a run that accepts another id resolves nothing."""
    out("ingest in --db w.duckdb")
    jsonl(Path("day2/candidates.jsonl"), {"id": "c5", "full_name": "Eve", "created_at": T0})
    out("ingest day2 --db w.duckdb")
    assert [r["record_id"] for r in json.loads(out("rejects --db w.duckdb --format json"))] == [
        "c3",
        PROCESS_ORPHAN,
    ]
    jsonl(Path("day3/candidates.jsonl"), {"id": "c3", "full_name": "Cy", "created_at": T0})
    _text, resolver = since(out("ingest day3 --db w.duckdb"))
    assert [r["record_id"] for r in json.loads(out("rejects --db w.duckdb --format json"))] == [
        PROCESS_ORPHAN
    ]
    resolved = json.loads(out("rejects --all --db w.duckdb --format json"))
    assert [(r["record_id"], r["resolved_run_id"]) for r in resolved] == [
        ("c3", resolver),
        (PROCESS_ORPHAN, None),
    ]


def test_a_reader_that_leaves_early_is_not_an_error(tmp_path):
    """`itrack sql ... | head -1`: exit 141 (as if killed by SIGPIPE), no error line."""
    import duckdb

    duckdb.connect(str(tmp_path / "w.duckdb")).close()
    reader = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "itrack"),
            "sql",
            "--db",
            str(tmp_path / "w.duckdb"),
            "-c",
            "select range from range(200000)",  # far more than a pipe's buffer
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout.readline() == "200000 row(s):\n"
    reader.stdout.close()
    assert reader.wait(timeout=120) == 141
    assert reader.stderr.read() == ""


def test_sql_on_stdin_that_is_not_utf8_is_refused_before_anything_runs(tmp_path):
    """Piped SQL was read as text: bytes that are not UTF-8 reached DuckDB as lone surrogates
    after the statements before them had run, "error: Invalid Input Error: Python Conversion
    Failure: cannot encode str as UTF-8, surrogate '\\udcff' ...". A byte order mark failed
    as a syntax error."""
    import duckdb

    db = str(tmp_path / "w.duckdb")
    duckdb.connect(db).close()
    result = runner.invoke(app, ["sql", "--db", db], input=b"select 1 as x;\xff\n")
    assert_exit(result, 2)
    assert (result.stdout, result.stderr) == (
        "",
        "error: stdin: not valid UTF-8 (byte 14); nothing was run\n",
    )
    result = runner.invoke(app, ["sql", "--db", db], input=b"\xef\xbb\xbfselect 1 as x;")
    assert_exit(result, 0)
    assert result.stdout == "1 row(s):\nx\n1\n"


def test_sql_json_of_several_statements_is_refused_not_two_documents(tmp_path):
    """`itrack sql --format json -c "select 1; select 2"` printed two JSON arrays one after the
    other, exit 0: no JSON reader takes that. Several statements are refused with JSON output,
    before any runs; a statement of comments alone does not count; tables print each one."""
    db = str(tmp_path / "w.duckdb")
    duckdb.connect(db).close()
    two = "select 1 as a; select 2 as b"
    refused = "holds 2 statements; --format json prints one statement's rows (one JSON document)"
    tail = ": run them one at a time; nothing was run\n"
    assert err("sql", "--db", db, "--format", "json", "-c", two, code=2) == (
        f"error: -c {refused}{tail}"
    )
    result = invoke("sql --db", db, "--format", "json", stdin=two, code=2)
    assert (result.stdout, result.stderr) == ("", f"error: stdin {refused}{tail}")
    printed = out("sql", "--db", db, "--format", "json", "-c", "select 1 as a; -- the answer")
    assert json.loads(printed) == [{"a": 1}]
    assert out("sql", "--db", db, "-c", two) == "1 row(s):\na\n1\n1 row(s):\nb\n2\n"


def test_sql_prints_intervals_as_duckdb_spells_them(tmp_path):
    """`select completed_date - scheduled_date` is an INTERVAL, which reached the output as
    Python's timedelta text: minus one hour and a half printed "-2 days, 22:30:00" (it is
    -1 day -01:30:00), in the table and in JSON alike (found by an exploratory query). Now
    DuckDB's own spelling, in lists too."""
    db = str(tmp_path / "w.duckdb")
    duckdb.connect(db).close()
    query = (
        "select timestamp '2025-01-01 10:00' - timestamp '2025-01-02 11:30' as early, "
        "interval '-1 hour' as hour, interval '2 days' as days, interval '0 seconds' as zero, "
        "interval '1 day 00:00:00.5' as half, [interval '1 day 1 hour'] as listed"
    )
    assert out("sql", "--db", db, "-c", query).splitlines()[1:] == [
        "early             hour       days    zero      half              listed",
        '-1 day -01:30:00  -01:00:00  2 days  00:00:00  1 day 00:00:00.5  ["1 day 01:00:00"]',
    ]
    assert json.loads(out("sql", "--db", db, "--format", "json", "-c", query)) == [
        {
            "early": "-1 day -01:30:00",
            "hour": "-01:00:00",
            "days": "2 days",
            "zero": "00:00:00",
            "half": "1 day 00:00:00.5",
            "listed": ["1 day 01:00:00"],
        }
    ]


@pytest.mark.parametrize("args", [["db", "status"], ["db", "upgrade"], ["--version"]])
def test_a_reader_gone_before_the_first_line_is_141_for_every_command(tmp_path, args):
    """`itrack db status | head -0`: rich's console (db status, db upgrade) handles a broken
    pipe itself with exit 1, and `--version` runs before any command's error handling, where
    typer made it exit 1: neither was the documented 141. The pipe is closed before the
    command writes, so the first line already finds the reader gone."""
    db = tmp_path / "w.duckdb"
    out("db upgrade --create --db", str(db))
    command = [str(ROOT / ".venv" / "bin" / "itrack"), *args]
    if args[0] == "db":
        command += ["--db", str(db)]
    reader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader.stdout.close()
    assert reader.wait(timeout=120) == 141
    assert reader.stderr.read() == ""


def test_reads_do_not_take_the_writer_lock(day1):
    out("ingest in --db w.duckdb")
    with store_lock(raw_store_path("w.duckdb")):  # a writer between two transactions
        assert out("interview list --db w.duckdb --wait 0") == (
            "0 interview processes:\n  (none)\n"
        )
        assert json.loads(out("rejects --db w.duckdb --wait 0 --format json"))


HOLDER = textwrap.dedent("""
    import sys, time
    from ingest.store.duckdb.store import open_store
    with open_store(sys.argv[1]) as con:
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def hold(db: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_writers_and_readers_wait_by_default_then_say_busy(day1):
    out("ingest in --db w.duckdb")
    db = day1 / "w.duckdb"
    holder = hold(db, 2.0)
    try:
        started = time.monotonic()
        created = json.loads(
            out(
                "interview create --candidate c1 --company Acme --role SWE --new-company --db",
                str(db),
                "--format",
                "json",
            )
        )
        assert time.monotonic() - started > 0.5  # it waited for the holder, without --wait
    finally:
        holder.wait(timeout=30)
    assert created["company_name"] == "Acme"
    holder = hold(db, 3.0)
    try:
        message = err("interview list --db", str(db), "--wait", "0", code=2)
        assert (
            message == f"error: database is busy (held by PID {holder.pid}): {raw_store_path(db)}\n"
        )
    finally:
        holder.wait(timeout=30)


# -- interview writes --------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path) -> Path:
    db = tmp_path / "warehouse.duckdb"
    with open_store(db) as con:
        for cid, feeder in (("c1", "referral"), ("c2", "bootcamp")):
            con.execute(
                "insert into candidates values (?, ?, ?, null, null, ?, ?, 'seed', ?)",
                [cid, cid.upper(), feeder, T0, T0, T0],
            )
    return db


def create(db: Path, options: str, *args: str, code: int = 0) -> dict:
    """`itrack interview create OPTIONS ARGS... --db DB --format json` as its JSON record
    (OPTIONS split on spaces, ARGS as they are)."""
    text = out(
        "interview create", *options.split(), *args, "--db", str(db), "--format", "json", code=code
    )
    return json.loads(text)


def add_stage(db: Path, process_id: str, name: str, *args: str) -> dict:
    """`itrack interview add-stage PROCESS_ID --name NAME --order 1 ARGS...` as its JSON record."""
    command = ("interview add-stage", process_id, "--name", name, "--order", "1", *args)
    return json.loads(out(*command, "--db", str(db), "--format", "json"))


def test_new_companies_and_feeders_must_be_deliberate(store):
    db = str(store)
    assert (
        err("interview create --candidate c1 --company Stripe --role SWE --db", db, code=1)
        == "error: company 'Stripe' is not known yet: pass --new-company to record a new company\n"
    )
    create(store, "--candidate c1 --company Stripe --role SWE --new-company")
    assert err("interview create --candidate c2 --company Stripee --role SWE --db", db, code=1) == (
        "error: unknown company 'Stripee': did you mean 'Stripe'? (pass --new-company if "
        "'Stripee' is really a new company)\n"
    )
    assert err(
        "interview create --candidate c2 --company stripe --role SWE --feeder refferal --db",
        db,
        code=1,
    ) == (
        "error: unknown company 'stripe': did you mean 'Stripe'? (pass --new-company if "
        "'stripe' is really a new company)\n"
    )
    assert err(
        "interview create --candidate c2 --company Stripe --role SWE --feeder refferal --db",
        db,
        code=1,
    ) == (
        "error: unknown feeder 'refferal': did you mean 'referral'? (pass --new-feeder if "
        "'refferal' is really a new feeder)\n"
    )
    made = create(store, "--candidate c2 --company Stripe --role SWE --feeder referral")
    assert (made["company_name"], made["feeder_source"]) == ("Stripe", "referral")
    assert rows(raw_store_path(store), "select count(*) from interview_processes") == [(2,)]


def test_did_you_mean_names_each_feeder_once(store):
    """Stored spellings that differ only in case or spacing are one name: suggested once, in
    the spelling without stray spaces."""
    with open_store(store) as con:
        for cid, feeder in (("c3", "referral "), ("c4", "REFERRAL"), ("c5", "Ex  Amazon")):
            con.execute(
                "insert into candidates values (?, ?, ?, null, null, ?, ?, 'seed', ?)",
                [cid, cid.upper(), feeder, T0, T0, T0],
            )
    db = str(store)
    create(store, "--candidate c1 --company Acme --role SWE --new-company")
    for typed, meant in (
        ("Referal", "referral"),
        ("referral  ", "referral"),
        ("ex amazon", "Ex  Amazon"),
    ):
        assert err(
            "interview create --candidate c2 --company Acme --role SWE --feeder",
            typed,
            "--db",
            db,
            code=1,
        ) == (
            f"error: unknown feeder '{typed}': did you mean '{meant}'? (pass --new-feeder if "
            f"'{typed}' is really a new feeder)\n"
        )


def test_a_second_open_process_for_the_same_role_warns(store):
    first = create(store, "--candidate c1 --company Acme --role SWE --new-company")
    result = invoke(
        "interview create --candidate c1 --company Acme --role swe --db",
        str(store),
        "--format",
        "json",
    )
    second = json.loads(result.stdout)
    assert second["id"] != first["id"]
    assert result.stderr == (
        f"warning: candidate c1 already has an open process for Acme / swe: {first['id']} "
        f"(in_progress, since {first['created_at'].replace('T', ' ')[:19]})\n"
    )
    other = invoke("interview create --candidate c1 --company Acme --role PM --db", str(store))
    assert other.stderr == ""


def test_at_backfills_and_is_validated_by_the_contract(store):
    db = str(store)
    p = create(
        store, "--candidate c1 --company Acme --role SWE --new-company --at 2025-02-01T09:00:00Z"
    )
    assert (p["created_at"], p["updated_at"]) == ("2025-02-01T09:00:00", "2025-02-01T09:00:00")
    stage = add_stage(store, p["id"], "Phone Screen", "--at", "2025-02-03")
    assert stage["created_at"] == "2025-02-03T00:00:00"
    at = "--at 2025-02-04T10:00:00+01:00"
    done = json.loads(out(f"interview outcome {stage['id']} passed {at} --db {db} --format json"))
    assert done["stage"]["completed_date"] == "2025-02-04T09:00:00"
    assert done["process"]["updated_at"] == "2025-02-04T09:00:00"
    closed = json.loads(
        out(f"interview complete {p['id']} candidate_withdrew --at 2025-02-10 --db {db} --json")
    )
    assert closed["updated_at"] == "2025-02-10T00:00:00"
    assert rows(
        raw_store_path(store),
        "select from_status, to_status, changed_at::varchar from interview_status_history "
        "order by changed_at",
    ) == [
        (None, "in_progress", "2025-02-01 09:00:00"),
        ("in_progress", "candidate_withdrew", "2025-02-10 00:00:00"),
    ]
    assert err(
        "interview create --candidate c1 --company Acme --role X --at 20250201 --db", db, code=1
    ) == (
        "error: --at '20250201' refused: must be an ISO 8601 date or timestamp, "
        "e.g. 2025-03-01T10:00:00Z\n"
    )
    assert err(
        "interview create --candidate c1 --company Acme --role X --at 2098-01-01 --db", db, code=1
    ) == (
        "error: --at 2098-01-01T00:00:00 is in the future; events are recorded when or after "
        "they happen\n"
    )
    p2 = create(store, "--candidate c2 --company Acme --role SWE --at 2025-03-01")
    assert err(
        f"interview add-stage {p2['id']} --name Screen --order 1 --at 2025-02-28 --db {db}", code=1
    ) == (
        f"error: --at 2025-02-28T00:00:00 is before the last change of process {p2['id']} "
        "(2025-03-01T00:00:00); backfill events in the order they happened\n"
    )


def test_outcome_json_returns_stage_and_process_and_ids_by_prefix(store):
    db = str(store)
    p = create(store, "--candidate c1 --company Acme --role SWE --new-company")
    stage = add_stage(store, p["id"][:8], "Onsite")
    done = json.loads(out(f"interview outcome {stage['id'][:6]} failed --db {db} --json"))
    assert set(done) == {"stage", "process", "feedback"}  # feedback: the close fired a trigger
    assert done["feedback"] == {  # no warehouse built yet: the next build picks it up
        "status": "deferred",
        "detail": f"{store}: no warehouse yet; run `itrack build` first",
    }
    assert (done["stage"]["id"], done["stage"]["outcome"]) == (stage["id"], "failed")
    assert (done["process"]["id"], done["process"]["status"], done["process"]["final_outcome"]) == (
        p["id"],
        "rejected_by_company",
        "Failed Onsite",
    )
    assert err(f"interview show {stage['id']} --db {db}", code=1) == (
        f"error: '{stage['id']}' is an interview stage id, not an interview process id\n"
    )
    assert err(f"interview outcome {p['id'][:8]} passed --db {db}", code=1) == (
        f"error: '{p['id'][:8]}' is an interview process id, not an interview stage id\n"
    )
    assert err("interview show c1 --db", db, code=1) == (
        "error: 'c1' is a candidate id, not an interview process id\n"
    )
    assert err(f"interview show abc --db {db}", code=1) == (
        "error: interview process 'abc' not found\n"
    )


def test_ambiguous_prefix_is_refused(store):
    import datetime as dt
    from uuid import UUID

    from ingest.contract import InterviewProcess
    from ingest.store.duckdb.repository import InterviewRepository

    ids = ["aaaa1111-0000-4000-8000-000000000001", "aaaa2222-0000-4000-8000-000000000002"]
    with open_store(store) as con:
        repo = InterviewRepository(con)
        for pid in ids:
            repo.create_interview_process(
                InterviewProcess(
                    id=UUID(pid),
                    candidate_id="c1",
                    company_name="Acme",
                    role_title="SWE",
                    created_at=dt.datetime(2025, 1, 1),
                )
            )
    assert err("interview show aaaa --db", str(store), code=1) == (
        f"error: interview process id prefix 'aaaa' is ambiguous: it matches {ids[0]}, {ids[1]}; "
        "give more characters\n"
    )
    assert (
        json.loads(out("interview show AAAA2 --db", str(store), "--format", "json"))["id"] == ids[1]
    )
    assert err("interview show aaa --db", str(store), code=1) == (
        "error: interview process 'aaa' not found\n"  # under 4 characters: never a prefix
    )


# -- corrections -------------------------------------------------------------------------------


def test_amend_reopens_a_process_closed_by_a_mistaken_failure(store):
    db = str(store)
    p = create(store, "--candidate c1 --company Acme --role SWE --new-company")
    stage = add_stage(store, p["id"], "Technical")
    out(f"interview outcome {stage['id']} failed --overall 2 --db {db}")
    amended = json.loads(
        out(
            f"interview amend {stage['id']} passed --overall 4 --reason",
            "recorded on the wrong candidate",
            "--by",
            "rita",
            "--db",
            db,
            "--format",
            "json",
        )
    )
    assert (amended["stage"]["outcome"], amended["stage"]["overall_rating"]) == ("passed", 4)
    assert (amended["process"]["status"], amended["process"]["final_outcome"]) == (
        "in_progress",
        None,
    )
    trail = json.loads(out(f"interview audit {p['id'][:8]} --db {db} --format json"))
    assert [(h["from_status"], h["to_status"], h["source"]) for h in trail["status_history"]] == [
        (None, "in_progress", "service"),
        ("in_progress", "rejected_by_company", "service"),
        ("rejected_by_company", "in_progress", "correction"),
    ]
    assert sorted(
        (
            c["record_kind"],
            c["field"],
            c["old_value"] or "",
            c["new_value"] or "",
            c["reason"],
            c["changed_by"],
        )
        for c in trail["corrections"]
    ) == [
        (
            "process",
            "final_outcome",
            "Failed Technical",
            "",
            "recorded on the wrong candidate",
            "rita",
        ),
        (
            "process",
            "status",
            "rejected_by_company",
            "in_progress",
            "recorded on the wrong candidate",
            "rita",
        ),
        ("stage", "outcome", "failed", "passed", "recorded on the wrong candidate", "rita"),
        ("stage", "overall_rating", "2", "4", "recorded on the wrong candidate", "rita"),
    ]
    plain = out(f"interview audit {p['id']} --db {db}")
    assert plain.startswith(f"status history of process {p['id']}:\nchanged_at")
    assert "\ncorrections:\n" in plain
    assert err(
        f"interview amend {stage['id']} passed --overall 4 --reason again --db {db}", code=1
    ) == (f"error: stage {stage['id']} already has outcome passed: nothing to amend\n")
    assert err(f"interview amend {stage['id']} failed --reason", " ", "--db", db, code=1) == (
        "error: a correction needs a reason (--reason TEXT): it is kept in the audit trail\n"
    )


def test_reopen_a_closed_process_with_a_reason(store):
    db = str(store)
    p = create(store, "--candidate c1 --company Acme --role SWE --new-company")
    out(f"interview complete {p['id']} on_hold --db {db}")
    out(f"interview complete {p['id']} candidate_withdrew --reason moved --db {db}")
    assert err(f"interview complete {p['id']} in_progress --db {db}", code=1).startswith(
        f"error: process {p['id']} cannot move from candidate_withdrew to in_progress"
    )
    reopened = json.loads(
        out(
            f"interview reopen {p['id']} --reason",
            "withdrew the wrong one",
            "--by",
            "sam",
            "--db",
            db,
            "--format",
            "json",
        )
    )
    assert (reopened["status"], reopened["final_outcome"]) == ("on_hold", None)  # as before
    assert err(f"interview reopen {p['id']} --reason x --db {db}", code=1) == (
        f"error: process {p['id']} is not closed (on_hold): nothing to reopen\n"
    )
    out(f"interview complete {p['id']} rejected_by_company --db {db}")
    again = json.loads(
        out(f"interview reopen {p['id']} --reason r --to in_progress --db {db} --format json")
    )
    assert again["status"] == "in_progress"
    assert rows(
        raw_store_path(store),
        "select from_status, to_status, source from interview_status_history order by changed_at",
    ) == [
        (None, "in_progress", "service"),
        ("in_progress", "on_hold", "service"),
        ("on_hold", "candidate_withdrew", "service"),
        ("candidate_withdrew", "on_hold", "correction"),
        ("on_hold", "rejected_by_company", "service"),
        ("rejected_by_company", "in_progress", "correction"),
    ]


# -- small things -------------------------------------------------------------------------------


def test_version_and_refused_negative_numbers(tmp_path):
    from importlib.metadata import version

    assert out("--version") == f"itrack {version('interview-tracking')}\n"
    assert err("generate --out", str(tmp_path / "g"), "--processes", "-5", code=2).endswith(
        "Error: Invalid value for '--processes': Input should be greater than or equal to 1\n"
    )
    assert not (tmp_path / "g").exists()
    assert err("backup --keep -1 --db", str(tmp_path / "w.duckdb"), code=2).endswith(
        "Error: Invalid value for '--keep': Input should be greater than or equal to 1\n"
    )


def test_a_backup_folder_that_is_a_file_is_refused_naming_it(store):
    """`itrack backup --to FILE` said "cannot create backup folder FILE: File exists"; the
    folders a command writes into are refused by one rule (ingest.errors.make_folder), as
    `generate --out` (tests/test_generate.py) and `export --out` are."""
    file = store.parent / "notes.txt"
    file.write_text("mine")
    assert err("backup --to", str(file), "--db", str(store), code=2) == (
        f"error: --to: {file} is a file, not a folder; nothing was written\n"
    )
    assert file.read_text() == "mine"


@pytest.mark.parametrize(
    "args",
    [
        ["feedback", "--placements", "p.json/"],
        ["feedback", "--feeders", "feeders.json/"],
        ["feedback", "--candidates", "c.jsonl/"],
        ["backup", "--key-file", "key/"],
        ["sql", "-c", "select 1", "--db", "w.duckdb/"],
        ["interview", "list", "--db", "w.duckdb/"],
    ],
)
def test_a_file_option_spelled_as_a_folder_is_refused(day1, args):
    """`itrack feedback --placements p.json/` wrote p.json and `--db w.duckdb/` made w.duckdb
    (`Path` drops the trailing '/'; found with `report html --out`, tests/test_reports.py):
    every option naming a file refuses a path spelled as a folder, one line, exit 2."""
    before = sorted(Path(".").rglob("*"))
    option, value = args[-2:]
    assert err(*args, code=2) == (
        f"error: {option}: {value} ends with '/', so it names a folder, not a file\n"
    )
    assert sorted(Path(".").rglob("*")) == before


@pytest.mark.parametrize("value", ["w.duckdb/", "data/."])
def test_itrack_db_spelled_as_a_folder_is_refused(day1, monkeypatch, value):
    """`ITRACK_DB=w.duckdb/ itrack ingest in` loaded into w.duckdb (and `data/.` into a file
    named data), as `--db w.duckdb/` did: refused by the same rule, one line, exit 2."""
    from itrack.settings import get_settings

    monkeypatch.setenv("ITRACK_DB", value)
    get_settings.cache_clear()
    try:
        before = sorted(Path(".").rglob("*"))
        why = (
            "ends with '/', so it names a folder"
            if value.endswith("/")
            else ("names a folder ('.')")
        )
        assert err("ingest in", code=2) == (
            f"error: ITRACK_DB={value!r} is not valid: {why}, not a file\n"
        )
        assert sorted(Path(".").rglob("*")) == before
    finally:
        get_settings.cache_clear()


def _options(command=None, path=()):
    """(command path, option) for every option of every `itrack` command and group."""
    import typer

    command = command or typer.main.get_command(app)
    for param in command.params:
        if param.param_type_name == "option":
            yield path, param
    for name, sub in getattr(command, "commands", {}).items():
        yield from _options(sub, (*path, name))


def test_an_option_given_twice_is_refused_by_every_command(store, monkeypatch):
    """Found by an exploratory run: `report html --out a.html --out b.html` wrote b.html and
    `ingest --db X --db Y` loaded into Y, silently (click keeps the last value). Every option
    that takes one value, and every flag, given twice is now one line naming it, exit 2,
    before anything runs; options that take a list still take one item each time."""
    monkeypatch.chdir(store.parent)
    before = sorted(store.parent.rglob("*"))
    assert err("report html --out a.html --out b.html --db w.duckdb", code=2) == (
        "error: --out was given 2 times; give it once (it takes one value)\n"
    )
    assert err("ingest in --db x.duckdb --strict --db y.duckdb --no-strict", code=2) == (
        "error: --db was given 2 times; give it once (it takes one value)\n"
    )
    assert err("ingest in --strict --no-strict --strict", code=2) == (
        "error: --strict/--no-strict was given 3 times; give it once\n"
    )
    assert err("feedback --feeders a.json --feeders=b.json", code=2) == (  # a group's own
        "error: --feeders was given 2 times; give it once (it takes one value)\n"
    )
    assert err("sql -c 1 --command 2", code=2) == (
        "error: --command was given 2 times; give it once (it takes one value)\n"
    )
    checked = 0
    for path, option in _options():
        if option.multiple or option.count or option.is_eager:
            continue
        given = [option.opts[0]] * 2 if option.is_flag else [option.opts[0], "x"] * 2
        message = err(*path, *given, code=2)
        name = "/".join([*(o for o in option.opts if o.startswith("--")), *option.secondary_opts])
        takes = "" if option.is_flag else " (it takes one value)"
        assert message == f"error: {name} was given 2 times; give it once{takes}\n", path
        checked += 1
    assert checked > 50
    assert sorted(store.parent.rglob("*")) == before  # nothing ran
    p = create(store, "--candidate c1 --company Acme --role SWE --new-company")
    stage = add_stage(store, p["id"], "Onsite")
    done = out(
        f"interview outcome {stage['id']} passed --interviewer Bo --interviewer Zoe --db",
        str(store),
        "--format",
        "json",
    )
    assert json.loads(done)["stage"]["interviewer_names"] == ["Bo", "Zoe"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["ingest", ""], "paths"),
        (["ingest", "in", ""], "paths"),
        (["build", ""], "paths"),
        (["generate", "--out", ""], "--out"),
        (["backup", "--to", ""], "--to"),
        (["backup", "--key-file", ""], "--key-file"),
        (["restore", "", "--overwrite"], "snapshot"),
        (["export", "--anonymize", "--out", ""], "--out"),
        (["report", "html", "--out", ""], "--out"),
        (["feedback", "--feeders", ""], "--feeders"),
        (["sql", "--db", "", "-c", "select 1"], "--db"),
        (["interview", "list", "--db", ""], "--db"),
    ],
)
def test_an_empty_path_is_refused_not_taken_as_the_current_folder(day1, args, option):
    """`itrack build "$EXPORTS"` with the variable unset: `Path("")` is `.`, so the current
    folder was ingested (the nightly job that lost its argument loaded whatever was there),
    generated over (`generate --out ""` replaced its candidates.jsonl) or exported into."""
    before = {p: p.read_bytes() for p in Path(".").rglob("*") if p.is_file()}
    message = err(*args, code=2)
    assert message.splitlines()[-1] == (
        f"Error: Invalid value for '{option}': an empty path names no file or folder "
        "(an unset variable?)"
    )
    assert {p: p.read_bytes() for p in Path(".").rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("option", ["--company", "--status", "--candidate"])
@pytest.mark.parametrize("value", ["", "  "])
def test_a_blank_list_filter_is_refused_not_a_list_of_nothing(store, option, value):
    """`interview list --company "$COMPANY"` with the variable unset said "0 interview
    processes" (the HTTP API answers 422 for an empty filter; found by the exploratory ops
    run)."""
    create(store, "--candidate c1 --company Acme --role SWE --new-company")
    message = err("interview list", option, value, "--db", str(store), code=2)
    assert message.splitlines()[-1] == (
        f"Error: Invalid value for '{option}': a blank filter matches nothing (an unset variable?)"
    )


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["ingest", "postgresq://u:s3cret@db/x"], "paths"),
        (["build", "postgresq://u:s3cret@db/x"], "paths"),
        (["generate", "--out", "postgresq://u:s3cret@db/x"], "--out"),
        (["interview", "list", "--db", "postgresq://u:s3cret@db/x"], "--db"),
    ],
)
def test_a_mistyped_url_is_refused_as_a_path_without_its_password(day1, args, option):
    """`itrack ingest postgresq://u:pw@host/db` (a scheme typo) was read as a path and said
    "postgresq:/u:pw@host/db: no such file or directory", the password in the log (found by the
    exploratory run of backup, db and settings). Any value holding `://` is no file or folder."""
    message = err(*args, code=2)
    assert message.splitlines()[-1] == (
        f"Error: Invalid value for '{option}': 'postgresq://u:***@db/x' is a URL, not a file "
        "or folder"
    )


def test_a_mistyped_from_url_is_refused_without_its_password(day1):
    message = err("build", "--from", "postgresq://u:s3cret@db/x", "--db", "w.duckdb", code=2)
    assert message == "error: --from takes a postgresql:// URL, not 'postgresq://u:***@db/x'\n"


def test_an_empty_offer_is_refused_not_read_as_the_current_folder(store):
    process = create(store, "--candidate c1 --company Acme --role SWE --new-company")
    message = err(
        "interview complete",
        process["id"],
        "offer_extended",
        "--offer",
        "",
        "--db",
        str(store),
        code=2,
    )
    assert message == (
        "error: --offer: empty; give a JSON object or the path of a file holding one\n"
    )


def test_a_memory_limit_duckdb_cannot_read_is_named_not_blamed_on_the_store(day1, monkeypatch):
    """`ITRACK_MEMORY_LIMIT=1,5GB`: DuckDB refuses it when the raw store opens, and the one line
    said "cannot open .../w.raw.duckdb: Parser Error: ...", sending the operator to the store.
    Now it names the setting; nothing is written."""
    from itrack.settings import get_settings

    monkeypatch.setenv("ITRACK_MEMORY_LIMIT", "1,5GB")
    get_settings.cache_clear()
    try:
        message = err("ingest in --db w.duckdb", code=2)
        # the build's ingest is bounded by the same setting (it once ignored it)
        built = err("build in --db w.duckdb --no-html", code=2)
    finally:
        monkeypatch.delenv("ITRACK_MEMORY_LIMIT")
        get_settings.cache_clear()
    assert message == (
        "error: ITRACK_MEMORY_LIMIT='1,5GB' is not a memory size: Unknown unit for memory: "
        "',5gb' (expected: KB, MB, GB, TB for 1000^i units or KiB, MiB, GiB, TiB for 1024^i "
        "units)\n"
    )
    assert built.splitlines()[-1] == message.strip()
    assert not raw_store_path(Path("w.duckdb")).exists()
    assert not Path("w.duckdb").exists()
    out("ingest in --db w.duckdb")  # with the default limit the same files load


def test_malformed_json_message_says_at_once(tmp_path):
    bad = tmp_path / "candidates.jsonl"
    bad.write_text('{"id": "c1", "full_name": "unterminated\n')
    out("ingest", str(bad), "--db", str(tmp_path / "w.duckdb"))
    [(message,)] = rows(
        raw_store_path(tmp_path / "w.duckdb"), "select error_message from quarantine"
    )
    assert message == "malformed JSON (Unterminated string starting at column 27)"
    assert "at at" not in message


def test_make_clean_keeps_the_raw_store_and_backups(tmp_path):
    data = tmp_path / "data"
    keep = [
        data / "warehouse.raw.duckdb",
        data / "backups" / "backup-1" / "manifest.json",
        data / "feeders.json",
        data / "candidate_placements.json",
    ]
    gone = [
        data / "warehouse.duckdb",
        data / "report.html",
        data / ".build" / "x.duckdb",
        tmp_path / ".venv" / "bin" / "python",
        tmp_path / "dbt_project" / "target" / "manifest.json",
    ]
    for path in keep + gone:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    subprocess.run(
        ["make", "-f", str(ROOT / "Makefile"), "clean"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    assert [p.exists() for p in keep] == [True] * len(keep)
    assert [p.exists() for p in gone] == [False] * len(gone)


def test_make_test_says_it_installs_chromium():
    listed = subprocess.run(
        ["make", "-C", str(ROOT), "help"], capture_output=True, text=True, check=True
    ).stdout
    assert "installs chromium first if missing" in listed
    assert re.search(r"^  build .*ingest data/sample/", listed, re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert "\t$(ITRACK) build data/sample/\n" in makefile


def test_quiet_prints_only_the_new_id_for_scripts(store):
    db = str(store)
    pid = out("interview create --candidate c1 --company Acme --role SWE --new-company -q --db", db)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\n", pid)
    sid = out(
        "interview add-stage",
        pid.strip(),
        "--name",
        "Screen",
        "--order",
        "1",
        "--quiet",
        "--db",
        db,
    )
    [(stored,)] = rows(raw_store_path(store), "select id::varchar from interview_stages")
    assert sid == stored + "\n"


def test_a_build_whose_from_cannot_be_used_is_refused_before_its_backup(tmp_path):
    """Found by the exploratory analytics run: `itrack build --from URL PATH` (or a --from that
    is no URL) took a backup of the raw store, printed its step line, and only then said it
    could not run. The arguments are checked first: nothing is done, exit 2."""
    db = tmp_path / "warehouse.duckdb"
    exports = tmp_path / "candidates.jsonl"
    exports.write_text('{"id": "c1", "full_name": "Ann", "created_at": "2025-01-01"}\n')
    invoke("ingest", str(exports), "--db", str(db))
    both = invoke(
        "build", "--db", str(db), "--from", "postgresql://u@localhost:1/x", str(exports), code=2
    )
    assert (both.stdout, both.stderr) == (
        "",
        "error: build --from a database ingests no files: give one or the other\n",
    )
    other = invoke("build", "--db", str(db), "--from", "exports/", code=2)
    assert (other.stdout, other.stderr) == (
        "",
        "error: --from takes a postgresql:// URL, not 'exports/'\n",
    )
    assert not (tmp_path / "backups").exists()


def test_a_database_url_given_to_build_as_a_path_points_to_from(tmp_path):
    """Found by the exploratory analytics run: `itrack build postgresql://...` read the URL as
    a path, which lost a `/`: "postgresql:/u@host/db: no such file or directory". It is
    refused as a usage error naming --from, before anything is done."""
    db = tmp_path / "warehouse.duckdb"
    result = invoke("build", "--db", str(db), "postgresql://u@localhost:1/x", code=2)
    assert result.stdout == ""
    assert result.stderr == (
        "Usage: root build [OPTIONS] [paths]...\nTry 'root build --help' for help.\n\n"
        "Error: Invalid value for 'paths': a database is extracted with --from URL, not as a path\n"
    )
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("command", "option", "text"),
    [
        (
            "generate",
            "--invalid-share",
            "Share of records made invalid on purpose (at least 0, below 1).",
        ),
        ("backup", "--to", "Folder (default: backups/ beside the warehouse)."),
        (
            "token",
            "--org",
            "Organization id, a UUID (app_metadata.org_id; default: $ITRACK_ORG_ID).",
        ),
    ],
)
def test_help_states_the_bound_and_default_the_command_applies(command, option, text):
    """Found comparing help with behaviour: `--invalid-share` said "(0-1)" but 1 is refused;
    `backup --to` said "default data/backups/" but the default is `backups/` beside the
    warehouse (`--db`, $ITRACK_DB), elsewhere for any other warehouse; `token --org` did not
    say that ITRACK_ORG_ID is taken without it."""
    shown = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert_exit(shown, 0)
    [line] = [row for row in shown.output.splitlines() if row.strip().startswith(option + " ")]
    assert line.split(">", 1)[1].strip().split("  [")[0] == text


def test_no_connection_prints_duckdbs_progress_bar(tmp_path):
    """DuckDB's own progress bar is on by default in a command's process: a 1M ingest printed
    `97% ▕████▏` lines with carriage returns on stdout, into cron logs and pipes (found by a
    benchmark run). Every connection a command opens (the raw store's, a cursor of it, a
    warehouse's read-only one) has it off; the command's own bar is on stderr, for people.
    In a new interpreter, as a command runs: under pytest DuckDB starts with it off."""
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from feedback.marts import open_read_only
        from ingest.store.duckdb.store import connect
        setting = "select current_setting('enable_progress_bar')"
        path = Path(sys.argv[1])
        store = connect(path)
        print(store.execute(setting).fetchone()[0], store.cursor().execute(setting).fetchone()[0])
        store.close()
        print(open_read_only(path).execute(setting).fetchone()[0])
        """)
    shown = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "w.raw.duckdb")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (shown.stdout, shown.stderr) == ("False False\nFalse\n", "")
