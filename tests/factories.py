"""Valid records by default; tests override one field to make one rule fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

P1 = "11111111-1111-4111-8111-111111111111"
P2 = "22222222-2222-4222-8222-222222222222"
S1 = "aaaaaaaa-0000-4000-8000-000000000001"
S2 = "aaaaaaaa-0000-4000-8000-000000000002"
S3 = "aaaaaaaa-0000-4000-8000-000000000003"


def candidate(**over: Any) -> dict[str, Any]:
    return {
        "id": "cand-1",
        "full_name": "Ann Lee",
        "feeder_source": "ex-amazon",
        "created_at": "2025-01-01T00:00:00Z",
        **over,
    }


def process(**over: Any) -> dict[str, Any]:
    return {
        "id": P1,
        "candidate_id": "cand-1",
        "company_name": "Acme",
        "role_title": "SWE",
        "status": "in_progress",
        "feeder_source": "ex-amazon",
        "created_at": "2025-01-05T00:00:00Z",
        "updated_at": "2025-01-05T00:00:00Z",
        **over,
    }


def stage(**over: Any) -> dict[str, Any]:
    return {
        "id": S1,
        "interview_process_id": P1,
        "stage_name": "Phone Screen",
        "stage_order": 1,
        "scheduled_date": "2025-01-06T10:00:00Z",
        "completed_date": "2025-01-06T11:00:00Z",
        "outcome": "passed",
        "overall_rating": 4,
        "interviewer_names": ["Dana"],
        "created_at": "2025-01-06T00:00:00Z",
        **over,
    }


def offer(**over: Any) -> dict[str, Any]:
    return {"base_salary": 150000, "currency": "USD", "offer_date": "2025-02-01", **over}


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """Records may be dicts (dumped) or raw strings (written as is, for malformed lines)."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
