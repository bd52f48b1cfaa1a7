"""InterviewService business rules, each refused and allowed, on both stores.

Every behaviour test runs twice (the `db` fixture is parametrized): on the embedded DuckDB raw
store and on a migrated PostgreSQL database, so the two adapters cannot drift. What only one
store does (the DuckDB call audit in `ingest_runs`, its writer lock) is tested on that store.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.contract import InterviewStatus, OfferDetails
from ingest.errors import NotFoundError, Refused, StoreBusyError
from ingest.service import FeedbackStatus, FeedbackTrigger, InterviewService
from ingest.store.duckdb.repository import DuckDBInterviewStore
from itrack.cli.interview import app
from tests import pg
from tests.conftest import assert_exit
from tests.stores import DuckStore, PgStore

T0 = dt.datetime(2025, 1, 1)
OFFER = {"base_salary": 150000, "currency": "USD", "offer_date": "2025-03-01"}


Store = DuckStore | PgStore


def query(db: Store, sql: str, params: list | None = None) -> list[tuple]:
    return db.query(sql, params)


def history(db: Store, process_id: uuid.UUID) -> list[tuple]:
    return query(
        db,
        "select from_status, to_status from interview_status_history "
        "where interview_process_id = ? order by changed_at",
        [process_id],
    )


@pytest.fixture(params=["duckdb", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store under test, holding candidates c1 (linkedin) and c2 (referral)."""
    if request.param == "duckdb":
        yield from _seeded(DuckStore(tmp_path / "warehouse.duckdb"))
        return
    server = request.getfixturevalue("pg_server")
    template = request.getfixturevalue("pg_template")
    with pg.database(server, template=template) as dsn:
        yield from _seeded(PgStore(dsn))


def _seeded(store: Store) -> Iterator[Store]:
    store.add_candidate("c1", "linkedin")
    store.add_candidate("c2", "referral")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def duck(tmp_path: Path) -> DuckStore:
    """The embedded store alone, for what only it does (its call audit, its writer lock)."""
    store = DuckStore(tmp_path / "warehouse.duckdb")
    store.add_candidate("c1", "linkedin")
    store.add_candidate("c2", "referral")
    return store


@pytest.fixture
def service(db: Store) -> InterviewService:
    return db.service()


@pytest.fixture
def process(service: InterviewService):
    return service.create_interview_process("c1", "Acme", "Engineer", recruiter_name="Rita")


# -- creation and the candidate reference -----------------------------------------------------


def test_create_process_for_known_candidate(service, db, process):
    assert process.status is InterviewStatus.IN_PROGRESS
    assert (process.candidate_id, process.company_name, process.recruiter_name) == (
        "c1",
        "Acme",
        "Rita",
    )
    assert process.updated_at == process.created_at
    rows = query(
        db,
        "select from_status, to_status, changed_at, source, run_id, recorded_at >= changed_at "
        "from interview_status_history",
    )
    (from_status, to_status, changed_at, source, run_id, recorded_later) = rows[0]
    assert (from_status, to_status, changed_at, source, recorded_later) == (
        None,
        "in_progress",
        process.created_at,
        "service",
        True,
    )
    assert run_id.startswith("api-")


def test_each_completed_call_is_audited(service, db, process):
    [(run_id,)] = query(db, "select run_id from interview_status_history")
    assert db.calls() == [(run_id, "interview create")]
    with pytest.raises(Refused):
        service.add_interview_stage(process.id, "Phone Screen", 2)
    assert db.calls() == [(run_id, "interview create")]  # the refused call: none
    stage = service.add_interview_stage(process.id, "Phone Screen", 1)
    service.update_stage_details(stage.id, next_steps="book the onsite")
    service.complete_interview_process(process.id, "on_hold")
    assert [command for _, command in db.calls()] == [
        "interview create",
        "interview add-stage",
        "interview update-stage",
        "interview complete",
    ]
    assert len({run for run, _ in db.calls()}) == 4


def test_the_embedded_store_stamps_rows_with_the_call(duck):
    process = duck.service().create_interview_process("c1", "Acme", "Engineer")
    [(run_id,)] = query(duck, "select run_id from interview_status_history")
    assert query(duck, "select _run_id from interview_processes where id = ?", [process.id]) == [
        (run_id,)
    ]
    assert query(duck, "select status from ingest_runs where run_id = ?", [run_id]) == [
        ("completed",)
    ]


HOW_CANDIDATES_COME = {
    DuckStore: "load the candidate first (itrack ingest)",
    PgStore: "add the candidate to the database's candidates table first (a Supabase client or "
    "SQL; itrack ingest loads the embedded store, not this database)",
}


def test_create_process_for_unknown_candidate_refused(service, db):
    """The hint says how candidates get into this store (on PostgreSQL it sent people to
    `itrack ingest`, which loads the embedded store)."""
    with pytest.raises(NotFoundError) as refused:
        service.create_interview_process("ghost", "Acme", "Engineer")
    assert str(refused.value) == (
        f"candidate 'ghost' not found: {HOW_CANDIDATES_COME[type(db)]}; a process without its "
        "candidate is an orphan"
    )
    assert query(db, "select count(*) from interview_processes") == [(0,)]


def test_create_process_invalid_field_refused(service):
    with pytest.raises(Refused, match="company_name: .*must not be blank"):
        service.create_interview_process("c1", "   ", "Engineer")


# -- updated_at moves forward -----------------------------------------------------------------


def test_updated_at_moves_forward_on_every_change(service, process):
    stamps = [process.updated_at]
    stage = service.add_interview_stage(process.id, "Phone Screen", 1)
    stamps.append(service.get_interview(process.id).process.updated_at)
    service.update_stage_outcome(stage.id, "passed", {"overall": 4})
    stamps.append(service.get_interview(process.id).process.updated_at)
    service.complete_interview_process(process.id, "on_hold")
    stamps.append(service.get_interview(process.id).process.updated_at)
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))


def test_updated_at_moves_past_a_future_stamp(service, db, process):
    future = dt.datetime(2099, 6, 1, 12, 0, 0, 5)
    db.execute("update interview_processes set updated_at = ?", [future])
    service.add_interview_stage(process.id, "Phone Screen", 1)
    assert service.get_interview(process.id).process.updated_at == future + dt.timedelta(
        microseconds=1
    )


def test_refused_change_leaves_updated_at_and_rows_alone(service, db, process):
    with pytest.raises(Refused):
        service.add_interview_stage(process.id, "Phone Screen", 2)
    assert service.get_interview(process.id).process.updated_at == process.updated_at
    assert query(db, "select count(*) from interview_stages") == [(0,)]


# -- stage order ------------------------------------------------------------------------------


def test_stage_order_must_be_next(service, process):
    with pytest.raises(Refused, match="must have stage_order 1"):
        service.add_interview_stage(process.id, "Phone Screen", 2)
    first = service.add_interview_stage(process.id, "Phone Screen", 1)
    assert first.stage_order == 1
    with pytest.raises(Refused, match="stage_order 1 refused: .* must have stage_order 2"):
        service.add_interview_stage(process.id, "Technical", 1)
    with pytest.raises(Refused, match="must have stage_order 2"):
        service.add_interview_stage(process.id, "Technical", 3)
    assert service.add_interview_stage(process.id, "Technical", 2).stage_order == 2


def test_stage_for_unknown_process_refused(service):
    with pytest.raises(NotFoundError, match="interview process"):
        service.add_interview_stage(uuid.uuid4(), "Phone Screen", 1)


def test_stage_scheduled_before_process_created_refused(service, process):
    with pytest.raises(Refused, match="scheduled_date .* is before the process was created"):
        service.add_interview_stage(process.id, "Phone Screen", 1, "2020-01-01")
    later = process.created_at + dt.timedelta(days=2)
    stage = service.add_interview_stage(process.id, "Phone Screen", 1, later.isoformat() + "Z")
    assert stage.scheduled_date == later


def test_stage_invalid_scheduled_date_refused(service, process):
    with pytest.raises(Refused, match="scheduled_date: .*ISO 8601"):
        service.add_interview_stage(process.id, "Phone Screen", 1, "next tuesday")


# -- the state machine ------------------------------------------------------------------------


def test_invalid_move_refused_naming_allowed_ones(service, db, process):
    with pytest.raises(Refused) as info:
        service.complete_interview_process(process.id, "offer_accepted")
    assert str(info.value).endswith(
        "cannot move from in_progress to offer_accepted; allowed next: "
        "candidate_withdrew, offer_extended, on_hold, rejected_by_company"
    )
    with pytest.raises(Refused, match="unknown status 'hired'; expected one of: in_progress"):
        service.complete_interview_process(process.id, "hired")
    assert history(db, process.id) == [(None, "in_progress")]


def test_valid_moves_written_to_history(service, db, process):
    service.complete_interview_process(process.id, "on_hold")
    back = service.complete_interview_process(process.id, "in_progress")
    assert back.status is InterviewStatus.IN_PROGRESS
    assert history(db, process.id) == [
        (None, "in_progress"),
        ("in_progress", "on_hold"),
        ("on_hold", "in_progress"),
    ]
    changed_at = query(
        db, "select max(changed_at) from interview_status_history where run_id like 'api-%'"
    )
    assert changed_at == [(back.updated_at,)]


def test_a_reason_belongs_to_its_move_and_is_not_carried_into_the_next(service, db, process):
    """An on_hold's reason stayed in final_outcome: the rejection after it, given no reason,
    reported "waiting on budget" as the company's reason (found by the exploratory ops run)."""
    held = service.complete_interview_process(process.id, "on_hold", final_outcome="budget")
    assert held.final_outcome == "budget"
    back = service.complete_interview_process(process.id, "in_progress")
    assert back.final_outcome is None
    service.complete_interview_process(process.id, "on_hold", final_outcome="budget")
    rejected = service.complete_interview_process(process.id, "rejected_by_company")
    assert rejected.final_outcome is None
    assert query(db, "select final_outcome from interview_processes") == [(None,)]
    other = service.create_interview_process("c2", "Beta", "Engineer")
    service.complete_interview_process(other.id, "on_hold", final_outcome="budget")
    given = service.complete_interview_process(
        other.id, "candidate_withdrew", final_outcome="moved"
    )
    assert given.final_outcome == "moved"


def test_terminal_status_is_final(service, process):
    service.complete_interview_process(process.id, "candidate_withdrew")
    with pytest.raises(Refused, match="allowed next: none, candidate_withdrew is final"):
        service.complete_interview_process(process.id, "in_progress")


# -- outcomes drive status --------------------------------------------------------------------


def test_failed_stage_rejects_in_progress_process(service, db, process):
    stage = service.add_interview_stage(process.id, "Technical Interview", 1)
    failed = service.update_stage_outcome(stage.id, "failed", feedback="weak on SQL")
    assert failed.completed_date is not None and failed.feedback_notes == "weak on SQL"
    closed = service.get_interview(process.id).process
    assert closed.status is InterviewStatus.REJECTED_BY_COMPANY
    assert closed.final_outcome == "Failed Technical Interview"
    assert history(db, process.id)[-1] == ("in_progress", "rejected_by_company")


def test_failed_stage_leaves_on_hold_process_and_passed_leaves_in_progress(service, process):
    passed = service.add_interview_stage(process.id, "Phone Screen", 1)
    service.update_stage_outcome(passed.id, "passed")
    assert service.get_interview(process.id).process.status is InterviewStatus.IN_PROGRESS
    failed = service.add_interview_stage(process.id, "Onsite", 2)
    service.complete_interview_process(process.id, "on_hold")
    service.update_stage_outcome(failed.id, "failed")
    assert service.get_interview(process.id).process.status is InterviewStatus.ON_HOLD


def test_no_outcomes_or_stages_on_closed_process(service, process):
    stage = service.add_interview_stage(process.id, "Phone Screen", 1)
    service.complete_interview_process(process.id, "candidate_withdrew")
    with pytest.raises(Refused, match="is closed \\(candidate_withdrew\\): outcomes cannot"):
        service.update_stage_outcome(stage.id, "passed")
    with pytest.raises(Refused, match="is closed \\(candidate_withdrew\\): no stage can"):
        service.add_interview_stage(process.id, "Technical", 2)


def test_outcome_completed_date_rules(service, process):
    later = process.created_at + dt.timedelta(days=30)
    future = service.add_interview_stage(process.id, "Phone Screen", 1, later)
    with pytest.raises(Refused, match="completed_date is before scheduled_date"):
        service.update_stage_outcome(future.id, "passed")  # it has not happened yet
    cancelled = service.update_stage_outcome(future.id, "cancelled")
    assert (cancelled.outcome, cancelled.completed_date) == ("cancelled", None)
    # a stage completes when it happens, never in the future
    done_later = (
        f"stage refused: completed_date: {later.isoformat()} is in the future (more than 5 "
        "minutes after now, UTC)"
    )
    with pytest.raises(Refused) as refused:
        service.update_stage_outcome(future.id, "no_show", completed_date=later)
    assert str(refused.value) == done_later
    assert service.get_interview(process.id).stages[0].outcome == "cancelled"
    with pytest.raises(Refused, match="unknown outcome 'great'; expected one of: pending"):
        service.update_stage_outcome(future.id, "great")


def test_offer_details_move_to_offer_extended(service, db, process):
    extended = service.complete_interview_process(process.id, "offer_extended", OFFER)
    assert extended.status is InterviewStatus.OFFER_EXTENDED
    assert extended.offer_details == OfferDetails(
        base_salary=150000.0, currency="USD", offer_date=dt.date(2025, 3, 1)
    )
    revised = service.complete_interview_process(
        process.id, "offer_extended", {**OFFER, "bonus": 5000}
    )
    assert revised.offer_details.bonus == 5000.0
    assert revised.updated_at > extended.updated_at
    accepted = service.complete_interview_process(process.id, "offer_accepted")
    assert accepted.offer_details == revised.offer_details
    assert history(db, process.id) == [
        (None, "in_progress"),
        ("in_progress", "offer_extended"),
        ("offer_extended", "offer_accepted"),
    ]


def test_offer_with_accept_records_both_moves(service, db, process):
    accepted = service.complete_interview_process(process.id, "offer_accepted", OFFER)
    assert accepted.status is InterviewStatus.OFFER_ACCEPTED
    assert history(db, process.id)[1:] == [
        ("in_progress", "offer_extended"),
        ("offer_extended", "offer_accepted"),
    ]
    stamps = query(
        db,
        "select changed_at from interview_status_history where interview_process_id = ? "
        "order by changed_at",
        [process.id],
    )
    assert stamps[1][0] < stamps[2][0] == accepted.updated_at


def test_offer_details_refused(service, db, process):
    with pytest.raises(Refused, match="currency: 'XYZ' is not an ISO 4217 currency code"):
        service.complete_interview_process(
            process.id, "offer_extended", {**OFFER, "currency": "XYZ"}
        )
    with pytest.raises(Refused, match="offer details go with status"):
        service.complete_interview_process(process.id, "rejected_by_company", OFFER)
    with pytest.raises(Refused, match="perks: Extra inputs are not permitted"):
        service.complete_interview_process(process.id, "offer_extended", {**OFFER, "perks": 1})
    with pytest.raises(Refused, match="not valid JSON"):
        service.complete_interview_process(process.id, "offer_extended", "{oops")
    service.complete_interview_process(process.id, "on_hold")
    with pytest.raises(Refused, match="cannot move from on_hold to offer_extended"):
        service.complete_interview_process(process.id, "offer_extended", OFFER)
    assert service.get_interview(process.id).process.offer_details is None


def test_an_offer_amount_that_is_not_a_number_is_refused_naming_the_amount(service, process):
    """`int | float` fails once per member: the refusal read "base_salary.int: Input should be
    a valid integer; base_salary.float: Input should be a valid number", fields no offer has.
    Now each field once, as ingest reports it."""
    offer = {**OFFER, "base_salary": "abc", "bonus": 1e400}
    with pytest.raises(Refused) as refused:
        service.complete_interview_process(process.id, "offer_extended", offer)
    assert str(refused.value) == (
        "offer details refused: base_salary: Input should be a valid number; "
        "bonus: Input should be a finite number"
    )


# -- ratings ----------------------------------------------------------------------------------


def test_ratings_known_keys_in_range_accepted(service, process):
    stage = service.add_interview_stage(process.id, "Technical", 1)
    saved = service.update_stage_outcome(
        stage.id,
        "passed",
        {"overall": 5, "technical_rating": 1, "culture_fit": 3, "communication": 4},
        interviewer_names=["Ann", "Bo"],
    )
    assert (
        saved.overall_rating,
        saved.technical_rating,
        saved.culture_fit_rating,
        saved.communication_rating,
        saved.interviewer_names,
    ) == (5, 1, 3, 4, ["Ann", "Bo"])


@pytest.mark.parametrize(
    ("ratings", "message"),
    [
        ({"charisma": 3}, "unknown rating 'charisma'; known ratings: overall, technical"),
        ({"overall": 6}, "overall_rating: Input should be less than or equal to 5"),
        ({"technical": 0}, "technical_rating: Input should be greater than or equal to 1"),
        ({"overall": 4.5}, "overall_rating: Input should be a valid integer"),
        ({"overall": "4"}, "overall_rating: Input should be a valid integer"),
    ],
)
def test_ratings_refused(service, process, ratings, message):
    stage = service.add_interview_stage(process.id, "Technical", 1)
    with pytest.raises(Refused, match=message):
        service.update_stage_outcome(stage.id, "passed", ratings)
    assert service.get_interview(process.id).stages[0].outcome == "pending"


# -- feedback hook ----------------------------------------------------------------------------


def test_feedback_trigger_after_commit(service, db, process):
    seen: list[tuple[FeedbackTrigger, list[tuple]]] = []

    @service.on_feedback_trigger
    def record(trigger: FeedbackTrigger) -> None:
        # the store is released and the history row committed when callbacks run
        seen.append((trigger, history(db, trigger.interview_id)))

    service.complete_interview_process(process.id, "offer_extended", OFFER)
    assert seen == []  # offer_extended is not a trigger
    accepted = service.complete_interview_process(process.id, "offer_accepted")
    [(trigger, rows)] = seen
    assert trigger.interview_id == process.id
    assert (trigger.candidate_id, trigger.feeder_source) == ("c1", "linkedin")
    assert (trigger.from_status, trigger.to_status) == ("offer_extended", "offer_accepted")
    assert trigger.changed_at == accepted.updated_at
    assert trigger.run_id.startswith("api-")
    assert rows[-1] == ("offer_extended", "offer_accepted")


def test_feedback_trigger_from_failed_stage_uses_process_feeder(service):
    triggers: list[FeedbackTrigger] = []
    service.on_feedback_trigger(triggers.append)
    process = service.create_interview_process("c1", "Acme", "Engineer", feeder_source="github")
    stage = service.add_interview_stage(process.id, "Onsite", 1)
    service.update_stage_outcome(stage.id, "failed")
    assert [(t.to_status, t.feeder_source) for t in triggers] == [("rejected_by_company", "github")]


def test_no_trigger_when_refused(service, process):
    triggers: list[FeedbackTrigger] = []
    service.on_feedback_trigger(triggers.append)
    with pytest.raises(Refused):
        service.complete_interview_process(process.id, "offer_accepted")
    assert triggers == []


# -- reads ------------------------------------------------------------------------------------


def test_candidate_history_and_company_interviews(service):
    first = service.create_interview_process("c1", "Acme", "Engineer")
    second = service.create_interview_process("c1", "Globex", "Lead")
    other = service.create_interview_process("c2", "Acme", "Analyst")
    service.add_interview_stage(first.id, "Phone Screen", 1)
    service.add_interview_stage(first.id, "Technical", 2)
    service.complete_interview_process(other.id, "on_hold")
    hist = service.get_candidate_interview_history("c1")
    assert [d.process.id for d in hist] == [first.id, second.id]
    assert [s.stage_name for s in hist[0].stages] == ["Phone Screen", "Technical"]
    assert hist[0].as_json()["stages"][1]["stage_order"] == 2
    assert service.get_candidate_interview_history("c2")[0].stages == []
    with pytest.raises(NotFoundError, match="candidate 'zz' not found"):
        service.get_candidate_interview_history("zz")
    assert [p.id for p in service.get_company_interviews("Acme")] == [first.id, other.id]
    assert [p.id for p in service.get_company_interviews("Acme", "on_hold")] == [other.id]
    assert service.get_company_interviews("Initech") == []
    with pytest.raises(Refused, match="unknown status 'open'"):
        service.get_company_interviews("Acme", "open")
    assert [p.id for p in service.list_interviews(candidate_id="c1", company_name="Globex")] == [
        second.id
    ]


def test_company_filter_ignores_case_and_spacing(service):
    """A list's company matches whatever the case and runs of whitespace (the name key
    `itrack interview create` and the analytics compare by), never a longer name."""
    ids = [
        service.create_interview_process(candidate, company, "Engineer").id
        for candidate, company in [
            ("c1", "Stripe"),
            ("c2", " stripe "),
            ("c1", "Stripe Inc"),
            ("c2", "STRIPE"),
            ("c1", "Acme"),
        ]
    ]
    assert [p.id for p in service.list_interviews(company_name="  sTRIPE")] == [
        ids[0],
        ids[1],
        ids[3],
    ]
    assert [p.id for p in service.get_company_interviews("stripe\t inc")] == [ids[2]]
    assert [p.id for p in service.list_interviews(company_name="acme", candidate_id="c1")] == [
        ids[4]
    ]


# -- stage details, outcomes and corrections --------------------------------------------------


def test_update_stage_details(service, process):
    day = process.created_at + dt.timedelta(days=3)
    stage = service.add_interview_stage(process.id, "Phone", 1)
    saved = service.update_stage_details(
        stage.id,
        stage_name="Phone Screen",
        scheduled_date=day,
        interviewer_names=["Ann", "Bo"],
        next_steps="onsite",
    )
    assert (
        saved.stage_name,
        saved.scheduled_date,
        saved.interviewer_names,
        saved.next_steps,
        saved.outcome,
    ) == ("Phone Screen", day, ["Ann", "Bo"], "onsite", "pending")
    assert saved.updated_at > stage.updated_at
    again = service.update_stage_details(stage.id, next_steps="offer call")
    assert (again.stage_name, again.interviewer_names, again.next_steps) == (
        "Phone Screen",
        ["Ann", "Bo"],
        "offer call",
    )
    assert service.get_interview(process.id).stages == [again]
    service.complete_interview_process(process.id, "candidate_withdrew")
    with pytest.raises(
        Refused, match=r"closed \(candidate_withdrew\): its stages cannot be changed"
    ):
        service.update_stage_details(stage.id, next_steps="none")


def test_record_stage_outcome_returns_the_process_it_closed(service, process):
    stage = service.add_interview_stage(process.id, "Onsite", 1)
    result = service.record_stage_outcome(stage.id, "failed", {"overall": 2})
    assert (result.stage.outcome, result.stage.overall_rating) == ("failed", 2)
    assert (result.process.status, result.process.final_outcome) == (
        "rejected_by_company",
        "Failed Onsite",
    )
    assert result.feedback == FeedbackStatus(
        status="deferred", detail="no feedback step registered"
    )
    assert result.process == service.get_interview(process.id).process


def _corrections(audit: dict) -> list[tuple]:
    return [
        (c["record_kind"], c["field"], c["old_value"], c["new_value"], c["reason"], c["changed_by"])
        for c in audit["corrections"]
    ]


def _moves(audit: dict) -> list[tuple]:
    return [(h["from_status"], h["to_status"], h["source"]) for h in audit["status_history"]]


def test_amend_reopens_the_process_closed_by_the_stage(service, process):
    stage = service.add_interview_stage(process.id, "Onsite", 1)
    service.update_stage_outcome(stage.id, "failed", {"overall": 2})
    result = service.amend_stage_outcome(
        stage.id, "passed", "typed the wrong outcome", "rita", {"overall": 4}
    )
    assert (result.stage.outcome, result.stage.overall_rating) == ("passed", 4)
    assert (result.process.status, result.process.final_outcome) == ("in_progress", None)
    audit = service.get_audit(str(process.id)[:8])
    assert audit["process_id"] == str(process.id)
    why = ("typed the wrong outcome", "rita")
    assert _corrections(audit) == [
        ("stage", "outcome", "failed", "passed", *why),
        ("stage", "overall_rating", "2", "4", *why),
        ("process", "status", "rejected_by_company", "in_progress", *why),
        ("process", "final_outcome", "Failed Onsite", None, *why),
    ]
    assert [c["record_id"] for c in audit["corrections"]] == [str(stage.id)] * 2 + [
        str(process.id)
    ] * 2
    assert _moves(audit) == [
        (None, "in_progress", "service"),
        ("in_progress", "rejected_by_company", "service"),
        ("rejected_by_company", "in_progress", "correction"),
    ]
    amend_run = audit["status_history"][-1]["run_id"]
    assert {c["run_id"] for c in audit["corrections"]} == {amend_run}


def test_amend_leaves_closed_a_process_another_stage_closed(service, process):
    """Two stages of one name: correcting the one that passed does not reopen the process the
    other one's failure closed."""
    first = service.add_interview_stage(process.id, "Interview", 1)
    second = service.add_interview_stage(process.id, "Interview", 2)
    service.update_stage_outcome(first.id, "passed")
    service.update_stage_outcome(second.id, "failed")
    result = service.amend_stage_outcome(first.id, "no_show", "was a no-show", "rita")
    assert result.stage.outcome == "no_show"
    assert (result.process.status, result.process.final_outcome) == (
        "rejected_by_company",
        "Failed Interview",
    )
    audit = service.get_audit(process.id)
    assert _corrections(audit) == [
        ("stage", "outcome", "passed", "no_show", "was a no-show", "rita"),
    ]
    assert _moves(audit)[-1] == ("in_progress", "rejected_by_company", "service")


def test_amend_of_the_closing_failure_keeps_closed_a_process_another_failure_holds(
    service, process
):
    """The second stage's failure closed the process; the first was amended to failed since
    (the process, closed, stayed so). Amending the second to passed does not reopen it with a
    failed stage: it stays closed, by the first failure, and the trail says so."""
    first = service.add_interview_stage(process.id, "Phone Screen", 1)
    second = service.add_interview_stage(process.id, "Onsite", 2)
    service.update_stage_outcome(first.id, "passed")
    service.update_stage_outcome(second.id, "failed")
    service.amend_stage_outcome(first.id, "failed", "misheard", "rita")
    result = service.amend_stage_outcome(second.id, "passed", "wrong candidate", "bo")
    assert (result.process.status, result.process.final_outcome) == (
        "rejected_by_company",
        "Failed Phone Screen",
    )
    audit = service.get_audit(process.id)
    assert _corrections(audit) == [
        ("stage", "outcome", "passed", "failed", "misheard", "rita"),
        ("stage", "outcome", "failed", "passed", "wrong candidate", "bo"),
        (
            "process",
            "final_outcome",
            "Failed Onsite",
            "Failed Phone Screen",
            "wrong candidate",
            "bo",
        ),
    ]
    assert _moves(audit)[-1] == ("in_progress", "rejected_by_company", "service")


def test_amend_leaves_closed_a_process_closed_by_hand(service, process):
    """A close by hand whose reason reads like a stage's failure is not that stage's: adding a
    rating to the passed stage leaves the process closed."""
    stage = service.add_interview_stage(process.id, "Phone Screen", 1)
    service.update_stage_outcome(stage.id, "passed")
    service.complete_interview_process(
        process.id, "rejected_by_company", final_outcome="Failed Phone Screen"
    )
    result = service.amend_stage_outcome(
        stage.id, "passed", "add missing rating", "rita", {"overall": 3}
    )
    assert (result.stage.outcome, result.stage.overall_rating) == ("passed", 3)
    assert (result.process.status, result.process.final_outcome) == (
        "rejected_by_company",
        "Failed Phone Screen",
    )
    assert _corrections(service.get_audit(process.id)) == [
        ("stage", "overall_rating", None, "3", "add missing rating", "rita"),
    ]


def test_amend_to_failed_closes_and_needs_a_reason_and_a_change(service, process):
    stage = service.add_interview_stage(process.id, "Phone Screen", 1)
    service.update_stage_outcome(stage.id, "passed")
    with pytest.raises(Refused, match="a correction needs a reason"):
        service.amend_stage_outcome(stage.id, "failed", "  ", "rita")
    with pytest.raises(Refused, match=f"stage {stage.id} already has outcome passed: nothing"):
        service.amend_stage_outcome(stage.id, "passed", "why", "rita")
    result = service.amend_stage_outcome(stage.id, "failed", "misheard", "rita")
    assert (result.process.status, result.process.final_outcome) == (
        "rejected_by_company",
        "Failed Phone Screen",
    )
    audit = service.get_audit(process.id)
    # every field the correction changed, final_outcome too (it was missing: the trail did
    # not say where "Failed Phone Screen" came from, though a reopen records its removal)
    assert _corrections(audit) == [
        ("stage", "outcome", "passed", "failed", "misheard", "rita"),
        ("process", "status", "in_progress", "rejected_by_company", "misheard", "rita"),
        ("process", "final_outcome", None, "Failed Phone Screen", "misheard", "rita"),
    ]
    assert _moves(audit)[-1] == ("in_progress", "rejected_by_company", "correction")


def test_reopen_returns_to_the_status_before_closing(service, process):
    service.complete_interview_process(process.id, "on_hold")
    service.complete_interview_process(
        process.id, "candidate_withdrew", final_outcome="took another job"
    )
    with pytest.raises(Refused, match="reopened to an open status, not to offer_accepted"):
        service.reopen_interview_process(process.id, "x", "rita", to_status="offer_accepted")
    reopened = service.reopen_interview_process(process.id, "came back", "rita")
    assert (reopened.status, reopened.final_outcome) == ("on_hold", None)
    with pytest.raises(Refused, match=r"is not closed \(on_hold\): nothing to reopen"):
        service.reopen_interview_process(process.id, "again", "rita")
    service.complete_interview_process(process.id, "rejected_by_company")
    to_start = service.reopen_interview_process(process.id, "wrong", "bo", "in_progress")
    assert to_start.status is InterviewStatus.IN_PROGRESS
    audit = service.get_audit(process.id)
    assert _corrections(audit) == [
        ("process", "status", "candidate_withdrew", "on_hold", "came back", "rita"),
        ("process", "final_outcome", "took another job", None, "came back", "rita"),
        ("process", "status", "rejected_by_company", "in_progress", "wrong", "bo"),
    ]
    assert _moves(audit)[2:] == [
        ("on_hold", "candidate_withdrew", "service"),
        ("candidate_withdrew", "on_hold", "correction"),
        ("on_hold", "rejected_by_company", "service"),
        ("rejected_by_company", "in_progress", "correction"),
    ]


def test_a_reopen_that_clears_the_offer_audits_it_as_stored_json(service, process):
    """The corrections audit holds the offer a reopen took away as the process's column held
    it (JSON), not the Python repr of the contract's model ("base_salary=150000 ...")."""
    service.complete_interview_process(process.id, "offer_extended", OFFER)
    service.complete_interview_process(process.id, "offer_accepted", final_outcome="signed")
    reopened = service.reopen_interview_process(
        process.id, "wrong candidate", "rita", "in_progress"
    )
    assert (reopened.status, reopened.offer_details) == ("in_progress", None)
    why = ("wrong candidate", "rita")
    assert _corrections(service.get_audit(process.id)) == [
        ("process", "status", "offer_accepted", "in_progress", *why),
        ("process", "final_outcome", "signed", None, *why),
        (
            "process",
            "offer_details",
            '{"base_salary":150000,"currency":"USD","offer_date":"2025-03-01"}',
            None,
            *why,
        ),
    ]


# -- duplicates, names and ids ----------------------------------------------------------------


def test_open_duplicates_same_candidate_company_and_role(service, process):
    twin = service.create_interview_process("c1", "ACME", "engineer")
    service.create_interview_process("c1", "Acme", "Manager")
    service.create_interview_process("c2", "Acme", "Engineer")
    closed = service.create_interview_process("c1", "Acme", "Engineer")
    service.complete_interview_process(closed.id, "candidate_withdrew")
    assert [p.id for p in service.open_duplicates(process)] == [twin.id]
    assert [p.id for p in service.open_duplicates(twin)] == [process.id]
    assert service.open_duplicates(closed) == [process, twin]


def test_names_checked_against_the_stored_ones(service, process):
    with pytest.raises(Refused) as info:
        service.create_interview_process("c1", "acme", "Engineer", check_names=True)
    assert str(info.value) == (
        "unknown company 'acme': did you mean 'Acme'? "
        "(pass --new-company if 'acme' is really a new company)"
    )
    with pytest.raises(Refused) as info:
        service.create_interview_process("c1", "Globex", "Engineer", check_names=True)
    assert str(info.value) == (
        "company 'Globex' is not known yet: pass --new-company to record a new company"
    )
    with pytest.raises(Refused, match=r"unknown feeder 'linkdin': did you mean 'linkedin'\?"):
        service.create_interview_process(
            "c1", "Acme", "Engineer", feeder_source="linkdin", check_names=True
        )
    new = service.create_interview_process(
        "c2", "Globex", "Analyst", "github", check_names=True, new_company=True, new_feeder=True
    )
    known = service.create_interview_process("c1", "Globex", "Lead", "github", check_names=True)
    assert (new.company_name, new.feeder_source, known.feeder_source) == (
        "Globex",
        "github",
        "github",
    )


P_A = "abcd0001-0000-4000-8000-000000000001"
P_B = "abcd0002-0000-4000-8000-000000000002"


def test_ids_by_unique_prefix_and_what_a_wrong_id_is(service, db, process):
    db.add_process(P_A, "c1")
    db.add_process(P_B, "c2")
    assert service.get_interview("abcd0001").process.id == uuid.UUID(P_A)
    assert service.get_interview(" ABCD0002-00 ").process.id == uuid.UUID(P_B)
    stage = service.add_interview_stage("abcd0001-0", "Screen", 1)
    assert service.update_stage_details(str(stage.id)[:6], next_steps="x").id == stage.id
    with pytest.raises(Refused) as info:
        service.get_interview("abcd")
    assert str(info.value) == (
        f"interview process id prefix 'abcd' is ambiguous: it matches {P_A}, {P_B}; "
        "give more characters"
    )
    for given, message in [
        (str(stage.id), f"'{stage.id}' is an interview stage id, not an interview process id"),
        (str(stage.id)[:8], f"'{str(stage.id)[:8]}' is an interview stage id, not an"),
        ("c1", "'c1' is a candidate id, not an interview process id"),
        ("abc", "interview process 'abc' not found"),
        ("zzzz-nope", "interview process 'zzzz-nope' not found (not a valid id)"),
        (str(uuid.UUID(int=7)), f"interview process '{uuid.UUID(int=7)}' not found"),
    ]:
        with pytest.raises(NotFoundError) as info:
            service.get_interview(given)
        assert str(info.value).startswith(message), given
    with pytest.raises(NotFoundError) as info:
        service.update_stage_outcome("abcd", "passed")
    assert str(info.value) == "'abcd' is an interview process id, not an interview stage id"


# -- concurrency ------------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from ingest.store.duckdb.store import open_store
    with open_store(sys.argv[1]) as con:
        con.begin()
        con.execute(
            "insert into candidates values ('held', 'Held', null, null, null, "
            "now()::timestamp, now()::timestamp, 'holder', now()::timestamp)"
        )
        print("ready", flush=True)
        sys.stdin.readline()          # hold the store (mid-transaction) until told to go on
        time.sleep(float(sys.argv[2]))
        con.commit()
    """
)


def start_holder(db: Path, linger: float = 0.0) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(linger)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    return holder


def test_second_writer_gets_busy_and_file_stays_intact(duck):
    service, db = duck.service(), duck.path
    process = service.create_interview_process("c1", "Acme", "Engineer")
    holder = start_holder(db)
    try:
        with pytest.raises(
            StoreBusyError, match=f"database is busy \\(held by PID {holder.pid}\\)"
        ):
            service.add_interview_stage(process.id, "Phone Screen", 1)
        result = CliRunner().invoke(
            app,
            [
                "create",
                "--candidate",
                "c1",
                "--company",
                "X",
                "--role",
                "Y",
                "--db",
                str(db),
                "--wait",
                "0",
            ],
        )
        assert_exit(result, 2)
        assert result.stderr.startswith(f"error: database is busy (held by PID {holder.pid})")
    finally:
        holder.communicate("go\n", timeout=30)
    assert holder.returncode == 0
    # the holder's transaction landed, ours left nothing behind, and the store works
    assert query(duck, "select count(*) from candidates where id = 'held'") == [(1,)]
    assert query(duck, "select count(*) from interview_processes") == [(1,)]
    assert query(duck, "select count(*) from interview_stages") == [(0,)]
    assert service.add_interview_stage(process.id, "Phone Screen", 1).stage_order == 1


def test_writer_with_wait_goes_through_once_released(duck):
    db = duck.path
    process = duck.service().create_interview_process("c1", "Acme", "Engineer")
    holder = start_holder(db, linger=0.5)
    holder.stdin.write("go\n")
    holder.stdin.flush()
    waiting = InterviewService(DuckDBInterviewStore(db, wait_seconds=30))
    stage = waiting.add_interview_stage(process.id, "Screen", 1)
    holder.communicate(timeout=30)
    assert stage.stage_order == 1
    assert query(duck, "select count(*) from candidates where id = 'held'") == [(1,)]
