"""Service: the interview lifecycle one request at a time, with the business rules.

Same contract as the nightly ingest: records are built as the contract's models (so the rules
are the contract's), status moves use `is_valid_move`, and every write of a call is one unit of
work of the plugged-in store (`ingest.ports`). Automatic rules (README, "The rules"):

- the process's `updated_at` moves strictly forward on every change to it or its stages;
- a new stage must take the next `stage_order` (max + 1);
- a failed stage closes an `in_progress` process as `rejected_by_company`;
- recording offer details moves the process to `offer_extended`;
- nothing changes on a closed (terminal) process;
- reaching a feedback-trigger status calls the registered feedback callbacks.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from ingest.contract import (
    FEEDBACK_TRIGGER_STATUSES,
    OFFER_STATUSES,
    RATING_FIELDS,
    TERMINAL_STATUSES,
    TRANSITIONS,
    InterviewProcess,
    InterviewStage,
    InterviewStatus,
    OfferDetails,
    StageOutcome,
    Timestamp,
    is_valid_move,
    stage_date_error,
)
from ingest.errors import NotFoundError, Refused, json_reason, refuse_duplicate_keys
from ingest.field_errors import field_errors
from ingest.ports import CORRECTION_SOURCE, Correction, InterviewRepository, InterviewStore
from ingest.stamps import utc_now

S = InterviewStatus
ONE_TICK = dt.timedelta(microseconds=1)
# Outcomes that mean the stage took place: they get a completed_date.
HELD_OUTCOMES = frozenset({StageOutcome.PASSED, StageOutcome.FAILED, StageOutcome.NO_SHOW})
# `--at` may be this far ahead of the clock (clock skew between machines), no further.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
_TIMESTAMP: TypeAdapter[dt.datetime] = TypeAdapter(Timestamp)
_M = TypeVar("_M", bound=BaseModel)
_E = TypeVar("_E", bound=StrEnum)


@dataclass(frozen=True)
class FeedbackTrigger:
    """A process reached a status in FEEDBACK_TRIGGER_STATUSES (passed to the callbacks)."""

    interview_id: UUID
    candidate_id: str
    feeder_source: str | None  # the process's feeder, else its candidate's
    from_status: InterviewStatus
    to_status: InterviewStatus
    changed_at: dt.datetime
    run_id: str


@dataclass(frozen=True)
class InterviewDetail:
    """A process with its stages in stage order."""

    process: InterviewProcess
    stages: list[InterviewStage]

    def as_json(self) -> dict[str, Any]:
        record = self.process.model_dump(mode="json")
        record["stages"] = [stage.model_dump(mode="json") for stage in self.stages]
        return record


FeedbackCallback = Callable[[FeedbackTrigger], object]
log = logging.getLogger(__name__)


class FeedbackStatus(BaseModel):
    """What became of the feedback step for a change that reached a trigger status: `ran`
    (feeders.json and placements updated now) or `deferred` (the change stands; the next
    `itrack build` picks it up), with why."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ran", "deferred"]
    detail: str

    def __str__(self) -> str:
        what = "ran" if self.status == "ran" else "deferred to the next build"
        return f"feedback {what}: {self.detail}"


class CompletedProcess(InterviewProcess):
    """The process after `complete_interview_process`, with `feedback` set when the move
    reached offer_accepted, rejected_by_company or candidate_withdrew (else None)."""

    feedback: FeedbackStatus | None = None

    def as_process(self) -> InterviewProcess:
        return InterviewProcess.model_validate(self.model_dump(exclude={"feedback"}))


@dataclass(frozen=True)
class OutcomeResult:
    """A stage after an outcome or an amendment, and its process (which it may have closed or
    reopened); `feedback` is set when the process was closed by a failed stage."""

    stage: InterviewStage
    process: InterviewProcess
    feedback: FeedbackStatus | None = None

    def as_json(self) -> dict[str, Any]:
        record = {
            "stage": self.stage.model_dump(mode="json"),
            "process": self.process.model_dump(mode="json"),
        }
        if self.feedback is not None:
            record["feedback"] = self.feedback.model_dump(mode="json")
        return record


def _first_failed(stages: Sequence[InterviewStage], besides: UUID) -> InterviewStage | None:
    """The failed stage of the lowest stage_order other than `besides` (None: none failed)."""
    failed = [s for s in stages if s.id != besides and s.outcome == StageOutcome.FAILED]
    return min(failed, key=lambda s: s.stage_order, default=None)


def _record_changes(
    repo: InterviewRepository,
    kind: str,
    before: InterviewStage | InterviewProcess,
    after: InterviewStage | InterviewProcess,
    fields: Sequence[str],
    reason: str,
    changed_by: str,
) -> None:
    """One corrections row per field in `fields` whose value differs from `before` to `after`
    (a stage or a process), with the reason and who made the change."""
    process_id = after.interview_process_id if isinstance(after, InterviewStage) else after.id
    for name in fields:
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            correction = Correction(kind, after.id, process_id, name, old, new, reason, changed_by)
            repo.record_correction(correction)


@dataclass(frozen=True)
class _StageResult:
    """What a caller says about a stage: its outcome, ratings (as stage fields), notes,
    interviewers and when it took place (None: decided by the outcome)."""

    outcome: StageOutcome
    ratings: dict[str, Any]
    feedback: str | None
    interviewer_names: Sequence[str] | None
    completed_date: dt.datetime | str | None

    @classmethod
    def parse(
        cls,
        outcome: StageOutcome | str,
        ratings: Mapping[str, Any] | None,
        feedback: str | None,
        interviewer_names: Sequence[str] | None,
        completed_date: dt.datetime | str | None,
    ) -> _StageResult:
        parsed = _parse_enum(StageOutcome, outcome, "outcome")
        return cls(parsed, _rating_fields(ratings), feedback, interviewer_names, completed_date)


@dataclass
class _Call:
    """State of one write call: its repository, the time of the event (`--at`, else the clock
    reading) and the triggers it fired."""

    repo: InterviewRepository
    now: dt.datetime
    at: dt.datetime | None = None  # the explicit event time, when backfilling
    triggers: list[FeedbackTrigger] = field(default_factory=list)
    feedback: FeedbackStatus | None = None  # set after the commit when a trigger fired


class InterviewService:
    """The interview lifecycle on a store (`ingest.ports.InterviewStore`): one unit of work per
    public method, so each call is one transaction on whichever store is plugged in."""

    def __init__(self, store: InterviewStore) -> None:
        self.store = store
        self._callbacks: list[FeedbackCallback] = []

    def on_feedback_trigger(self, callback: FeedbackCallback) -> FeedbackCallback:
        """Register a callback run when a process reaches offer_accepted, rejected_by_company
        or candidate_withdrew. Callbacks run after the change is committed and the store is
        released (so they may open it); the status-history row was written in the same
        transaction as the change. Usable as a decorator."""
        self._callbacks.append(callback)
        return callback

    # -- writes -------------------------------------------------------------------------------

    def create_interview_process(
        self,
        candidate_id: str,
        company_name: str,
        role_title: str,
        feeder_source: str | None = None,
        recruiter_name: str | None = None,
        *,
        at: dt.datetime | str | None = None,
        check_names: bool = False,
        new_company: bool = False,
        new_feeder: bool = False,
    ) -> InterviewProcess:
        """Start a process (`in_progress`) for a candidate already in the store.

        `at` backdates it (created_at; validated as the contract's timestamps). With
        `check_names` a company or feeder that is not stored yet is refused unless
        `new_company` / `new_feeder` says it is deliberately new, and one close to a known name
        is refused with "did you mean" (the CLI always checks)."""
        with self._write("create", at) as call:
            try:
                call.repo.candidate_feeder(candidate_id)
            except NotFoundError:
                raise NotFoundError(
                    f"candidate '{candidate_id}' not found: {call.repo.candidates_come_from}; "
                    "a process without its candidate is an orphan"
                ) from None
            if check_names:
                _check_name(
                    call.repo.known_names("company_name"),
                    company_name,
                    "company",
                    "--new-company",
                    new_company,
                )
                if feeder_source is not None:
                    _check_name(
                        call.repo.known_names("feeder_source"),
                        feeder_source,
                        "feeder",
                        "--new-feeder",
                        new_feeder,
                    )
            process = _build(
                InterviewProcess,
                "process",
                id=uuid4(),
                candidate_id=candidate_id,
                company_name=company_name,
                role_title=role_title,
                feeder_source=feeder_source,
                recruiter_name=recruiter_name,
                created_at=call.now,
            )
            return call.repo.create_interview_process(process)

    def add_interview_stage(
        self,
        interview_id: UUID | str,
        stage_name: str,
        stage_order: int,
        scheduled_date: dt.datetime | str | None = None,
        *,
        at: dt.datetime | str | None = None,
    ) -> InterviewStage:
        """Add the next stage (stage_order = current max + 1) to an open process; `at`
        backdates the record (not before the process's last change)."""
        with self._write("add-stage", at) as call:
            process = call.repo.get_interview_by_id(interview_id)
            _require_open(process, "no stage can be added")
            _check_at(call, process)
            stage = _build(
                InterviewStage,
                "stage",
                id=uuid4(),
                interview_process_id=process.id,
                stage_name=stage_name,
                stage_order=stage_order,
                scheduled_date=scheduled_date,
                created_at=call.now,
            )
            expected = call.repo.max_stage_order(process.id) + 1
            if stage.stage_order != expected:
                raise Refused(
                    f"stage_order {stage.stage_order} refused: the next stage of process "
                    f"{process.id} must have stage_order {expected}"
                )
            _check_stage_dates(stage, process)
            created = call.repo.create_interview_stage(stage)
            self._touch(call, process)
            return created

    def update_stage_details(
        self,
        stage_id: UUID | str,
        *,
        stage_name: str | None = None,
        scheduled_date: dt.datetime | str | None = None,
        interviewer_names: Sequence[str] | None = None,
        next_steps: str | None = None,
    ) -> InterviewStage:
        """Change a stage's name, schedule, interviewers or next steps (None: unchanged) on an
        open process; its order and outcome do not change here (`update_stage_outcome`)."""
        with self._write("update-stage") as call:
            stage = call.repo.get_stage_by_id(stage_id)
            process = call.repo.get_interview_by_id(stage.interview_process_id)
            _require_open(process, "its stages cannot be changed")
            given = {
                "stage_name": stage_name,
                "scheduled_date": scheduled_date,
                "interviewer_names": (
                    list(interviewer_names) if interviewer_names is not None else None
                ),
                "next_steps": next_steps,
            }
            changes = {k: v for k, v in given.items() if v is not None}
            changes["updated_at"] = _next_time(call.now, stage.updated_at)
            updated = _build(InterviewStage, "stage", **{**stage.model_dump(), **changes})
            _check_stage_dates(updated, process)
            saved = call.repo.update_stage(updated)
            self._touch(call, process)
            return saved

    def update_stage_outcome(
        self, stage_id: UUID | str, outcome: StageOutcome | str, *args: Any, **kwargs: Any
    ) -> InterviewStage:
        """The seed's name: `record_stage_outcome` (same arguments), returning only the stage."""
        return self.record_stage_outcome(stage_id, outcome, *args, **kwargs).stage

    def record_stage_outcome(
        self,
        stage_id: UUID | str,
        outcome: StageOutcome | str,
        ratings: Mapping[str, Any] | None = None,
        feedback: str | None = None,
        interviewer_names: Sequence[str] | None = None,
        completed_date: dt.datetime | str | None = None,
        *,
        at: dt.datetime | str | None = None,
    ) -> OutcomeResult:
        """Record a stage's outcome, ratings, notes and interviewers; returns the stage and its
        process (a script sees an automatic close).

        passed / failed / no_show set `completed_date` (given, else `at`, else already stored,
        else now); pending and cancelled clear it unless given. A failed stage closes an
        in_progress process as rejected_by_company with final_outcome "Failed <stage name>".
        """
        said = _StageResult.parse(outcome, ratings, feedback, interviewer_names, completed_date)
        with self._write("outcome", at) as call:
            stage = call.repo.get_stage_by_id(stage_id)
            process = call.repo.get_interview_by_id(stage.interview_process_id)
            _require_open(process, "outcomes cannot be recorded")
            _check_at(call, process)
            saved = self._save_outcome(call, stage, process, said)
            closed = self._close_on_failure(call, stage, process, said)
            process = closed or self._touch(call, process)
        return OutcomeResult(saved, process, call.feedback)

    def amend_stage_outcome(
        self,
        stage_id: UUID | str,
        outcome: StageOutcome | str,
        reason: str,
        changed_by: str,
        ratings: Mapping[str, Any] | None = None,
        feedback: str | None = None,
        interviewer_names: Sequence[str] | None = None,
        completed_date: dt.datetime | str | None = None,
        *,
        at: dt.datetime | str | None = None,
    ) -> OutcomeResult:
        """Correct a stage's recorded outcome (also on a closed process), with a reason.

        Every changed field is written to `corrections` (old value, new value, reason, who).
        If the process was closed by this stage's failure (the stage had failed and the process
        is rejected_by_company, "Failed <stage name>") and the stage no longer failed, the
        process is reopened to the status it had before, unless another of its stages failed
        (amended to failed meanwhile): then it stays closed by the first of those ("Failed
        <its name>"), as the interviews would have ended there; if the amended
        outcome is `failed` on an in_progress process, it closes as a recorded failure would.
        Status changes of the call are history rows with source `correction`.
        """
        said = _StageResult.parse(outcome, ratings, feedback, interviewer_names, completed_date)
        reason = _required_reason(reason)
        with self._write("amend", at) as call:
            call.repo.history_source = CORRECTION_SOURCE
            stage = call.repo.get_stage_by_id(stage_id)
            process = call.repo.get_interview_by_id(stage.interview_process_id)
            saved = self._save_outcome(call, stage, process, said)
            changed = _changed_fields(stage, saved)
            if not changed:
                raise Refused(
                    f"stage {stage.id} already has outcome {stage.outcome}: nothing to amend"
                )
            _record_changes(call.repo, "stage", stage, saved, changed, reason, changed_by)
            # Only the failure that closed the process reopens it: a stage that had failed,
            # by its name (another stage of that name that passed, or a rating added to a
            # passed stage of a process closed by hand, leaves the process closed).
            closed_by_it = (
                stage.outcome == StageOutcome.FAILED
                and process.status is S.REJECTED_BY_COMPANY
                and process.final_outcome == f"Failed {stage.stage_name}"
            )
            reopening = closed_by_it and said.outcome is not StageOutcome.FAILED
            stages = call.repo.get_stages_by_interview(process.id) if reopening else []
            if failing := _first_failed(stages, stage.id):
                # closed still, by the failure that remains (never in_progress with one)
                refailed = self._touch(call, process, final_outcome=f"Failed {failing.stage_name}")
                fields = ["final_outcome"]
                _record_changes(call.repo, "process", process, refailed, fields, reason, changed_by)
                process = refailed
            elif reopening:
                before = call.repo.status_before(process.id, S.REJECTED_BY_COMPANY)
                process = self._reopen(call, process, before or S.IN_PROGRESS, reason, changed_by)
            elif closed := self._close_on_failure(call, stage, process, said):
                fields = ["status", "final_outcome"]  # both change, as a reopen records both
                _record_changes(call.repo, "process", process, closed, fields, reason, changed_by)
                process = closed
            else:
                process = self._touch(call, process)
        return OutcomeResult(saved, process, call.feedback)

    def reopen_interview_process(
        self,
        interview_id: UUID | str,
        reason: str,
        changed_by: str,
        to_status: InterviewStatus | str | None = None,
        *,
        at: dt.datetime | str | None = None,
    ) -> InterviewProcess:
        """Reopen a closed process, with a reason: back to `to_status` (default: the status it
        had before it closed), final_outcome cleared; the move is a history row with source
        `correction` and both changes are in `corrections` (who, why)."""
        reason = _required_reason(reason)
        target = _parse_enum(InterviewStatus, to_status, "status") if to_status else None
        if target is not None and target in TERMINAL_STATUSES:
            raise Refused(f"a process is reopened to an open status, not to {target}")
        with self._write("reopen", at) as call:
            call.repo.history_source = CORRECTION_SOURCE
            process = call.repo.get_interview_by_id(interview_id)
            if process.status not in TERMINAL_STATUSES:
                raise Refused(
                    f"process {process.id} is not closed ({process.status}): nothing to reopen"
                )
            _check_at(call, process)
            if target is None:
                before = call.repo.status_before(process.id, process.status)
                target = before if before and before not in TERMINAL_STATUSES else S.IN_PROGRESS
            return self._reopen(call, process, target, reason, changed_by)

    def complete_interview_process(
        self,
        interview_id: UUID | str,
        final_status: InterviewStatus | str,
        offer_details: OfferDetails | Mapping[str, Any] | str | None = None,
        final_outcome: str | None = None,
        *,
        at: dt.datetime | str | None = None,
    ) -> CompletedProcess:
        """Move a process to `final_status` (one move of the state machine).

        Offer details (model, dict or JSON text) are stored and, if the process is not yet
        `offer_extended`, first move it there (a history row of its own), so
        `complete(id, 'offer_accepted', offer)` from in_progress records both moves. With
        status offer_extended on an offer_extended process, the details are revised.

        `final_outcome` is this move's reason; a move without one leaves none (a reason given
        with an earlier move is not carried into this one).

        Reaching offer_accepted, rejected_by_company or candidate_withdrew runs the registered
        feedback step after the commit; `result.feedback` says whether it ran or was deferred
        to the next build (the move itself stands either way).
        """
        target = _parse_enum(InterviewStatus, final_status, "status")
        offer = _offer(offer_details)
        if offer is not None and target not in OFFER_STATUSES:
            allowed = ", ".join(sorted(OFFER_STATUSES))
            raise Refused(f"offer details go with status {allowed}; not with {target}")
        with self._write("complete", at) as call:
            process = call.repo.get_interview_by_id(interview_id)
            _check_at(call, process)
            extended = False  # moved to offer_extended with the details in this call
            if offer is not None:
                update: dict[str, Any] = {"offer_details": offer}
                if target is S.OFFER_EXTENDED and final_outcome is not None:
                    # saved with the details below, as a move without details saves it
                    update["final_outcome"] = final_outcome
                process = process.model_copy(update=update)
                if process.status is not S.OFFER_EXTENDED:
                    process, extended = self._move(call, process, S.OFFER_EXTENDED), True
            if offer is not None and target is S.OFFER_EXTENDED:
                # the move saved the details; else they revise an extended offer
                saved = process if extended else self._touch(call, process)
            else:
                # the reason belongs to the move that gives it: one given earlier (an on_hold's
                # "waiting on budget") is not this move's, and a rejection without a reason
                # must not report it as the reason the company gave
                unexplained = process.model_copy(update={"final_outcome": None})
                saved = self._move(call, unexplained, target, final_outcome=final_outcome)
        return CompletedProcess.model_validate({**saved.model_dump(), "feedback": call.feedback})

    # -- reads --------------------------------------------------------------------------------

    def get_interview(self, interview_id: UUID | str) -> InterviewDetail:
        """A process with its stages."""
        with self._read() as repo:
            process = repo.get_interview_by_id(interview_id)
            return InterviewDetail(process, repo.get_stages_by_interview(process.id))

    def get_audit(self, interview_id: UUID | str) -> dict[str, Any]:
        """A process's status history and corrections (the audit trail), oldest first."""
        with self._read() as repo:
            process = repo.get_interview_by_id(interview_id)
            return {
                "process_id": str(process.id),
                "status_history": repo.status_history(process.id),
                "corrections": repo.corrections(process.id),
            }

    def open_duplicates(self, process: InterviewProcess) -> list[InterviewProcess]:
        """Other open processes of the same candidate for the same company and role."""
        terminal = sorted(s.value for s in TERMINAL_STATUSES)
        with self._read() as repo:
            return [
                p
                for p in repo.open_processes_like(
                    process.candidate_id, process.company_name, process.role_title, terminal
                )
                if p.id != process.id
            ]

    def get_candidate_interview_history(self, candidate_id: str) -> list[InterviewDetail]:
        """Every process of a candidate (oldest first) with its stages."""
        with self._read() as repo:
            repo.candidate_feeder(candidate_id)  # NotFoundError for an unknown candidate
            return [
                InterviewDetail(p, repo.get_stages_by_interview(p.id))
                for p in repo.get_interviews_by_candidate(candidate_id)
            ]

    def get_company_interviews(
        self, company_name: str, status: InterviewStatus | str | None = None
    ) -> list[InterviewProcess]:
        return self.list_interviews(company_name=company_name, status=status)

    def list_interviews(
        self,
        company_name: str | None = None,
        status: InterviewStatus | str | None = None,
        candidate_id: str | None = None,
    ) -> list[InterviewProcess]:
        """Processes matching every filter given (all processes without filters)."""
        status = _parse_enum(InterviewStatus, status, "status") if status else None
        with self._read() as repo:
            return repo.find_interviews(company_name, status, candidate_id)

    # -- internals ----------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[InterviewRepository]:
        with self.store.reading() as repo:
            yield repo

    @contextmanager
    def _write(self, command: str, at: dt.datetime | str | None = None) -> Iterator[_Call]:
        """One transaction per call, audited by the store; callbacks after it is committed."""
        when = parse_at(at)
        with self.store.writing() as repo:
            started = utc_now()
            call = _Call(repo, when or started, when)
            yield call
            repo.record_call(command, started)
        if call.triggers:
            call.feedback = self._run_feedback(call.triggers)

    def _run_feedback(self, triggers: list[FeedbackTrigger]) -> FeedbackStatus:
        return run_feedback_callbacks(self._callbacks, triggers)

    def _close_on_failure(
        self, call: _Call, stage: InterviewStage, process: InterviewProcess, said: _StageResult
    ) -> InterviewProcess | None:
        """A failed stage closes an in_progress process as rejected_by_company ("Failed
        <stage name>"); the closed process, or None when nothing closed."""
        if said.outcome is not StageOutcome.FAILED or process.status is not S.IN_PROGRESS:
            return None
        reason = f"Failed {stage.stage_name}"
        return self._move(call, process, S.REJECTED_BY_COMPANY, final_outcome=reason)

    def _save_outcome(
        self, call: _Call, stage: InterviewStage, process: InterviewProcess, said: _StageResult
    ) -> InterviewStage:
        completed_date = said.completed_date
        if completed_date is None and said.outcome in HELD_OUTCOMES:
            completed_date = call.at or stage.completed_date or call.now
        changes: dict[str, Any] = {
            "outcome": said.outcome,
            "completed_date": completed_date,
            "updated_at": _next_time(call.now, stage.updated_at),
            **said.ratings,
        }
        if said.feedback is not None:
            changes["feedback_notes"] = said.feedback
        if said.interviewer_names is not None:
            changes["interviewer_names"] = list(said.interviewer_names)
        updated = _build(InterviewStage, "stage", **{**stage.model_dump(), **changes})
        _check_stage_dates(updated, process)
        return call.repo.update_stage(updated)

    def _reopen(
        self,
        call: _Call,
        process: InterviewProcess,
        to: InterviewStatus,
        reason: str,
        changed_by: str,
    ) -> InterviewProcess:
        """Leave a terminal status (a correction, not a move of the state machine)."""
        changes: dict[str, Any] = {
            "status": to,
            "final_outcome": None,
            "updated_at": _next_time(call.now, process.updated_at),
        }
        if to not in OFFER_STATUSES:  # offer details go with offer statuses only
            changes["offer_details"] = None
        reopened = _build(InterviewProcess, "process", **{**process.model_dump(), **changes})
        saved = call.repo.update_interview(reopened)
        fields = ["status", "final_outcome", "offer_details"]
        _record_changes(call.repo, "process", process, saved, fields, reason, changed_by)
        return saved

    def _touch(self, call: _Call, process: InterviewProcess, **changes: Any) -> InterviewProcess:
        """Save the process (with `changes`, no status among them) with its updated_at moved
        strictly forward."""
        when = _next_time(call.now, process.updated_at)
        touched = _build(
            InterviewProcess, "process", **{**process.model_dump(), **changes, "updated_at": when}
        )
        return call.repo.update_interview(touched)

    def _move(
        self,
        call: _Call,
        process: InterviewProcess,
        to: InterviewStatus,
        final_outcome: str | None = None,
    ) -> InterviewProcess:
        """One move of the state machine, written with its history row; may fire a trigger."""
        if not is_valid_move(process.status, to):
            allowed = ", ".join(sorted(TRANSITIONS.get(process.status, ())))
            allowed = allowed or f"none, {process.status} is final"
            raise Refused(
                f"process {process.id} cannot move from {process.status} to {to}; "
                f"allowed next: {allowed}"
            )
        changes: dict[str, Any] = {
            "status": to,
            "updated_at": _next_time(call.now, process.updated_at),
        }
        if final_outcome is not None:
            changes["final_outcome"] = final_outcome
        moved = _build(InterviewProcess, "process", **{**process.model_dump(), **changes})
        saved = call.repo.update_interview(moved)
        if to in FEEDBACK_TRIGGER_STATUSES:
            call.triggers.append(
                FeedbackTrigger(
                    interview_id=saved.id,
                    candidate_id=saved.candidate_id,
                    feeder_source=saved.feeder_source or _candidate_feeder(call, saved),
                    from_status=process.status,
                    to_status=to,
                    changed_at=saved.updated_at or call.now,
                    run_id=call.repo.run_id,
                )
            )
        return saved


def run_feedback_callbacks(
    callbacks: Sequence[FeedbackCallback], triggers: Sequence[FeedbackTrigger]
) -> FeedbackStatus:
    """Every callback for every trigger, after the change is committed; a failure is reported,
    never raised: the operational change stands and the nightly build does the feedback step.
    (The service runs its own callbacks with this; the HTTP API, whose transaction ends after
    the service call, runs it once the request has committed.)"""
    if not callbacks:
        return FeedbackStatus(status="deferred", detail="no feedback step registered")
    done, failed = [], []
    for trigger in triggers:
        for callback in callbacks:
            try:
                outcome = callback(trigger)
            except Exception as exc:  # reported in the result, never raised
                log.info("feedback for %s deferred: %s", trigger.interview_id, exc)
                text = str(exc).strip().splitlines()
                failed.append(text[0] if text else type(exc).__name__)
            else:
                if outcome is not None:
                    done.append(str(outcome))
    if failed:
        return FeedbackStatus(status="deferred", detail="; ".join(failed))
    return FeedbackStatus(status="ran", detail="; ".join(done) or "callbacks ran")


def parse_at(value: dt.datetime | str | None) -> dt.datetime | None:
    """An explicit event time (`--at`): the contract's timestamp rules, and not in the future."""
    if value is None:
        return None
    try:
        at = _TIMESTAMP.validate_python(value)
    except ValidationError as exc:
        raise Refused(f"--at '{value}' refused: {describe(exc)}") from None
    if at > utc_now() + FUTURE_TOLERANCE:
        raise Refused(
            f"--at {at.isoformat()} is in the future; events are recorded when or after they happen"
        )
    return at


def _check_at(call: _Call, process: InterviewProcess) -> None:
    """A backdated event may not precede the process's last recorded change: history stays in
    the order things happened."""
    if call.at is not None and process.updated_at is not None and call.at < process.updated_at:
        raise Refused(
            f"--at {call.at.isoformat()} is before the last change of process {process.id} "
            f"({process.updated_at.isoformat()}); backfill events in the order they happened"
        )


def _required_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise Refused("a correction needs a reason (--reason TEXT): it is kept in the audit trail")
    return text


def _changed_fields(before: BaseModel, after: BaseModel) -> list[str]:
    skip = {"updated_at"}
    return [
        name
        for name in type(before).model_fields
        if name not in skip and getattr(before, name) != getattr(after, name)
    ]


def _spelling(name: str) -> str:
    """What makes two spellings one name: case and runs of whitespace do not count."""
    return " ".join(name.split()).casefold()


def _check_name(known: list[str], value: str, what: str, flag: str, allow_new: bool) -> None:
    """A company or feeder must be a known one, or deliberately new (`flag`); a name close to a
    known one (typo, other case or spacing) is refused with the candidates, one spelling each
    (one without stray spaces preferred)."""
    if value in known or allow_new:
        return
    spelled: dict[str, str] = {}
    for name in known:  # sorted: of two clean spellings the later (lower case) one stays
        current = spelled.get(_spelling(name))
        if current is None or current.strip() != current or name.strip() == name:
            spelled[_spelling(name)] = name
    key = _spelling(value)
    close = ([key] if key in spelled else []) + difflib.get_close_matches(
        key, list(spelled), 3, 0.75
    )
    close = list(dict.fromkeys(spelled[c] for c in close))
    if close:
        options = " or ".join(f"'{c}'" for c in close)
        raise Refused(
            f"unknown {what} '{value}': did you mean {options}? "
            f"(pass {flag} if '{value}' is really a new {what})"
        )
    raise Refused(f"{what} '{value}' is not known yet: pass {flag} to record a new {what}")


def _next_time(now: dt.datetime, previous: dt.datetime | None) -> dt.datetime:
    """Strictly after `previous` even if the clock is behind it (ingested future timestamps)."""
    if previous is None:
        return now
    try:
        return max(now, previous + ONE_TICK)
    except OverflowError:  # a stored stamp at the very end of what Python can hold
        raise Refused(
            f"updated_at {previous.isoformat()} is at the end of the date range; "
            "nothing can follow it"
        ) from None


def _candidate_feeder(call: _Call, process: InterviewProcess) -> str | None:
    try:
        return call.repo.candidate_feeder(process.candidate_id)
    except NotFoundError:
        return None


def _require_open(process: InterviewProcess, consequence: str) -> None:
    if process.status in TERMINAL_STATUSES:
        raise Refused(f"process {process.id} is closed ({process.status}): {consequence}")


def _check_stage_dates(stage: InterviewStage, process: InterviewProcess) -> None:
    error = stage_date_error(stage, process.created_at)
    if error:
        raise Refused(f"stage refused: {error}")


def _build(model: type[_M], what: str, **fields: Any) -> _M:
    """Construct a contract model; its validation errors become one-line refusals."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise Refused(f"{what} refused: {describe(exc, model)}") from None


def describe(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """A pydantic error as one line, `field: message; ...`, each field as the input spells it
    (`base_salary`, never a union member's `base_salary.int`)."""
    found = field_errors(exc.errors(include_url=False), model)
    return "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in found)


def _parse_enum(enum: type[_E], value: Any, what: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise Refused(f"unknown {what} '{value}'; expected one of: {allowed}") from None


def _rating_fields(ratings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Ratings by contract field name; short names (overall, ...) accepted, others refused."""
    values: dict[str, Any] = {}
    for key, value in (ratings or {}).items():
        name = key if key in RATING_FIELDS else f"{key}_rating"
        if name not in RATING_FIELDS:
            known = ", ".join(f.removesuffix("_rating") for f in RATING_FIELDS)
            raise Refused(f"unknown rating '{key}'; known ratings: {known}")
        values[name] = value
    return values


def _offer(value: OfferDetails | Mapping[str, Any] | str | None) -> OfferDetails | None:
    """Offer details from a model, a mapping or JSON text, validated by the contract."""
    if value is None or isinstance(value, OfferDetails):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value, object_pairs_hook=refuse_duplicate_keys)
        except ValueError as exc:  # malformed, or a number too long to read
            raise Refused(f"offer details are not valid JSON: {json_reason(exc)}") from None
        except RecursionError:
            raise Refused("offer details are not valid JSON: nested too deeply") from None
    if not isinstance(value, Mapping):
        raise Refused("offer details must be a JSON object")
    return _build(OfferDetails, "offer details", **value)
