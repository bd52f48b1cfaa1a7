"""Wiring: the services of `ingest` and `feedback` on the store the settings name.

The CLI and the HTTP API build their services here, so which store is used (embedded DuckDB or
PostgreSQL) is decided in one place.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedback.service import FeedbackResult, FeedbackService, OutcomeResult, ProcessOutcome
from ingest.ports import InterviewStore
from ingest.service import FeedbackTrigger, InterviewService
from ingest.store.duckdb.feedback_log import DuckDBFeedbackLog
from ingest.store.duckdb.repository import DuckDBInterviewStore
from itrack.dbt_runner import project_var
from itrack.settings import get_settings

if TYPE_CHECKING:  # imported when used: the embedded store's commands never load psycopg
    from ingest.store.postgres.repository import PostgresInterviewStore


def interview_store(db: Path | None = None, wait_seconds: float = 0.0) -> InterviewStore:
    """The configured store: `ITRACK_STORE=duckdb` (default: the raw store beside the
    warehouse `db`) or `postgres` (`ITRACK_PG_DSN`, acting as service_role; the HTTP API acts
    for each user with `postgres_store().as_user(claims)`)."""
    settings = get_settings()
    if settings.store == "postgres":  # one pool, connected within `wait_seconds` (the command's
        # --wait, not the pool's 30 s); each unit of work waits as long for a row
        return postgres_store().connected(wait_seconds).waiting(wait_seconds)
    return DuckDBInterviewStore(settings.warehouse(db), wait_seconds)


@cache
def postgres_store() -> PostgresInterviewStore:
    """One connection pool per process on `ITRACK_PG_DSN`, closed at exit; it connects when
    a command first uses it (`interview_store`), within that command's wait."""
    from ingest.store.postgres.repository import PostgresInterviewStore

    store = PostgresInterviewStore(get_settings().postgres_dsn(), connect=False)
    atexit.register(store.close)
    return store


def interview_service(
    db: Path | None = None, wait_seconds: float = 0.0, feedback: bool = True
) -> InterviewService:
    """The interview service on the configured store (`ITRACK_STORE`, default the raw store
    beside the warehouse). With `feedback`, a process reaching offer_accepted,
    rejected_by_company or candidate_withdrew runs `FeedbackService.process_interview_outcome`
    after the commit (its result's `feedback` says whether it ran or was deferred)."""
    store = interview_store(db, wait_seconds)
    service = InterviewService(store)
    if feedback:
        service.on_feedback_trigger(feedback_trigger(db, wait_seconds, store))
    return service


def run_feedback_step(
    published: Path,
    wait_seconds: float = 0.0,
    *,
    built: Path | None = None,
    feeders: Path | None = None,
    placements: Path | None = None,
    **options: Any,
) -> FeedbackResult:
    """The nightly feedback step (`feedback.service.run_feedback`) as `itrack feedback`, the
    build and POST /feedback/run run it: from `built` (default: the published warehouse), its
    log in the raw store beside `published`, the outputs beside it unless given, an unfinished
    publish completed first, live outcomes smoothed with the dbt var feeder_prior_strength.
    One wiring: the POST route had missed the var."""
    from feedback.service import run_feedback
    from itrack.pipeline import finish_publish  # here: most commands never need the pipeline

    data = published.parent
    return run_feedback(
        warehouse=built or published,
        log=DuckDBFeedbackLog(published, wait_seconds),
        feeders_path=feeders or data / "feeders.json",
        placements_path=placements or data / "candidate_placements.json",
        wait_seconds=wait_seconds,
        settle=lambda held: finish_publish(published, wait_seconds, held=held),
        prior_strength=project_var("feeder_prior_strength"),
        **options,
    )


def feedback_service(
    db: Path | None = None,
    wait_seconds: float = 0.0,
    *,
    store: InterviewStore | None = None,
    feeders: Path | None = None,
    placements: Path | None = None,
    candidates: Path | None = None,
    clock: Callable[[], str] | None = None,
) -> FeedbackService:
    """The feedback step one process or one feeder at a time: the published warehouse, the
    files beside it (`feeders.json`, `candidate_placements.json`), the operational store to
    read a process from, and the raw store's feedback log."""
    warehouse = get_settings().warehouse(db)
    store = store or DuckDBInterviewStore(warehouse, wait_seconds)
    return FeedbackService(
        warehouse,
        feeders or warehouse.parent / "feeders.json",
        placements or warehouse.parent / "candidate_placements.json",
        candidates_path=candidates,
        read_process=process_reader(store),
        log=DuckDBFeedbackLog(warehouse, wait_seconds),
        prior_strength=project_var("feeder_prior_strength"),
        clock=clock,
        settle=lambda held: _settle_publish(warehouse, wait_seconds, held),
    )


def _settle_publish(warehouse: Path, wait_seconds: float, held: Path | None) -> None:
    """A publish a killed build or live run left unfinished, completed before a live outcome
    is written (`held`: the feeders.json whose advisory lock the caller holds)."""
    from itrack.pipeline import settle_publish  # here: most commands never need the pipeline

    settle_publish(warehouse, wait_seconds, held)


def process_reader(store: InterviewStore) -> Callable[[str], ProcessOutcome]:
    """`read_process` for FeedbackService on any store: the process, its feeder (its own, else
    its candidate's) and the time it reached its status."""

    def read(interview_id: str) -> ProcessOutcome:
        with store.reading() as repo:
            process = repo.get_interview_by_id(interview_id)
            feeder = process.feeder_source or repo.candidate_feeder(process.candidate_id)
        offer = process.offer_details
        return ProcessOutcome(
            interview_id=str(process.id),
            candidate_id=process.candidate_id,
            company_name=process.company_name,
            role_title=process.role_title,
            feeder_source=feeder,
            status=process.status.value,
            decided_at=process.updated_at,  # the status change's time (its history row's)
            offer_details=offer.model_dump(mode="json", exclude_none=True) if offer else None,
        )

    return read


def feedback_trigger(
    db: Path | None, wait_seconds: float, store: InterviewStore
) -> Callable[[FeedbackTrigger], OutcomeResult]:
    """The callback the shell registers on InterviewService: one process's outcome."""

    def run(trigger: FeedbackTrigger) -> OutcomeResult:
        service = feedback_service(db, wait_seconds, store=store)
        return service.process_interview_outcome(str(trigger.interview_id))

    return run
