"""Load on a real server on loopback: concurrent lifecycles, an ingest running beside them.

Afterwards, read directly from the store: every acknowledged write is there exactly once and
every process's status history is complete. Bounded (clients, seconds); `make bench` runs the
longer version and reports the latencies (bench/api_load.py).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest.load import ingest_paths
from itrack.api.loadtest import LoadResult, check_stored, run_load
from tests.api_load_support import (
    ROOT,
    SAMPLE,
    duckdb_candidates,
    duckdb_stored,
    postgres_target,
    server,
)
from tests.api_support import ORG, SECRET, lead


def _load_beside(
    db: Path, command: list[str], clients: int, seconds: float
) -> tuple[LoadResult, list[str], subprocess.CompletedProcess]:
    """Clients running lifecycles against a real server on `db` while `itrack COMMAND --db DB
    --wait 30` runs beside them (started a second in, while the clients are busy): the load's
    result, the server's log and the command's outcome."""
    beside: dict[str, subprocess.CompletedProcess] = {}

    def run() -> None:
        time.sleep(1.0)
        itrack = str(Path(sys.executable).with_name("itrack"))
        beside["done"] = subprocess.run(
            [itrack, *command, "--db", str(db), "--wait", "30"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    candidates = duckdb_candidates(db)[:50]
    with server("--db", str(db), "--jwt-secret", SECRET, "--org", ORG) as (base, log):
        side = threading.Thread(target=run)
        side.start()
        try:
            result = run_load(base, lead(), candidates, clients=clients, seconds=seconds)
        finally:
            side.join()
    return result, log, beside["done"]


def _assert_nothing_lost(db: Path, result: LoadResult, log: list[str], beside) -> None:
    assert beside.returncode == 0, beside.stdout + beside.stderr
    assert result.errors == [], result.errors[:5]
    assert not any("Traceback" in line for line in log), log
    assert check_stored(result, *duckdb_stored(db)) == []


def test_concurrent_lifecycles_with_an_ingest_beside_lose_nothing(tmp_path: Path):
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([SAMPLE / "candidates.jsonl"], db=db)
    result, log, ingest = _load_beside(db, ["ingest", str(SAMPLE)], clients=8, seconds=5)
    _assert_nothing_lost(db, result, log, ingest)
    assert len(result.processes) >= 8  # every client created at least one process
    # a client finishes the lifecycle it is in when the time is up: every one completed
    assert [len(p.statuses) for p in result.processes] == [3] * len(result.processes)
    # the ingest's processes are there too, beside the API's
    assert len(duckdb_stored(db)[0]) > len(result.processes)


def test_concurrent_lifecycles_on_postgres_lose_nothing(tmp_path: Path, pg_server: str):
    """The same lifecycles on PostgreSQL, every request under the caller's row-level security,
    served by two processes (`--workers 2`) over an organization with a history: row locks
    serialise the changes of one process, nothing acknowledged is lost or doubled."""
    target = postgres_target(tmp_path, pg_server, workers=2, history=300)
    with target as (base, headers, candidates, read_back):
        result = run_load(base, headers, candidates, clients=8, seconds=4)
    assert result.errors == [], result.errors[:5]
    assert len(result.processes) >= 8
    # a client finishes the lifecycle it is in when the time is up: every one completed
    assert [len(p.statuses) for p in result.processes] == [3] * len(result.processes)
    stored = read_back()
    assert check_stored(result, *stored) == []
    assert len(stored[0]) == 300 + len(result.processes)  # the history, and the load's


@pytest.mark.slow
def test_a_build_beside_the_server_under_load_neither_fails_nor_loses_a_request(tmp_path: Path):
    """`itrack build` (ingest, raw-store snapshot under the store lock, dbt, feedback, publish)
    while clients keep writing: the build exits 0 and every acknowledged write is stored."""
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([SAMPLE], db=db)
    result, log, build = _load_beside(db, ["build"], clients=4, seconds=15)
    _assert_nothing_lost(db, result, log, build)
