"""The README's notebook walk-through of the Python API runs as written (on a generated
warehouse in place of data/warehouse.duckdb) and its error example says what the README says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from feedback.analytics import UnknownNameError, get_company_hiring_insights

README = Path(__file__).resolve().parent.parent / "README.md"


def section_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("### From Python: the analytics API")
    end = text.index("\n## ", start)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


@pytest.fixture
def db(published_300) -> Path:
    return published_300


def test_the_walk_through_runs_as_written(db):
    code = section_blocks()[0].replace('"data/warehouse.duckdb"', repr(str(db)))
    names: dict = {}
    exec(compile(code, "README.md", "exec"), names)  # noqa: S102 - our own README
    assert names["funnel"].feeder_source == "referral" and names["funnel"].company == "Stripe"
    assert names["stage"].name == "technical" and names["stripe"].company_name == "Stripe"
    days = names["stripe"].avg_days_to_decision
    assert names["stripe"].avg_time_to_decision == f"{int(days + 0.5)} days"


def test_the_error_example_says_what_the_readme_says(db):
    example = section_blocks()[1]
    assert "no such company 'Strip'; closest: Stripe" in example
    with pytest.raises(UnknownNameError, match="no such company 'Strip'; closest: Stripe$"):
        get_company_hiring_insights("Strip", db=db)


def test_the_feedback_service_example_runs(db):
    code = section_blocks()[2].replace('"data/warehouse.duckdb"', repr(str(db)))
    code = code.replace("feedback.process_interview_outcome(process_id)", "")
    names: dict = {}
    exec(compile(code, "README.md", "exec"), names)  # noqa: S102 - our own README
    report = names["feedback"].get_feeder_performance_report("ex-amazon")
    assert report.feeder_source == "ex-amazon" and report.candidates_sourced > 0
