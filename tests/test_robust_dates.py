"""Issue #13, item 2: timestamps outside the business date range never enter the store, and a
stamp already at the end of the range cannot make `interview complete` overflow."""

from __future__ import annotations

import datetime as dt
import json

from typer.testing import CliRunner

from ingest.load import ingest_paths
from ingest.store.duckdb.store import open_store
from itrack.cli.main import app
from tests.conftest import query
from tests.factories import P1, candidate, process

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_offsets_past_the_range_are_quarantined_and_the_store_stays_usable(tmp_path, db):
    (tmp_path / "candidates.jsonl").write_text(json.dumps(candidate()) + "\n")
    late = process(id=P1, updated_at="9999-12-31T23:59:59-01:00")
    early = process(
        id="aaaaaaaa-0000-4000-8000-0000000000ff", created_at="0001-01-01T00:00:00+01:00"
    )
    ok = process(id="aaaaaaaa-0000-4000-8000-0000000000ee")
    lines = [json.dumps(r) for r in (late, early, ok)]
    (tmp_path / "processes.jsonl").write_text("\n".join(lines) + "\n")
    summary = ingest_paths([tmp_path / "candidates.jsonl", tmp_path / "processes.jsonl"], db=db)
    assert summary.rejects_by_code == {"invalid_date": 2}
    assert query(db, "select field, line_number from quarantine order by 2") == [
        ("updated_at", 1),
        ("created_at", 2),
    ]
    listed = invoke("interview", "list", "--db", str(db), "--json")
    assert listed.exit_code == 0, listed.output
    assert [p["id"] for p in json.loads(listed.stdout)] == [ok["id"]]
    assert invoke("interview", "history", "cand-1", "--db", str(db)).exit_code == 0


def test_complete_on_a_process_stamped_at_the_end_of_time_is_refused_not_a_crash(tmp_path, db):
    (tmp_path / "candidates.jsonl").write_text(json.dumps(candidate()) + "\n")
    (tmp_path / "processes.jsonl").write_text(json.dumps(process(id=P1)) + "\n")
    ingest_paths([tmp_path / "candidates.jsonl", tmp_path / "processes.jsonl"], db=db)
    for stamp in (
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2099, 12, 31, 23, 59, 59, 999999),
    ):
        with open_store(db) as con:  # a row written before the range existed
            con.execute("update interview_processes set updated_at = ?", [stamp])
        shown = invoke("interview", "show", P1, "--db", str(db), "--json")
        assert shown.exit_code == 0, shown.output  # stored rows always read back
        done = invoke("interview", "complete", P1, "rejected_by_company", "--db", str(db))
        assert done.exit_code == 1, done.output
        assert "updated_at" in done.stderr and "date range" in done.stderr
        assert query(db, "select status, updated_at from interview_processes") == [
            ("in_progress", stamp)
        ]
