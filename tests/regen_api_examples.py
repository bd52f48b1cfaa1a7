"""Regenerate itrack/api/analytics_examples.json (the analytics endpoints' OpenAPI examples)
from the hand-computed test warehouse, after a change to feedback/analytics.py's result models:

    .venv/bin/python -m tests.regen_api_examples

tests/test_api_schema.py::test_the_examples_are_valid_responses fails until it is run.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from feedback.analytics import (
    get_company_hiring_insights,
    get_conversion_funnel,
    get_stage_performance,
)
from itrack.dbt_runner import run_dbt
from tests.dbt_helpers import write_raw_store
from tests.lib_data import DATA

OUT = Path(__file__).resolve().parents[1] / "itrack" / "api" / "analytics_examples.json"


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="itrack-examples-"))
    raw = write_raw_store(root / "warehouse.raw.duckdb", DATA)
    db = root / "warehouse.duckdb"
    outcome = run_dbt(["build"], db, raw)
    if not outcome.ok:
        raise SystemExit(f"dbt build failed: {outcome.failures}")
    examples = {
        "stage": get_stage_performance("technical", db=db).to_dict(),
        "company": get_company_hiring_insights("Acme", db=db).to_dict(),
        "funnel": get_conversion_funnel(feeder_source="referral", db=db).to_dict(),
    }
    OUT.write_text(json.dumps(examples, indent=1) + "\n")
    print(f"written: {OUT}")


if __name__ == "__main__":
    main()
