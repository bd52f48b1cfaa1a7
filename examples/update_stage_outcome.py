"""Record stage outcomes and close the process with an accepted offer.

ITRACK_DB=/tmp/demo/warehouse.duckdb python examples/update_stage_outcome.py PROCESS_ID

Closing the process runs the feedback step for it (FeedbackService.process_interview_outcome,
registered by `itrack.services.interview_service`): feeders.json and the candidate's placement
history are updated at once when a build has been published, else the result says the step was
deferred to the next build. The move itself never depends on it.
"""

from __future__ import annotations

import sys

from itrack.services import interview_service


def main(process_id: str) -> None:
    service = interview_service()
    for stage in service.get_interview(process_id).stages:
        updated = service.update_stage_outcome(
            stage.id,
            "passed",
            ratings={"overall": 4, "technical": 5},
            feedback=f"{stage.stage_name}: strong system design, clear communication",
            interviewer_names=["Ana", "Ben"],
        )
        print(f"stage {updated.stage_order} {updated.stage_name}: {updated.outcome}")
    service.complete_interview_process(
        process_id,
        "offer_extended",
        {"base_salary": 185000, "currency": "USD", "offer_date": "2025-03-20"},
    )
    final = service.complete_interview_process(process_id, "offer_accepted")
    print(f"process {final.id}: {final.status}")
    print(final.feedback)  # feedback ran: ... / feedback deferred to the next build: ...


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: update_stage_outcome.py PROCESS_ID")
    main(sys.argv[1])
