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
from itrack.api.loadtest import check_stored, run_load
from tests.api_load_support import (
    ROOT,
    SAMPLE,
    duckdb_candidates,
    duckdb_stored,
    postgres_target,
    server,
)
from tests.api_support import ORG, SECRET, lead


def test_concurrent_lifecycles_with_an_ingest_beside_lose_nothing(tmp_path: Path):
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([SAMPLE / "candidates.jsonl"], db=db)
    candidates = duckdb_candidates(db)[:50]
    ingest_result: dict = {}

    def ingest_beside() -> None:
        time.sleep(1.0)  # while the clients are busy
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name("itrack")),
                "ingest",
                str(SAMPLE),
                "--db",
                str(db),
                "--wait",
                "30",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        ingest_result.update(code=done.returncode, out=done.stdout + done.stderr)

    with server("--db", str(db), "--jwt-secret", SECRET, "--org", ORG) as (base, log):
        side = threading.Thread(target=ingest_beside)
        side.start()
        try:
            result = run_load(base, lead(), candidates, clients=8, seconds=5)
        finally:
            side.join()
    assert ingest_result["code"] == 0, ingest_result["out"]
    assert result.errors == [], result.errors[:5]
    assert not any("Traceback" in line for line in log), log
    assert len(result.processes) >= 8  # every client created at least one process
    assert [p for p in result.processes if len(p.statuses) == 3], "no lifecycle completed"
    processes, stages, passed, histories = duckdb_stored(db)
    assert check_stored(result, processes, stages, passed, histories) == []
    # the ingest's processes are there too, beside the API's
    assert len(processes) > len(result.processes)


def test_concurrent_lifecycles_on_postgres_lose_nothing(tmp_path: Path, pg_server: str):
    """The same lifecycles on PostgreSQL, every request under the caller's row-level security:
    row locks serialise the changes of one process, nothing acknowledged is lost or doubled."""
    with postgres_target(tmp_path, pg_server) as (base, headers, candidates, read_back):
        result = run_load(base, headers, candidates, clients=8, seconds=4)
    assert result.errors == [], result.errors[:5]
    assert len(result.processes) >= 8
    assert [p for p in result.processes if len(p.statuses) == 3], "no lifecycle completed"
    assert check_stored(result, *read_back()) == []


@pytest.mark.slow
def test_a_build_beside_the_server_under_load_neither_fails_nor_loses_a_request(tmp_path: Path):
    """`itrack build` (ingest, raw-store snapshot under the store lock, dbt, feedback, publish)
    while clients keep writing: the build exits 0 and every acknowledged write is stored."""
    db = tmp_path / "warehouse.duckdb"
    ingest_paths([SAMPLE], db=db)
    candidates = duckdb_candidates(db)[:50]
    build: dict = {}

    def build_beside() -> None:
        time.sleep(1.0)
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name("itrack")),
                "build",
                "--db",
                str(db),
                "--wait",
                "30",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        build.update(code=done.returncode, out=done.stdout + done.stderr)

    with server("--db", str(db), "--jwt-secret", SECRET, "--org", ORG) as (base, log):
        side = threading.Thread(target=build_beside)
        side.start()
        try:
            result = run_load(base, lead(), candidates, clients=4, seconds=15)
        finally:
            side.join()
    assert build["code"] == 0, build["out"]
    assert result.errors == [], result.errors[:5]
    assert not any("Traceback" in line for line in log), log
    assert check_stored(result, *duckdb_stored(db)) == []
