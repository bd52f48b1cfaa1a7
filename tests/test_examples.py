"""The README's usage examples run against a temporary database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str, db: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        text=True,
        capture_output=True,
        env={**os.environ, "ITRACK_DB": str(db)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_examples_run_end_to_end(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    created = run("create_interview.py", db=db)
    process_id = created.strip().splitlines()[-1]
    assert "with 3 stages (Phone Screen, Technical Interview, Onsite)" in created
    updated = run("update_stage_outcome.py", process_id, db=db)
    assert f"process {process_id}: offer_accepted; feedback triggered for ['referral']" in updated
    report = run("generate_conversion_report.py", db=db)
    assert "referral" in report and "placements    1  conversion 100.0%" in report
