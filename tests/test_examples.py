"""The README's usage examples run against a temporary database, in the order a newcomer runs
them: create a process, build, close it with an accepted offer (the feedback step runs at once),
and report through the Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str, db: Path, code: int = 0) -> str:
    """The script's stdout (its stderr when `code` is not 0: then stdout is empty)."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        text=True,
        capture_output=True,
        env={**os.environ, "ITRACK_DB": str(db)},
        timeout=300,
    )
    assert result.returncode == code, result.stderr
    if code:
        assert result.stdout == ""
        return result.stderr
    return result.stdout


def test_examples_run_end_to_end(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    created = run("create_interview.py", db=db)
    process_id = created.strip().splitlines()[-1]
    assert "with 3 stages (Phone Screen, Technical Interview, Onsite)" in created

    before = run("generate_conversion_report.py", db=db)  # publishes a first build
    assert (
        before.splitlines()[0]
        == "funnel: 1 started, 1 in flight, offers accepted - (0 of 0 answered)"
    )
    assert "  referral             sourced    1  placements    0  conversion 0.0%" in before
    assert before.splitlines()[-1] == f"HTML report: {tmp_path / 'report.html'}"
    assert (tmp_path / "report.html").read_text().startswith("<!doctype html>")

    updated = run("update_stage_outcome.py", process_id, db=db)
    assert updated.splitlines()[-2:] == [
        f"process {process_id}: offer_accepted",
        "feedback ran: feeders.json updated for referral; placement recorded",
    ]
    metrics = json.loads((tmp_path / "feeders.json").read_text())["feeders"]["referral"]["metrics"]
    assert (metrics["placements"], metrics["conversion_rate"]) == (1, 1.0)
    [placement] = json.loads((tmp_path / "candidate_placements.json").read_text())["cand-demo-1"]
    assert (placement["company"], placement["role"]) == ("Acme Robotics", "Staff Engineer")

    report = run("generate_conversion_report.py", db=db)
    lines = report.splitlines()
    assert lines[0] == "funnel: 1 started, 0 in flight, offers accepted 100.0% (1 of 1 answered)"
    assert "  referral             sourced    1  placements    1  conversion 100.0%" in report
    assert "  Acme Robotics        sent    1  offer rate 100.0%  time to decision 0 days" in lines
    assert "  technical               1 stages  pass rate 100.0%  avg rating 4.00" in lines
    assert lines[-1] == f"HTML report: {tmp_path / 'report.html'}"
    assert "<p>1 interview process, 1 placement, 1 company. Built " in (
        (tmp_path / "report.html").read_text()
    )  # the report of this build, not of the first


def test_the_conversion_report_refuses_bad_input_in_one_line(tmp_path):
    """Found by an exploratory run: examples/generate_conversion_report.py ended in a
    traceback for ITRACK_DB naming a folder or a warehouse with no raw store yet; it now says
    so in one line with `itrack`'s exit code (itrack.errors.run_script)."""
    assert run("generate_conversion_report.py", db=tmp_path, code=2) == (
        f"error: ITRACK_DB: {tmp_path} is a folder, not a warehouse file; give a file such as "
        f"{tmp_path / 'warehouse.duckdb'}\n"
    )
    missing = tmp_path / "new" / "warehouse.duckdb"
    assert run("generate_conversion_report.py", db=missing, code=2) == (
        f"error: no raw store at {tmp_path / 'new' / 'warehouse.raw.duckdb'}: nothing to build; "
        "name the files to ingest (itrack build PATH...) or check --db\n"
    )
    assert list(tmp_path.iterdir()) == []
