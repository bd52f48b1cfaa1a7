"""InterviewRepository against a real raw-store DuckDB file: every method, round trips, rollback."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import duckdb
import pytest

from ingest.contract import InterviewProcess, InterviewStage, OfferDetails
from ingest.errors import Refused
from ingest.store.duckdb.repository import InterviewRepository, NotFoundError
from ingest.store.duckdb.store import open_store

T0 = dt.datetime(2025, 3, 1, 9, 0, 0, 123456)


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    with open_store(tmp_path / "warehouse.duckdb") as connection:
        for cid, feeder in (("c1", "linkedin"), ("c2", "referral")):
            connection.execute(
                "insert into candidates values (?, ?, ?, null, null, ?, ?, 'seed', ?)",
                [cid, f"Candidate {cid}", feeder, T0, T0, T0],
            )
        yield connection


@pytest.fixture
def repo(con: duckdb.DuckDBPyConnection) -> InterviewRepository:
    return InterviewRepository(con)


def make_process(**changes: object) -> InterviewProcess:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "candidate_id": "c1",
        "company_name": "Acme",
        "role_title": "Engineer",
        "created_at": T0,
    }
    return InterviewProcess(**{**fields, **changes})


def make_stage(process_id: uuid.UUID, order: int, **changes: object) -> InterviewStage:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "interview_process_id": process_id,
        "stage_name": f"Stage {order}",
        "stage_order": order,
        "created_at": T0,
    }
    return InterviewStage(**{**fields, **changes})


FULL_OFFER = OfferDetails(
    base_salary=123456.78,
    currency="EUR",
    bonus=10000,
    equity=0.0,
    sign_on_bonus=2500.5,
    offer_date=dt.date(2025, 3, 10),
    start_date=dt.date(2025, 4, 1),
    expiry_date=dt.date(2025, 3, 17),
)


def history(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "select interview_process_id::varchar, from_status, to_status, changed_at, source "
        "from interview_status_history order by changed_at, to_status"
    ).fetchall()


def test_create_and_get_round_trip_exactly(repo, con):
    process = make_process(
        status="offer_extended",
        feeder_source="linkedin",
        recruiter_name="Rita",
        final_outcome="pending decision",
        offer_details=FULL_OFFER,
        updated_at=T0 + dt.timedelta(hours=1),
    )
    stored = repo.create_interview_process(process)
    assert stored == process
    assert repo.get_interview_by_id(str(process.id)) == process
    assert stored.offer_details == FULL_OFFER
    run_id, loaded_at = con.execute(
        "select _run_id, _loaded_at from interview_processes where id = ?", [process.id]
    ).fetchone()
    assert run_id == repo.run_id and run_id.startswith("api-")
    assert loaded_at.tzinfo is None
    assert history(con) == [(str(process.id), None, "offer_extended", T0, "service")]


def test_offer_details_stored_as_json_text(repo, con):
    process = make_process(offer_details=OfferDetails(base_salary=90000, currency="USD"))
    repo.create_interview_process(process)
    text, currency = con.execute(
        "select offer_details::varchar, offer_details->>'$.currency' from interview_processes"
    ).fetchone()
    assert json.loads(text) == {"base_salary": 90000, "currency": "USD"}
    assert currency == "USD"


def test_get_missing_or_malformed_id_raises_not_found(repo):
    missing = uuid.uuid4()
    with pytest.raises(NotFoundError, match=f"interview process '{missing}' not found"):
        repo.get_interview_by_id(missing)
    with pytest.raises(NotFoundError, match="not a valid id"):
        repo.get_interview_by_id("nope")
    with pytest.raises(NotFoundError, match="interview stage"):
        repo.get_stage_by_id(uuid.uuid4())
    assert issubclass(NotFoundError, Refused)


def test_get_interviews_by_candidate_oldest_first(repo):
    later = repo.create_interview_process(make_process(created_at=T0 + dt.timedelta(days=2)))
    first = repo.create_interview_process(make_process())
    repo.create_interview_process(make_process(candidate_id="c2"))
    assert [p.id for p in repo.get_interviews_by_candidate("c1")] == [first.id, later.id]
    assert repo.get_interviews_by_candidate("nobody") == []


def test_find_interviews_by_company_and_status(repo):
    a1 = repo.create_interview_process(make_process())
    a2 = repo.create_interview_process(
        make_process(status="on_hold", created_at=T0 + dt.timedelta(minutes=1))
    )
    repo.create_interview_process(make_process(company_name="Globex"))
    assert [p.id for p in repo.find_interviews(company_name="Acme")] == [a1.id, a2.id]
    assert [p.id for p in repo.find_interviews(company_name="Acme", status="on_hold")] == [a2.id]
    assert repo.find_interviews(company_name="Initech") == []


def test_update_interview_writes_history_on_status_change(repo, con):
    process = repo.create_interview_process(make_process())
    changed = InterviewProcess.model_validate(
        {
            **process.model_dump(),
            "status": "offer_extended",
            "offer_details": FULL_OFFER,
            "updated_at": T0 + dt.timedelta(days=3),
        }
    )
    assert repo.update_interview(changed) == changed
    assert repo.get_interview_by_id(process.id) == changed
    renamed = InterviewProcess.model_validate({**changed.model_dump(), "role_title": "Lead"})
    repo.update_interview(renamed)  # no status change: no history row
    assert history(con) == [
        (str(process.id), None, "in_progress", T0, "service"),
        (str(process.id), "in_progress", "offer_extended", T0 + dt.timedelta(days=3), "service"),
    ]


def test_update_missing_process_raises_not_found(repo):
    with pytest.raises(NotFoundError):
        repo.update_interview(make_process())


def test_stage_create_get_round_trip_exactly(repo, con):
    process = repo.create_interview_process(make_process())
    stage = make_stage(
        process.id,
        1,
        stage_name="Technical Interview",
        scheduled_date=T0 + dt.timedelta(days=1),
        completed_date=T0 + dt.timedelta(days=1, hours=1),
        outcome="passed",
        overall_rating=4,
        technical_rating=5,
        culture_fit_rating=3,
        communication_rating=1,
        feedback_notes="Strong on 'systems'; said \"hello\".\nSecond line",
        interviewer_names=["Zoë Ångström", 'O\'Brien "Bob"', "a, b"],
        next_steps="onsite",
    )
    assert repo.create_interview_stage(stage) == stage
    assert repo.get_stage_by_id(str(stage.id)) == stage
    names = con.execute("select interviewer_names from interview_stages").fetchone()[0]
    assert names == ["Zoë Ångström", 'O\'Brien "Bob"', "a, b"]
    empty = repo.create_interview_stage(make_stage(process.id, 2))
    assert repo.get_stage_by_id(empty.id).interviewer_names == []


def test_create_stage_for_missing_process_raises_not_found(repo):
    with pytest.raises(NotFoundError):
        repo.create_interview_stage(make_stage(uuid.uuid4(), 1))


def test_get_stages_by_interview_in_stage_order(repo):
    process = repo.create_interview_process(make_process())
    other = repo.create_interview_process(make_process())
    s2 = repo.create_interview_stage(make_stage(process.id, 2))
    s1 = repo.create_interview_stage(make_stage(process.id, 1))
    repo.create_interview_stage(make_stage(other.id, 1))
    assert [s.id for s in repo.get_stages_by_interview(process.id)] == [s1.id, s2.id]
    assert repo.max_stage_order(process.id) == 2
    assert repo.max_stage_order(uuid.uuid4()) == 0
    with pytest.raises(NotFoundError):
        repo.get_stages_by_interview(uuid.uuid4())


def test_update_stage(repo):
    process = repo.create_interview_process(make_process())
    stage = repo.create_interview_stage(make_stage(process.id, 1))
    changed = InterviewStage.model_validate(
        {
            **stage.model_dump(),
            "outcome": "failed",
            "overall_rating": 2,
            "interviewer_names": ["Ann"],
            "updated_at": T0 + dt.timedelta(days=1),
        }
    )
    assert repo.update_stage(changed) == changed
    assert repo.get_stage_by_id(stage.id) == changed
    with pytest.raises(NotFoundError):
        repo.update_stage(make_stage(process.id, 2))


def test_transaction_rolls_back_every_write(repo, con):
    with pytest.raises(RuntimeError), repo.transaction():
        process = repo.create_interview_process(make_process())
        repo.create_interview_stage(make_stage(process.id, 1))
        raise RuntimeError("boom")
    counts = con.execute(
        "select (select count(*) from interview_processes), "
        "(select count(*) from interview_stages), "
        "(select count(*) from interview_status_history)"
    ).fetchone()
    assert counts == (0, 0, 0)
    repo.create_interview_process(make_process())  # the connection is usable afterwards
    assert con.execute("select count(*) from interview_processes").fetchone() == (1,)


def test_candidate_feeder(repo):
    assert repo.candidate_feeder("c2") == "referral"
    with pytest.raises(NotFoundError, match="candidate 'zz' not found"):
        repo.candidate_feeder("zz")
