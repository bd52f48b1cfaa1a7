"""HTTP API status changes run the feedback step after their commit (#18): on the hand-computed
warehouse of tests/lib_data.py, completing P5 through the API updates feeders.json with the
values tests/test_feedback_service.py computes by hand; a failed stage that closes a process
runs it too; without a warehouse the change stands and the step is deferred, saying why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.store.duckdb.store import open_store
from itrack.services import feedback_service
from tests import test_feedback_service as by_hand
from tests.api_support import (
    assert_error,
    client,
    lead,
    move,
    new_process,
    seed_pg_candidates,
    seed_pg_process,
    store_env,
)
from tests.dbt_helpers import pid, ts
from tests.lib_data import DATA
from tests.test_feedback_service import (
    REFERRAL_BUILT,
    SMOOTHED_LIVE,
    no_placement_yet,
    rounded,
    wilson_by_hand,
)

OFFER = {"base_salary": 120000, "currency": "EUR"}
# the built warehouse of tests/lib_data.py and a private copy of it per test
built, db = by_hand.built, by_hand.db


def _feeders(db: Path) -> dict:
    return json.loads((db.parent / "feeders.json").read_text())["feeders"]


def _files(db: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(db.parent.glob("*.json"))}


def _runs(db: Path) -> list[tuple[str, dict]]:
    """The feedback run log, read under the store lock (the server lets go when idle)."""
    with open_store(db, wait_seconds=5) as con:
        found = con.execute(
            "select feeder_source, metrics from feedback_runs order by written_at"
        ).fetchall()
    return [(feeder, json.loads(metrics)) for feeder, metrics in found]


@pytest.fixture(params=["duckdb", "postgres"])
def store(request, db: Path) -> dict:
    """The app's settings for the built warehouse `db`, its processes in the raw store beside it
    or (only P5 and its candidate, all the step reads) in a fresh PostgreSQL database."""
    if request.param == "duckdb":
        return {}
    dsn = request.getfixturevalue("pg_fresh")
    p5 = next(p for p in DATA.processes if p.n == 5)
    seed_pg_candidates(dsn, {p5.candidate: DATA.candidates[p5.candidate]})
    seed_pg_process(dsn, p5.id, p5.candidate, p5.company, p5.feeder, ts(p5.created))
    return {"store": "postgres", "pg_dsn": dsn}


def test_offer_accepted_through_the_api_runs_the_feedback_step(db, store):
    with client(db, **store) as api:
        done = move(api, pid(5), "offer_accepted", offer_details=OFFER)
        assert done["feedback"] == {
            "status": "ran",
            "detail": "feeders.json updated for referral; placement recorded",
        }
        metrics = _feeders(db)["referral"]["metrics"]
        # live counts: P1, P2, P5 sourced; P1, P5 placed; all three decided. Prior: 2 of 7.
        lower, upper = wilson_by_hand(2, 3)
        expected = dict(REFERRAL_BUILT)
        expected["candidates_sourced"] = expected["decided_processes"] = 3
        expected["placements"] = 2
        expected["conversion_rate"] = expected["decided_conversion_rate"] = rounded(2 / 3)
        expected["wilson_interval"] = {"lower": lower, "upper": upper, "confidence": 0.95}
        expected["smoothed_conversion_rate"] = rounded((2 + 10 * 2 / 7) / (3 + 10))
        assert {k: v for k, v in metrics.items() if k != "updated_at"} == expected
        placements = json.loads((db.parent / "candidate_placements.json").read_text())
        assert [(p["company"], p.get("offer_details")) for p in placements["c1"]] == [
            ("Acme", {"base_salary": 150000, "currency": "USD"}),
            ("Beta", OFFER),
        ]
        # every feeder's metrics logged: the overall rate moved each smoothed rate
        written = _feeders(db)
        assert sorted(_runs(db)) == [(n, written[n]["metrics"]) for n in sorted(written)]
        assert list(written) == ["agency", "linkedin", "referral"]  # appended in name order

        # the same call again: refused by the state machine, and nothing changes
        files = _files(db)
        again = api.put(
            f"/interviews/{pid(5)}",
            json={"status": "offer_accepted", "offer_details": OFFER},
            headers=lead(),
        )
        assert_error(again, 409, contains="offer_accepted is final")
        assert _files(db) == files
        assert len(_runs(db)) == 3
        # the server still serves after letting go of the store for the step
        assert api.get(f"/interviews/{pid(5)}", headers=lead()).status_code == 200


def _stage_with_outcome(api, process_id: str, name: str, order: int, outcome: str):
    """Add the next stage and record its outcome: the outcome's response (checked 200)."""
    stage = api.post(
        f"/interviews/{process_id}/stages",
        json={"stage_name": name, "stage_order": order},
        headers=lead(),
    ).json()
    r = api.put(
        f"/interviews/stages/{stage['id']}/outcome", json={"outcome": outcome}, headers=lead()
    )
    assert r.status_code == 200, r.text
    return r


def test_a_failed_stage_closing_the_process_runs_it_too(db):
    with client(db) as api:
        process = new_process(api, candidate_id="c3", company_name="Gamma", role_title="Eng")
        passed = _stage_with_outcome(api, process["id"], "Phone Screen", 1, "passed")
        assert passed.json()["feedback"] is None  # the process stays open: nothing to run
        assert not (db.parent / "feeders.json").exists()
        r = _stage_with_outcome(api, process["id"], "Onsite", 2, "failed")
        assert r.status_code == 200, r.text
        assert (r.json()["outcome"], r.json()["feedback"]) == (
            "failed",
            # the placements file was missing: written as the nightly step writes it
            {
                "status": "ran",
                "detail": "feeders.json updated for linkedin; placement history updated",
            },
        )
        closed = api.get(f"/interviews/{process['id']}", headers=lead()).json()
        assert (closed["status"], closed["final_outcome"]) == (
            "rejected_by_company",
            "Failed Onsite",
        )
    # c3 came from linkedin: P3, P4, P6 and the new one sourced, all four decided, none placed
    metrics = _feeders(db)["linkedin"]["metrics"]
    assert (metrics["candidates_sourced"], metrics["decided_processes"]) == (4, 4)
    assert (metrics["placements"], metrics["conversion_rate"]) == (0, 0.0)


def test_without_a_warehouse_the_change_stands_and_feedback_is_deferred(tmp_path):
    with store_env("duckdb", tmp_path) as env, client(env.db) as api:
        process_id = new_process(api)["id"]
        done = move(api, process_id, "candidate_withdrew")
        assert done["feedback"] == {
            "status": "deferred",
            "detail": f"{env.db}: no warehouse yet; run `itrack build` first",
        }
        assert env.history(process_id)[-1] == ("in_progress", "candidate_withdrew")
    assert not (tmp_path / "feeders.json").exists()


def test_a_feedback_run_smooths_live_outcomes_as_the_cli_does(tmp_path):
    """POST /feedback/run folded a live acceptance into feeders.json without the dbt var
    feeder_prior_strength, which `itrack feedback`, the build and the live path pass: with no
    placement in the build, referral's smoothed rate stayed 0.0 beside a conversion rate of
    0.5 (found by the exploratory marts run)."""
    db = no_placement_yet(tmp_path)
    feedback_service(db).process_interview_outcome(pid(1))  # the live step, as the CLI runs it
    with client(db) as api:
        r = api.post("/feedback/run", headers=lead())
        assert r.status_code == 200, r.text
    metrics = _feeders(db)["referral"]["metrics"]
    assert (metrics["conversion_rate"], metrics["smoothed_conversion_rate"]) == (0.5, SMOOTHED_LIVE)
