"""Create an interview process with its stages through the public Python API.

    ITRACK_DB=/tmp/demo/warehouse.duckdb python examples/create_interview.py

Prints the new process id (pass it to update_stage_outcome.py).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ingest.load import ingest_paths
from itrack.services import interview_service
from itrack.settings import get_settings

CANDIDATE = {
    "id": "cand-demo-1",
    "full_name": "Grace Hopper",
    "feeder_source": "referral",
    "created_at": "2025-03-01T09:00:00Z",
}


def ensure_candidate() -> None:
    """Candidates arrive through ingest (nightly files); load one for the demo."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "candidates.jsonl"
        path.write_text(json.dumps(CANDIDATE) + "\n")
        ingest_paths([path], db=get_settings().warehouse())


def main() -> None:
    ensure_candidate()
    service = interview_service()
    process = service.create_interview_process(
        CANDIDATE["id"],
        "Acme Robotics",
        "Staff Engineer",
        feeder_source="referral",
        recruiter_name="Rita Gomez",
    )
    # Scheduled as the process opens, so the demo can record outcomes right away.
    when = process.created_at.isoformat()
    for order, name in enumerate(("Phone Screen", "Technical Interview", "Onsite"), start=1):
        service.add_interview_stage(process.id, name, order, scheduled_date=when)
    detail = service.get_interview(process.id)
    print(
        f"created process {process.id} with {len(detail.stages)} stages "
        f"({', '.join(s.stage_name for s in detail.stages)})"
    )
    print(process.id)


if __name__ == "__main__":
    main()
