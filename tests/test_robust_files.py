"""Issue #13, hostile files: oversized records, huge and deeply nested JSON, duplicate keys and
FIFOs. Each bad record is quarantined with its reason while the rest of its file loads; what
is not a regular file is refused (exit 2); memory stays bounded. Real files, real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest

from ingest.readers import MAX_RECORD_BYTES
from ingest.store.duckdb.store import raw_store_path
from tests.conftest import query
from tests.factories import P1, P2, candidate, process, write_jsonl

ITRACK = str(Path(sys.executable).parent / "itrack")


class Ran(subprocess.CompletedProcess):
    peak_rss_mb: float


# Linux carries a parent's RSS at fork into the child's ru_maxrss across exec, so a child of
# the (large) pytest process would report pytest's size: a small launcher starts itrack instead
# and reports its peak, measured with wait4, into a file.
LAUNCH = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def ingest(*paths: Path, db: Path) -> Ran:
    """`itrack ingest` in a child process; its own peak RSS measured (wait4)."""
    args = [ITRACK, "ingest", *map(str, paths), "--db", str(db), "--format", "json", "--wait", "0"]
    peak = Path(tempfile.mkdtemp()) / "peak_rss_kb"
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(
            [sys.executable, "-c", LAUNCH, str(peak), *args], stdout=out, stderr=err
        )
        out.seek(0)
        err.seek(0)
        ran = Ran(args, proc.returncode, out.read().decode(), err.read().decode())
    ran.peak_rss_mb = int(peak.read_text()) / 1024
    return ran


rows = query  # the raw store of warehouse `db`


def quarantined(db: Path) -> list[tuple]:
    return rows(db, "select line_number, error_code, field from quarantine order by 1")


def test_a_valid_record_over_2_mb_on_a_jsonl_line_loads(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    write_jsonl(tmp_path / "candidates.jsonl", [candidate()])
    ingest(tmp_path / "candidates.jsonl", db=db)
    notes = "\U0001f600" * 750_000  # 3 MB of UTF-8, 750k characters (under MAX_TEXT)
    big = process(id=P1, final_outcome=notes, company_name="Acme")
    path = write_jsonl(tmp_path / "processes.jsonl", [process(id=P2), big])
    assert path.stat().st_size > 3_000_000
    done = ingest(path, db=db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accepted"] == 2
    assert rows(db, f"select length(final_outcome) from interview_processes where id = '{P1}'") == [
        (750_000,)
    ]


def test_an_oversized_jsonl_line_is_quarantined_and_the_rest_loads(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    path = tmp_path / "candidates.jsonl"
    with path.open("w") as handle:
        handle.write(json.dumps(candidate(id="c-1")) + "\n")
        handle.write('{"id": "c-2", "full_name": "' + "x" * (MAX_RECORD_BYTES + 10) + '"}\n')
        handle.write(json.dumps(candidate(id="c-3")) + "\n")
    done = ingest(path, db=db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accepted"] == 2
    assert quarantined(db) == [(2, "record_too_large", None)]
    assert rows(db, "select id from candidates order by 1") == [("c-1",), ("c-3",)]
    assert done.peak_rss_mb < 600, done.peak_rss_mb  # the 64 MB line was never held whole


def test_an_oversized_csv_line_is_quarantined_and_the_rest_loads(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    path = tmp_path / "candidates.csv"
    with path.open("w") as handle:
        handle.write("id,full_name,created_at\n")
        handle.write("c-1,Ann,2025-01-01T00:00:00Z\n")
        handle.write('c-2,"' + "x" * (MAX_RECORD_BYTES + 10) + '",2025-01-01T00:00:00Z\n')
        handle.write("c-3,Bob,2025-01-02T00:00:00Z\n")
    done = ingest(path, db=db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accepted"] == 2
    assert rows(db, "select line_number, error_code, left(raw_payload, 8) from quarantine") == [
        (3, "record_too_large", 'c-2,"xxx')
    ]
    assert rows(db, "select id from candidates order by 1") == [("c-1",), ("c-3",)]
    assert done.peak_rss_mb < 600, done.peak_rss_mb  # the 64 MB line was never held whole


def test_an_oversized_parquet_row_is_quarantined_and_the_rest_loads(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    path = tmp_path / "candidates.parquet"
    with duckdb.connect() as con:  # 70 MB of one name: over MAX_RECORD_BYTES as JSON
        con.execute(
            f"""copy (select * from (values
                  ('c-1', 'Ann', '2025-01-01T00:00:00Z'),
                  ('c-2', repeat('x', {MAX_RECORD_BYTES + 10}), '2025-01-01T00:00:00Z'),
                  ('c-3', 'Bob', '2025-01-02T00:00:00Z')) t(id, full_name, created_at))
                to '{path}'"""
        )
    done = ingest(path, db=db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accepted"] == 2
    assert rows(db, "select line_number, error_code, left(raw_payload, 20) from quarantine") == [
        (2, "record_too_large", '{"id":"c-2","full_na')
    ]
    assert rows(db, "select id from candidates order by 1") == [("c-1",), ("c-3",)]


def test_a_huge_single_record_json_file_is_quarantined_in_bounded_memory(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    path = tmp_path / "candidates.json"
    with path.open("w") as handle:  # 200 MB, one record
        handle.write('[{"id": "c-9", "full_name": "')
        for _ in range(200):
            handle.write("y" * (1 << 20))
        handle.write('"}, ' + json.dumps(candidate(id="c-1")) + "]")
    done = ingest(path, db=db)
    assert done.returncode == 0, done.stderr
    assert quarantined(db) == [(1, "record_too_large", None)]
    size = 200 * (1 << 20) + len('{"id": "c-9", "full_name": ""}')
    assert rows(db, "select error_message from quarantine") == [
        (f"record is {size} bytes; a record may take at most {MAX_RECORD_BYTES} bytes",)
    ]
    assert rows(db, "select id from candidates") == [("c-1",)]
    assert done.peak_rss_mb < 600, done.peak_rss_mb  # a whole parse took several times 200 MB


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_deep_nesting_is_quarantined_with_its_reason(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    jsonl = tmp_path / "candidates.jsonl"
    deep_line = json.dumps(candidate(id="c-2"))[:-1] + ', "x": ' + deep(100_000) + "}"
    write_jsonl(jsonl, [candidate(id="c-1"), deep_line, candidate(id="c-3")])
    array = tmp_path / "more_candidates.json"
    array.write_text(
        "[" + json.dumps(candidate(id="c-4")) + ", " + deep_line.replace("c-2", "c-5") + "]"
    )
    done = ingest(jsonl, array, db=db)
    assert done.returncode == 0, done.stderr
    assert rows(
        db, "select file_path like '%.json', line_number, error_code from quarantine order by 1, 2"
    ) == [
        (False, 2, "too_deeply_nested"),
        (True, 2, "too_deeply_nested"),
    ]
    assert rows(db, "select id from candidates order by 1") == [("c-1",), ("c-3",), ("c-4",)]


def test_duplicate_keys_are_refused(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    twice = '{"id": "c-2", "full_name": "Ann", "full_name": "Bob", "created_at": "2025-01-01"}'
    write_jsonl(tmp_path / "candidates.jsonl", [candidate(id="c-1"), twice])
    (tmp_path / "b_candidates.json").write_text("[" + twice.replace("c-2", "c-3") + "]")
    done = ingest(tmp_path / "candidates.jsonl", tmp_path / "b_candidates.json", db=db)
    assert done.returncode == 0, done.stderr
    assert rows(db, "select line_number, error_code, field from quarantine order by file_path") == [
        (1, "duplicate_key", "full_name"),
        (2, "duplicate_key", "full_name"),
    ]
    assert rows(db, "select id from candidates") == [("c-1",)]
    csv_file = tmp_path / "c_candidates.csv"
    csv_file.write_text("id,full_name,full_name,created_at\nc-4,Ann,Bob,2025-01-01\n")
    refused = ingest(csv_file, db=db)
    assert refused.returncode == 2
    assert "column full_name appears more than once in the header" in refused.stderr


def test_a_parquet_file_naming_a_column_twice_is_refused_whole(tmp_path):
    """As a CSV header naming a column twice: DuckDB read the second as `full_name_1` and
    every row was quarantined as unknown_field 'full_name_1', a name the file does not hold.
    Names that differ only in case are one name to DuckDB (`Full_Name` was `Full_Name_1`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    db = tmp_path / "warehouse.duckdb"
    for second in ("full_name", "Full_Name"):
        path = tmp_path / f"{second}_candidates.parquet"
        columns = [pa.array(["c-1"]), pa.array(["Ann"]), pa.array(["Bob"]), pa.array(["2025"])]
        names = ["id", "full_name", second, "created_at"]
        pq.write_table(pa.Table.from_arrays(columns, names=names), path)
        refused = ingest(path, db=db)
        assert (refused.returncode, refused.stdout, refused.stderr) == (
            2,
            "",
            f"error: {path}: column {', '.join(sorted({'full_name', second}))} appears more "
            "than once in the schema (names that differ only in case count as one; which "
            "value is meant?); nothing of this file was read\n",
        )
    assert rows(db, "select count(*) from candidates") == [(0,)]


def test_a_parquet_binary_column_holding_bytes_that_are_not_utf8_is_refused_whole(tmp_path):
    """A binary column is read as text (older writers store text so); bytes that are not UTF-8
    make the file unreadable, one line and exit 2, as invalid UTF-8 leaves none of a JSON file
    loaded. They were stored as the literal text `\\xFF\\xFE`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    db = tmp_path / "warehouse.duckdb"
    path = tmp_path / "candidates.parquet"
    names = pa.array([b"Ann", b"\xff\xfe"], pa.binary())
    pq.write_table(
        pa.table({"id": ["c-1", "c-2"], "full_name": names, "created_at": ["2025-01-01"] * 2}),
        path,
    )
    refused = ingest(path, db=db)
    assert (refused.returncode, refused.stdout, refused.stderr) == (
        2,
        "",
        f"error: {path}: unreadable Parquet (Invalid Input Error: Invalid string encoding found "
        f'in Parquet file "{path}": value "\\xFF\\xFE" is not valid UTF8!)\n',
    )


def test_fifos_are_refused_not_read(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    fifo = tmp_path / "candidates.jsonl"
    os.mkfifo(fifo)
    started = time.monotonic()
    named = ingest(fifo, db=db)
    assert named.returncode == 2, named.stderr
    assert f"{fifo}: not a regular file" in named.stderr
    folder = tmp_path / "drop"
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate()])
    os.mkfifo(folder / "processes.jsonl")
    in_folder = ingest(folder, db=db)
    assert in_folder.returncode == 2, in_folder.stderr
    assert "processes.jsonl: not a regular file" in in_folder.stderr
    assert time.monotonic() - started < 120  # nothing hung on the FIFO
    assert not raw_store_path(db).exists() or rows(db, "select count(*) from candidates") == [(0,)]


BIG = "9" * 5000  # Python reads at most 4300 digits of an integer (a ValueError, not JSON's)


def test_lone_surrogates_and_numbers_too_long_are_quarantined_not_a_crash(tmp_path):
    """Both used to end the whole run with exit 3 (UnicodeEncodeError storing the reject,
    ValueError parsing the number)."""
    db = tmp_path / "warehouse.duckdb"
    ok = json.dumps(candidate(id="c-1"))
    write_jsonl(
        tmp_path / "candidates.jsonl",
        [
            ok,
            ok.replace('"c-1"', '"c-\\ud800"'),
            ok.replace('"c-1"', '"c-3"').replace('"Ann Lee"', '"Ann \\udfff"'),
            ok.replace('"c-1"', '"c-4"')[:-1] + ', "\\ud800": 1}',
            ok.replace('"c-1"', '"c-5"')[:-1] + f', "x": {BIG}}}',
        ],
    )
    (tmp_path / "b_processes.json").write_text(
        "["
        + json.dumps(process(id=P1, candidate_id="c-1"))
        + ", "
        + json.dumps(process(id=P2)).replace('"Acme"', '"Ac\\udfffme"')
        + "]"
    )
    (tmp_path / "c_processes.json").write_text(
        "["
        + json.dumps(process(id=P2, offer_details={"base_salary": 1, "currency": "USD"})).replace(
            '"base_salary": 1', f'"base_salary": {BIG}'
        )
        + "]"
    )
    (tmp_path / "d_stages.csv").write_text(
        "id,interview_process_id,stage_name,stage_order,created_at\n"
        f"aaaaaaaa-0000-4000-8000-000000000001,{P1},Phone Screen,{BIG},2025-01-06\n"
    )
    paths = ["candidates.jsonl", "b_processes.json", "c_processes.json", "d_stages.csv"]
    done = ingest(*(tmp_path / p for p in paths), db=db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accepted"] == 2
    assert rows(
        db,
        "select regexp_extract(file_path, '[^/]*$'), line_number, record_id, error_code, field"
        " from quarantine order by 1, 2",
    ) == [
        ("b_processes.json", 2, P2, "invalid_value", "company_name"),
        ("c_processes.json", 1, None, "malformed_json", None),
        ("candidates.jsonl", 2, "c-\\ud800", "invalid_value", "id"),
        ("candidates.jsonl", 3, "c-3", "invalid_value", "full_name"),
        ("candidates.jsonl", 4, "c-4", "invalid_value", None),
        ("candidates.jsonl", 5, None, "malformed_json", None),
        ("d_stages.csv", 2, "aaaaaaaa-0000-4000-8000-000000000001", "wrong_type", "stage_order"),
    ]
    assert rows(
        db, "select error_message from quarantine where error_code = 'malformed_json' limit 1"
    ) == [("malformed JSON (a number of 5000 digits (at most 4300 are read))",)]
    assert rows(db, "select id from candidates") == [("c-1",)]


def test_file_names_and_arguments_that_are_not_utf8_are_refused_not_a_crash(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    folder = tmp_path / "drop"
    folder.mkdir()
    bad = os.fsencode(folder) + b"/x\xff_candidates.jsonl"
    with open(bad, "w") as handle:
        handle.write(json.dumps(candidate()) + "\n")
    in_folder = ingest(folder, db=db)
    assert in_folder.returncode == 2, in_folder.stderr
    assert in_folder.stderr == (
        f"error: {folder}/x\\udcff_candidates.jsonl: the file name is not valid UTF-8; rename it\n"
    )
    argument = subprocess.run(
        [os.fsencode(ITRACK), b"report", b"company", b"Ac\xffme", b"--db", os.fsencode(db)],
        capture_output=True,
    )
    assert argument.returncode == 2
    assert argument.stderr == b"error: argument 'Ac\\udcffme' is not valid UTF-8\n"


def test_offer_files_that_are_fifos_are_refused_without_hanging(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    write_jsonl(tmp_path / "candidates.jsonl", [candidate()])
    write_jsonl(tmp_path / "processes.jsonl", [process(id=P1)])
    assert (
        ingest(tmp_path / "candidates.jsonl", tmp_path / "processes.jsonl", db=db).returncode == 0
    )
    fifo = tmp_path / "offer.json"
    os.mkfifo(fifo)
    args = [ITRACK, "interview", "complete", P1, "offer_extended", "--db", str(db)]
    done = subprocess.run(
        [*args, "--offer", str(fifo)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert (
        done.stderr
        == f"error: --offer: {fifo}: not a regular file (a FIFO, device or folder); not touched\n"
    )
    big = subprocess.run(
        [*args, "--offer", f'{{"base_salary": {BIG}, "currency": "USD"}}'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert big.returncode == 1, big.stderr
    assert big.stderr == (
        "error: offer details are not valid JSON: a number of 5000 digits (at most 4300 are read)\n"
    )


def test_a_utf16_jsonl_file_is_refused_whole_as_a_csv_or_json_file_is(tmp_path):
    """Found by the exploratory analytics run: a JSON Lines file saved as UTF-16 (Windows'
    "Unicode") was read line by line: line 1 "not valid UTF-8", then its line break's second
    byte made a line 2 "malformed JSON", 2 rows read for 1 record; a UTF-16 CSV or JSON file is
    refused whole. JSON Lines now too, in one reject naming the byte order mark."""
    from ingest.load import ingest_paths
    from tests.conftest import query

    path = tmp_path / "candidates.jsonl"
    record = '{"id": "c1", "full_name": "Ann", "created_at": "2025-01-01"}\n'
    path.write_bytes(record.encode("utf-16"))
    db = tmp_path / "warehouse.duckdb"
    summary = ingest_paths([path], db=db)
    assert (summary.accepted, summary.rejects_by_code) == (0, {"invalid_utf8": 1})
    assert query(db, "select line_number, error_code, error_message from quarantine") == [
        (
            None,
            "invalid_utf8",
            "file is not valid UTF-8 (byte 0: a UTF-16 byte order mark); "
            "no record of this file was loaded",
        )
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_file_gone_after_it_was_listed_is_named_as_unreadable_not_a_store_error(tmp_path, fmt):
    """A file removed (or made unreadable) between the listing of its folder and its reading
    (an export job still rotating files) ended the run with "cannot write: [Errno 2] No such
    file or directory: '...'", the words of a store that cannot be written (found by an
    exploratory run). Now one line naming the file as unreadable; nothing is written."""
    from ingest.errors import UserError
    from ingest.load import ingest_paths

    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "candidates.jsonl", [candidate()])
    gone = folder / f"processes.{fmt}"
    if fmt == "jsonl":
        write_jsonl(gone, [process()])
    else:
        gone.write_text(",".join(process()) + "\n" + ",".join(process().values()) + "\n")

    def vanish(message: str, _done: int, _total: int) -> None:
        if message == f"read {gone}":  # the file is about to be read
            gone.unlink()

    db = tmp_path / "w.duckdb"
    with pytest.raises(UserError) as info:
        ingest_paths([folder], db=db, progress=vanish)
    assert str(info.value) == f"{gone}: cannot read (No such file or directory)"
    assert query(db, "select count(*) from ingest_runs") == [(0,)]
