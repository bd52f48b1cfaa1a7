"""Issue #13, hostile text: data is never read as rich markup (on a real terminal, a pty);
CSV cells are neutralized (OWASP); control characters and bidi overrides are refused in names;
the anonymized export carries only closed vocabularies, numbers and pseudonyms."""

from __future__ import annotations

import csv
import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.factories import P1, P2, S1, S2, candidate, process, stage, write_jsonl

ITRACK = str(Path(sys.executable).parent / "itrack")
P3 = "33333333-3333-4333-8333-333333333333"
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "@SUM(A1)", "-2+3"]
PERSONS = ("John Smith", "Jane Roe")


def terminal(*args: str) -> tuple[int, str]:
    """Run itrack with a pseudo-terminal as stdin/stdout/stderr: rich draws its tables."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "250", "LINES": "50", "TERM": "xterm"}
    proc = subprocess.Popen([ITRACK, *args], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    code = proc.wait(timeout=300)
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ITRACK, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    folder = root / "in [bold] [red]x"  # file names are data too (the progress bar shows them)
    folder.mkdir()
    write_jsonl(
        folder / "candidates.jsonl",
        [
            candidate(id="cand-1", feeder_source="[/]"),
            candidate(id="cand-2", feeder_source="[bold]x[/bold]", full_name="[red]Bo"),
            candidate(id="cand-3", feeder_source=FORMULAS[1]),
            candidate(id="cand-4", full_name="Tab\tName"),
            candidate(id="cand-5", full_name="evil\u202egnp.exe"),
            candidate(id="cand-6", current_company="line\nbreak"),
            candidate(id="cand-7", feeder_source="x\u2066y"),
        ],
    )
    write_jsonl(
        folder / "processes.jsonl",
        [
            process(
                id=P1,
                candidate_id="cand-1",
                feeder_source="[/]",
                company_name="[red]Acme",
                role_title=f"Assistant to {PERSONS[1]}",
            ),
            process(
                id=P2,
                candidate_id="cand-2",
                feeder_source="[bold]x[/bold]",
                company_name=FORMULAS[0],
                status="rejected_by_company",
                updated_at="2025-01-10T00:00:00Z",
            ),
            process(
                id=P3,
                candidate_id="cand-3",
                feeder_source=FORMULAS[1],
                company_name=FORMULAS[2],
                recruiter_name=FORMULAS[3],
            ),
        ],
    )
    write_jsonl(
        folder / "stages.jsonl",
        [
            stage(id=S1, interview_process_id=P1, stage_name=f"Interview with {PERSONS[0]}"),
            stage(id=S2, interview_process_id=P2, stage_name="Phone Screen", outcome="failed"),
        ],
    )
    db = root / "warehouse.duckdb"
    code, out = terminal("build", str(folder), "--db", str(db), "--no-backup", "--no-html")
    assert code == 0, out
    return {"db": db, "folder": folder, "build_output": Path(root / "build.txt")}


def test_build_on_a_terminal_never_reads_data_as_markup(hostile):
    con = duckdb.connect(str(hostile["db"]), read_only=True)
    feeders = {
        r[0] for r in con.execute("select feeder_source from mart_feeder_conversion").fetchall()
    }
    con.close()
    assert {"[/]", "[bold]x[/bold]", FORMULAS[1]} <= feeders
    feeders_json = (hostile["db"].parent / "feeders.json").read_text()
    assert '"[/]"' in feeders_json and '"[bold]x[/bold]"' in feeders_json


def test_names_with_control_or_bidi_characters_are_refused(hostile):
    con = duckdb.connect(
        str(hostile["db"]).replace("warehouse.duckdb", "warehouse.raw.duckdb"), read_only=True
    )
    rows = con.execute(
        "select record_id, error_code, field from quarantine order by record_id"
    ).fetchall()
    con.close()
    assert rows == [
        ("cand-4", "control_character", "full_name"),
        ("cand-5", "control_character", "full_name"),
        ("cand-6", "control_character", "current_company"),
        ("cand-7", "control_character", "feeder_source"),
    ]


def test_the_python_and_the_sql_name_rule_refuse_the_same_characters():
    """ingest.text spells one list of code points twice: for Python (the line reader and every
    output) and for DuckDB's RE2 (the bulk checks). Both refuse exactly these 79: C0 (32), DEL
    and C1 (33), U+061C, U+200E-U+200F, U+2028-U+202E (7) and U+2066-U+2069 (4)."""
    from ingest.text import CONTROL, NAME_FORBIDDEN_SQL

    points = [*range(0xD800), *range(0xE000, 0x10000), 0x1F600, 0x10FFFF]
    expected = [
        *range(0x20),
        *range(0x7F, 0xA0),
        0x61C,
        0x200E,
        0x200F,
        *range(0x2028, 0x202F),
        *range(0x2066, 0x206A),
    ]
    assert [c for c in points if CONTROL.search(chr(c))] == expected
    # every code point as a one-character string handed over as Python made it, in one call
    # (an insert per row took 12 s)
    con = duckdb.connect()
    in_sql = con.execute(
        f"""select c from (select unnest($c) as c, unnest($s) as s)
            where regexp_matches(s, '{NAME_FORBIDDEN_SQL}') order by c""",
        {"c": points, "s": [chr(c) for c in points]},
    ).fetchall()
    assert [c for (c,) in in_sql] == expected


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("report", "feeder", "[/]"), "feeder [/]"),
        (("report", "feeder", "[bold]x[/bold]"), "feeder [bold]x[/bold]"),
        (("interview", "list"), "[red]Acme"),
        (("rejects",), "contains control characters or bidirectional overrides"),
        (("report", "company", "[red]Acme"), "[red]Acme"),
    ],
)
def test_reports_and_lists_on_a_terminal_show_data_literally(hostile, args, shown):
    code, out = terminal(*args, "--db", str(hostile["db"]))
    assert code == 0, out
    assert shown in out
    assert "Traceback" not in out and "MarkupError" not in out


def test_markup_in_an_error_message_is_shown_literally(hostile):
    code, out = terminal("report", "feeder", "[/]nope[bold]", "--db", str(hostile["db"]))
    assert code == 1, out
    assert "[/]nope[bold]" in out and "Traceback" not in out


def formula_cells(text: str) -> list[str]:
    """Text cells a spreadsheet would run as a formula."""
    return [
        cell
        for row in csv.reader(io.StringIO(text))
        for cell in row
        if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not re.fullmatch(r"-?[0-9.eE+-]+", cell)
    ]


def test_report_csv_cells_are_neutralized(hostile):
    done = run("report", "funnel", "--format", "csv", "--db", str(hostile["db"]))
    assert done.returncode == 0, done.stderr
    assert formula_cells(done.stdout) == []
    assert f"'{FORMULAS[1]}" in done.stdout  # kept, with the OWASP quote in front
    company = run("report", "company", FORMULAS[0], "--format", "csv", "--db", str(hostile["db"]))
    assert company.returncode == 0, company.stderr
    assert formula_cells(company.stdout) == []
    assert "'=HYPERLINK(" in company.stdout


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_anonymized_export_has_only_closed_vocabularies_and_pseudonyms(hostile, tmp_path, fmt):
    out = tmp_path / "share"
    done = run(
        "export", "--anonymize", "--format", fmt, "--out", str(out), "--db", str(hostile["db"])
    )
    assert done.returncode == 0, done.stderr
    con = duckdb.connect()
    reader = "read_parquet" if fmt == "parquet" else "read_csv"
    texts = set()
    for path in sorted(out.glob(f"*.{fmt}")):
        rel = con.execute(
            f"select * from {reader}('{path}', all_varchar=true)"
            if fmt == "csv"
            else f"select * from {reader}('{path}')"
        )
        names = [d[0] for d in rel.description]
        for row in rel.fetchall():
            texts |= {str(v) for v in row if isinstance(v, str)}
        assert not {"stage_name", "recruiter_name", "feedback_notes", "next_steps"} & set(names)
    con.close()
    leaked = [t for t in texts if any(p in t for p in PERSONS) or "Acme" in t or "[/]" in t]
    assert leaked == []
    assert {"phone_screen", "rejected_by_company", "failed"} <= texts  # closed vocabularies
    if fmt == "csv":
        raw = "".join(p.read_text() for p in out.glob("*.csv"))
        assert formula_cells(raw) == []


def test_refused_names_are_shown_escaped_never_raw(hostile):
    """`rejects` quotes the refused value: its bidi override or separator reaches neither the
    terminal nor a log raw (nor does one in an argument echoed by an error)."""
    raw = ("\u202e", "\u2066", "\t", "\x1b")
    code, out = terminal("rejects", "--db", str(hostile["db"]))
    assert code == 0, out
    assert not any(c in out for c in raw)
    plain = run("rejects", "--db", str(hostile["db"]))
    assert plain.returncode == 0, plain.stderr
    assert not any(c in plain.stdout for c in raw)
    assert '(got "evil\\u202egnp.exe")' in plain.stdout and '(got "x\\u2066y")' in plain.stdout
    assert '(got "Tab\\tName")' in plain.stdout
    code, out = terminal("report", "company", "a\u202eb", "--db", str(hostile["db"]))
    assert code == 1 and "no such company 'a\\u202eb'" in out and "\u202e" not in out
