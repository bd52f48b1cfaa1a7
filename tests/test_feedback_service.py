"""FeedbackService on the hand-computed warehouse of tests/lib_data.py, wired by the shell the
way the CLI and the HTTP API wire it: one process's outcome into feeders.json, placements and
the run log (exact values, idempotent), one feeder's rates, the feeder report, and the
interview service's trigger that runs it (or says it was deferred)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pytest

from feedback.analytics import UnknownNameError
from feedback.feeders import wilson
from feedback.service import derive_prior_strength
from ingest.errors import Refused, UserError
from ingest.service import InterviewService
from ingest.store.duckdb.repository import DuckDBInterviewStore
from ingest.store.duckdb.store import raw_store_path
from itrack.dbt_runner import run_dbt
from itrack.services import feedback_service, interview_service
from tests.conftest import read
from tests.dbt_helpers import Process, RawData, pid, private_copy, write_raw_store
from tests.lib_data import DATA

OFFER = {"base_salary": 120000, "currency": "EUR"}
NOW = "2026-01-01T00:00:00Z"


def build(db: Path) -> None:
    outcome = run_dbt(["build"], db, raw_store_path(db))
    assert outcome.ok, outcome.failures


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("feedback_service")
    write_raw_store(root / "warehouse.raw.duckdb", DATA)
    build(root / "warehouse.duckdb")
    return root / "warehouse.duckdb"


@pytest.fixture
def db(built, tmp_path) -> Path:
    """A private copy of the built warehouse and its raw store."""
    return private_copy(built, tmp_path)


def runs(db: Path) -> list[tuple]:
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    try:
        return con.execute(
            "select run_id, feeder_source, metrics from feedback_runs order by written_at"
        ).fetchall()
    finally:
        con.close()


def rounded(x: float) -> float:
    return round(x, 6)


def wilson_by_hand(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return rounded((centre - half) / (1 + z * z / n)), rounded((centre + half) / (1 + z * z / n))


# referral before any change: P1 placed, P2 rejected, P5 in progress (the last build)
REFERRAL_BUILT = {
    "success_rate_by_stage": {"phone_screen": 1.0, "technical": 0.5, "onsite": 1.0},
    "avg_days_to_hire": 14.0,  # P1: 2025-01-01 -> 2025-01-15
    "pipeline_depth": 0.625,  # finished: P1 accepted (4/4), P2 reached technical (1/4)
    "top_rejection_reasons": [{"reason": "Failed technical interview", "count": 1}],
}


def test_accepted_offer_updates_the_feeder_placements_and_log(db):
    InterviewService(DuckDBInterviewStore(db)).complete_interview_process(
        pid(5), "offer_accepted", OFFER
    )
    service = feedback_service(db, clock=lambda: NOW)
    result = service.process_interview_outcome(pid(5))
    assert (result.feeder_source, result.status, result.live_processes) == (
        "referral",
        "offer_accepted",
        1,
    )
    assert (result.feeders_updated, result.placement_recorded, result.logged) == (True, True, True)
    metrics = json.loads((db.parent / "feeders.json").read_text())["feeders"]["referral"]["metrics"]
    # live counts: P1, P2, P5 sourced; P1, P5 placed; all three decided. Prior: 2 of 7.
    lower, upper = wilson_by_hand(2, 3)
    assert metrics == {
        "candidates_sourced": 3,
        "placements": 2,
        "conversion_rate": rounded(2 / 3),
        "decided_processes": 3,
        "decided_conversion_rate": rounded(2 / 3),
        "wilson_interval": {"lower": lower, "upper": upper, "confidence": 0.95},
        "smoothed_conversion_rate": rounded((2 + 10 * 2 / 7) / (3 + 10)),
        **REFERRAL_BUILT,
        "updated_at": NOW,
    }
    history = json.loads((db.parent / "candidate_placements.json").read_text())
    placed_at = InterviewService(DuckDBInterviewStore(db)).get_interview(pid(5)).process.updated_at
    assert history == {
        "c1": [
            {
                "company": "Acme",
                "role": "Engineer",
                "placement_date": "2025-01-15T10:00:00",
                "offer_details": {"base_salary": 150000, "currency": "USD"},
            },
            {
                "company": "Beta",
                "role": "Engineer",
                "placement_date": placed_at.isoformat(),
                "offer_details": OFFER,
            },
        ]
    }
    # every feeder's metrics written and logged: the overall rate moved each smoothed rate
    written = json.loads((db.parent / "feeders.json").read_text())["feeders"]
    assert sorted((r, f, json.loads(m)) for r, f, m in runs(db)) == [
        (result.run_id, name, written[name]["metrics"])
        for name in ("agency", "linkedin", "referral")
    ]
    assert written["referral"]["metrics"] == metrics


def test_process_interview_outcome_is_idempotent(db):
    InterviewService(DuckDBInterviewStore(db)).complete_interview_process(
        pid(5), "offer_accepted", OFFER
    )
    feedback_service(db, clock=lambda: NOW).process_interview_outcome(pid(5))
    files = {p.name: p.read_bytes() for p in db.parent.glob("*.json")}
    logged = runs(db)
    again = feedback_service(db, clock=lambda: "2030-01-01T00:00:00Z").process_interview_outcome(
        pid(5)
    )
    assert (again.feeders_updated, again.placement_recorded, again.logged) == (False, False, False)
    assert {p.name: p.read_bytes() for p in db.parent.glob("*.json")} == files
    assert runs(db) == logged
    assert again.metrics["updated_at"] == NOW  # nothing changed, so the time did not move


def test_an_accepted_offer_sets_the_candidates_files_history_in_the_same_publish(db):
    people = db.parent / "candidates.json"
    people.write_text(json.dumps([{"id": "c1", "name": "Ann"}, {"id": "c2", "name": "Bo"}]))
    InterviewService(DuckDBInterviewStore(db)).complete_interview_process(
        pid(5), "offer_accepted", OFFER
    )
    service = feedback_service(db, candidates=people, clock=lambda: NOW)
    result = service.process_interview_outcome(pid(5))
    assert (result.feeders_updated, result.placement_recorded, result.candidates_updated) == (
        True,
        True,
        True,
    )
    history = json.loads((db.parent / "candidate_placements.json").read_text())["c1"]
    assert json.loads(people.read_text()) == [
        {"id": "c1", "name": "Ann", "placement_history": history},
        {"id": "c2", "name": "Bo"},
    ]
    assert not (db.parent / ".build" / "warehouse.publish.json").exists()  # published, removed
    assert [p.name for p in db.parent.glob(".*.tmp")] == []


def test_every_outcome_since_the_build_stays_folded_in(db):
    """Two outcomes of one feeder on the same day: the second call keeps the first."""
    service = InterviewService(DuckDBInterviewStore(db))
    service.complete_interview_process(pid(5), "offer_accepted", OFFER)
    first = feedback_service(db).process_interview_outcome(pid(5))
    new = service.create_interview_process("c2", "Gamma", "Analyst")  # c2 came from referral
    service.complete_interview_process(new.id, "candidate_withdrew")
    second = feedback_service(db).process_interview_outcome(new.id)
    assert (first.metrics["placements"], first.metrics["candidates_sourced"]) == (2, 3)
    # P1, P2, P5 and the new process sourced; P1, P5 placed; all four decided; prior 2 / 8
    m = second.metrics
    assert (m["candidates_sourced"], m["placements"], m["decided_processes"]) == (4, 2, 4)
    assert second.live_processes == 2
    assert m["smoothed_conversion_rate"] == rounded((2 + 10 * 2 / 8) / (4 + 10))
    # linkedin's metrics use the moved prior too when they are next updated
    linkedin = feedback_service(db).update_feeder_conversion_rates("linkedin").metrics
    assert linkedin["smoothed_conversion_rate"] == rounded((0 + 10 * 2 / 8) / (3 + 10))
    assert linkedin["candidates_sourced"] == 3  # unchanged: its processes did not move


def test_after_a_build_the_marts_speak_for_themselves(db):
    InterviewService(DuckDBInterviewStore(db)).complete_interview_process(
        pid(5), "offer_accepted", OFFER
    )
    assert feedback_service(db).process_interview_outcome(pid(5)).live_processes == 1
    build(db)
    after = feedback_service(db).update_feeder_conversion_rates("referral")
    assert after.live_processes == 0  # the build counted P5 as accepted: nothing to fold
    assert after.metrics["avg_days_to_hire"] != 14.0  # recomputed by the build with P5


def test_the_nightly_step_keeps_the_outcomes_since_the_build(db):
    """`itrack feedback` (the nightly step, no build) right after a live outcome computed from
    the marts alone and wiped it from feeders.json (referral placements back to 1) until the
    next build. It now folds in the outcomes the build has not counted, as the live path
    does; once a build has them, the marts speak for themselves."""
    from feedback.service import LIVE_KEY
    from ingest.store.duckdb.feedback_log import DuckDBFeedbackLog

    InterviewService(DuckDBInterviewStore(db)).complete_interview_process(
        pid(5), "offer_accepted", OFFER
    )
    live = feedback_service(db).process_interview_outcome(pid(5)).metrics

    after = nightly_feedback(db)
    counts = ("candidates_sourced", "placements", "decided_processes")
    assert [after["referral"][k] for k in counts] == [3, 2, 3]
    assert after["referral"]["smoothed_conversion_rate"] == live["smoothed_conversion_rate"]
    # every feeder's smoothed rate uses the moved overall rate (2 placed of 7 sourced)
    assert after["linkedin"]["smoothed_conversion_rate"] == rounded((0 + 10 * 2 / 7) / (3 + 10))
    ledger = json.loads(DuckDBFeedbackLog(db).get_state(LIVE_KEY, "{}"))
    assert list(ledger) == [str(pid(5))]
    assert ledger[str(pid(5))][:2] == ["referral", "offer_accepted"]
    assert ledger[str(pid(5))][3] == "c1"  # after the time it was decided
    placed = json.loads((db.parent / "candidate_placements.json").read_text())
    # c1's placement at Acme (P1, the build's) and the live one at Beta (P5), kept
    assert [(r["company"], r["offer_details"]["base_salary"]) for r in placed["c1"]] == [
        ("Acme", 150000),
        ("Beta", OFFER["base_salary"]),
    ]
    assert placed["c1"][1] == ledger[str(pid(5))][4]
    build(db)
    rebuilt = nightly_feedback(db)
    assert [rebuilt["referral"][k] for k in counts] == [3, 2, 3]
    assert DuckDBFeedbackLog(db).get_state(LIVE_KEY, "{}") == "{}"
    assert json.loads((db.parent / "candidate_placements.json").read_text())["c1"] == placed["c1"]


def nightly_feedback(
    db: Path, candidates: Path | None = None, full: bool = True
) -> dict[str, dict]:
    """The feedback step of `itrack feedback` on `db` (`--full` unless told; `--candidates`):
    each feeder's metrics in feeders.json."""
    from feedback.service import run_feedback
    from ingest.store.duckdb.feedback_log import DuckDBFeedbackLog

    run_feedback(
        warehouse=db,
        log=DuckDBFeedbackLog(db),
        feeders_path=db.parent / "feeders.json",
        placements_path=db.parent / "candidate_placements.json",
        candidates_path=candidates,
        full=full,
    )
    feeders = json.loads((db.parent / "feeders.json").read_text())["feeders"]
    return {name: entry["metrics"] for name, entry in feeders.items()}


def test_an_outcome_undone_by_a_reopen_leaves_with_the_next_build(db):
    """P5 accepted live, then reopened (a correction, no feedback trigger) and built as
    offer_extended: the ledger kept the acceptance because the built status differed, so every
    later feeders.json counted referral's placements as 2 of 3 (the marts: 1) and the placements
    file kept the undone placement (found by the exploratory marts run). An outcome the build
    has seen (its updated_at at or after the outcome's time) now leaves the ledger."""
    from feedback.service import LIVE_KEY
    from ingest.store.duckdb.feedback_log import DuckDBFeedbackLog

    service = InterviewService(DuckDBInterviewStore(db))
    service.complete_interview_process(pid(5), "offer_accepted", OFFER)
    feedback_service(db).process_interview_outcome(pid(5))
    service.reopen_interview_process(pid(5), "entered on the wrong process", "rita")
    build(db)
    referral = nightly_feedback(db)["referral"]
    counts = ("candidates_sourced", "placements", "decided_processes")
    # P1 placed, P2 rejected, P5 offer_extended again
    assert [referral[k] for k in counts] == [3, 1, 2]
    assert DuckDBFeedbackLog(db).get_state(LIVE_KEY, "{}") == "{}"
    placed = json.loads((db.parent / "candidate_placements.json").read_text())
    assert [r["company"] for r in placed["c1"]] == ["Acme"]


def test_a_rejection_moves_the_counts_and_records_no_placement(db):
    InterviewService(DuckDBInterviewStore(db)).complete_interview_process(
        pid(5), "candidate_withdrew"
    )
    result = feedback_service(db, clock=lambda: NOW).process_interview_outcome(pid(5))
    assert (result.metrics["placements"], result.metrics["decided_processes"]) == (1, 3)
    assert result.metrics["decided_conversion_rate"] == rounded(1 / 3)
    # no placement for P5; the missing file is written as the nightly step writes it
    assert result.placement_recorded
    assert json.loads((db.parent / "candidate_placements.json").read_text()) == {"c1": [ACME]}


def test_live_values_equal_what_the_next_build_computes(db):
    """The counts and the rates that follow from them are what the marts say after a build."""
    InterviewService(DuckDBInterviewStore(db)).complete_interview_process(
        pid(5), "offer_accepted", OFFER
    )
    live = feedback_service(db).process_interview_outcome(pid(5)).metrics
    build(db)
    rebuilt = feedback_service(db).get_feeder_performance_report("referral").to_dict()
    for key in (
        "candidates_sourced",
        "placements",
        "conversion_rate",
        "decided_processes",
        "decided_conversion_rate",
        "wilson_interval",
        "smoothed_conversion_rate",
    ):
        assert live[key] == rebuilt[key], key


def test_scoring_job_fields_are_kept_and_a_corrupt_file_is_refused(db):
    feeders = db.parent / "feeders.json"
    feeders.write_text(json.dumps({"version": 2, "feeders": {"referral": {"weight": 1.5}}}))
    InterviewService(DuckDBInterviewStore(db)).complete_interview_process(
        pid(5), "candidate_withdrew"
    )
    feedback_service(db, clock=lambda: NOW).process_interview_outcome(pid(5))
    document = json.loads(feeders.read_text())
    assert document["version"] == 2 and document["feeders"]["referral"]["weight"] == 1.5
    assert list(document["feeders"]) == ["referral", "agency", "linkedin"]  # new ones appended
    feeders.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        feedback_service(db).update_feeder_conversion_rates("linkedin")
    assert feeders.read_text() == "{not json"


def test_only_trigger_statuses_and_known_feeders(db):
    with pytest.raises(Refused, match="is in_progress: feedback runs for a process that reached"):
        feedback_service(db).process_interview_outcome(pid(7))
    with pytest.raises(UnknownNameError, match="no such feeder 'refferal'; closest: referral"):
        feedback_service(db).update_feeder_conversion_rates("refferal")
    with pytest.raises(UnknownNameError, match="no such feeder 'linkdin'; closest: linkedin"):
        feedback_service(db).get_feeder_performance_report("linkdin")


def test_update_feeder_conversion_rates_is_the_nightly_value_without_changes(db):
    result = feedback_service(db, clock=lambda: NOW).update_feeder_conversion_rates("Referral")
    assert result.feeder_source == "referral" and result.feeders_updated
    report = feedback_service(db).get_feeder_performance_report("referral").to_dict()
    assert {k: v for k, v in result.metrics.items() if k != "updated_at"} == {
        k: v for k, v in report.items() if k != "feeder_source"
    }
    assert (report["candidates_sourced"], report["placements"], report["conversion_rate"]) == (
        3,
        1,
        rounded(1 / 3),
    )
    assert report["smoothed_conversion_rate"] == rounded((1 + 10 * 1 / 7) / (3 + 10))


def test_python_formulas_equal_the_marts(built):
    """Wilson and the prior strength used live are the marts' own (one definition, a proof)."""
    con = duckdb.connect(str(built), read_only=True)
    rows = con.execute(
        "select placements, candidates_sourced, smoothed_conversion_rate, wilson_lower, "
        "wilson_upper from mart_feeder_conversion"
    ).fetchall()
    con.close()
    for placed, sourced, _, low, high in rows:
        assert wilson(placed, sourced) == pytest.approx((low, high), abs=1e-12)
    prior = sum(r[0] for r in rows) / sum(r[1] for r in rows)
    assert derive_prior_strength([r[:3] for r in rows], prior) == 10  # dbt var default


# ---- the interview service triggers it (wired by the shell) --------------------------------------


def test_completing_a_process_runs_the_feedback_step(db):
    done = interview_service(db).complete_interview_process(pid(5), "offer_accepted", OFFER)
    assert done.status == "offer_accepted"
    assert (done.feedback.status, done.feedback.detail) == (
        "ran",
        "feeders.json updated for referral; placement recorded",
    )
    metrics = json.loads((db.parent / "feeders.json").read_text())["feeders"]["referral"]["metrics"]
    assert (metrics["placements"], metrics["candidates_sourced"]) == (2, 3)
    assert "c1" in json.loads((db.parent / "candidate_placements.json").read_text())


def test_a_failed_stage_that_closes_the_process_runs_it_too(db):
    service = interview_service(db)
    process = service.create_interview_process("c3", "Gamma", "Engineer")  # linkedin
    stage = service.add_interview_stage(process.id, "Phone Screen", 1)
    done = service.record_stage_outcome(stage.id, "failed")
    assert done.process.status == "rejected_by_company"
    assert done.feedback.status == "ran"
    metrics = json.loads((db.parent / "feeders.json").read_text())["feeders"]["linkedin"]["metrics"]
    assert (metrics["candidates_sourced"], metrics["decided_processes"]) == (4, 4)


def test_feedback_that_cannot_run_is_deferred_and_the_change_stands(db):
    feeders = db.parent / "feeders.json"
    feeders.write_text("{not json")
    done = interview_service(db).complete_interview_process(pid(5), "candidate_withdrew")
    assert done.feedback.status == "deferred"
    assert done.feedback.detail.startswith(f"{feeders}: not valid JSON")
    assert str(done.feedback).startswith("feedback deferred to the next build: ")
    assert interview_service(db).get_interview(pid(5)).process.status == "candidate_withdrew"
    assert feeders.read_text() == "{not json"


def test_no_feedback_for_other_moves_and_without_a_registered_step(db):
    assert interview_service(db).complete_interview_process(pid(7), "on_hold").feedback is None
    bare = interview_service(db, feedback=False)
    done = bare.complete_interview_process(pid(7), "candidate_withdrew")
    assert (done.feedback.status, done.feedback.detail) == (
        "deferred",
        "no feedback step registered",
    )
    assert not (db.parent / "feeders.json").exists()


def test_a_feeder_new_since_the_build_is_deferred_with_why(db):
    service = interview_service(db)
    process = service.create_interview_process("c1", "Acme", "SRE", feeder_source="meetup")
    done = service.complete_interview_process(process.id, "candidate_withdrew")
    assert (done.feedback.status, done.feedback.detail) == (
        "deferred",
        "feeder 'meetup' is not in the last build yet; the next build adds it to feeders.json",
    )


def test_interview_complete_prints_what_feedback_did(db):
    from typer.testing import CliRunner

    from itrack.cli.main import app

    result = CliRunner().invoke(
        app, ["interview", "complete", pid(5), "candidate_withdrew", "--db", str(db)]
    )
    assert result.exit_code == 0 and result.exception is None, result.output
    # the placements file was missing: written whole, as the nightly step writes it
    last = "feedback ran: feeders.json updated for referral; placement history updated\n"
    assert result.output.endswith(last)


def three_processes_built(tmp_path: Path, p2_company: str = "Beta") -> Path:
    """A built warehouse with no placement: referral's P1 offer_extended at Acme and P2 in
    progress at `p2_company`, ex-amazon's P3 rejected at Acme."""
    data = RawData(
        candidates={"c1": "referral", "c2": "ex-amazon"},
        processes=[
            Process(1, "c1", "Acme", None, "offer_extended", "2025-01-01", "2025-01-05"),
            Process(2, "c1", p2_company, None, "in_progress", "2025-01-02", "2025-01-02"),
            Process(3, "c2", "Acme", None, "rejected_by_company", "2025-01-03", "2025-01-04"),
        ],
    )
    for p in data.processes:
        p.history = [("in_progress", p.created)] + (
            [(p.status, p.updated)] if p.status != "in_progress" else []
        )
    db = tmp_path / "warehouse.duckdb"
    write_raw_store(raw_store_path(db), data)
    build(db)
    return db


def no_placement_yet(tmp_path: Path) -> Path:
    """`three_processes_built`, then P1 accepted live: its outcome waits in the live ledger."""
    db = three_processes_built(tmp_path)
    InterviewService(DuckDBInterviewStore(db)).complete_interview_process(
        pid(1), "offer_accepted", OFFER
    )
    return db


# referral after P1's acceptance, smoothed with the dbt var feeder_prior_strength (10) toward
# the overall 1 of 3, as the next build gives it
SMOOTHED_LIVE = rounded((1 + 10 * 1 / 3) / (2 + 10))


def test_live_smoothing_before_any_placement_is_the_builds(tmp_path):
    """No placement in the build: every feeder's smoothed rate is the overall 0, so the build's
    rows cannot tell the smoothing strength. A live acceptance left smoothed_conversion_rate at
    0.0 beside a conversion_rate of 0.5 (found by the exploratory marts run); it is now smoothed
    with the dbt var (10) as the next build does: referral (1 + 10 x 1/3) / (2 + 10)."""
    db = no_placement_yet(tmp_path)
    live = feedback_service(db).process_interview_outcome(pid(1)).metrics
    assert (live["conversion_rate"], live["smoothed_conversion_rate"]) == (0.5, SMOOTHED_LIVE)
    build(db)
    rebuilt = feedback_service(db).get_feeder_performance_report("referral").to_dict()
    assert rebuilt["smoothed_conversion_rate"] == live["smoothed_conversion_rate"]


def test_a_placement_undone_by_a_reopen_leaves_the_candidates_file_with_the_next_build(db):
    """P5 accepted live with a candidates file, then reopened and built as offer_extended:
    `itrack feedback --candidates` merged the file from the ledger as read, before the build's
    pruning, so c1 kept the undone placement at Beta for one more run while the placements
    file had lost it (found by checking the live path against a fresh build). The file is now
    merged from the ledger the build left."""
    from feedback.service import LIVE_KEY
    from ingest.store.duckdb.feedback_log import DuckDBFeedbackLog

    people = db.parent / "candidates.json"
    people.write_text(json.dumps([{"id": "c1", "name": "Ann"}, {"id": "c2", "name": "Bo"}]))
    service = InterviewService(DuckDBInterviewStore(db))
    service.complete_interview_process(pid(5), "offer_accepted", OFFER)
    feedback_service(db, candidates=people).process_interview_outcome(pid(5))
    service.reopen_interview_process(pid(5), "entered on the wrong process", "rita")
    build(db)
    nightly_feedback(db, candidates=people)
    assert DuckDBFeedbackLog(db).get_state(LIVE_KEY, "{}") == "{}"
    placed = json.loads((db.parent / "candidate_placements.json").read_text())
    acme = {
        "company": "Acme",
        "role": "Engineer",
        "placement_date": "2025-01-15T10:00:00",
        "offer_details": {"base_salary": 150000, "currency": "USD"},
    }
    assert placed["c1"] == [acme]
    assert json.loads(people.read_text()) == [
        {"id": "c1", "name": "Ann", "placement_history": [acme]},
        {"id": "c2", "name": "Bo"},
    ]


def test_a_placement_accepted_again_after_a_reopen_is_recorded_once(db):
    """P5 accepted live, reopened (a correction, no feedback run), accepted again live: the
    live path built c1's history from the placements file as it stood, so the undone
    acceptance stayed beside the new one (c1 placed twice at Beta by one process) in the
    placements file and the candidates file, where `itrack feedback` right after wrote it once
    (found by checking the live path against the nightly step). The live path now takes the
    history as the nightly step does: the build's placements and the ledger's."""
    people = db.parent / "candidates.json"
    people.write_text(json.dumps([{"id": "c1", "name": "Ann"}]))
    service = InterviewService(DuckDBInterviewStore(db))
    live = feedback_service(db, candidates=people)
    service.complete_interview_process(pid(5), "offer_accepted", OFFER, at="2025-02-01T10:00Z")
    live.process_interview_outcome(pid(5))
    service.reopen_interview_process(pid(5), "wrong process", "rita", at="2025-02-02T10:00Z")
    service.complete_interview_process(pid(5), "offer_accepted", OFFER, at="2025-02-03T10:00Z")
    live.process_interview_outcome(pid(5))
    expected = [
        {
            "company": "Acme",
            "offer_details": {"base_salary": 150000, "currency": "USD"},
            "placement_date": "2025-01-15T10:00:00",
            "role": "Engineer",
        },
        {
            "company": "Beta",
            "offer_details": {"base_salary": 120000, "currency": "EUR"},
            "placement_date": "2025-02-03T10:00:00",
            "role": "Engineer",
        },
    ]
    assert json.loads((db.parent / "candidate_placements.json").read_text())["c1"] == expected
    assert json.loads(people.read_text()) == [
        {"id": "c1", "name": "Ann", "placement_history": expected}
    ]


def test_a_live_placement_names_the_company_as_the_build_does(tmp_path):
    """Acme spelled `acme ` on P2: the build shows the company by its most frequent spelling
    (Acme), but a live acceptance of P2 wrote the process's own spelling into the placements
    file (`acme `, until the next build said Acme; found by comparing the live placements file
    with the next build's). A process the build knows is now named as the build names it."""
    db = three_processes_built(tmp_path, p2_company="acme ")
    InterviewService(DuckDBInterviewStore(db)).complete_interview_process(
        pid(2), "offer_accepted", OFFER, at="2025-02-01T10:00Z"
    )
    feedback_service(db).process_interview_outcome(pid(2))
    expected = {
        "c1": [
            {
                "company": "Acme",
                "offer_details": OFFER,
                # one tick after offer_extended, which the acceptance passed through
                "placement_date": "2025-02-01T10:00:00.000001",
                "role": "Engineer",
            }
        ]
    }
    assert json.loads((db.parent / "candidate_placements.json").read_text()) == expected
    build(db)
    built = read(
        db, "select company_name from fct_interview_processes where status = 'offer_accepted'"
    )
    assert built == [("Acme",)]


def test_a_live_placement_keeps_the_builds_key_order_in_the_candidates_file(db):
    """The ledger keeps its outcomes as JSON with sorted keys, so `itrack feedback
    --candidates` after a live acceptance wrote c1's live placement as company, offer_details,
    placement_date, role; the build's records are company, role, placement_date,
    offer_details, and a later run keeps a history equal in value as bytes, so the file never
    became what a fresh build writes (found by comparing it byte for byte with a fresh build's).
    Live records now take the build's order."""

    people = db.parent / "candidates.jsonl"
    people.write_text('{"id": "c1", "name": "Ann"}\n')
    InterviewService(DuckDBInterviewStore(db)).complete_interview_process(
        pid(5), "offer_accepted", OFFER, at="2025-02-01T10:00Z"
    )
    feedback_service(db).process_interview_outcome(pid(5))
    nightly_feedback(db, candidates=people)
    acme = (
        '{"company": "Acme", "role": "Engineer", "placement_date": "2025-01-15T10:00:00", '
        '"offer_details": {"base_salary": 150000, "currency": "USD"}}'
    )
    beta = (
        '{"company": "Beta", "role": "Engineer", "placement_date": "2025-02-01T10:00:00.000002", '
        '"offer_details": {"base_salary": 120000, "currency": "EUR"}}'
    )
    expected = f'{{"id": "c1", "name": "Ann", "placement_history": [{acme}, {beta}]}}\n'
    assert people.read_text() == expected


def test_a_placement_undone_by_a_reopen_leaves_the_placements_file_of_a_default_run(db):
    """P5 accepted live, a default `itrack feedback` (its placement folded into the file from
    the ledger), P5 reopened, built as offer_extended: the log said the file was exactly what
    the build's placement rows render to, and those rows had not changed, so every later run
    kept the undone placement at Beta (found by comparing `itrack build`'s placements file with
    a fresh build's). A file with live placements folded in is now rendered again next time."""
    from feedback.service import LIVE_KEY
    from ingest.store.duckdb.feedback_log import DuckDBFeedbackLog

    def nightly() -> dict:
        nightly_feedback(db, full=False)
        return json.loads((db.parent / "candidate_placements.json").read_text())

    service = InterviewService(DuckDBInterviewStore(db))
    service.complete_interview_process(pid(5), "offer_accepted", OFFER)
    feedback_service(db).process_interview_outcome(pid(5))
    assert [r["company"] for r in nightly()["c1"]] == ["Acme", "Beta"]
    service.reopen_interview_process(pid(5), "entered on the wrong process", "rita")
    build(db)
    acme = {
        "company": "Acme",
        "offer_details": {"base_salary": 150000, "currency": "USD"},
        "placement_date": "2025-01-15T10:00:00",
        "role": "Engineer",
    }
    assert nightly()["c1"] == [acme]
    assert DuckDBFeedbackLog(db).get_state(LIVE_KEY, "{}") == "{}"
    assert nightly()["c1"] == [acme]


def test_a_built_placement_withdrawn_live_leaves_the_placements_of_the_nightly_step(db):
    """P1 (c1 placed at Acme in the build) reopened and withdrawn live: `itrack feedback`
    folded the withdrawal into referral's counts (placements 1 -> 0) but kept the Acme
    placement in the placements file and the candidates file until the next build (found by
    comparing the nightly step's outputs after live operations). A built placement whose
    process the ledger says is no longer accepted now leaves them in the same run."""

    people = db.parent / "candidates.jsonl"
    people.write_text('{"id": "c1", "name": "Ann"}\n')
    service = InterviewService(DuckDBInterviewStore(db))
    service.reopen_interview_process(pid(1), "accepted elsewhere", "rita")
    service.complete_interview_process(pid(1), "candidate_withdrew")
    feedback_service(db).process_interview_outcome(pid(1))
    nightly_feedback(db, candidates=people, full=False)
    referral = json.loads((db.parent / "feeders.json").read_text())["feeders"]["referral"]
    assert referral["metrics"]["placements"] == 0
    assert "c1" not in json.loads((db.parent / "candidate_placements.json").read_text())
    assert people.read_text() == '{"id": "c1", "name": "Ann"}\n'  # as for one never placed


def outputs(db: Path, *others: Path) -> dict[str, object]:
    """feeders.json, the placements file and `others`, parsed (JSON Lines line by line)."""
    found: dict[str, object] = {}
    for path in (db.parent / "feeders.json", db.parent / "candidate_placements.json", *others):
        text = path.read_text()
        lines = [json.loads(line) for line in text.splitlines()] if path.suffix == ".jsonl" else []
        found[path.name] = lines or json.loads(text)
    return found


def test_a_live_outcome_moves_every_feeders_smoothed_rate_as_the_nightly_step_does(db):
    """An accepted offer moves the overall rate (the prior of every smoothed rate: 1 of 7
    placed -> 2 of 7), but the live path rewrote only referral's metrics: linkedin and agency
    kept smoothed rates from the old prior until the next `itrack feedback` (found by comparing
    the live feeders.json with the nightly step's for the same store). Every feeder whose
    metrics moved is now written, and logged, as the nightly step does."""
    nightly_feedback(db)  # the outputs a build leaves
    InterviewService(DuckDBInterviewStore(db)).complete_interview_process(
        pid(5), "offer_accepted", OFFER
    )
    result = feedback_service(db, clock=lambda: NOW).process_interview_outcome(pid(5))
    live = json.loads((db.parent / "feeders.json").read_text())["feeders"]
    # k = 10, prior 2 / 7: agency 0 of 1, linkedin 0 of 3, referral 2 of 3
    assert {name: e["metrics"]["smoothed_conversion_rate"] for name, e in live.items()} == {
        "agency": rounded((0 + 10 * 2 / 7) / (1 + 10)),
        "linkedin": rounded((0 + 10 * 2 / 7) / (3 + 10)),
        "referral": rounded((2 + 10 * 2 / 7) / (3 + 10)),
    }
    assert {name: e["metrics"]["updated_at"] for name, e in live.items()} == dict.fromkeys(
        ("agency", "linkedin", "referral"), NOW
    )
    assert sorted((f, json.loads(m)) for r, f, m in runs(db) if r == result.run_id) == sorted(
        (name, e["metrics"]) for name, e in live.items()
    )
    nightly_feedback(db, full=False)
    assert json.loads((db.parent / "feeders.json").read_text())["feeders"] == live


def _close_p5(db: Path, outcome: str) -> None:
    """P5 (c1's, referral) closed with `outcome` on 2025-02-03, feedback not run."""
    service = interview_service(db, feedback=False)
    at = "2025-02-03T10:00Z"
    if outcome == "failed stage":
        stage = service.get_interview(pid(5)).stages[0]  # Phone Screen, pending
        closed = service.record_stage_outcome(stage.id, "failed", at=at).process
        assert (closed.status, closed.final_outcome) == (
            "rejected_by_company",
            "Failed Phone Screen",
        )
    elif outcome == "offer_accepted":
        service.complete_interview_process(
            pid(5), outcome, {"base_salary": 1, "currency": "EUR"}, at=at
        )
    else:
        service.complete_interview_process(pid(5), outcome, at=at)


ACME = {
    "company": "Acme",
    "role": "Engineer",
    "placement_date": "2025-01-15T10:00:00",
    "offer_details": {"base_salary": 150000, "currency": "USD"},
}


@pytest.mark.parametrize(
    "outcome", ["offer_accepted", "rejected_by_company", "candidate_withdrew", "failed stage"]
)
def test_every_closing_leaves_the_outputs_the_nightly_step_writes(db, outcome):
    """P5 accepted live (c1 placed at Beta), reopened by a correction (no feedback run), then
    closed again live: a rejection, a withdrawal or a failed stage left c1's Beta placement in
    the placements file and the candidates file (only an acceptance rewrote them) until the
    next `itrack feedback` took it out, and every closing left the other feeders' smoothed rates
    stale (found by comparing the live outputs with the nightly step's for the same store).
    After any closing the outputs are now what the nightly step writes from the same store."""
    people = db.parent / "candidates.jsonl"
    people.write_text('{"id": "c1", "name": "Ann"}\n')
    nightly_feedback(db, candidates=people)  # the outputs a build leaves
    live = feedback_service(db, candidates=people, clock=lambda: NOW)
    service = interview_service(db, feedback=False)
    service.complete_interview_process(pid(5), "offer_accepted", OFFER, at="2025-02-01T10:00Z")
    live.process_interview_outcome(pid(5))
    service.reopen_interview_process(
        pid(5), "wrong process", "rita", "in_progress", at="2025-02-02T10:00Z"
    )
    _close_p5(db, outcome)
    result = live.process_interview_outcome(pid(5))

    accepted = outcome == "offer_accepted"
    beta = {
        "company": "Beta",
        "role": "Engineer",
        # one tick after offer_extended, which the acceptance passed through
        "placement_date": "2025-02-03T10:00:00.000001",
        "offer_details": {"base_salary": 1, "currency": "EUR"},
    }
    expected = [ACME, beta] if accepted else [ACME]
    after = outputs(db, people)
    assert after["candidate_placements.json"] == {"c1": expected}
    assert after["candidates.jsonl"] == [{"id": "c1", "name": "Ann", "placement_history": expected}]
    referral = after["feeders.json"]["feeders"]["referral"]["metrics"]
    placed = 2 if accepted else 1
    assert (referral["candidates_sourced"], referral["placements"]) == (3, placed)
    assert referral["decided_processes"] == 3
    assert result.placement_recorded  # c1's Beta placement went, or moved to 2025-02-03
    nightly_feedback(db, candidates=people, full=False)
    assert outputs(db, people) == after


def test_a_live_acceptance_without_a_placements_file_writes_it_whole(db):
    """No placements file (deleted, or never written: this warehouse was built without the
    feedback step): a live acceptance of c3's new process wrote a file holding c3 alone, where
    the nightly step writes every placed candidate (c1's Acme placement was missing). The live
    path now renders a missing file whole, as the nightly step does."""
    service = interview_service(db, feedback=False)
    process = service.create_interview_process("c3", "Gamma", "Analyst", at="2025-02-01T10:00Z")
    offer = {"base_salary": 90000, "currency": "GBP"}
    service.complete_interview_process(process.id, "offer_accepted", offer, at="2025-02-03T10:00Z")
    result = feedback_service(db, clock=lambda: NOW).process_interview_outcome(process.id)
    gamma = {
        "company": "Gamma",
        "role": "Analyst",
        # one tick after offer_extended, which the acceptance passed through
        "placement_date": "2025-02-03T10:00:00.000001",
        "offer_details": offer,
    }
    assert result.placement_recorded and str(result).endswith("; placement recorded")
    placed = json.loads((db.parent / "candidate_placements.json").read_text())
    assert placed == {"c1": [ACME], "c3": [gamma]}
    nightly_feedback(db, full=False)
    assert json.loads((db.parent / "candidate_placements.json").read_text()) == placed


def test_a_live_withdrawal_takes_a_built_placement_out_of_the_candidates_file(db):
    """P1 (c1 placed at Acme in the build) reopened and withdrawn live: the live path left
    c1's Acme placement in the placements file and in the candidates file's
    `placement_history` until the next `itrack feedback` (found by comparing the live outputs
    with the nightly step's). c1, placed no more, now leaves both at once, as one never placed."""
    people = db.parent / "candidates.jsonl"
    people.write_text('{"id": "c1", "name": "Ann"}\n')
    nightly_feedback(db, candidates=people)  # the outputs a build leaves
    assert outputs(db, people)["candidates.jsonl"] == [
        {"id": "c1", "name": "Ann", "placement_history": [ACME]}
    ]
    service = interview_service(db, feedback=False)
    service.reopen_interview_process(pid(1), "accepted elsewhere", "rita")
    service.complete_interview_process(pid(1), "candidate_withdrew")
    result = feedback_service(db, candidates=people).process_interview_outcome(pid(1))
    assert (result.placement_recorded, result.candidates_updated) == (True, True)
    assert str(result) == "feeders.json updated for referral; placement history updated"
    assert (db.parent / "candidate_placements.json").read_text() == "{}\n"
    assert people.read_text() == '{"id": "c1", "name": "Ann"}\n'
    after = outputs(db, people)
    nightly_feedback(db, candidates=people, full=False)
    assert outputs(db, people) == after
