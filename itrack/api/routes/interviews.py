"""Interview processes and their stages: `/interviews...`."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import AfterValidator

from ingest.contract import (
    MAX_CANDIDATE_ID,
    MAX_NAME,
    InterviewProcess,
    InterviewStatus,
    Timestamp,
)
from ingest.ports import ProcessFilters
from itrack.api.auth import Principal
from itrack.api.deps import (
    Caller,
    construct,
    feedback_after_commit,
    read_session,
    reads,
    record_response,
    write_session,
    writes,
)
from itrack.api.errors import ApiError
from itrack.api.links import relative_url
from itrack.api.models import (
    CandidateHistory,
    InterviewCreate,
    InterviewUpdate,
    Process,
    ProcessChange,
    ProcessPage,
    ProcessWithStages,
    Stage,
    StageChange,
    StageCreate,
    StageList,
    StageOutcomeUpdate,
    StageUpdate,
)
from itrack.errors import nonblank_filter

router = APIRouter(prefix="/interviews", tags=["interviews"])
get, put, post = reads(router), writes(router, "put"), writes(router, "post")
MAX_LIMIT = 500
_T = TypeVar("_T")
# a blank company, feeder or candidate is refused (422 naming it), as `itrack interview list`
# refuses it: an unset variable (`?company=$COMPANY`) that matched nothing, a 200 listing none
NotBlank = AfterValidator(nonblank_filter)


class Filters:
    """Filters and paging of a list of processes (query parameters; the company is the path's
    on /interviews/company/{name}, a query parameter on /interviews)."""

    def __init__(
        self,
        status: InterviewStatus | None = None,
        feeder: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=MAX_NAME,
                description="The process's feeder source, else its candidate's.",
            ),
            NotBlank,
        ] = None,
        candidate: Annotated[
            str | None, Query(min_length=1, max_length=MAX_CANDIDATE_ID), NotBlank
        ] = None,
        created_from: Annotated[
            Timestamp | None, Query(description="Created at or after (ISO 8601).")
        ] = None,
        created_to: Annotated[
            Timestamp | None, Query(description="Created before (ISO 8601).")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        cursor: Annotated[
            str | None,
            Query(max_length=200, description="`next_cursor` of the previous page."),
        ] = None,
    ) -> None:
        self.status, self.feeder, self.candidate = status, feeder, candidate
        self.created_from, self.created_to = created_from, created_to
        self.limit, self.cursor = limit, cursor

    def query(self) -> ProcessFilters:
        """The repository's filters beyond company, status and candidate (those given). A
        range that holds no time (`created_to` not after `created_from`: swapped, or the same
        day twice) is 422: it listed nothing, 200, as if no process had been created then."""
        start, end = self.created_from, self.created_to
        if start is not None and end is not None and end <= start:
            field = "query.created_to"
            message = (
                f"{end.isoformat()}Z is not after created_from {start.isoformat()}Z: "
                "the range [created_from, created_to) holds no time"
            )
            raise ApiError(422, f"invalid input: {field}: {message}", field=field)
        given: dict[str, Any] = {
            "feeder": self.feeder,
            "created_from": self.created_from,
            "created_to": self.created_to,
            "after": _decode_cursor(self.cursor) if self.cursor is not None else None,
        }
        return cast(ProcessFilters, {k: v for k, v in given.items() if v is not None})


def _read(request: Request, caller: Principal, read: Callable[[Any], _T]) -> _T:
    """`read(session)` in the caller's read session (one snapshot)."""
    with read_session(request, caller) as session:
        return read(session)


def _encode_cursor(process: InterviewProcess) -> str:
    assert process.created_at is not None
    raw = f"{process.created_at.isoformat()}|{process.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[dt.datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, pid = raw.partition("|")
        return dt.datetime.fromisoformat(when), UUID(pid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(
            422, "invalid input: query.cursor: not a cursor this API returned", field="query.cursor"
        ) from None


def _page(
    request: Request, caller: Principal, company: str | None, filters: Filters
) -> dict[str, Any]:
    """One page in the stable order (created_at, id) after the cursor, filtered and cut in
    SQL; one row more than the page tells whether there is a next one."""
    with read_session(request, caller) as session, session.service.store.reading() as repo:
        found = repo.find_interviews(
            company, filters.status, filters.candidate, limit=filters.limit + 1, **filters.query()
        )
    items = found[: filters.limit]
    next_cursor = _encode_cursor(items[-1]) if len(found) > filters.limit else None
    next_url = _next_url(request, next_cursor) if next_cursor else None
    return {
        "items": [p.model_dump(mode="json") for p in items],
        "limit": filters.limit,
        "next_cursor": next_cursor,
        "next": next_url,
    }


def _next_url(request: Request, cursor: str) -> str:
    """This page's path and query with the next cursor: a relative reference (`links`)."""
    return relative_url(
        request.scope["path"], request.url.include_query_params(cursor=cursor).query
    )


# -- processes: the literal paths first (company/, candidate/, stages/) --------------------------


# `:path`: a company name is free text and may hold "/" ("AC/DC"); Starlette decodes %2F
# before routing, so a plain `{name}` never matched it (404). This route comes before
# `/{interview_id}...`, and every literal path under /interviews/company/ is a company.
@get("/company/{name:path}", ProcessPage, "A company's interview processes")
def company_interviews(
    request: Request,
    name: Annotated[str, Path(min_length=1, max_length=MAX_NAME), NotBlank],
    caller: Caller,
    filters: Filters = Depends(),
) -> dict[str, Any]:
    return _page(request, caller, name, filters)


@get("/candidate/{candidate_id}", CandidateHistory, "A candidate's interview history")
def candidate_history(
    request: Request,
    candidate_id: Annotated[str, Path(max_length=MAX_CANDIDATE_ID)],
    caller: Caller,
) -> dict[str, Any]:
    history = _read(
        request, caller, lambda s: s.service.get_candidate_interview_history(candidate_id)
    )
    return {"candidate_id": candidate_id, "processes": [d.as_json() for d in history]}


@get("/stages/{stage_id}", Stage, "One stage")
def get_stage(request: Request, stage_id: UUID, caller: Caller) -> Response:
    return record_response(Stage, _read(request, caller, lambda s: s.get_stage(stage_id)))


@put("/stages/{stage_id}", Stage, "Change a stage's name, schedule, interviewers or next steps")
def update_stage(request: Request, stage_id: UUID, body: StageUpdate, caller: Caller) -> Response:
    data = body.model_dump(exclude_unset=True)
    if not data:
        raise ApiError(422, "invalid input: body: give at least one field to change", field="body")
    with write_session(request, caller) as session:
        session.check_can_change_stage(stage_id)
        stage = session.service.update_stage_details(stage_id, **data)
    return record_response(Stage, stage)


@put("/stages/{stage_id}/outcome", StageChange, "Record a stage's outcome, ratings and feedback")
def record_outcome(
    request: Request, stage_id: UUID, body: StageOutcomeUpdate, caller: Caller
) -> Response:
    data = body.model_dump(exclude_unset=True)
    ratings = {k: data.pop(k) for k in list(data) if k.endswith("_rating")}
    with write_session(request, caller) as session:
        session.check_can_change_stage(stage_id)
        stage = session.service.update_stage_outcome(
            stage_id,
            data["outcome"],
            ratings=ratings,
            feedback=data.get("feedback_notes"),
            interviewer_names=data.get("interviewer_names"),
            completed_date=data.get("completed_date"),
        )
    feedback = feedback_after_commit(request, session)  # a failure may have closed the process
    return record_response(StageChange, stage, feedback=feedback)


# -- processes --------------------------------------------------------------------------------


@post("", Process, "Create an interview process", status_code=201)
def create_interview(request: Request, body: InterviewCreate, caller: Caller) -> Response:
    with write_session(request, caller) as session:
        wanted = body.recruiter_id  # type: ignore[attr-defined]
        assignee = session.check_can_create(str(wanted) if wanted else None)
        process = session.service.create_interview_process(
            body.candidate_id,  # type: ignore[attr-defined]
            body.company_name,  # type: ignore[attr-defined]
            body.role_title,  # type: ignore[attr-defined]
            body.feeder_source,  # type: ignore[attr-defined]
            body.recruiter_name,  # type: ignore[attr-defined]
        )
        session.assign(process.id, assignee)
    return record_response(Process, process, 201, f"/interviews/{process.id}")


@get("", ProcessPage, "List processes")
def list_interviews(
    request: Request,
    caller: Caller,
    filters: Filters = Depends(),
    company: Annotated[str | None, Query(min_length=1, max_length=MAX_NAME), NotBlank] = None,
) -> dict[str, Any]:
    return _page(request, caller, company, filters)


@get("/{interview_id}", ProcessWithStages, "A process with its stages")
def get_interview(request: Request, interview_id: UUID, caller: Caller) -> Response:
    detail = _read(request, caller, lambda s: s.service.get_interview(interview_id))
    stages = [construct(Stage, stage) for stage in detail.stages]
    return record_response(ProcessWithStages, detail.process, stages=stages)


@put("/{interview_id}", ProcessChange, "Change a process's status (through the state machine)")
def update_interview(
    request: Request, interview_id: UUID, body: InterviewUpdate, caller: Caller
) -> Response:
    with write_session(request, caller) as session:
        session.check_can_change(interview_id)
        process = session.service.complete_interview_process(
            interview_id, body.status, body.offer_details, body.final_outcome
        )
    feedback = feedback_after_commit(request, session)
    return record_response(ProcessChange, process, feedback=feedback)


@post("/{interview_id}/stages", Stage, "Add the next stage", status_code=201)
def add_stage(request: Request, interview_id: UUID, body: StageCreate, caller: Caller) -> Response:
    with write_session(request, caller) as session:
        session.check_can_change(interview_id)
        stage = session.service.add_interview_stage(
            interview_id,
            body.stage_name,  # type: ignore[attr-defined]
            body.stage_order,  # type: ignore[attr-defined]
            body.scheduled_date,  # type: ignore[attr-defined]
        )
    return record_response(Stage, stage, 201, f"/interviews/stages/{stage.id}")


@get("/{interview_id}/stages", StageList, "A process's stages in order")
def list_stages(request: Request, interview_id: UUID, caller: Caller) -> dict[str, Any]:
    detail = _read(request, caller, lambda s: s.service.get_interview(interview_id))
    return {
        "interview_process_id": str(detail.process.id),
        "stages": [s.model_dump(mode="json") for s in detail.stages],
    }
