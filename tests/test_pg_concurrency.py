"""Several processes using the interview service on one PostgreSQL database at the same time.

Four worker processes (bounded: a fixed number of calls each and a deadline) each create
processes, add stages, record outcomes and complete processes of their own, and all of them
race on two shared processes: adding the next stage to the first (the order each expects may
be taken by another: the row lock and the unique constraint make that a refusal) and flipping
the second between in_progress and on_hold (only one of two flips from the same status may
win). Each worker reports what the service acknowledged; afterwards the database holds exactly
that: counts, stage orders 1..n with no gap or duplicate, and a status history whose chain
matches every acknowledged move. Nothing lost, nothing duplicated.
"""

from __future__ import annotations

import multiprocessing
import re
import time
from collections import Counter
from typing import Any

import psycopg
import pytest

from ingest.errors import Refused, StoreBusyError
from ingest.service import InterviewService
from ingest.store.postgres.repository import PostgresInterviewStore
from tests import pg

ORG = "0a000000-0000-4000-8000-00000000000a"
WORKERS = 4
OWN_PROCESSES = 3  # per worker
RACE_ROUNDS = 6  # per worker, on each shared process
DEADLINE_SECONDS = 90


def worker(dsn: str, index: int, shared_stages: str, shared_flips: str) -> dict[str, Any]:
    """One worker process: its own processes, then the races. Returns what was acknowledged."""
    store = PostgresInterviewStore(dsn, max_size=2)
    service = InterviewService(store)
    deadline = time.monotonic() + DEADLINE_SECONDS
    done: dict[str, Any] = {"processes": {}, "shared_stages": [], "flips": [], "why": []}
    try:
        for n in range(OWN_PROCESSES):
            process = service.create_interview_process(
                f"cand-{index}", f"Company {index}-{n}", "SWE", recruiter_name=f"R{index}"
            )
            stages = [
                service.add_interview_stage(process.id, name, order).id
                for order, name in enumerate(("Phone Screen", "Technical", "Onsite"), start=1)
            ]
            for stage_id in stages:
                service.update_stage_outcome(stage_id, "passed", ratings={"overall": 4})
            final = "candidate_withdrew" if n % 2 else "rejected_by_company"
            service.complete_interview_process(process.id, final)
            done["processes"][str(process.id)] = {
                "stages": [str(s) for s in stages],
                "final": final,
            }
        for _ in range(RACE_ROUNDS):
            if time.monotonic() > deadline:
                break
            detail = service.get_interview(shared_stages)
            order = len(detail.stages) + 1
            try:
                stage = service.add_interview_stage(shared_stages, f"Round by {index}", order)
                done["shared_stages"].append([str(stage.id), order])
            except (Refused, StoreBusyError) as exc:
                done["why"].append(str(exc))
            current = service.get_interview(shared_flips).process.status
            target = "on_hold" if current == "in_progress" else "in_progress"
            try:
                moved = service.complete_interview_process(shared_flips, target)
                done["flips"].append([current.value, moved.status.value])
            except (Refused, StoreBusyError) as exc:
                done["why"].append(str(exc))
    finally:
        store.close()
    return done


@pytest.fixture
def dsn(pg_server: str) -> Any:
    with pg.database(pg_server) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            for index in range(WORKERS):
                conn.execute(
                    "insert into candidates (id, organization_id, full_name, created_at)"
                    " values (%s, %s, %s, now())",
                    [f"cand-{index}", ORG, f"Candidate {index}"],
                )
            conn.execute(
                "insert into candidates (id, organization_id, full_name, created_at)"
                " values ('cand-shared', %s, 'Shared', now())",
                [ORG],
            )
        yield url


def test_concurrent_service_calls_keep_exactly_what_was_acknowledged(dsn: str) -> None:
    store = PostgresInterviewStore(dsn, max_size=2)
    service = InterviewService(store)
    shared_stages = str(service.create_interview_process("cand-shared", "Race Inc", "SWE").id)
    shared_flips = str(service.create_interview_process("cand-shared", "Flip Inc", "SRE").id)
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        results = pool.starmap_async(
            worker, [(dsn, i, shared_stages, shared_flips) for i in range(WORKERS)]
        ).get(timeout=DEADLINE_SECONDS + 60)

    with psycopg.connect(dsn) as conn:
        # Own processes: every acknowledged process, stage and outcome, nothing else.
        own = {pid: info for r in results for pid, info in r["processes"].items()}
        assert len(own) == WORKERS * OWN_PROCESSES
        rows = conn.execute(
            "select id::text, status from interview_processes where id <> all(%s::uuid[])",
            [[shared_stages, shared_flips]],
        ).fetchall()
        assert dict(rows) == {pid: info["final"] for pid, info in own.items()}
        stages = conn.execute(
            "select interview_process_id::text, id::text, stage_order, outcome"
            " from interview_stages order by interview_process_id, stage_order"
        ).fetchall()
        for pid, info in own.items():
            mine = [(sid, order, outcome) for p, sid, order, outcome in stages if p == pid]
            assert mine == [(sid, n, "passed") for n, sid in enumerate(info["stages"], start=1)]
            history = conn.execute(
                "select from_status, to_status from interview_status_history"
                " where interview_process_id = %s order by id",
                [pid],
            ).fetchall()
            assert history == [(None, "in_progress"), ("in_progress", info["final"])]

        # Shared stages: the acknowledged ones, orders 1..n, each taken once.
        acknowledged = sorted((order, sid) for r in results for sid, order in r["shared_stages"])
        stored = [(order, sid) for p, sid, order, _ in stages if p == shared_stages]
        assert stored == acknowledged
        assert [order for order, _ in stored] == list(range(1, len(stored) + 1))
        assert len(stored) >= 1

        # Shared flips: the history chain is exactly the acknowledged moves, in some order.
        flips = conn.execute(
            "select from_status, to_status from interview_status_history"
            " where interview_process_id = %s order by id",
            [shared_flips],
        ).fetchall()
        assert flips[0] == (None, "in_progress")
        chain = flips[1:]
        assert Counter(map(tuple, (f for r in results for f in r["flips"]))) == Counter(chain)
        for previous, following in zip(flips, flips[1:], strict=False):
            assert following[0] == previous[1]  # each move starts where the last one ended
        (status,) = conn.execute(
            "select status from interview_processes where id = %s", [shared_flips]
        ).fetchone()
        assert status == flips[-1][1]
    # Every refusal was the service's rule seeing the winner's commit, never a crash or deadlock.
    expected = re.compile(
        r"^(stage_order \d+ refused: the next stage of process|process \S+ cannot move from)"
    )
    assert [w for r in results for w in r["why"] if not expected.match(w)] == []
    total_calls = sum(len(r["shared_stages"]) + len(r["flips"]) + len(r["why"]) for r in results)
    assert total_calls == WORKERS * RACE_ROUNDS * 2
    store.close()
