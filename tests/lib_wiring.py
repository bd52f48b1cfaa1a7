"""TEMPORARY until the restructure: the shell's wiring of FeedbackService (moves to
itrack.services.feedback_service)."""

from __future__ import annotations

import json
from pathlib import Path

from feedback.service import FeedbackService, FeederCounts, ProcessOutcome
from ingest.contract import utc_now
from ingest.store.duckdb.repository import InterviewRepository
from ingest.store.duckdb.store import open_store


def live_counts(db: Path, feeder_source: str) -> FeederCounts:
    """(started, offer_accepted, decided) processes of a feeder in the raw store."""
    with open_store(db) as con:
        row = con.execute(
            """
            with processes as (
                select p.status, coalesce(p.feeder_source, c.feeder_source) as feeder
                from interview_processes as p
                left join candidates as c on c.id = p.candidate_id
            )
            select count(*), count(*) filter (where status = 'offer_accepted'),
                count(*) filter (where status in
                    ('offer_accepted', 'offer_declined', 'rejected_by_company',
                     'candidate_withdrew'))
            from processes where feeder = ?""",
            [feeder_source],
        ).fetchone()
    return FeederCounts(int(row[0]), int(row[1]), int(row[2]))


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

    def record_run(run_id: str, metrics: dict) -> None:
        with open_store(db) as store:
            store.begin()
            for name, values in metrics.items():
                store.execute(
                    "insert into feedback_runs values (?, ?, ?, ?)",
                    [run_id, name, json.dumps(values), utc_now()],
                )
            store.commit()

    return FeedbackService(
        db,
        db.parent / "feeders.json",
        db.parent / "candidate_placements.json",
        read_process=read_process,
        live_counts=lambda feeder: live_counts(db, feeder),
        record_run=record_run,
        **kw,
    )
