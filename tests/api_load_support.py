"""Servers under load for tests/test_api_load.py and bench/api_load.py: a real API process on
loopback over a seeded store, and a way to read back what the store holds afterwards."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import httpx
import psycopg

from ingest.load import ingest_paths
from ingest.store.duckdb.store import raw_store_path
from tests.api_server import free_port
from tests.api_support import ORG, SECRET, lead

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
# (base URL, headers, candidate ids, read_back) where read_back() gives what the store holds,
# valid after the target's block (the server stopped, the store still there)
Target = tuple[str, dict[str, str], list[str], Callable[[], tuple]]


@contextmanager
def server(*args: str) -> Iterator[tuple[str, list[str]]]:
    """`python -m itrack.api.serve ARGS` on a free loopback port; yields (base URL, log lines
    after it stopped: read them after the block). Stopped with SIGINT (graceful)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "itrack.api.serve", "--port", str(port), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base, log = f"http://127.0.0.1:{port}", []
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API server exited: {proc.stdout.read()}")
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the API server did not start") from None
                time.sleep(0.1)
        yield base, log
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        log.extend(out.splitlines())


def duckdb_candidates(db: Path) -> list[str]:
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    try:
        return [r[0] for r in con.execute("select id from candidates order by id").fetchall()]
    finally:
        con.close()


def duckdb_stored(db: Path) -> tuple[dict, dict, set, dict]:
    """(rows per process id, rows per stage id, ids of passed stages, status histories)."""
    con = duckdb.connect(str(raw_store_path(db)), read_only=True)
    try:
        return _stored(con.execute)
    finally:
        con.close()


def _stored(execute) -> tuple[dict, dict, set, dict]:
    processes = dict(
        execute("select id::text, count(*) from interview_processes group by 1").fetchall()
    )
    stages = dict(execute("select id::text, count(*) from interview_stages group by 1").fetchall())
    passed = {
        r[0]
        for r in execute(
            "select id::text from interview_stages where outcome = 'passed'"
        ).fetchall()
    }
    histories: dict[str, list] = {}
    for pid, frm, to in execute(
        "select interview_process_id::text, from_status, to_status "
        "from interview_status_history order by interview_process_id, changed_at"
    ).fetchall():
        histories.setdefault(pid, []).append((frm, to))
    return processes, stages, passed, histories


@contextmanager
def duckdb_target(tmp: Path, _pg_dsn: str | None = None) -> Iterator[Target]:
    db = tmp / "warehouse.duckdb"
    ingest_paths([SAMPLE / "candidates.jsonl"], db=db)
    candidates = duckdb_candidates(db)[:200]
    held: dict[str, tuple] = {}
    with server("--db", str(db), "--jwt-secret", SECRET, "--org", ORG) as (base, _log):
        yield base, lead(), candidates, lambda: held["stored"]
    held["stored"] = duckdb_stored(db)


def postgres_stored(dsn: str) -> tuple[dict, dict, set, dict]:
    with psycopg.connect(dsn) as conn:
        return _stored(conn.execute)


@contextmanager
def postgres_target(
    tmp: Path, pg_admin: str | None, workers: int = 1, history: int = 0, threads: int | None = None
) -> Iterator[Target]:
    """A throw-away migrated database with 200 candidates of organization ORG and `history`
    past processes (two passed stages each), analyzed; the server (`workers` processes of
    `threads` threads, else the default) acts for the clients' lead token (row-level security
    on every statement)."""
    from tests import pg
    from tests.api_support import seed_pg_candidates

    assert pg_admin is not None
    candidates = {f"load-{i:04d}": "referral" if i % 2 else "linkedin" for i in range(200)}
    held: dict[str, tuple] = {}
    with pg.database(pg_admin) as dsn:
        seed_pg_candidates(dsn, candidates)
        seed_pg_history(dsn, history, sorted(candidates))
        args = ("--db", str(tmp / "warehouse.duckdb"), "--store", "postgres", "--pg-dsn", dsn)
        args += ("--workers", str(workers), *(("--threads", str(threads)) if threads else ()))
        with server(*args, "--jwt-secret", SECRET, "--org", ORG) as (base, _log):
            yield base, lead(), sorted(candidates), lambda: held["stored"]
        held["stored"] = postgres_stored(dsn)


def seed_pg_history(dsn: str, processes: int, candidates: list[str]) -> None:
    """`processes` past processes of organization ORG (a month old, two passed stages each),
    then ANALYZE, as a database in use is: autovacuum analyzes a table soon after it grows. On a
    new, empty table the planner takes the organization's index for a lookup by id (to it, the
    table is a page), and a pooled connection keeps that plan of its prepared statements until
    statistics change it: every lookup then reads all of the organization's rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if processes:
            conn.execute(
                "insert into interview_processes (id, organization_id, candidate_id,"
                " company_name, role_title, created_at)"
                " select gen_random_uuid(), %s, (%s::text[])[1 + g %% cardinality(%s::text[])],"
                " 'Past Co ' || g %% 50, 'Engineer', now() - interval '30 days'"
                " from generate_series(1, %s) as g",
                [ORG, candidates, candidates, processes],
            )
            conn.execute(
                "insert into interview_stages (id, organization_id, interview_process_id,"
                " stage_name, stage_order, outcome, created_at, updated_at)"
                " select gen_random_uuid(), p.organization_id, p.id, s.name, s.stage_order,"
                " 'passed', p.created_at, p.created_at from interview_processes as p cross join"
                " (values (1, 'Phone Screen'), (2, 'Technical Interview')) as s (stage_order, name)"
            )
        conn.execute("analyze")
