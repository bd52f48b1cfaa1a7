"""The bad-input corpus (tests/fixtures/bad/): every case quarantines exactly the bad records
with the right code and line, loads the good records around them, and round-trips text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ingest.load import ingest_paths
from tests.conftest import query

CORPUS = Path(__file__).resolve().parent / "fixtures" / "bad"
CASES = json.loads((CORPUS / "cases.json").read_text())


def test_the_corpus_is_broad():
    assert len(CASES) >= 40
    codes = {r["code"] for case in CASES for r in case["rejects"]}
    assert len(codes) >= 20
    assert {case["kind"] for case in CASES} == {"candidates", "processes", "stages"}


@pytest.fixture(scope="module")
def base_store(tmp_path_factory) -> Path:
    """The corpus's clean base, ingested once, for every case to start from a copy of."""
    root = tmp_path_factory.mktemp("base")
    ingest_paths([CORPUS / "base"], db=root / "warehouse.duckdb")
    return root


@pytest.mark.parametrize("case", CASES, ids=[Path(c["file"]).stem for c in CASES])
def test_case(tmp_path, base_store, case):
    shutil.copytree(base_store, tmp_path, dirs_exist_ok=True)
    db = tmp_path / "warehouse.duckdb"
    base = {
        t: query(db, f"select count(*) from {t}")[0][0]
        for t in ("candidates", "interview_processes", "interview_stages")
    }
    summary = ingest_paths([CORPUS / case["file"]], db=db, kind=case["kind"])
    got = sorted(
        (code, line)
        for code, line in query(
            db, "select error_code, line_number from quarantine order by line_number"
        )
    )
    expected = sorted((r["code"], r["line"]) for r in case["rejects"])
    assert got == expected
    table = {
        "candidates": "candidates",
        "processes": "interview_processes",
        "stages": "interview_stages",
    }[case["kind"]]
    loaded = query(db, f"select count(*) from {table}")[0][0] - base[table]
    updated = summary.total("updated")
    assert loaded + updated == case["loaded"]
    source = (CORPUS / case["file"]).read_bytes()
    for raw, record_id in query(db, "select raw_payload, record_id from quarantine"):
        if raw is not None and case["format"] == "jsonl":
            assert raw.encode("utf-8", "replace") in source.replace(b"\xff", "\ufffd".encode())
        if record_id is not None:
            assert record_id in (raw or "")
    if "roundtrip" in case:
        r = case["roundtrip"]
        [(value,)] = query(
            db, f"select {r['column']} from {r['table']} where id::varchar = ?", [r["id"]]
        )
        assert value == r["value"]


def test_the_sql_looking_record_did_not_touch_the_tables(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([CORPUS / "base"], db=db)
    ingest_paths([CORPUS / "cases" / "c12_sql_looking_name.jsonl"], db=db, kind="candidates")
    ingest_paths([CORPUS / "cases" / "s47_notes_any_text.jsonl"], db=db, kind="stages")
    assert query(db, "select count(*) from interview_stages") == [(1,)]
