"""`POST /feedback/run`: recompute feeder metrics and write feeders.json on demand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ingest.errors import Refused, StoreBusyError
from itrack.api.deps import Caller
from itrack.api.errors import ApiError, error_responses
from itrack.api.models import with_example
from itrack.api.warehouse import BuildInfo, open_warehouse

router = APIRouter(prefix="/feedback", tags=["feedback"])


class BuildRunning(Refused):
    """A build is running: feedback would race it (HTTP 409)."""


class FeedbackRun(BaseModel):
    """Which feeders got new metrics; the files written."""

    model_config = with_example(
        {
            "run_id": "feedback-20260306T101500-3fa2b1c0",
            "build": {
                "build_id": "1f3a9c2b7d-4e21",
                "published_at": "2026-03-06T02:14:09Z",
                "warehouse": "data/warehouse.duckdb",
            },
            "updated_feeders": ["ex-amazon", "referral"],
            "triggered_feeders": ["ex-amazon"],
            "feeders_path": "data/feeders.json",
            "feeders_written": True,
            "placements": 12,
        }
    )
    run_id: str
    build: BuildInfo
    updated_feeders: list[str]
    triggered_feeders: list[str]
    feeders_path: str
    feeders_written: bool = Field(description="False when the file already held these metrics.")
    placements: int


@contextmanager
def one_feedback_run(warehouse: Path, wait_seconds: float) -> Iterator[None]:
    """Hold the feedback lock and the build lock for the duration. Another feedback run, of any
    process (another server worker, `itrack feedback`), is waited for up to the server's wait
    (then 503); a build is refused at once (409): it writes feeders.json itself. Only taking
    the locks is translated, never what the run itself raises."""
    from itrack.pipeline import BuildBusy, FeedbackRunning, build_lock, feedback_lock

    with ExitStack() as held:
        try:
            held.enter_context(feedback_lock(warehouse, wait_seconds))
        except FeedbackRunning:
            raise StoreBusyError(
                f"another feedback run is still running after {wait_seconds:g} s; retry later"
            ) from None
        try:
            held.enter_context(build_lock(warehouse, wait_seconds=0))
        except BuildBusy:
            raise BuildRunning(
                "a build is running: it writes feeders.json itself; retry when it has finished"
            ) from None
        yield


@router.post(
    "/run",
    response_model=FeedbackRun,
    responses=error_responses(401, 403, 409, 422, 503),
    summary="Recompute feeder metrics from the published build and write feeders.json",
)
def run(request: Request, caller: Caller) -> dict[str, Any]:
    if not caller.is_lead:
        raise ApiError(403, "only leads may run the feedback step")
    from itrack.services import run_feedback_step

    config = request.app.state.config
    warehouse = Path(config.db)
    feeders = Path(config.feeders_path or warehouse.parent / "feeders.json")
    with (
        one_feedback_run(warehouse, config.wait_seconds),
        open_warehouse(warehouse) as (_, build),
    ):
        with request.app.state.backend.released():
            result = run_feedback_step(warehouse, feeders=feeders)
    return {
        "run_id": result.run_id,
        "build": build.model_dump(),
        "updated_feeders": result.updated_feeders,
        "triggered_feeders": result.triggered_feeders,
        "feeders_path": str(feeders),
        "feeders_written": result.feeders_written,
        "placements": result.placements,
    }
