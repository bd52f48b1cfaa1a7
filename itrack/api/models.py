"""Request and response models, derived from the record contract (ingest/contract.py).

Request bodies take their fields from the contract models (same types, limits and validators:
one definition) and refuse unknown fields (`Record`'s extra="forbid"). Responses are the
contract models themselves (subclassed only to attach OpenAPI examples).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    field_serializer,
    field_validator,
)

from ingest.contract import (
    InterviewProcess,
    InterviewStage,
    InterviewStatus,
    OfferDetails,
    Record,
    StageOutcome,
    naive_utc,
)
from ingest.service import FeedbackStatus

PROCESS_ID = "5b1c7f0e-3a8d-4c1e-9f57-0d2a6e4b8c11"
STAGE_ID = "0e6f2d7a-91b4-4c3e-8a5d-7f1e2c9b4a60"
PROCESS_EXAMPLE: dict[str, Any] = {
    "id": PROCESS_ID,
    "candidate_id": "cand-0042",
    "company_name": "Acme Corp",
    "role_title": "Senior Backend Engineer",
    "status": "in_progress",
    "feeder_source": "ex-amazon",
    "recruiter_name": "Dana Whitfield",
    "final_outcome": None,
    "offer_details": None,
    "created_at": "2026-03-02T09:15:00Z",
    "updated_at": "2026-03-02T09:15:00Z",
}
STAGE_EXAMPLE: dict[str, Any] = {
    "id": STAGE_ID,
    "interview_process_id": PROCESS_ID,
    "stage_name": "Phone Screen",
    "stage_order": 1,
    "scheduled_date": "2026-03-05T15:00:00Z",
    "completed_date": "2026-03-05T15:45:00Z",
    "outcome": "passed",
    "overall_rating": 4,
    "technical_rating": 4,
    "culture_fit_rating": 5,
    "communication_rating": 4,
    "feedback_notes": "Clear on trade-offs; strong on distributed systems.",
    "interviewer_names": ["Priya Natarajan"],
    "next_steps": None,
    "created_at": "2026-03-02T09:20:00Z",
    "updated_at": "2026-03-05T16:00:00Z",
}


def with_example(body: dict[str, Any], forbid: bool = True) -> ConfigDict:
    """A model's config with its OpenAPI example; unknown fields refused (`forbid`; a contract
    model's subclass keeps the contract's own setting)."""
    config = ConfigDict(json_schema_extra={"examples": [body]})
    if forbid:
        config["extra"] = "forbid"
    return config


NULL_IS_NOT_A_CHANGE = "null is not a value here: leave the field out to keep it as it is"


def _refuse_null(value: Any) -> Any:
    """An explicit null where absent means "unchanged": refused, never taken as absent (a 200
    that changed nothing) nor as "clear it" (the service has no such change)."""
    if value is None:
        raise ValueError(NULL_IS_NOT_A_CHANGE)
    return value


def _from_contract(
    name: str,
    model: type[Record],
    required: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    example: dict[str, Any] | None = None,
    doc: str = "",
    null_refused: tuple[str, ...] = (),
    **extra: Any,
) -> type[Record]:
    """A request model made of contract fields: same annotation and validators, unknown fields
    refused. `optional` fields default to None (absent = unchanged / not given); for a field in
    `null_refused` an explicit null is 422 naming the field."""
    fields: dict[str, Any] = {}
    for field in required:
        fields[field] = (_annotated(model, field), ...)
    for field in optional:
        fields[field] = (_annotated(model, field) | None, None)
    fields.update(extra)
    config = with_example(example or {})
    validators = (
        {"refuse_null": field_validator(*null_refused, mode="before")(_refuse_null)}
        if null_refused
        else {}
    )
    created = create_model(  # type: ignore[call-overload]
        name, __base__=Record, __doc__=doc, __validators__=validators, **fields
    )
    created.model_config.update(config)
    created.model_rebuild(force=True)
    return created


def _annotated(model: type[BaseModel], field: str) -> Any:
    """The field's full annotation (type plus constraints and validators) from the contract."""
    info = model.model_fields[field]
    if info.metadata:
        return Annotated[(info.annotation, *info.metadata)]  # type: ignore[valid-type]
    return info.annotation


InterviewCreate = _from_contract(
    "InterviewCreate",
    InterviewProcess,
    required=("candidate_id", "company_name", "role_title"),
    optional=("feeder_source", "recruiter_name"),
    recruiter_id=(
        UUID | None,
        Field(
            None,
            description="The user (token `sub`) the process is assigned to; a recruiter's own "
            "processes default to them. Only a lead may assign someone else.",
        ),
    ),
    example={
        "candidate_id": "cand-0042",
        "company_name": "Acme Corp",
        "role_title": "Senior Backend Engineer",
        "feeder_source": "ex-amazon",
        "recruiter_name": "Dana Whitfield",
    },
    doc="Start an interview process (status in_progress) for a candidate already in the store.",
)


class InterviewUpdate(Record):
    """A change of status (one move of the state machine), with offer details or a final
    outcome. Offer details on a process not yet offer_extended first move it there."""

    model_config = with_example(
        {
            "status": "offer_extended",
            "offer_details": {
                "base_salary": 185000,
                "currency": "USD",
                "bonus": 20000,
                "offer_date": "2026-04-01",
                "start_date": "2026-05-04",
            },
        }
    )
    status: InterviewStatus
    offer_details: OfferDetails | None = None
    final_outcome: _annotated(InterviewProcess, "final_outcome") | None = None  # type: ignore[valid-type]


StageCreate = _from_contract(
    "StageCreate",
    InterviewStage,
    required=("stage_name", "stage_order"),
    optional=("scheduled_date",),
    example={
        "stage_name": "Phone Screen",
        "stage_order": 1,
        "scheduled_date": "2026-03-05T15:00:00Z",
    },
    doc="The next stage of an open process: stage_order must be the current maximum + 1.",
)

StageUpdate = _from_contract(
    "StageUpdate",
    InterviewStage,
    optional=("stage_name", "scheduled_date", "next_steps"),
    interviewer_names=(
        _annotated(InterviewStage, "interviewer_names") | None,  # type: ignore[operator]
        None,
    ),
    example={
        "stage_name": "Onsite (virtual)",
        "scheduled_date": "2026-03-12T14:00:00Z",
        "interviewer_names": ["Priya Natarajan", "Bo Chen"],
        "next_steps": "Send the take-home brief the day before",
    },
    doc="Change a stage's name, schedule, interviewers or next steps (absent: unchanged; null "
    "refused); the outcome has its own endpoint.",
    null_refused=("stage_name", "scheduled_date", "next_steps", "interviewer_names"),
)

StageOutcomeUpdate = _from_contract(
    "StageOutcomeUpdate",
    InterviewStage,
    required=("outcome",),
    optional=(
        "overall_rating",
        "technical_rating",
        "culture_fit_rating",
        "communication_rating",
        "feedback_notes",
        "completed_date",
    ),
    interviewer_names=(
        _annotated(InterviewStage, "interviewer_names") | None,  # type: ignore[operator]
        None,
    ),
    example={  # the example stage's outcome, as recorded
        k: STAGE_EXAMPLE[k]
        for k in (
            "outcome",
            "overall_rating",
            "technical_rating",
            "culture_fit_rating",
            "communication_rating",
            "feedback_notes",
            "interviewer_names",
            "completed_date",
        )
    },
    doc="A stage's outcome with ratings and notes; failed closes an in_progress process as "
    "rejected_by_company. Notes and interviewers left out stay as they are (null refused); a "
    "null rating clears it; a null completed_date is the outcome's default.",
    # the service keeps notes and interviewers it is not given: a null was a 200 that kept them
    null_refused=("feedback_notes", "interviewer_names"),
)


# Timestamps are stored as naive UTC; over HTTP they say so (RFC 3339: "...Z").
UtcText = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


def _utc_text(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return naive_utc(value).isoformat() + "Z"


class Process(InterviewProcess):
    """An interview process (the record contract's InterviewProcess); timestamps in UTC."""

    model_config = with_example(PROCESS_EXAMPLE, forbid=False)

    @field_serializer("created_at", when_used="json")
    def _created(self, value: dt.datetime) -> UtcText:
        return _utc_text(value)  # type: ignore[return-value]

    @field_serializer("updated_at", when_used="json")
    def _updated(self, value: dt.datetime | None) -> UtcText | None:
        return _utc_text(value)


class Stage(InterviewStage):
    """An interview stage (the record contract's InterviewStage); timestamps in UTC."""

    model_config = with_example(STAGE_EXAMPLE, forbid=False)

    @field_serializer("created_at", when_used="json")
    def _created(self, value: dt.datetime) -> UtcText:
        return _utc_text(value)  # type: ignore[return-value]

    @field_serializer("updated_at", "scheduled_date", "completed_date", when_used="json")
    def _optional(self, value: dt.datetime | None) -> UtcText | None:
        return _utc_text(value)


def _with_feedback(record: dict[str, Any], detail: str) -> ConfigDict:
    """The example of a change that ran the feedback step (the record with `feedback`)."""
    return with_example({**record, "feedback": {"status": "ran", "detail": detail}}, forbid=False)


class ProcessChange(Process):
    """The process after a status change. `feedback` is set when the change reached
    offer_accepted, rejected_by_company or candidate_withdrew: whether the feedback step ran now
    or is deferred to the next build (or `POST /feedback/run`)."""

    model_config = _with_feedback(
        {**PROCESS_EXAMPLE, "status": "offer_accepted"},
        "feeders.json updated for ex-amazon; placement recorded",
    )
    feedback: FeedbackStatus | None = None


class StageChange(Stage):
    """The stage after its outcome was recorded. `feedback` is set when a failed outcome closed
    the process (rejected_by_company): whether the feedback step ran now or is deferred to the
    next build (or `POST /feedback/run`), with why."""

    model_config = _with_feedback(
        {**STAGE_EXAMPLE, "outcome": "failed"}, "feeders.json updated for ex-amazon"
    )
    feedback: FeedbackStatus | None = None


class ProcessWithStages(Process):
    """A process with its stages in stage order."""

    model_config = with_example({**PROCESS_EXAMPLE, "stages": [STAGE_EXAMPLE]}, forbid=False)
    stages: list[Stage]


class ProcessPage(BaseModel):
    """One page of processes in a stable order (created_at, then id)."""

    model_config = with_example(
        {
            "items": [PROCESS_EXAMPLE],
            "limit": 1,
            "next_cursor": "MjAyNi0wMy0wMlQwOToxNTowMHw1YjFj",
            "next": "/interviews?limit=1&cursor=MjAyNi0wMy0wMlQwOToxNTowMHw1YjFj",
        }
    )
    items: list[Process]
    limit: int
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")
    next: str | None = Field(
        None,
        description="The next page's path and query, a relative reference (resolve it against "
        "the address called); null on the last page.",
    )


class StageList(BaseModel):
    model_config = with_example({"interview_process_id": PROCESS_ID, "stages": [STAGE_EXAMPLE]})
    interview_process_id: str
    stages: list[Stage]


class CandidateHistory(BaseModel):
    model_config = with_example(
        {
            "candidate_id": "cand-0042",
            "processes": [{**PROCESS_EXAMPLE, "stages": [STAGE_EXAMPLE]}],
        }
    )
    candidate_id: str
    processes: list[ProcessWithStages]


__all__ = [
    "CandidateHistory",
    "InterviewCreate",
    "InterviewUpdate",
    "Process",
    "ProcessPage",
    "ProcessWithStages",
    "Stage",
    "StageChange",
    "StageCreate",
    "StageList",
    "StageOutcomeUpdate",
    "StageOutcome",
    "StageUpdate",
]
