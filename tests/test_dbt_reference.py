"""The marts and feeders.json against a plain-Python reference (tests/reference_model.py) on
messy generated processes, through the real path: JSONL files -> `ingest` (several runs, with
updates and stale copies) -> `dbt run` -> feedback.

Hypothesis draws the messiness real exports have: every stage-name spelling (canonical names
included, `_`/`-`, odd case and Unicode spaces), retakes, no-shows, cancellations, pending
stages, offers without stages, on-hold loops, timestamps with zone offsets and near midnight,
ties, company/feeder/interviewer name variants, later ingests with updates, stale copies and
feeder changes. Each example costs a dbt run (seconds, whatever the data size), so `make test`
runs a few examples of many processes; `make test-all` (marker `slow`) runs 40 of each.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from feedback.service import run_feedback
from ingest.load import ingest_paths
from ingest.store.duckdb.feedback_log import DuckDBFeedbackLog
from ingest.store.duckdb.store import raw_store_path
from itrack.dbt_runner import PROJECT_DIR, run_dbt
from tests.reference_model import Params, Reference

AS_OF = dt.datetime(2026, 1, 1, 12, 0)
VARS = {"as_of": AS_OF.strftime("%Y-%m-%d %H:%M:%S"), "preferred_feeder_min_processes": 2}
BASE = dt.datetime(2025, 3, 1, 23, 0)  # near midnight: day boundaries are crossed often

COMPANIES = ["Stripe", "stripe", "Stripe ", "  STRIPE", "Acme\u00a0Corp", "Acme Corp", "acme  corp"]
FEEDERS = [None, "referral", "Referral", "referral ", "LinkedIn", "linkedin", "ex-google"]
STAGE_NAMES = [
    "Phone Screen",
    "phone_screen",
    "Phone-Screen",
    "PHONE  SCREEN",
    "Phone\u00a0Screen ",
    "technical",
    "Technical_Interview",
    "Coding",
    "Final-Round",
    "onsite",
    "Onsite\u3000Interview",
    "Take-home",
    "take home",
    "Take_Home",
]
INTERVIEWERS = ["Dana", "dana", "Dana ", "Lee", "LEE", "Zoë"]
NOTES = [
    None,
    "Strong Node.js skills; weak SQL.",
    "Scored 2.5 on algorithms. Good communication.",
    "poor culture fit",
    "Great system design.\nClear answers",
    "Weak SQL; weak SQL.",
]
OUTCOMES_TEXT = [
    None,
    "Failed technical interview",
    "failed  Technical interview.",
    " . ; ",
    "Weak Node.js",
]
OFFER = {"base_salary": 100000, "currency": "EUR"}


def _ts(value: dt.datetime, offset_hours: int) -> str:
    """The instant `value` (naive UTC) written with a zone offset."""
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    return value.replace(tzinfo=dt.UTC).astimezone(zone).isoformat()


# ---- drawing a messy history of exports ------------------------------------------------------

STATUS_PATHS = [  # a process's statuses over successive exports (each reachable from the last)
    ["in_progress"],
    ["in_progress", "on_hold", "in_progress"],
    ["in_progress", "offer_extended"],
    ["offer_extended", "offer_accepted"],
    ["in_progress", "offer_extended", "offer_declined"],
    ["in_progress", "rejected_by_company"],
    ["rejected_by_company"],
    ["on_hold", "candidate_withdrew"],
    ["offer_extended", "candidate_withdrew"],
    ["offer_accepted"],
]


@st.composite
def exports(draw: Any, max_processes: int = 8, max_batches: int = 3) -> list[dict[str, list]]:
    """Batches of records (candidates, processes, stages), as successive nightly exports."""
    n_batches = draw(st.integers(1, max_batches))
    batches: list[dict[str, list]] = [
        {"candidates": [], "processes": [], "stages": []} for _ in range(n_batches)
    ]
    n_candidates = draw(st.integers(1, 4))
    for c in range(n_candidates):
        record = {
            "id": f"c{c}",
            "full_name": f"Candidate {c}",
            "feeder_source": draw(st.sampled_from(FEEDERS)),
            "created_at": _ts(BASE - dt.timedelta(days=30), 0),
        }
        batches[0]["candidates"].append(record)
        if n_batches > 1 and draw(st.booleans()):  # the candidate's feeder changes later
            later = dict(record, feeder_source=draw(st.sampled_from(FEEDERS)))
            later["updated_at"] = _ts(BASE - dt.timedelta(days=1), 0)
            batches[draw(st.integers(1, n_batches - 1))]["candidates"].append(later)
    for n in range(draw(st.integers(1, max_processes))):
        pid = str(uuid.UUID(int=n + 1, version=4))
        created = BASE + dt.timedelta(minutes=draw(st.integers(0, 60 * 24 * 20)))
        path = draw(st.sampled_from(STATUS_PATHS))
        first = draw(st.integers(0, n_batches - 1))
        process = {
            "id": pid,
            "candidate_id": f"c{draw(st.integers(0, n_candidates - 1))}",
            "company_name": draw(st.sampled_from(COMPANIES)),
            "role_title": "Engineer",
            "feeder_source": draw(st.sampled_from(FEEDERS)),
            "final_outcome": draw(st.sampled_from(OUTCOMES_TEXT)),
            "created_at": _ts(created, draw(st.sampled_from([0, 2, -5]))),
        }
        stamp = created + dt.timedelta(hours=draw(st.integers(0, 30)))  # 0: ties at creation
        versions = []
        for step, status in enumerate(path):
            version = dict(process, status=status, updated_at=_ts(stamp, 0))
            if status in ("offer_extended", "offer_accepted", "offer_declined") or (
                status == "candidate_withdrew" and draw(st.booleans())
            ):
                if draw(st.integers(0, 4)) > 0:  # offers without details happen too
                    version["offer_details"] = OFFER
            versions.append(version)
            stamp += dt.timedelta(hours=draw(st.integers(1, 60)), minutes=draw(st.integers(0, 59)))
            if step + 1 < len(path) and draw(st.booleans()) and n_batches > 1:
                pass
        # successive versions go to successive batches (from `first` on); the rest of the
        # path collapses into the last batch's snapshot
        for i, version in enumerate(versions):
            batch = min(first + i, n_batches - 1)
            batches[batch]["processes"].append(version)
        last = versions[-1]
        if first + len(versions) - 1 < n_batches - 1 and draw(st.booleans()):
            # a stale copy (older updated_at) in a later export, and maybe a feeder change
            batches[n_batches - 1]["processes"].append(versions[0])
        if n_batches > 1 and draw(st.booleans()):
            moved = dict(last, feeder_source=draw(st.sampled_from(FEEDERS)))
            moved["updated_at"] = _ts(stamp + dt.timedelta(hours=1), 0)
            if draw(st.integers(0, 5)) == 0:  # created_at corrected after the decision
                moved["created_at"] = _ts(stamp + dt.timedelta(hours=1), 0)
            batches[n_batches - 1]["processes"].append(moved)
            stamp += dt.timedelta(hours=1)
        # stages: retakes, no-shows, cancellations, pending; none at all is an option
        clock = created
        for order in range(1, draw(st.integers(0, 4)) + 1):
            scheduled = clock + dt.timedelta(hours=draw(st.integers(0, 40)))
            outcome = draw(st.sampled_from(["passed", "failed", "pending", "cancelled", "no_show"]))
            completed = (
                scheduled + dt.timedelta(minutes=draw(st.integers(0, 4000)))
                if outcome in ("passed", "failed") or draw(st.booleans())
                else None
            )
            stage = {
                "id": str(uuid.UUID(int=(n + 1) * 1000 + order, version=4)),
                "interview_process_id": pid,
                "stage_name": draw(st.sampled_from(STAGE_NAMES)),
                "stage_order": order,
                "scheduled_date": _ts(scheduled, draw(st.sampled_from([0, 1]))),
                "completed_date": _ts(completed, 0) if completed else None,
                "outcome": outcome,
                "overall_rating": draw(st.one_of(st.none(), st.integers(1, 5))),
                "technical_rating": draw(st.one_of(st.none(), st.integers(1, 5))),
                "feedback_notes": draw(st.sampled_from(NOTES)),
                "interviewer_names": draw(st.lists(st.sampled_from(INTERVIEWERS), max_size=3)),
                "created_at": _ts(created, 0),
            }
            stage = {k: v for k, v in stage.items() if v is not None}
            clock = completed or scheduled
            batches[min(first + draw(st.integers(0, 1)), n_batches - 1)]["stages"].append(stage)
    return batches


def write_batch(folder: Path, batch: dict[str, list]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for kind, records in batch.items():
        if records:
            lines = (json.dumps(r, ensure_ascii=False) for r in records)
            (folder / f"{kind}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


# ---- reading the raw store and the marts -----------------------------------------------------


def rows(db: Path, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()


def reference_of(db: Path) -> Reference:
    raw = raw_store_path(db)
    return Reference(
        candidates=rows(raw, "select * from candidates"),
        processes=rows(raw, "select * from interview_processes"),
        stages=rows(raw, "select * from interview_stages"),
        history=rows(raw, "select * from interview_status_history"),
        params=Params.from_project(PROJECT_DIR, AS_OF, preferred_min=2),
    )


def same(actual: Any, expected: Any, where: Any) -> None:
    """Equal; floats to 1e-9 relative (the SQL engine may add in another order)."""
    if isinstance(expected, float) and actual is not None:
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12), (where, actual)
    elif isinstance(expected, list) and isinstance(actual, list):
        assert len(actual) == len(expected), (where, actual, expected)
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            same(a, e, (where, i))
    elif isinstance(expected, dict) and isinstance(actual, dict):
        assert set(actual) == set(expected), (where, actual, expected)
        for key in expected:
            same(actual[key], expected[key], (where, key))
    else:
        assert actual == expected, (where, actual, expected)


JSON_COLUMNS = {
    "top_rejection_reasons",
    "preferred_feeders",
    "rejection_reasons",
    "top_terms_passed",
    "top_terms_failed",
    "examples",
}


def compare(table: list[dict], expected: dict, key: Any) -> None:
    actual = {key(r): r for r in table}
    assert set(actual) == set(expected)
    for k, row in expected.items():
        for column, value in row.items():
            got = actual[k][column]
            if column in JSON_COLUMNS:
                got = json.loads(got)
            same(got, value, (k, column))


def assert_marts_equal_reference(db: Path, ref: Reference) -> None:
    facts = {
        pid: {
            c: d[c]
            for c in d
            if c not in ("id", "company_spelling", "feeder_spelling", "final_outcome")
        }
        for pid, d in ref.p.items()
    }
    compare(
        rows(db, "select * from fct_interview_processes"),
        facts,
        lambda r: str(r["interview_process_id"]),
    )
    compare(
        rows(db, "select * from fct_process_status_history"),
        ref.status_history(),
        lambda r: (str(r["interview_process_id"]), r["status_sequence"]),
    )
    compare(
        rows(db, "select * from mart_conversion_funnel"),
        ref.funnel(),
        lambda r: (r["grain"], r["group_key"]),
    )
    compare(
        rows(db, "select * from mart_feeder_conversion"),
        ref.feeders(),
        lambda r: r["feeder_source"],
    )
    compare(
        rows(db, "select * from mart_company_insights"),
        ref.companies(),
        lambda r: r["company_name"],
    )
    compare(
        rows(db, "select * from mart_stage_performance"),
        ref.stage_performance(),
        lambda r: (r["grain"], r["group_key"]),
    )
    compare(
        rows(db, "select * from mart_interviewer_calibration"),
        ref.interviewers(),
        lambda r: r["interviewer_name"],
    )
    compare(
        rows(db, "select check_name, affected, examples from mart_data_quality"),
        ref.data_quality(),
        lambda r: r["check_name"],
    )


def build(db: Path) -> None:
    outcome = run_dbt(
        ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"],
        db,
        raw_store_path(db),
        variables=VARS,
    )
    assert outcome.ok, outcome.failures
    duckdb.connect(str(db)).close()


def feedback(db: Path, out: Path, full: bool, now: str) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    run_feedback(
        warehouse=db,
        log=DuckDBFeedbackLog(db),
        feeders_path=out / "feeders.json",
        placements_path=out / "placements.json",
        full=full,
        now=now,
    )
    return json.loads((out / "feeders.json").read_text(encoding="utf-8"))


def scenario(tmp: Path, batches: list[dict[str, list]], each: Any = None) -> Path:
    db = tmp / "warehouse.duckdb"
    for i, batch in enumerate(batches):
        ingest_paths([write_batch(tmp / f"batch{i}", batch)], db=db)
        if each is not None:
            build(db)
            each(db, i)
    if each is None:
        build(db)
    return db


FAST = settings(
    max_examples=2,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: dbt runs are slow
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SLOW = settings(FAST, max_examples=40, derandomize=False)


def check_reference(tmp_path_factory: Any, batches: list[dict[str, list]]) -> None:
    tmp = tmp_path_factory.mktemp("ref")
    db = scenario(tmp, batches)
    ref = reference_of(db)
    assert_marts_equal_reference(db, ref)
    written = feedback(db, tmp / "out", full=True, now="t")
    assert {
        name: {k: v for k, v in e["metrics"].items() if k != "updated_at"}
        for name, e in written["feeders"].items()
    } == ref.feeder_metrics()


@FAST
@given(batches=exports(max_processes=12))
def test_marts_and_feeders_json_equal_the_reference(tmp_path_factory, batches):
    check_reference(tmp_path_factory, batches)


@pytest.mark.slow
@SLOW
@given(batches=exports(max_processes=20))
def test_marts_and_feeders_json_equal_the_reference_many(tmp_path_factory, batches):
    check_reference(tmp_path_factory, batches)


def check_default_equals_full(tmp_path_factory: Any, batches: list[dict[str, list]]) -> None:
    tmp = tmp_path_factory.mktemp("feedback")

    def each(db: Path, i: int) -> None:
        default = feedback(db, tmp / "default", full=False, now=f"step{i}")
        full = feedback(db, tmp / "full", full=True, now=f"step{i}")
        assert default == full, i

    scenario(tmp, batches, each)


@settings(FAST, max_examples=1)
@given(batches=exports(max_processes=8, max_batches=2))
def test_default_feedback_equals_full_after_any_ingests(tmp_path_factory, batches):
    check_default_equals_full(tmp_path_factory, batches)


@pytest.mark.slow
@SLOW
@given(batches=exports(max_processes=12, max_batches=4))
def test_default_feedback_equals_full_after_any_ingests_many(tmp_path_factory, batches):
    check_default_equals_full(tmp_path_factory, batches)


def test_a_process_moving_to_another_feeder_updates_both_in_a_default_run(tmp_path_factory):
    """The old feeder loses the process although none of its rows changed: a default run
    rewrites it as --full does (here it has no process left: the metrics of none)."""
    candidate = {"id": "c0", "full_name": "Ann Lee", "created_at": "2025-01-01T00:00:00Z"}

    def process(n: int, feeder: str, updated: str) -> dict:
        return {
            "id": str(uuid.UUID(int=n, version=4)),
            "candidate_id": "c0",
            "company_name": "Acme",
            "role_title": "Engineer",
            "status": "in_progress",
            "feeder_source": feeder,
            "created_at": "2025-02-01T00:00:00Z",
            "updated_at": updated,
        }

    night1 = {
        "candidates": [candidate],
        "processes": [
            process(1, "referral", "2025-02-01T00:00:00Z"),
            process(2, "linkedin", "2025-02-01T00:00:00Z"),
        ],
        "stages": [],
    }
    night2 = {
        "candidates": [],
        "processes": [process(1, "linkedin", "2025-02-03T00:00:00Z")],
        "stages": [],
    }
    tmp = tmp_path_factory.mktemp("moved")
    written = {}

    def each(db: Path, i: int) -> None:
        written["default"] = feedback(db, tmp / "default", full=False, now=f"step{i}")
        written["full"] = feedback(db, tmp / "full", full=True, now=f"step{i}")
        assert written["default"] == written["full"], i

    scenario(tmp, [night1, night2], each)
    feeders = written["default"]["feeders"]
    assert feeders["linkedin"]["metrics"]["candidates_sourced"] == 2
    assert feeders["referral"]["metrics"]["candidates_sourced"] == 0
    assert feeders["referral"]["metrics"]["conversion_rate"] is None
