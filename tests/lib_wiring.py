"""TEMPORARY until the restructure: the shell's wiring of FeedbackService (moves to
itrack.services.feedback_service)."""

from __future__ import annotations

import json
from pathlib import Path

from feedback.service import FeedbackService, ProcessOutcome
from ingest.contract import utc_now
from ingest.store.duckdb.repository import InterviewRepository
from ingest.store.duckdb.store import open_store


def feedback_service(db: Path, **kw) -> FeedbackService:
    def read_process(interview_id: str) -> ProcessOutcome:
        with open_store(db) as con:
            repo = InterviewRepository(con)
            p = repo.get_interview_by_id(interview_id)
            feeder = p.feeder_source or repo.candidate_feeder(p.candidate_id)
        offer = (
            p.offer_details.model_dump(mode="json", exclude_none=True) if p.offer_details else None
        )
        return ProcessOutcome(
            str(p.id),
            p.candidate_id,
            p.company_name,
            p.role_title,
            feeder,
            p.status.value,
            p.updated_at,
            offer,
        )

    class Log:
        def get_state(self, key: str, default: str) -> str:
            with open_store(db) as store:
                row = store.execute(
                    "select value from feedback_state where key = ?", [key]
                ).fetchone()
            return row[0] if row else default

        def record_run(self, run_id: str, metrics: dict, state: dict) -> None:
            with open_store(db) as store:
                store.begin()
                for name, values in metrics.items():
                    store.execute(
                        "insert into feedback_runs values (?, ?, ?, ?)",
                        [run_id, name, json.dumps(values), utc_now()],
                    )
                for key, value in state.items():
                    store.execute(
                        "insert or replace into feedback_state values (?, ?, ?)",
                        [key, value, utc_now()],
                    )
                store.commit()

    return FeedbackService(
        db,
        db.parent / "feeders.json",
        db.parent / "candidate_placements.json",
        read_process=read_process,
        log=Log(),
        **kw,
    )
